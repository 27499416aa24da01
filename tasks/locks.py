"""No two mutating runs at once: a lock per cluster (operator machine) and one per host.

**The cluster lock** is ``<state dir>/kubefab.lock``, held with ``flock(LOCK_EX | LOCK_NB)`` for
the whole command by every command that changes the cluster or its state dir (init, join,
join-control-plane, cluster-up, reset, certs.renew, etcd.restore, token.create/delete).
Read-only commands and dry-runs take none. The holder writes who it is into the file (user,
machine, pid, boot id, command, since); a second run that cannot take the lock reads that and
fails at once naming it. The kernel drops a flock when its process dies, so a killed run
never blocks the next one: the next run takes the lock and, finding the dead run's record,
says so. The file is removed on release; whoever locked a file that was meanwhile removed or
replaced (compared by inode) tries again, so two runs never hold two different files.

**The host lock** is ``/run/kubefab.lock`` on each host, held by a small shell on the host
(``flock -n`` on fd 9) whose standard input is an SSH channel of the run: it lives exactly
as long as that channel, so the lock ends when the run releases it, when the run is killed
(sshd closes the session) or when the host reboots (``/run`` is a tmpfs). The holder writes
the run's record and its own pid into the file. A run that finds the lock held fails at once
naming the holder; when the holder is a run of *this* machine (same boot id) whose pid is gone
(its SSH session has not been torn down yet), the host-side holder is killed and the lock taken
over, with a line saying so.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import shlex
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from . import output
from .core.errors import KubefabError, RemoteError

LOCK_NAME = "kubefab.lock"
HOST_LOCK = "/run/kubefab.lock"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds a lock (the record written into the lock file)."""

    user: str
    machine: str
    pid: int
    command: str
    since: str          # RFC 3339, UTC
    boot_id: str = ""

    @classmethod
    def me(cls, command: str) -> "Holder":
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls(user, socket.gethostname(), os.getpid(), command,
                   datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), boot_id())

    def to_json(self) -> str:
        return json.dumps({"user": self.user, "machine": self.machine, "pid": self.pid, "command": self.command,
                           "since": self.since, "bootID": self.boot_id}, sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> "Holder | None":
        try:
            d = json.loads(text)
            return cls(str(d["user"]), str(d["machine"]), int(d["pid"]), str(d["command"]), str(d["since"]),
                       str(d.get("bootID", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def is_local_and_gone(self) -> bool:
        """A run of this machine, this boot, whose process no longer exists."""
        return bool(self.boot_id) and self.boot_id == boot_id() and self.machine == socket.gethostname() \
            and not pid_alive(self.pid)

    def describe(self, now: datetime | None = None) -> str:
        age = ""
        try:
            since = datetime.strptime(self.since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            secs = int(((now or datetime.now(timezone.utc)) - since).total_seconds())
            age = f" ({_ago(secs)})"
        except ValueError:
            pass
        return f"{self.user}@{self.machine} (pid {self.pid}, `{self.command}`) since {self.since}{age}"


def _ago(secs: int) -> str:
    secs = max(0, secs)
    if secs < 120:
        return f"{secs}s ago"
    if secs < 7200:
        return f"{secs // 60}m ago"
    return f"{secs // 3600}h{secs % 3600 // 60:02d}m ago"


def command_name(hosts=()) -> str:
    """``fab [-H a,b] <task>``: the record's command (never a flag value: tokens are flags)."""
    task = output.SETTINGS.command or "kubefab"
    return "fab " + (f"-H {','.join(hosts)} " if hosts else "") + task


# --- the cluster lock -------------------------------------------------------------------------------
def _holder_fix(holder: Holder | None, what: str) -> str:
    if holder is None:
        return f"wait for the other kubefab run on {what} to finish, then run again"
    return (f"wait for that run to finish, then run again (to stop it: `kill {holder.pid}` on {holder.machine}; "
            "the lock of a run that is gone is taken over by the next run)")


@contextmanager
def cluster_lock(state, command: str) -> Iterator[Holder]:
    """Hold the cluster's lock in ``state`` (a :class:`~tasks.core.state.ClusterState`) for the block.

    :raises KubefabError: another live run holds it (named, with since when and the fix).
    """
    root = Path(state.root)
    path = root / LOCK_NAME
    me = Holder.me(command)
    created: list[Path] = []
    fd = _acquire(path, me, created)
    try:
        yield me
    finally:
        try:
            os.unlink(path)  # still ours: removed while held (a run that opened it meanwhile sees a new inode)
        except OSError:
            pass
        os.close(fd)
        for d in created:  # made for the lock alone: nothing is left behind (a run that wrote keeps them)
            try:
                d.rmdir()
            except OSError:
                break


def _mkdirs(d: Path, created: list[Path]) -> None:
    """``mkdir -p``, noting in ``created`` (deepest first) the directories this call made."""
    missing = []
    while not d.exists():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        try:
            m.mkdir(mode=0o700)
        except FileExistsError:
            continue
        created.insert(0, m)


def _acquire(path: Path, me: Holder, created: list[Path]) -> int:
    for _ in range(50):
        try:
            _mkdirs(path.parent, created)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # the state dir was just removed by a releasing run
                continue
            raise KubefabError(f"cannot open the cluster lock {path}: {exc.strerror}",
                               fix=f"check the permissions of {path.parent}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.parse(_read_fd(fd))
            for _ in range(50):  # the holder writes its record right after it locked: give it a moment
                if holder is not None:
                    break
                time.sleep(0.02)
                holder = Holder.parse(_read_fd(fd))
            os.close(fd)
            who = holder.describe() if holder else "another kubefab run (it has not written its record yet)"
            raise KubefabError(f"the cluster state {path.parent} is locked by {who}",
                               fix=_holder_fix(holder, "this cluster")) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # released and removed (or replaced) between our open and our lock: try again
            os.close(fd)
            continue
        previous = _read_fd(fd).strip()
        if previous:
            old = Holder.parse(previous)
            who = old.describe() if old else "an unreadable record"
            output.info(f"[lock] taking over the lock of a run that is gone: {who}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (me.to_json() + "\n").encode(), 0)
        os.fsync(fd)
        _remove_stale_temps(path.parent)
        return fd
    raise KubefabError(f"cannot take the cluster lock {path}: it keeps being replaced",
                       fix="check that nothing else removes files in the state dir, then run again")


def _remove_stale_temps(root: Path) -> None:
    """Temp files of a killed run's atomic writes (never a target: those are whole, old or new).
    Only called with the lock held, so no live run is writing them."""
    from .core.state import is_temp_name

    stale = [p for p in root.rglob(".*.tmp") if p.is_file() and is_temp_name(p.name)]
    for p in stale:
        try:
            p.unlink()
        except OSError:
            continue
    if stale:
        output.info(f"[lock] removed {len(stale)} temp file(s) a killed run left in {root}")


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def read_cluster_holder(state) -> Holder | None:
    """The record in the state dir's lock file (whoever last held it), or None."""
    try:
        return Holder.parse((Path(state.root) / LOCK_NAME).read_text())
    except OSError:
        return None


# --- the host lock ----------------------------------------------------------------------------------
BUSY, NO_FLOCK = 75, 76
HELD_MARK = "KUBEFAB-HOST-LOCK-HELD"
THEN_MARK = "KUBEFAB-HOST-LOCK-THEN-DONE"


def host_lock_script(record: str, *, take_over_pid: int = 0, path: str = HOST_LOCK, then: str = "") -> str:
    """The shell that holds ``path`` until its standard input closes.

    Prints ``HELD_MARK`` once it holds the lock; exits ``BUSY`` printing the file's record when
    another run holds it, ``NO_FLOCK`` when the host has no flock(1). ``take_over_pid``: kill
    that host-side holder first (a dead run of this machine) and wait up to 5 s for the lock.
    ``then``: a command run once the lock is held (the facts probe: lock and facts are one round
    trip), its output after ``HELD_MARK`` and its exit code on a line ending in ``THEN_MARK``.
    """
    q = shlex.quote
    kill = (f"kill {int(take_over_pid)} 2>/dev/null; w='-w 5'; " if take_over_pid else "w='-n'; ")
    return (
        f"command -v flock >/dev/null 2>&1 || exit {NO_FLOCK}; "
        f"{kill}"
        f"exec 9<>{q(path)} || exit 71; "
        f"if ! flock $w 9; then cat {q(path)}; exit {BUSY}; fi; "
        f": > {q(path)}; printf '%s %s\\n' \"$$\" {q(record)} >&9; "
        f"echo {HELD_MARK}; "
        + (f"sh -c {q(then)} </dev/null; rc=$?; echo; echo \"$rc {THEN_MARK}\"; " if then else "")
        # held while the run's channel is open: EOF (release, a killed run, a dropped session) ends it
        + "while read -r _; do :; done; exit 0"
    )


def parse_host_record(text: str) -> tuple[int, Holder | None]:
    """``(host-side holder pid, holder)`` from the host lock file's line."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    pid, _, rest = line.partition(" ")
    try:
        return int(pid), Holder.parse(rest)
    except ValueError:
        return 0, None


class HostLock:
    """A host lock being taken over an open transport (see the module doc).

    ``start()`` sends the holder; ``wait()`` (before the facts: they must not see another run's
    half-done apply) raises unless it is held; ``release()`` closes its input and waits for the
    holder to exit, so the next run finds the lock free.
    """

    def __init__(self, transport, command: str, *, timeout: float = 30.0, then: str = "",
                 then_timeout: float = 60.0) -> None:
        self.transport = transport
        self.host = getattr(transport, "host", "")
        self.me = Holder.me(command)
        self.timeout = timeout
        self.then = then
        self.then_timeout = then_timeout
        self.then_result: tuple[int, str] | None = None  # (exit code, stdout) of ``then``, once held
        self.channel = None
        self.held = False
        self._script = ""

    def start(self, take_over_pid: int = 0) -> "HostLock":
        self._script = host_lock_script(self.me.to_json(), take_over_pid=take_over_pid, then=self.then)
        self.channel = self.transport.start_held(self._script)
        return self

    def wait(self) -> None:
        started = time.monotonic()
        try:
            self._wait()
        finally:
            stats = getattr(self.transport, "stats", None)
            if stats is not None:  # one round trip (with ``then``'s command), counted like any command
                stats.record("command", f"flock {HOST_LOCK}" + (" + facts" if self.then else ""),
                             time.monotonic() - started, len(self._script.encode()))

    def _held(self, out: str, code: int | None) -> bool:
        """Whether the holder answered that it holds the lock; keeps ``then``'s result."""
        if code is not None or HELD_MARK not in out:
            return False
        self.held = True
        if self.then:
            after = out.split(HELD_MARK, 1)[1].removeprefix("\n")
            end = after.rfind(THEN_MARK)
            line = after.rfind("\n", 0, end) + 1 if end >= 0 else 0
            status = after[line:end].strip() if end >= 0 else ""
            self.then_result = (int(status), after[:line]) if status.isdigit() else None
        return True

    def _wait_held(self) -> tuple[str, int | None]:
        if not self.then:
            return self.channel.wait_for(HELD_MARK, self.timeout)
        return self.channel.wait_for(THEN_MARK, self.timeout + self.then_timeout)

    def _wait(self) -> None:
        out, code = self._wait_held()
        if self._held(out, code):
            return
        if code == NO_FLOCK:
            output.info("[lock] WARNING: no flock(1) on the host: it is not locked against another run "
                        "(install util-linux)", host=self.host)
            return
        if code == BUSY:
            pid, holder = parse_host_record(out)
            if holder is not None and holder.is_local_and_gone() and pid:
                output.info(f"[lock] taking over {HOST_LOCK} from a run of this machine that is gone: "
                            f"{holder.describe()}", host=self.host)
                self.channel.close()
                self.start(take_over_pid=pid)
                out, code = self._wait_held()
                if self._held(out, code):
                    return
                pid, holder = parse_host_record(out)
            who = holder.describe() if holder else "another kubefab run"
            fix = _holder_fix(holder, "this host")
            if holder is not None and holder.machine != socket.gethostname():
                fix += (f"; if that machine is gone, the lock ends when the host's sshd drops its session, or "
                        f"at once with `kill {pid}` on the host")
            raise RemoteError(f"{HOST_LOCK} is held by {who}", host=self.host, phase="lock", fix=fix)
        raise RemoteError(f"cannot take the host lock {HOST_LOCK} (exit {code}): "
                          + " ".join(out.strip().splitlines()[-2:]), host=self.host, phase="lock",
                          fix="check that /run is writable by root on the host")

    def release(self) -> None:
        if self.channel is not None:
            self.channel.close(wait=2.0)
            self.channel = None
            self.held = False


@contextmanager
def host_lock(transport, command: str, *, enabled: bool = True, then: str = ""):
    """Hold the host lock for the block (started at once; ``lock.wait()`` says whether it is held).

    ``then``: a command run on the host once the lock is held, in the same round trip (its
    result in ``lock.then_result``). A transport without ``start_held`` (a test fake) yields
    ``None``: no lock.
    """
    if not enabled or not hasattr(transport, "start_held"):
        yield None
        return
    lock = HostLock(transport, command, then=then).start()
    try:
        yield lock
    finally:
        lock.release()


def run_lock(state, *, dry_run: bool = False, hosts=()):
    """The cluster lock for a mutating command (none for a dry-run): a context manager."""
    from contextlib import nullcontext

    if dry_run:
        return nullcontext()
    return cluster_lock(state, command_name(hosts))
