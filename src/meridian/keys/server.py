"""The key server of a region node: wraps a meeting key to a participant holding a key grant.

It trusts nothing but the grant (signed by the control plane) and its own configuration: the
grant's allowed regions must include this region (checked by the verifier) and its key region
must *be* this region, or it refuses with :class:`FenceError` — whatever the control plane
thinks, a meeting's key never comes from a region it is fenced out of.

Epochs only go forward: an epoch below the highest this key server issued for the meeting is
refused (:class:`FenceError`), and each (meeting, epoch, session) has its own random salt in the
store, so a repeated epoch number in a new session of the control plane is a new key.
"""

from __future__ import annotations

import threading
from typing import TypedDict

from ..errors import ConfigurationError, FenceError, GrantError, InputError, shown
from .grants import GrantVerifier
from .store import MasterKeyStore
from .wrap import KeyContext, check_public_key, wrap_key

__all__ = ["IssuedKey", "KeyServer"]


class IssuedKey(TypedDict):
    """The body of a ``200`` from ``POST /v1/keys``."""

    region: str
    epoch: int
    wrapped: dict[str, str]


class KeyServer:
    """One region's key server: grants in, wrapped meeting keys out, each one counted.

    ``keys_issued`` counts wrapped keys per meeting. ``refusals`` counts refusals by kind
    (``grant``, ``fence``, ``input``), not by meeting: a refused grant may be forged, and a
    forged meeting id must not make a counter.
    """

    def __init__(self, region: str, store: MasterKeyStore, verifier: GrantVerifier) -> None:
        if verifier.region != region:
            raise ConfigurationError(
                f"key server `{region}` is given a grant verifier for region `{verifier.region}`"
            )
        self.region = region
        self.store = store
        self.verifier = verifier
        self.keys_issued: dict[str, int] = {}
        self.refusals: dict[str, int] = {}
        # the HTTP door may call from several threads; a counter must not lose an increment
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyServer(region={self.region!r}, store={self.store!r})"

    def issue(self, grant_token: str, public_key: bytes) -> IssuedKey:
        """The meeting key of the grant's epoch, wrapped to ``public_key``.

        Raises :class:`GrantError` for a missing, forged, expired, misdirected or non-``key``
        grant; :class:`FenceError` when this region is outside the grant's allowed set or is
        not its key region; :class:`InputError` for a public key that is not 32 bytes of a
        usable X25519 point.
        """
        try:
            grant = self.verifier.verify(grant_token, typ="key")
            if grant.key_region != self.region:
                raise FenceError(
                    f"key server `{self.region}` refuses meeting `{shown(grant.meeting)}`: "
                    f"its key region is `{shown(grant.key_region)}`"
                )
            if not grant.session:
                raise GrantError("invalid grant: a `key` grant names no session")
            check_public_key(public_key)
            key, highest = self.store.epoch_key(grant.meeting, grant.epoch, grant.session)
            if key is None:
                raise FenceError(
                    f"key server `{self.region}` refuses epoch `{grant.epoch}` of meeting "
                    f"`{shown(grant.meeting)}`: epoch `{highest}` was issued already"
                )
            context = KeyContext(grant.meeting, grant.participant, self.region, grant.epoch)
            wrapped = wrap_key(key, public_key, context)
        except GrantError:
            self._count(self.refusals, "grant")
            raise
        except FenceError:
            self._count(self.refusals, "fence")
            raise
        except InputError:
            self._count(self.refusals, "input")
            raise
        self._count(self.keys_issued, grant.meeting)
        return {"region": self.region, "epoch": grant.epoch, "wrapped": wrapped.to_json()}

    def _count(self, counter: dict[str, int], name: str) -> None:
        with self._lock:
            counter[name] = counter.get(name, 0) + 1
