"""The log's side of witnessing: submit each checkpoint to the witnesses, keep their cosignatures.

The witnesses are configured as ``MERIDIAN_WITNESSES``: one ``<vkey> <url>`` pair per witness,
pairs separated by commas (``docs/settings.md``). After each checkpoint, :meth:`Witnessing.submit`
sends every witness that has not cosigned it an ``add-checkpoint`` request (c2sp.org/tlog-witness)
with the consistency proof from the size that witness last cosigned; the cosignature line that
comes back is checked with the witness's configured key and stored beside the checkpoint
(``checkpoint_cosignatures``, in the database every replica shares). ``/log/checkpoint`` serves
the latest checkpoint with the lines it gathered (:meth:`Witnessing.cosigned_note`).

A witness that is down, slow or refusing never holds the log up: the failure is recorded for that
witness (``witness_states``: its size, the problem, whether it refused the log as inconsistent),
logged, listed by :meth:`Witnessing.report`, and the next :meth:`submit` tries again. A witness
that answers 409 holds another size: the log resubmits once from that size. A refusal as
inconsistent (422) means the witness holds a history this log does not extend — a fork, or a
rewritten database — and is logged as an error.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ConfigurationError, InputError, ProofError, shown
from ..storage.models import CheckpointCosignature, WitnessState
from .cosignature import WitnessKey, cosignatures
from .log import AuditLog, Signed
from .note import peek_checkpoint

__all__ = ["Submission", "WitnessEndpoint", "WitnessReport", "Witnessing", "parse_witnesses"]

log = logging.getLogger("meridian.audit.witnessing")

#: the largest witness answer read (a few signature lines)
_MAX_ANSWER = 16 * 1024
#: a tree size as a witness writes it in a 409 (c2sp.org/tlog-witness): decimal ASCII digits
_SIZE = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """One configured witness: its key (and so its name) and its submission URL prefix."""

    key: WitnessKey
    url: str

    @property
    def name(self) -> str:
        return self.key.name


def parse_witnesses(items: Iterable[str]) -> tuple[WitnessEndpoint, ...]:
    """``<vkey> <url>`` items as endpoints; :class:`ConfigurationError` naming a bad one."""
    out: list[WitnessEndpoint] = []
    for item in items:
        parts = item.split()
        if len(parts) != 2:
            raise ConfigurationError(
                f"MERIDIAN_WITNESSES: `{shown(item)}` is not `<witness key> <url>`"
            )
        vkey, url = parts
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"MERIDIAN_WITNESSES: witness url `{shown(url)}` must start with http:// or https://"
            )
        try:
            key = WitnessKey.from_vkey(vkey)
        except InputError as exc:
            raise ConfigurationError(f"MERIDIAN_WITNESSES: {exc.message}") from None
        out.append(WitnessEndpoint(key, url.rstrip("/")))
    if len({w.name for w in out}) != len(out):
        raise ConfigurationError("MERIDIAN_WITNESSES: two witnesses have the same name")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Submission:
    """What one submission to one witness came to: cosigned, or the problem (one line)."""

    witness: str
    size: int
    cosigned: bool
    problem: str | None


@dataclass(frozen=True, slots=True)
class WitnessReport:
    """One witness as the log knows it: the size it holds, whether it cosigned the latest
    checkpoint, and the last problem (``None`` when it cosigned)."""

    witness: str
    size: int
    cosigned_latest: bool
    problem: str | None
    refused: bool
    checked_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "witness": self.witness,
            "size": self.size,
            "cosigned_latest": self.cosigned_latest,
            "problem": self.problem,
            "refused": self.refused,
            "checked_at": None if self.checked_at is None else self.checked_at.isoformat(),
        }


class Witnessing:
    """Submits ``log``'s checkpoints to ``witnesses`` and keeps what they return."""

    def __init__(
        self,
        log: AuditLog,
        witnesses: Sequence[WitnessEndpoint],
        *,
        timeout: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = log
        self.witnesses = tuple(witnesses)
        self._clock = clock
        self._timeout = timeout
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=self._timeout)
            return self._http

    # -- reading ------------------------------------------------------------------------------

    def lines(self, size: int) -> list[str]:
        """The cosignature lines stored for the checkpoint at ``size``, by witness name."""
        with self.log.db.read() as session:
            rows = session.scalars(
                select(CheckpointCosignature.line)
                .where(CheckpointCosignature.size == size)
                .order_by(CheckpointCosignature.witness)
            ).all()
        return list(rows)

    def cosigned_note(self, signed: Signed | None = None) -> str:
        """The note of ``signed`` (default: the latest checkpoint, issued if none yet) with
        every cosignature line gathered for it appended."""
        if signed is None:
            signed = self.log.latest() or self.log.checkpoint()
        return signed.note + "".join(self.lines(signed.checkpoint.size))

    def cosigned_notes(self, notes: Iterable[str]) -> list[str]:
        """Each note with the cosignature lines stored for its size (an export's checkpoints)."""
        with self.log.db.read() as session:
            rows = session.execute(
                select(CheckpointCosignature.size, CheckpointCosignature.line).order_by(
                    CheckpointCosignature.size, CheckpointCosignature.witness
                )
            ).all()
        by_size: dict[int, list[str]] = {}
        for size, line in rows:
            by_size.setdefault(size, []).append(line)
        return [n + "".join(by_size.get(peek_checkpoint(n).size, [])) for n in notes]

    def report(self) -> tuple[WitnessReport, ...]:
        """Every configured witness, and whether it cosigned the latest checkpoint."""
        latest = self.log.latest()
        size = None if latest is None else latest.checkpoint.size
        with self.log.db.read() as session:
            states = {s.witness: s for s in session.scalars(select(WitnessState))}
            signed = set(
                session.scalars(
                    select(CheckpointCosignature.witness).where(CheckpointCosignature.size == size)
                )
            )
        out = []
        for witness in self.witnesses:
            state = states.get(witness.name)
            out.append(
                WitnessReport(
                    witness.name,
                    0 if state is None else state.size,
                    witness.name in signed,
                    None if state is None else state.problem,
                    False if state is None else state.refused,
                    None if state is None else state.checked_at,
                )
            )
        return tuple(out)

    # -- submitting ---------------------------------------------------------------------------

    def submit(self) -> list[Submission]:
        """Offer the latest checkpoint to every witness that has not cosigned it yet."""
        latest = self.log.latest()
        if latest is None or not self.witnesses:
            return []
        done = {r.witness for r in self.report() if r.cosigned_latest}
        return [
            self._submit_one(witness, latest)
            for witness in self.witnesses
            if witness.name not in done
        ]

    def _submit_one(self, witness: WitnessEndpoint, signed: Signed) -> Submission:
        size = signed.checkpoint.size
        old = self._known_size(witness.name)
        # at most two tries: a 409 says which size the witness holds, and the second try uses it
        for _attempt in range(2):
            if old > size:
                return self._fail(
                    witness,
                    old,
                    size,
                    f"witness `{witness.name}` holds size {old}, beyond this log's checkpoint "
                    f"at {size}: the log lost entries it had shown, or forked",
                    refused=True,
                )
            proof = [] if old in (0, size) else self.log.consistency(old, size)[1]
            body = (
                f"old {old}\n"
                + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
                + "\n"
                + signed.note
            )
            try:
                status, phrase, raw = self._post(witness.url + "/add-checkpoint", body.encode())
            except httpx.HTTPError as exc:
                return self._fail(
                    witness, old, size, f"witness `{witness.name}` is unreachable: {exc}"
                )
            text = raw.decode("utf-8", "replace")
            if status == 409:
                held = text.strip()
                # a size is at most 19 ASCII digits and below 2**63 (what the database holds)
                if not _SIZE.fullmatch(held) or int(held) >= 2**63 or int(held) == old:
                    return self._fail(
                        witness, old, size, f"witness `{witness.name}` answered 409 `{shown(held)}`"
                    )
                old = int(held)
                continue
            if status == 200:
                return self._keep(witness, signed, text)
            reason = text.strip().splitlines()[0] if text.strip() else phrase
            refused = status == 422
            return self._fail(
                witness,
                old,
                size,
                f"witness `{witness.name}` refused the checkpoint at size {size} "
                f"({status}): {shown(reason, 300)}",
                refused=refused,
            )
        return self._fail(witness, old, size, f"witness `{witness.name}` kept answering 409")

    def _post(self, url: str, body: bytes) -> tuple[int, str, bytes]:
        """POST ``body``; the status, its phrase and at most :data:`_MAX_ANSWER` bytes of the
        answer (a witness is not trusted: the rest of a longer answer is never read)."""
        with self._client().stream(
            "POST", url, content=body, headers={"Content-Type": "text/plain; charset=utf-8"}
        ) as answer:
            raw = bytearray()
            for chunk in answer.iter_bytes():
                raw += chunk
                if len(raw) >= _MAX_ANSWER:
                    break
            return answer.status_code, answer.reason_phrase, bytes(raw[:_MAX_ANSWER])

    def _keep(self, witness: WitnessEndpoint, signed: Signed, text: str) -> Submission:
        size = signed.checkpoint.size
        lines = [line + "\n" for line in text.split("\n") if line]
        try:
            check = cosignatures(signed.note + "".join(lines), [witness.key])
        except ProofError as exc:
            return self._fail(witness, size, size, f"witness `{witness.name}` answered {exc}")
        if not check.valid:
            return self._fail(
                witness,
                size,
                size,
                f"witness `{witness.name}` answered no cosignature that verifies with its key",
            )
        # keep only the line that verified, exactly as the witness wrote it
        line = next(
            line
            for line in lines
            if cosignatures(signed.note + line, [witness.key]).valid == check.valid
        )
        now = self._clock()
        try:
            # the cosignature and the witness's new size in one transaction: a reader never
            # sees one without the other
            with self.log.db.write() as session:
                stored = session.scalar(
                    select(CheckpointCosignature.id).where(
                        CheckpointCosignature.size == size,
                        CheckpointCosignature.witness == witness.name,
                    )
                )
                if stored is None:
                    session.add(
                        CheckpointCosignature(
                            size=size,
                            witness=witness.name,
                            timestamp=check.valid[0].timestamp,
                            line=line,
                            received_at=now,
                        )
                    )
                self._put_state(session, witness.name, size, None, refused=False)
        except IntegrityError:
            # another replica stored this witness's cosignature at this size first
            self._state(witness.name, size, None, refused=False)
        return Submission(witness.name, size, True, None)

    def _fail(
        self, witness: WitnessEndpoint, held: int, size: int, problem: str, *, refused: bool = False
    ) -> Submission:
        if refused:
            log.error("%s", problem)
        else:
            log.warning("%s", problem)
        self._state(witness.name, held, problem, refused=refused)
        return Submission(witness.name, size, False, problem)

    def _known_size(self, name: str) -> int:
        with self.log.db.read() as session:
            size = session.scalar(select(WitnessState.size).where(WitnessState.witness == name))
        return 0 if size is None else int(size)

    def _state(self, name: str, size: int, problem: str | None, *, refused: bool) -> None:
        try:
            with self.log.db.write() as session:
                self._put_state(session, name, size, problem, refused=refused)
        except IntegrityError:
            pass  # another replica recorded this witness first: its next submission updates it

    def _put_state(
        self, session: Session, name: str, size: int, problem: str | None, *, refused: bool
    ) -> None:
        now = self._clock()
        state = session.get(WitnessState, name)
        if state is None:
            session.add(
                WitnessState(
                    witness=name, size=size, checked_at=now, problem=problem, refused=refused
                )
            )
        else:
            state.size, state.checked_at = size, now
            state.problem, state.refused = problem, refused
