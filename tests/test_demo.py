"""The demo's token files: what ``make run`` keeps each printed token in."""

from __future__ import annotations

import stat
from pathlib import Path

from meridian.demo import save_demo_tokens


def test_each_demo_token_is_kept_in_its_own_0600_file(tmp_path: Path) -> None:
    var = tmp_path / "var"
    written = save_demo_tokens({"operator": "mer_op", "bizconf": "mer_biz"}, var)
    assert written == {"operator": var / "operator.token", "bizconf": var / "bizconf.token"}
    assert (var / "operator.token").read_text() == "mer_op\n"
    assert (var / "bizconf.token").read_text() == "mer_biz\n"
    assert stat.S_IMODE(var.stat().st_mode) & 0o077 == 0
    for path in written.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_a_second_start_replaces_the_files(tmp_path: Path) -> None:
    save_demo_tokens({"operator": "old"}, tmp_path)
    save_demo_tokens({"operator": "new"}, tmp_path)
    assert (tmp_path / "operator.token").read_text() == "new\n"
