"""Settings come from MERIDIAN_* variables when asked, never at import, and bad ones are named."""

from __future__ import annotations

import pytest

from meridian.errors import ConfigurationError
from meridian.settings import DEFAULT_DATABASE_URL, get_settings


def test_defaults_need_no_environment():
    s = get_settings({})
    assert s.database_url == DEFAULT_DATABASE_URL
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.trusted_proxies == ()


def test_environment_overrides_and_postgresql_gets_psycopg():
    s = get_settings(
        {
            "MERIDIAN_DATABASE_URL": "postgresql://u@db/meridian",
            "MERIDIAN_PORT": "9000",
            "MERIDIAN_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
            "MERIDIAN_CLOCK": "2020-08-23T00:00:00+08:00",
        }
    )
    assert s.database_url == "postgresql+psycopg://u@db/meridian"
    assert s.port == 9000
    assert s.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert s.clock == "2020-08-23T00:00:00+08:00"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MERIDIAN_PORT": "eighty"}, "settings: `port` is `eighty`"),
        ({"MERIDIAN_TRUSTED_PROXIES": "not-a-net"}, "`not-a-net` is not an IP network"),
        ({"MERIDIAN_DATABASE_URL": "mysql://x"}, "not a supported database url"),
        ({"MERIDIAN_MODE": "yolo"}, "settings: `mode` is `yolo`"),
        ({"MERIDIAN_RATE_SIGNUP": "lots"}, "`lots` is not a rate limit: expected e.g. `20/minute`"),
        ({"MERIDIAN_REDIS_URL": "localhost:6379"}, "`localhost:6379` is not a redis url"),
        ({"MERIDIAN_MAX_BODY_BYTES": "12"}, "`max_body_bytes`"),
    ],
)
def test_bad_settings_are_one_line_configuration_errors(env, message):
    with pytest.raises(ConfigurationError) as exc:
        get_settings(env)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_limits_are_read_from_the_environment():
    s = get_settings(
        {
            "MERIDIAN_MAX_BODY_BYTES": "100000",
            "MERIDIAN_IDEMPOTENCY_TTL": "3600",
            "MERIDIAN_REDIS_URL": "redis://127.0.0.1:6379/0",
            "MERIDIAN_RATE_DECISIONS": "10/second;1000/hour",
            "MERIDIAN_RATE_JOINS": "5/minute",
        }
    )
    assert (s.max_body_bytes, s.idempotency_ttl) == (100_000, 3600.0)
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert (s.rate_decisions, s.rate_joins) == ("10/second;1000/hour", "5/minute")
    assert get_settings({}).rate_signup == "20/minute;200/hour"
