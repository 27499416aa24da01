"""Progress lines, host prefixes, summaries, and the redaction every line goes through.

Progress and logs go to stderr, pipeable data (plans, join commands) to stdout. Every line is
passed through :func:`tasks.core.secrets.scrub` so a registered secret never reaches a terminal
or a log, even by mistake.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

from .core.secrets import scrub

_LOCK = threading.Lock()


def _use_color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


def stage(text: str) -> None:
    """A stage header: ``--> Gathering facts (5 hosts)``."""
    err(f"--> {text}")


def info(text: str, *, host: str = "", phase: str = "") -> None:
    prefix = (f"[{host}] " if host else "") + (f"[{phase}] " if phase else "")
    err(prefix + text)


def err(text: str) -> None:
    with _LOCK:
        sys.stderr.write(scrub(text) + "\n")
        sys.stderr.flush()


def out(text: str, *, reveal: bool = False) -> None:
    """Write data to stdout (scrubbed unless ``reveal``: the operator asked for secrets)."""
    with _LOCK:
        sys.stdout.write((text if reveal else scrub(text)) + ("" if text.endswith("\n") else "\n"))
        sys.stdout.flush()


@dataclass
class PhaseTiming:
    host: str
    phase: str
    seconds: float
    round_trips: int = 0
    changed: int = 0
    unchanged: int = 0


@dataclass
class Timer:
    """Collects per-host, per-phase timings for the summary and the benchmark."""

    rows: list[PhaseTiming] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, row: PhaseTiming) -> None:
        with _LOCK:
            self.rows.append(row)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def table(self) -> str:
        if not self.rows:
            return ""
        w_host = max(4, *(len(r.host) for r in self.rows))
        w_phase = max(5, *(len(r.phase) for r in self.rows))
        lines = [f"{'HOST':<{w_host}}  {'PHASE':<{w_phase}}  {'TIME':>7}  {'SSH':>3}  {'CHANGED':>7}  {'UNCHANGED':>9}"]
        for r in self.rows:
            lines.append(f"{r.host:<{w_host}}  {r.phase:<{w_phase}}  {r.seconds:>6.2f}s  {r.round_trips:>3}  "
                         f"{r.changed:>7}  {r.unchanged:>9}")
        return "\n".join(lines)


def table(rows: list[tuple[str, ...]], *, sep: str = "   ") -> str:
    """Rows as left-aligned columns (the first row is the header), trailing blanks stripped:
    the one table printer (summary, token.list, certs.check-expiration)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(sep.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
