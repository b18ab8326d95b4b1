"""Progress on stderr for long work, and the one summary line it ends with.

A long command (an export, a verification, a transition report, a renewal run) and a benchmark
script show a rich progress bar on stderr while they work, then print exactly one summary line
on stderr::

    verified 1,000,000 entries and 37 checkpoints in 3.1 s: ok

stdout is left alone: JSON, a report's bytes or a command's result line are the same with or
without the bar, byte for byte.

The bar shows when stderr is an interactive terminal (rich's test: ``isatty``, or
``FORCE_COLOR`` / ``TTY_COMPATIBLE``). ``MERIDIAN_PROGRESS`` overrides that: ``always`` draws it
on any stderr (a CI log that renders escape codes, a test), ``never`` hides it; ``auto`` is the
default. A hidden bar is only two counters: no rich display, no refresh thread. The summary line
is printed either way.

The work reports its own counts: a :class:`Bar` is the ``progress(done[, total])`` callback the
library functions take, and they call it in batches where an item is cheap:
:func:`meridian.audit.verify.verify_export` every 65,536 entries,
:func:`meridian.audit.export.write_export` every 10,000,
:func:`meridian.commerce.transition.plan_transition` every 64 accounts (then every item it
applies, each its own transaction), :func:`meridian.commerce.renewal.renew_due` every
subscription (each its own transaction).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from ..errors import InputError, shown

__all__ = [
    "PROGRESS_ENV",
    "Bar",
    "CaseBar",
    "bench_cases",
    "count",
    "duration",
    "file_size",
    "progress_bar",
    "progress_shown",
    "summary",
]

#: the environment variable that overrides when the bar shows: ``auto``, ``always`` or ``never``
PROGRESS_ENV = "MERIDIAN_PROGRESS"
_MODES = ("auto", "always", "never")
#: redraws a second while the work runs (each one renders the bar in the worker's process)
_REFRESH_PER_SECOND = 5


def _mode() -> str:
    value = os.environ.get(PROGRESS_ENV, "")
    mode = value.strip().lower() or "auto"
    if mode not in _MODES:
        raise InputError(
            f"unknown progress display `{shown(value)}` in {PROGRESS_ENV}: "
            "expected `auto`, `always` or `never`"
        )
    return mode


def _console() -> Console:
    return Console(stderr=True, force_terminal=True if _mode() == "always" else None)


def progress_shown(console: Console | None = None) -> bool:
    """Whether a bar on ``console`` (default: stderr) is drawn (see the module's docstring)."""
    mode = _mode()
    if mode != "auto":
        return mode == "always"
    console = console or _console()
    return console.is_terminal and not console.is_dumb_terminal


class _Count(ProgressColumn):
    """``1,234/70,000 entries``, or ``1,234 entries`` while the total is unknown."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        done = f"{int(task.completed):,}"
        text = done if task.total is None else f"{done}/{int(task.total):,}"
        return Text(f"{text} {unit}".rstrip(), style="progress.download")


class Bar:
    """One bar: what is being done and how far it is, in the work's own counts.

    Call it as the work's ``progress`` callback: ``bar(done)`` or ``bar(done, total)``.
    ``done`` and ``total`` are kept whether or not the bar is drawn, so a summary can use them.
    """

    def __init__(
        self, progress: Progress | None, description: str, total: int | None, unit: str
    ) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._started = time.perf_counter()
        self._stopped: float | None = None
        self.done = 0
        self.total = total
        self.phase(description, total=total, unit=unit)

    def __call__(self, done: int, total: int | None = None) -> None:
        """``done`` of ``total`` (of the total given before, when ``None``)."""
        self.done = done
        if total is not None:
            self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=self.total)

    def phase(self, description: str, *, total: int | None = None, unit: str = "") -> None:
        """Start the next phase of the work: its own text, counts from 0 of ``total``.

        The phase before is drawn once more as it ended, however short it was.
        """
        self.done, self.total = 0, total
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.refresh()
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, unit=unit)

    def describe(self, description: str) -> None:
        """New text for the bar, the counts as they are."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)

    def refresh(self) -> None:
        """Redraw now (for a bar without its refresh thread: see :func:`bench_cases`)."""
        if self._progress is not None:
            self._progress.refresh()

    @property
    def seconds(self) -> float:
        """Seconds since the bar started, until it stopped."""
        end = time.perf_counter() if self._stopped is None else self._stopped
        return end - self._started

    def _stop(self) -> None:
        self._stopped = time.perf_counter()


@contextmanager
def progress_bar(
    description: str,
    *,
    total: int | None = None,
    unit: str = "",
    auto_refresh: bool = True,
) -> Iterator[Bar]:
    """A bar on stderr while the ``with`` block runs; erased when it ends.

    An unknown ``total`` (``None``) shows a moving bar and the count alone. With
    ``auto_refresh=False`` no thread redraws it: it is redrawn at :meth:`Bar.refresh` only.
    """
    console = _console()
    if not progress_shown(console):
        bar = Bar(None, description, total, unit)
        try:
            yield bar
        finally:
            bar._stop()
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        auto_refresh=auto_refresh,
        refresh_per_second=_REFRESH_PER_SECOND,
        # INVARIANT: stdout is never drawn through the bar's console (stderr), so what a command
        # prints there stays where it was, whatever runs during the bar
        redirect_stdout=False,
    )
    with progress:
        bar = Bar(progress, description, total, unit)
        try:
            yield bar
        finally:
            bar._stop()


class CaseBar:
    """A benchmark's cases on one bar: :meth:`start` each one as it begins.

    Without ``bar`` (a script's function called from elsewhere, a test) nothing is drawn.
    """

    def __init__(self, script: str, unit: str = "case", bar: Bar | None = None) -> None:
        self.bar = bar or Bar(None, script, None, unit)
        self.script = script
        self.unit = unit
        self.started = 0

    def start(self, name: str) -> None:
        """The case before (if any) is done; ``name`` begins."""
        self.bar(self.started)
        self.bar.describe(f"{self.script}: {name}")
        self.started += 1
        self.bar.refresh()

    def summary_line(self) -> str:
        """``bench/audit.py: 9 cases in 42 s``: the cases started, the time the bar ran."""
        return f"{self.script}: {count(self.started, self.unit)} in {duration(self.bar.seconds)}"


@contextmanager
def bench_cases(script: str, total: int, *, unit: str = "case") -> Iterator[CaseBar]:
    """The bar of a benchmark script over its ``total`` cases (``unit``: what one is called).

    The bar is redrawn only between cases, never by a thread: nothing of it runs while a case
    is being timed. A bad ``MERIDIAN_PROGRESS`` ends the script with its one-line error.
    """
    try:
        _mode()
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None
    with progress_bar(
        f"{script}: starting", total=total, unit=f"{unit}s", auto_refresh=False
    ) as bar:
        cases = CaseBar(script, unit, bar)
        yield cases
        bar(cases.started)
        bar.refresh()


def summary(line: str) -> None:
    """Print a command's one summary line on stderr."""
    typer.echo(line, err=True)


def count(n: int, one: str, many: str | None = None) -> str:
    """``1,000,000 entries``, ``1 checkpoint``: ``many`` defaults to ``one`` + ``s``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def duration(seconds: float) -> str:
    """``0.04 s``, ``3.1 s``, ``42 s``, ``4 min 07 s``."""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s"


def file_size(size: int) -> str:
    """``812 B``, ``12.3 kB``, ``1.2 MB``, ``340 GB`` (powers of 1000)."""
    value, unit = float(size), "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    if unit == "B":
        return f"{size} B"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
