"""Progress lines, host prefixes, summaries, and the redaction every line goes through.

Progress and logs go to stderr, pipeable data (plans, join commands) to stdout. Every line is
passed through :func:`tasks.core.secrets.scrub` so a registered secret never reaches a terminal
or a log, even by mistake.

With ``-o json`` / ``-o yaml`` (:func:`configure`) stdout carries exactly one document, written
by :func:`emit` with kubefab's header (``apiVersion: kubefab.dev/v1alpha1``, ``kind: ...``, as
kubeadm's ``output.kubeadm.k8s.io`` documents); every human line, tables included, goes to
stderr instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .core.secrets import scrub

LOG = logging.getLogger("kubefab")
LOG.addHandler(logging.NullHandler())  # the log file's handler comes with open_log()
LOG.propagate = False                   # stderr gets only what err()/log() write

_LOCK = threading.Lock()

API_VERSION = "kubefab.dev/v1alpha1"
FORMATS = ("text", "json", "yaml")


@dataclass
class Settings:
    """How this process prints: set once per command by the CLI (:func:`configure`)."""

    format: str = "text"   # text | json | yaml
    verbosity: int = 0     # -v: 1 adds commands and timings, 2 adds raw output (redacted)
    command: str = ""      # the task's name, for the documents' ``command`` field


SETTINGS = Settings()


def configure(*, format: str = "text", verbosity: int = 0, command: str = "") -> Settings:
    """Set the output format and verbosity of this process.

    :raises ValueError: an unknown format.
    """
    fmt = (format or "text").strip().lower()
    if fmt not in FORMATS:
        raise ValueError(fmt)
    SETTINGS.format, SETTINGS.verbosity, SETTINGS.command = fmt, int(verbosity or 0), command
    return SETTINGS


def data_mode() -> bool:
    """Whether stdout is reserved for one ``-o json``/``-o yaml`` document."""
    return SETTINGS.format != "text"


def emit(kind: str, body: dict, *, reveal: bool = False) -> bool:
    """Write one document (``apiVersion``, ``kind``, then ``body``) to stdout in the chosen
    format; scrubbed of secrets unless ``reveal``. Does nothing in text mode.

    :returns: whether a document was written.
    """
    if not data_mode():
        return False
    doc = {"apiVersion": API_VERSION, "kind": kind, **body}
    if SETTINGS.format == "json":
        text = json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
    else:
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    with _LOCK:
        sys.stdout.write(text if reveal else scrub(text))
        sys.stdout.flush()
    log(f"[{kind}] document written to stdout ({SETTINGS.format})", level=1)
    return True


def _use_color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR")


def stage(text: str) -> None:
    """A stage header: ``--> Gathering facts (5 hosts)``."""
    err(f"--> {text}")


def info(text: str, *, host: str = "", phase: str = "") -> None:
    prefix = (f"[{host}] " if host else "") + (f"[{phase}] " if phase else "")
    err(prefix + text)


def err(text: str) -> None:
    text = scrub(text)
    with _LOCK:
        _clear_progress()
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    LOG.info(text)


def out(text: str, *, reveal: bool = False) -> None:
    """Write data to stdout (scrubbed unless ``reveal``: the operator asked for secrets).

    With ``-o json``/``-o yaml`` it goes to stderr: stdout holds only the document."""
    shown = text if reveal else scrub(text)
    with _LOCK:
        stream = sys.stderr if data_mode() else sys.stdout
        if stream is sys.stderr:
            _clear_progress()
        stream.write(shown + ("" if text.endswith("\n") else "\n"))
        stream.flush()
    LOG.info(scrub(text))  # the log file never holds a secret, even one the operator asked to see


def log(text: str, *, level: int = 1) -> None:
    """A detail line: always in the log file, on stderr from ``-v`` (level 1) or ``-vv`` (2)."""
    text = scrub(text)
    LOG.debug(text)
    if SETTINGS.verbosity >= level:
        with _LOCK:
            _clear_progress()
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


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


# --- progress on long waits -------------------------------------------------------------------
@dataclass
class _Wait:
    what: str
    hosts: tuple[str, ...]
    started: float
    reported: int = 0   # plain mode: how many "still waiting" lines this wait has had


class Progress:
    """What kubefab waits for, on which hosts, for how long so far.

    A wait shows once it has lasted ``after`` seconds: on a terminal as one line rewritten in
    place every second (every running wait, grouped by what it waits for), otherwise as a plain
    line every ``every`` seconds per wait. Each wait is a ``with waiting(...)`` block; a ticker
    thread runs while any wait does. ``tick()`` is what the thread calls (tests call it with
    their own clock).
    """

    def __init__(self, *, clock=time.monotonic, every: float = 10.0, after: float = 3.0,
                 stream=None, tty: bool | None = None) -> None:
        self.clock, self.every, self.after = clock, every, after
        self._stream, self._tty = stream, tty
        self.waits: dict[int, _Wait] = {}
        self.live = False          # a line is shown in place on the terminal
        self._next = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    @property
    def stream(self):
        return self._stream or sys.stderr

    def is_tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        return hasattr(self.stream, "isatty") and self.stream.isatty() and os.environ.get("TERM") != "dumb"

    def start(self, what: str, hosts=()) -> int:
        with _LOCK:
            self._next += 1
            self.waits[self._next] = _Wait(what, tuple(hosts), self.clock())
            token = self._next
        LOG.debug(scrub(f"waiting for {what}" + (f" on {', '.join(hosts)}" if hosts else "")))
        self._ensure_thread()
        return token

    def stop(self, token: int) -> None:
        with _LOCK:
            wait = self.waits.pop(token, None)
            if not self.waits:
                self._clear()
        if wait is not None:
            LOG.debug(scrub(f"waited {self.clock() - wait.started:.1f}s for {wait.what}"))
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="kubefab-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            with _LOCK:
                if not self.waits:
                    self._thread = None
                    return
            self.tick()

    def _clear(self) -> None:
        """Remove the in-place line (``_LOCK`` held)."""
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.live = False

    @staticmethod
    def describe(what: str, hosts, seconds: float) -> str:
        on = f" on {', '.join(hosts)}" if hosts else ""
        return f"waiting for {what}{on} ({int(seconds)}s so far)"

    def tick(self) -> list[str]:
        """Show the waits that have lasted long enough; returns the lines written."""
        now = self.clock()
        with _LOCK:
            due = [w for w in self.waits.values() if now - w.started >= self.after]
            if not due:
                return []
            if self.is_tty():
                groups: dict[str, list[_Wait]] = {}
                for w in due:
                    groups.setdefault(w.what, []).append(w)
                text = "; ".join(self.describe(what, [h for w in ws for h in w.hosts],
                                               now - min(w.started for w in ws)) for what, ws in groups.items())
                width = shutil.get_terminal_size((120, 20)).columns - 1
                self.stream.write("\r\033[K" + scrub(text)[:width])
                self.stream.flush()
                self.live = True
                return [text]
            lines = []
            for w in due:
                bucket = int((now - w.started) // self.every)
                if bucket > w.reported:
                    w.reported = bucket
                    lines.append("--> " + self.describe(w.what, w.hosts, now - w.started))
            for line in lines:
                self.stream.write(scrub(line) + "\n")
            if lines:
                self.stream.flush()
        for line in lines:
            LOG.info(scrub(line))
        return lines


PROGRESS = Progress()


def _clear_progress() -> None:
    """Before a normal line: take the in-place progress line away (``_LOCK`` held); the
    ticker draws it again."""
    PROGRESS._clear()


@contextmanager
def waiting(what: str, hosts=()):
    """Show progress while the block waits for ``what`` on ``hosts`` (see :class:`Progress`)."""
    token = PROGRESS.start(what, [h for h in hosts if h])
    try:
        yield
    finally:
        PROGRESS.stop(token)


# --- the log file of every run --------------------------------------------------------------
LOG_ENV = "KUBEFAB_LOG_FILE"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3


class ScrubFilter(logging.Filter):
    """Every record passes through :func:`tasks.core.secrets.scrub` before any handler sees it
    (ansible's ``no_log``): a registered secret or a PEM private key never reaches the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = ()
        return True


def log_path() -> Path | None:
    """``$KUBEFAB_LOG_FILE`` (``off``: none), else ``$XDG_CACHE_HOME/kubefab/kubefab.log``,
    else ``~/.cache/kubefab/kubefab.log`` (where k0sctl keeps its own)."""
    raw = os.environ.get(LOG_ENV)
    if raw is not None:
        return None if raw.strip().lower() in ("", "off", "none") else Path(raw).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "kubefab" / "kubefab.log"


def open_log(path: Path | None = None) -> logging.Handler | None:
    """Attach the rotating log file (5 MiB, 3 old files kept, mode 0600) to the ``kubefab``
    logger; a file that cannot be opened is skipped with a note at ``-v``."""
    from logging.handlers import RotatingFileHandler

    path = path if path is not None else log_path()
    if path is None:
        return None
    for h in list(LOG.handlers):
        if getattr(h, "kubefab_log", False):
            LOG.removeHandler(h)
            h.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # created private
        os.close(fd)
        handler = RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    except OSError as exc:
        log(f"no log file: cannot open {path}: {exc.strerror}", level=1)
        return None
    handler.kubefab_log = True
    handler.addFilter(ScrubFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)-5s %(message)s",
                                           "%Y-%m-%dT%H:%M:%S%z"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG)
    LOG.propagate = False
    return handler


def close_log() -> None:
    for h in list(LOG.handlers):
        if getattr(h, "kubefab_log", False):
            LOG.removeHandler(h)
            h.close()
