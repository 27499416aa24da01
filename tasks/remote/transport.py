"""Transports: the only code that changes hosts.

A :class:`Transport` runs commands, moves files and applies the host steps of a plan
(:class:`~tasks.core.plan.FileWrite`, :class:`~tasks.core.plan.FileRemove`,
:class:`~tasks.core.plan.Command`) in a bounded number of round trips:

1. one SFTP session uploads every file to a temp name beside its target
   (``<dir>/.<name>.kubefab-tmp``, created with the file's mode; missing parents are created
   with ``dir_mode``). Not root: files go to a private 0700 directory in the login user's home
   instead, and step 2 (under sudo) copies each to the temp name beside its target.
2. one shell command first checks every temp file's size and sha256 on the host (an SFTP
   write that failed, e.g. on a full disk, can go unreported: then nothing is renamed and
   the error names the file), then renames each temp file into place (``mv -f`` within one directory is an
   atomic ``rename(2)``: a reader sees the old file or the new one, never half — ansible's
   ``atomic_move``) and runs the commands, in plan order, stopping at the first failure. It
   then removes every temp file that was not renamed, so a failed apply leaves no debris.

:class:`SshTransport` sits on a Fabric ``Connection`` (ssh_config, ProxyJump, keys and agent
come from Fabric/Paramiko) but verifies host keys, which Fabric 3 does not do by default.
:class:`LocalTransport` has the same interface and runs on this machine (tests, the lab).

Round trips (each command, each SFTP session) are counted and timed per transport, so the
benchmark and the ``-v`` output read the same numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import secrets as _random
import shlex
import socket
import stat as _stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Protocol, Sequence, Union, runtime_checkable

from ..core.errors import KubefabError, RemoteError
from ..core.plan import ApiObject, Command, FileRemove, FileWrite, Plan, Wait
from ..core.secrets import Secret, scrub

log = logging.getLogger("kubefab.remote")
# paramiko logs connection failures at ERROR with traceback lines; we turn each into one
# RemoteError with a fix, so keep its chatter out unless someone configured it on purpose
# (--debug can lower it again).
if logging.getLogger("paramiko").level == logging.NOTSET:
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)

TMP_SUFFIX = ".kubefab-tmp"
DEFAULT_CONNECT_TIMEOUT = 10.0
# connects: a refused/reset/closed connect is tried again, CONNECT_RETRY_DELAY * attempt later
CONNECT_ATTEMPTS = 3
CONNECT_RETRY_DELAY = 0.5
# an SSH keepalive every KEEPALIVE_SECONDS; a peer that acknowledges nothing (TCP) for
# DEAD_PEER_SECONDS is given up (a partition or a dead host during a command)
KEEPALIVE_SECONDS = 10
DEAD_PEER_SECONDS = 60
DEFAULT_COMMAND_TIMEOUT = 600.0
OUTPUT_TAIL_LINES = 20
# the exit code the apply script reports for a temp file whose size or sha256 is not the
# planned one (a short or failed upload); nothing has been renamed into place then
UPLOAD_CHECK_FAILED = 75
# Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN); the apply script is one argument
MAX_SCRIPT_BYTES = 120_000
# sudo prints nothing we can tell apart from the command's own stderr; this line, printed by
# the shell sudo starts, proves sudo accepted us.
_SUDO_OK = "kubefab-sudo-ok"

HostStep = Union[FileWrite, FileRemove, Command]


# ---- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    """One command's outcome. ``command`` is the caller's command, scrubbed of secrets."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    stdout_bytes: bytes = b""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = OUTPUT_TAIL_LINES) -> list[str]:
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()
        return [scrub(ln) for ln in text.splitlines()[-lines:]]


@dataclass(frozen=True)
class RoundTrip:
    kind: str  # "command" | "sftp"
    what: str
    seconds: float
    sent: int = 0  # payload bytes sent: the command line and its stdin, or the files uploaded


@dataclass
class RoundTrips:
    """Every round trip a transport made, in order (thread-safe)."""

    entries: list[RoundTrip] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, what: str, seconds: float, sent: int = 0) -> None:
        with self._lock:
            self.entries.append(RoundTrip(kind, scrub(what)[:200], seconds, sent))

    @property
    def bytes_sent(self) -> int:
        """Payload bytes sent to the host (SSH's own framing and encryption not counted)."""
        return sum(e.sent for e in self.entries)

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.entries)


@dataclass(frozen=True)
class StepResult:
    """What happened to one step of an apply.

    ``status``: ``changed``, ``unchanged`` (file already identical, mode and owner included),
    ``skipped`` (``creates`` exists, or ``on_change`` with no changed file), ``ignored``
    (failed, but the step has ``ignore_failure``), ``failed``, or ``not-run`` (after a failure).
    """

    index: int
    step: str
    status: str
    exit_code: int | None = None
    output: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.status == "changed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class ApplyResult:
    """Per-step results of one apply, with the round trips and time it took."""

    host: str
    steps: tuple[StepResult, ...]
    round_trips: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not any(s.failed or s.status == "not-run" for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.failed), None)

    @property
    def changed(self) -> int:
        return sum(1 for s in self.steps if s.changed)

    def error(self) -> RemoteError | None:
        """The RemoteError describing the failed step, or None if all went well."""
        bad = self.failed
        if bad is None:
            if self.ok:
                return None
            return RemoteError("the apply stopped before all steps ran (connection lost?)", host=self.host,
                               fix="re-run the command; finished steps are not repeated needlessly")
        if bad.exit_code == UPLOAD_CHECK_FAILED:
            what = bad.output[-1] if bad.output else f"upload for {scrub(bad.step)} is incomplete"
            err = RemoteError(f"{what}; no file was renamed into place, no temp file was left", host=self.host,
                              fix="free space on the host (df -h on the file's directory) or fix its "
                                  "permissions, then re-run")
            err.result = self  # type: ignore[attr-defined]
            return err
        problem = f"step {bad.index + 1} failed: {scrub(bad.step)}"
        if bad.exit_code is not None:
            problem += f" (exit code {bad.exit_code})"
        err = RemoteError(problem, host=self.host, details=list(bad.output),
                          fix="fix the cause shown above and re-run; files before this step are in place, "
                              "no temp files were left")
        err.result = self  # type: ignore[attr-defined]
        return err


# ---- the protocol ------------------------------------------------------------------------

@runtime_checkable
class Transport(Protocol):
    """What phases' plans are applied through (SSH or local)."""

    host: str
    stats: RoundTrips

    def run(self, command: str | Sequence[str], *, check: bool = True,
            timeout: float | None = None) -> RunResult: ...

    def put(self, data: bytes | Secret, path: str, mode: int = 0o644, dir_mode: int = 0o755) -> None: ...

    def get(self, path: str) -> bytes: ...

    def apply(self, steps: Plan | Iterable[Plan] | Iterable[HostStep], *, check: bool = True) -> ApplyResult: ...

    def forward(self, remote_host: str, remote_port: int) -> ContextManager[tuple[str, int]]:
        """A local ``(host, port)`` that reaches ``remote_host:remote_port`` as the host sees
        it (an SSH tunnel; locally the address itself), for the API client."""
        ...

    def close(self) -> None: ...


# ---- plan -> shell (pure) ----------------------------------------------------------------

def temp_path(target: str) -> str:
    """``/etc/kubernetes/.admin.conf.kubefab-tmp``: beside the target, so ``mv`` is a rename."""
    directory, name = posixpath.split(target)
    return posixpath.join(directory, f".{name}{TMP_SUFFIX}")


def host_steps(steps: Plan | Iterable[Plan] | Iterable[HostStep]) -> list[tuple[int, HostStep]]:
    """Flatten plans into ``(group, step)`` pairs; a group is one plan (for ``on_change``).

    :raises KubefabError: API objects and waits are not a transport's business.
    """
    if isinstance(steps, Plan):
        groups: list[list[Any]] = [steps.steps]
    else:
        items = list(steps)
        if items and all(isinstance(i, Plan) for i in items):
            groups = [p.steps for p in items]
        else:
            groups = [items]
    out: list[tuple[int, HostStep]] = []
    for g, group in enumerate(groups):
        for step in group:
            if isinstance(step, (ApiObject, Wait)):
                raise KubefabError(
                    f"a transport cannot apply {step.describe()!r}",
                    fix="split the plan with tasks.remote.transport.segments() and send API steps and waits "
                        "to the API helper")
            if not isinstance(step, (FileWrite, FileRemove, Command)):
                raise KubefabError(f"unknown plan step {type(step).__name__}")
            if isinstance(step, (FileWrite, FileRemove)) and not step.path.startswith("/"):
                raise KubefabError(f"plan path {step.path!r} is not absolute")
            out.append((g, step))
    return out


def segments(steps: Iterable[Any]) -> list[tuple[str, list[Any]]]:
    """Split a plan's steps into runs of ``("host", [...])`` and ``("api", [...])`` in order,
    so a runner can send host runs to :meth:`Transport.apply` and the rest to the API helper."""
    out: list[tuple[str, list[Any]]] = []
    for step in steps:
        kind = "api" if isinstance(step, (ApiObject, Wait)) else "host"
        if out and out[-1][0] == kind:
            out[-1][1].append(step)
        else:
            out.append((kind, [step]))
    return out


def _parents(path: str) -> list[str]:
    """Ancestors of ``path`` from the top down, without ``/``."""
    parts = []
    d = posixpath.dirname(path)
    while d not in ("/", ""):
        parts.append(d)
        d = posixpath.dirname(d)
    return parts[::-1]


def build_apply_script(
    steps: Sequence[tuple[int, HostStep]],
    *,
    nonce: str,
    staged_from: dict[int, str] | None = None,
    private_dir: str | None = None,
) -> str:
    """The one shell program that puts uploaded files in place and runs the commands.

    :param steps: ``(group, step)`` pairs from :func:`host_steps`.
    :param nonce: random marker text, so a command's output cannot fake a step result.
    :param staged_from: step index -> private upload path (sudo mode); the script creates
        missing parents and copies each to its temp name beside the target first. Without it
        the temp files are expected in place already (uploaded as root).
    :param private_dir: the private upload directory to delete at the end (sudo mode).
    :returns: POSIX sh text; it prints ``@@<nonce> <index> <status> [<exit code>]`` per step.
    """
    q = shlex.quote
    mark = f"@@{nonce}"
    temps = [temp_path(s.path) for _, s in steps if isinstance(s, FileWrite)]
    lines = [
        "cd / || exit 90",
        "umask 077",
        "kf_uid=$(id -u):$(id -g)",
        "kf_cleanup() {",
        *(f"  rm -f -- {q(t)}" for t in temps),
        *([f"  rm -rf -- {q(private_dir)}"] if private_dir else []),
        "  :",
        "}",
        f"kf_fail() {{ printf '\\n{mark} %s failed %s\\n' \"$1\" \"$2\"; kf_cleanup; exit 3; }}",
        f"kf_mark() {{ printf '\\n{mark} %s %s\\n' \"$1\" \"$2\"; }}",
        # kf_check <step> <temp> <target> <size> <sha256>
        "kf_check() {",
        "  kf_sz=$(stat -c %s -- \"$2\" 2>/dev/null) || kf_sz=none",
        "  if [ \"$kf_sz\" != \"$4\" ]; then",
        "    echo \"upload of $3 is incomplete on the host: $kf_sz of $4 bytes arrived (disk full?)\"",
        f"    kf_fail \"$1\" {UPLOAD_CHECK_FAILED}",
        "  fi",
        "  kf_sum=$(sha256sum -- \"$2\" 2>&1) || { echo \"cannot read the upload of $3: $kf_sum\"; "
        f"kf_fail \"$1\" {UPLOAD_CHECK_FAILED}; }}",
        "  if [ \"${kf_sum%% *}\" != \"$5\" ]; then",
        "    echo \"upload of $3 is corrupt on the host: sha256 ${kf_sum%% *}, expected $5\"",
        f"    kf_fail \"$1\" {UPLOAD_CHECK_FAILED}",
        "  fi",
        "}",
        # killed or hung up (ssh gone): still leave no temp files behind; renamed files stay
        "trap 'kf_cleanup; exit 129' HUP INT TERM PIPE",
    ]
    groups = sorted({g for g, _ in steps})
    lines += [f"kf_changed_{g}=0" for g in groups]
    if staged_from:
        # sudo mode: everything beside its target first, so a failure while copying leaves
        # no target touched (same guarantee as an interrupted SFTP upload as root).
        for i, (_, step) in enumerate(steps):
            if i not in staged_from:
                continue
            assert isinstance(step, FileWrite)
            tmp = temp_path(step.path)
            mk = " && ".join(f"{{ [ -d {q(d)} ] || mkdir -m {step.dir_mode:o} -- {q(d)}; }}"
                             for d in _parents(step.path)) or ":"
            lines.append(f"{{ {mk} && rm -f -- {q(tmp)} && cp -- {q(staged_from[i])} {q(tmp)} "
                         f"&& chmod {step.mode:o} -- {q(tmp)}; }} 2>&1 || kf_fail {i} $?")
    # every upload checked before the first rename: a short or failed write (a full disk)
    # must never replace a good file with a truncated one
    for i, (_, step) in enumerate(steps):
        if isinstance(step, FileWrite):
            data = step.data()
            lines.append(f"kf_check {i} {q(temp_path(step.path))} {q(step.path)} {len(data)} "
                         f"{hashlib.sha256(data).hexdigest()}")
    for i, (g, step) in enumerate(steps):
        if isinstance(step, FileWrite):
            tmp, dst = q(temp_path(step.path)), q(step.path)
            lines += [
                f"if [ -d {dst} ] && [ ! -L {dst} ]; then echo 'target is a directory'; kf_fail {i} 1; fi",
                f"if [ -f {dst} ] && [ ! -L {dst} ] && cmp -s -- {tmp} {dst} "
                f"&& [ \"$(stat -c %a -- {dst} 2>/dev/null)\" = {step.mode:o} ] "
                f"&& [ \"$(stat -c %u:%g -- {dst} 2>/dev/null)\" = \"$kf_uid\" ]; then",
                f"  rm -f -- {tmp}; kf_mark {i} unchanged",
                "else",
                f"  mv -f -- {tmp} {dst} 2>&1 || kf_fail {i} $?",
                f"  kf_changed_{g}=1; kf_mark {i} changed",
                "fi",
            ]
        elif isinstance(step, FileRemove):
            p = q(step.path)
            if step.recursive:
                # the directory's contents, kept directory (kubeadm reset empties its dirs)
                lines += [
                    f"kf_rm=0; if [ -d {p} ]; then for kf_f in {p}/* {p}/.[!.]* {p}/..?*; do",
                    "  if [ -e \"$kf_f\" ] || [ -L \"$kf_f\" ]; then rm -rf -- \"$kf_f\" 2>&1 || kf_fail "
                    f"{i} $?; kf_rm=1; fi",
                    "done; fi",
                    f"if [ $kf_rm = 1 ]; then kf_changed_{g}=1; kf_mark {i} changed; else kf_mark {i} unchanged; fi",
                ]
            else:
                lines += [
                    f"if [ -e {p} ] || [ -L {p} ]; then rm -f -- {p} 2>&1 || kf_fail {i} $?; "
                    f"kf_changed_{g}=1; kf_mark {i} changed; else kf_mark {i} unchanged; fi",
                ]
        else:
            conds = []
            if step.creates:
                conds.append(f"[ ! -e {q(step.creates)} ]")
            if step.on_change:
                conds.append(f"[ $kf_changed_{g} = 1 ]")
            run = f"{shlex.join(step.argv)} </dev/null 2>&1"
            on_fail = f"kf_mark {i} 'ignored '$kf_rc" if step.ignore_failure else f"kf_fail {i} $kf_rc"
            body = f"{run}; kf_rc=$?; if [ $kf_rc = 0 ]; then kf_mark {i} changed; else {on_fail}; fi"
            if conds:
                lines.append(f"if {' && '.join(conds)}; then {body}; else kf_mark {i} skipped; fi")
            else:
                lines.append(body)
    lines += ["kf_cleanup", "exit 0"]
    return "\n".join(lines) + "\n"


def parse_apply_output(
    steps: Sequence[tuple[int, HostStep]], nonce: str, output: str, exit_code: int,
) -> list[StepResult]:
    """Step results from the script's output: each step's own output is what it printed
    since the previous marker (scrubbed, last lines only)."""
    mark = f"@@{nonce} "
    seen: dict[int, tuple[str, int | None, list[str]]] = {}
    pending: list[str] = []
    for line in output.splitlines():
        if line.startswith(mark):
            parts = line[len(mark):].split()
            idx, status = int(parts[0]), parts[1]
            code = int(parts[2]) if len(parts) > 2 and parts[2].lstrip("-").isdigit() else None
            seen[idx] = (status, code, pending)
            pending = []
        elif line.strip():
            pending.append(line)
    results = []
    for i, (_, step) in enumerate(steps):
        desc = step.describe()
        if i in seen:
            status, code, out = seen[i]
            results.append(StepResult(i, desc, status, code,
                                      tuple(scrub(ln) for ln in out[-OUTPUT_TAIL_LINES:])))
        else:
            results.append(StepResult(i, desc, "not-run"))
    if exit_code not in (0, 3) and not any(r.failed for r in results):
        # the script itself died (killed, connection lost): blame the first unfinished step
        for n, r in enumerate(results):
            if r.status == "not-run":
                results[n] = StepResult(r.index, r.step, "failed", exit_code,
                                        tuple(scrub(ln) for ln in pending[-OUTPUT_TAIL_LINES:]))
                break
    return results


# ---- the shared machinery ----------------------------------------------------------------

class _BaseTransport:
    """Command wrapping (sudo), round-trip accounting and the apply algorithm."""

    host: str
    stats: RoundTrips

    def __init__(self, host: str, *, sudo_password: Secret | None = None, use_sudo: bool = False) -> None:
        self.host = host
        self.stats = RoundTrips()
        self._sudo_password = sudo_password
        self.use_sudo = use_sudo

    # -- to implement
    def _session(self):
        """A new channel on the (opened) connection; a clean error when it cannot be opened."""
        self.open()
        try:
            return self._conn.client.get_transport().open_session(timeout=self.connect_timeout)
        except Exception as exc:
            raise RemoteError(f"SSH session to {self.address} failed: {exc}", host=self.host,
                              fix="the connection dropped; check the host and re-run") from None

    def _exec(self, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        raise NotImplementedError

    def _stage(self, files: list[tuple[int, FileWrite]],
               private_name: str | None) -> tuple[dict[int, str], str | None]:
        """Upload ``files``; with ``private_name`` into that private directory of the login
        user's home (sudo mode). Returns step index -> uploaded path, and the private dir."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands
    def _scrub(self, text: str) -> str:
        text = scrub(text)
        if self._sudo_password is not None:
            pw = self._sudo_password.reveal()
            pw = pw.decode() if isinstance(pw, bytes) else pw
            if pw:
                text = text.replace(pw, "<redacted>")
        return text

    def _wrap(self, command: str) -> tuple[str, bytes]:
        """The command line actually sent and its stdin (the sudo password, if any)."""
        if not self.use_sudo:
            return command, b""
        inner = f"printf '%s\\n' {_SUDO_OK} >&2; exec sh -c \"$1\" kubefab </dev/null"
        if self._sudo_password is None:
            # -n: fail at once instead of waiting for a password nobody will type
            return f"sudo -n -- sh -c {shlex.quote(inner)} kubefab {shlex.quote(command)}", b""
        pw = self._sudo_password.reveal()
        pw = pw if isinstance(pw, bytes) else pw.encode()
        # -S: password from stdin; -p '': no prompt text; -k: always ask, so the password line
        # is consumed by sudo and never left for the command (which gets /dev/null anyway)
        return f"sudo -S -k -p '' -- sh -c {shlex.quote(inner)} kubefab {shlex.quote(command)}", pw + b"\n"

    def _sudo_check(self, code: int, err: str) -> str:
        """Strip our sudo marker, or turn sudo's own refusal into a clear RemoteError."""
        if not self.use_sudo:
            return err
        lines = err.splitlines()
        if _SUDO_OK in lines:
            # whatever came before is sudo's own chatter (the first-use lecture)
            return "\n".join(lines[lines.index(_SUDO_OK) + 1:])
        text = self._scrub(err)
        low = text.lower()
        if code == 127 and "sudo" in low and "not found" in low:
            raise RemoteError("sudo is not installed and the login user is not root", host=self.host,
                              fix="log in as root, or install sudo on the host")
        if "incorrect password" in low or "try again" in low or "no password was provided" in low:
            raise RemoteError("sudo rejected the password", host=self.host,
                              fix="re-run and type the login user's sudo password")
        if "password is required" in low:
            raise RemoteError("sudo needs a password and none was given", host=self.host,
                              fix="re-run with --prompt-for-sudo-password (or allow NOPASSWD sudo for this user)")
        if "sudoers" in low or "not allowed" in low:
            raise RemoteError("the login user may not use sudo", host=self.host, details=text.splitlines()[-3:],
                              fix="add the user to sudoers (e.g. a file in /etc/sudoers.d) or log in as root")
        raise RemoteError(f"sudo failed with exit code {code}", host=self.host, details=text.splitlines()[-5:],
                          fix="check that 'sudo -S true' works for the login user")

    def run(self, command: str | Sequence[str], *, check: bool = True,
            timeout: float | None = None) -> RunResult:
        """Run a command (a shell string, or argv joined with quoting) as root.

        :param check: raise RemoteError on a non-zero exit code.
        :param timeout: seconds before the command is abandoned (default 600).
        :raises RemoteError: failure with exit code and the tail of the output, scrubbed.
        """
        text = command if isinstance(command, str) else shlex.join(command)
        wire, stdin = self._wrap(text)
        started = time.monotonic()
        try:
            code, out_b, err_b = self._exec(wire, stdin, timeout or DEFAULT_COMMAND_TIMEOUT)
        finally:
            seconds = time.monotonic() - started
            self.stats.record("command", self._scrub(text.splitlines()[0] if text else ""), seconds,
                              len(wire.encode()) + len(stdin))
        err = self._sudo_check(code, err_b.decode("utf-8", "replace"))
        result = RunResult(self._scrub(text), code, self._scrub(out_b.decode("utf-8", "replace")),
                           self._scrub(err), seconds, out_b)
        from .. import output  # -v shows each command with its exit code and time; -vv its output too

        output.log(f"[{self.host}] ran {result.command.splitlines()[0][:200] if text else ''} -> exit {code} "
                   f"in {seconds:.2f}s", level=1)
        if result.stdout.strip() or result.stderr.strip():
            output.log("\n".join(f"[{self.host}]   | {ln}" for ln in
                                 (result.stdout.splitlines() + result.stderr.splitlines())[-40:]), level=2)
        if check and code != 0:
            raise RemoteError(f"command failed with exit code {code}: {result.command.splitlines()[0][:200]}",
                              host=self.host, details=result.tail(10),
                              fix="see the output above; re-run with -v for every command")
        return result

    # -- plans
    def apply(self, steps: Plan | Iterable[Plan] | Iterable[HostStep], *, check: bool = True) -> ApplyResult:
        """Apply files and commands in (at most) two round trips: one upload, one command.

        :param steps: a Plan, a list of Plans (``on_change`` is per plan) or a list of steps.
        :param check: raise the RemoteError of the failed step instead of returning.
        :raises RemoteError: upload failed (no target touched), or a step failed (with check).
        """
        started = time.monotonic()
        before = self.stats.count
        flat = host_steps(steps)
        if not flat:
            return ApplyResult(self.host, (), 0, 0.0)
        nonce = _random.token_hex(8)
        files = [(i, s) for i, (_, s) in enumerate(flat) if isinstance(s, FileWrite)]
        private_name = f".kubefab-upload-{nonce}" if (files and self.use_sudo) else None
        # size check before anything is uploaded (a long home directory path allowed for)
        long_dir = "/" + "h" * 255
        draft = build_apply_script(flat, nonce=nonce, private_dir=long_dir if private_name else None,
                                   staged_from={i: f"{long_dir}/{i}" for i, _ in files} if private_name else None)
        # what counts is the command line sshd hands to the login shell, sudo quoting included
        size = len(self._wrap("sh -c " + shlex.quote(draft))[0].encode())
        if size > MAX_SCRIPT_BYTES:
            raise KubefabError(
                f"the apply script for {len(flat)} steps would be {size} bytes, over the {MAX_SCRIPT_BYTES}-byte "
                "limit of one command-line argument on Linux", host=self.host,
                fix="apply the plans in several batches (e.g. one apply() per phase)")
        staged, private_dir = self._stage(files, private_name) if files else ({}, None)
        script = build_apply_script(flat, nonce=nonce, staged_from=staged if private_dir else None,
                                    private_dir=private_dir)
        res = self.run("sh -c " + shlex.quote(script), check=False)
        results = parse_apply_output(flat, nonce, res.stdout + "\n" + res.stderr, res.exit_code)
        outcome = ApplyResult(self.host, tuple(results), self.stats.count - before, time.monotonic() - started)
        log.info("[%s] applied %d steps: %d changed in %d round trips (%.2fs)", self.host, len(results),
                 outcome.changed, outcome.round_trips, outcome.seconds)
        err = outcome.error()
        if err is not None and check:
            raise err
        return outcome

    def put(self, data: bytes | Secret, path: str, mode: int = 0o644, dir_mode: int = 0o755) -> None:
        """Write one file atomically (an apply of one FileWrite)."""
        self.apply([FileWrite(path, data, mode, dir_mode)])

    def get(self, path: str) -> bytes:
        """Read one file as root."""
        return self.run(f"cat -- {shlex.quote(path)}").stdout_bytes


# ---- SSH ---------------------------------------------------------------------------------

class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: Any) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


def _fingerprint(key: Any) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _host_key_policy(record_to: Path | None):
    """RejectPolicy that says which key it saw, or (opt-in) one that records new keys."""
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, key):  # noqa: D102 - paramiko API
            if record_to is None:
                raise _UnknownHostKey(hostname, key)
            client.get_host_keys().add(hostname, key.get_name(), key)
            record_to.parent.mkdir(parents=True, exist_ok=True)
            with open(record_to, "a", encoding="ascii") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            log.warning("accepted new host key for %s (%s %s), recorded in %s", hostname, key.get_name(),
                        _fingerprint(key), record_to)

    return Policy()


def _retryable_connect_error(exc: BaseException) -> bool:
    """Refused, reset or closed before SSH was spoken: worth another try (never a timeout,
    an authentication or host-key failure, or a name that does not resolve)."""
    import paramiko

    if isinstance(exc, (socket.timeout, TimeoutError, socket.gaierror, _UnknownHostKey,
                        paramiko.AuthenticationException, paramiko.BadHostKeyException)):
        return False
    if isinstance(exc, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionError, EOFError)):
        return True
    text = str(exc)
    return "timed out" not in text and ("Error reading SSH protocol banner" in text or "No existing session" in text
                                        or isinstance(exc, paramiko.SSHException) and "EOF" in text)


def _socket_options() -> list[tuple[int, int, int]]:
    """TCP keepalive on an idle connection, and TCP_USER_TIMEOUT (Linux) on unacknowledged data."""
    opts = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_SECONDS), ("TCP_KEEPINTVL", KEEPALIVE_SECONDS),
                        ("TCP_KEEPCNT", max(1, DEAD_PEER_SECONDS // KEEPALIVE_SECONDS)),
                        ("TCP_USER_TIMEOUT", DEAD_PEER_SECONDS * 1000)):
        if hasattr(socket, name):
            opts.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return opts


class SshTransport(_BaseTransport):
    """Commands and files over SSH, as root directly or through sudo.

    :param host: the inventory name (used in messages; also the ssh_config ``Host`` looked up).
    :param address: where to connect, if not ``host`` (ssh_config ``HostName`` otherwise).
    :param user: login user (default: ssh_config, then the local user).
    :param port: SSH port (default: ssh_config, then 22).
    :param known_hosts: the inventory's known_hosts file(s); the user's ``~/.ssh/known_hosts``
        and ssh_config ``UserKnownHostsFile`` are read too.
    :param accept_new_host_keys: trust an unknown host key and record it in the first
        ``known_hosts`` file (first contact only; a *changed* key is always refused).
    :param connect_timeout: seconds for TCP connect, SSH banner and authentication.
    :param sudo_password: the login user's sudo password, when it is not root.
    :param key_filename: private key file(s) to offer.
    :param ssh_config_path: an ssh_config file to use instead of ``~/.ssh/config``.
    :param load_user_known_hosts: also trust ``~/.ssh/known_hosts`` (default yes).
    :param connect_kwargs: more ``paramiko.SSHClient.connect`` arguments (``look_for_keys``...).
    :param use_sudo: run through sudo; default: when the login user is not ``root``.

    Example::

        t = SshTransport("m1", known_hosts=["inventory/lab.known_hosts"])
        t.run("uname -r").stdout
        t.apply(plan)
    """

    def __init__(
        self,
        host: str,
        *,
        address: str | None = None,
        user: str | None = None,
        port: int | None = None,
        known_hosts: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = (),
        accept_new_host_keys: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        sudo_password: Secret | None = None,
        key_filename: str | Sequence[str] | None = None,
        ssh_config_path: str | None = None,
        load_user_known_hosts: bool = True,
        connect_kwargs: dict[str, Any] | None = None,
        use_sudo: bool | None = None,
    ) -> None:
        super().__init__(host, sudo_password=sudo_password)
        if isinstance(known_hosts, (str, os.PathLike)):
            known_hosts = [known_hosts]
        self.known_hosts = [Path(p).expanduser() for p in known_hosts]
        self.accept_new_host_keys = accept_new_host_keys
        self.connect_timeout = connect_timeout
        self._load_user_known_hosts = load_user_known_hosts
        self._lock = threading.Lock()
        self._conn = self._make_connection(address or host, user, port, key_filename, ssh_config_path,
                                           dict(connect_kwargs or {}))
        self.address = f"{self._conn.host}:{self._conn.port}"
        self.user = self._conn.user
        self.use_sudo = (self.user != "root") if use_sudo is None else use_sudo

    def _make_connection(self, target: str, user: str | None, port: int | None,
                         key_filename: str | Sequence[str] | None, ssh_config_path: str | None,
                         extra: dict[str, Any]):
        from fabric import Config, Connection

        kwargs: dict[str, Any] = {"banner_timeout": self.connect_timeout, "auth_timeout": self.connect_timeout,
                                  **extra}
        if key_filename:
            kwargs["key_filename"] = [key_filename] if isinstance(key_filename, str) else list(key_filename)
        # through the config, so ProxyJump hops (which Fabric builds from a clone) get them too
        config = Config(overrides={"run": {"in_stream": False}, "connect_kwargs": kwargs,
                                   "timeouts": {"connect": max(1, int(round(self.connect_timeout)))}},
                        runtime_ssh_path=ssh_config_path)
        conn = Connection(target, user=user, port=port, config=config)
        # Fabric's connect_timeout is an int; paramiko takes the float we were given.
        conn.connect_timeout = self.connect_timeout
        self._secure(conn)
        return conn

    def _secure(self, conn) -> None:
        """Verify host keys on this connection and every ProxyJump hop (Fabric 3 auto-adds)."""
        from fabric import Connection

        client = conn.client
        if self._load_user_known_hosts:
            client.load_system_host_keys()  # ~/.ssh/known_hosts, if present
        extra = conn.ssh_config.get("userknownhostsfile") or []
        if isinstance(extra, str):
            extra = extra.split()
        for path in [*self.known_hosts, *(Path(p).expanduser() for p in extra)]:
            if path.is_file():
                client.get_host_keys().load(str(path))
        record = self.known_hosts[0] if (self.accept_new_host_keys and self.known_hosts) else None
        if self.accept_new_host_keys and record is None:
            record = Path("~/.ssh/known_hosts").expanduser()
        client.set_missing_host_key_policy(_host_key_policy(record))
        if isinstance(conn.gateway, Connection):
            if conn.gateway.connect_timeout is None:
                conn.gateway.connect_timeout = self.connect_timeout
            self._secure(conn.gateway)

    # -- connection
    def open(self) -> "SshTransport":
        """Connect (done lazily by run/apply); errors become RemoteError with a fix.

        A connect refused, reset or closed before SSH was spoken (sshd restarting, its
        MaxStartups limit under load) is retried, at most :data:`CONNECT_ATTEMPTS` times and
        never past ``connect_timeout`` in all; a timeout is not (the kernel already resent the
        SYNs within it), so a dead host is named within ``connect_timeout``. The connection
        then sends an SSH keepalive every :data:`KEEPALIVE_SECONDS` and the socket gives up on
        a peer that acknowledges nothing for :data:`DEAD_PEER_SECONDS` (TCP_USER_TIMEOUT), so a
        partition ends a command with "connection lost" instead of hanging for minutes.
        """
        with self._lock:
            if self._conn.is_connected:
                return self
            first = time.monotonic()
            attempt = 0
            while True:
                attempt += 1
                started = time.monotonic()
                try:
                    self._conn.open()
                    break
                except Exception as exc:  # paramiko/socket raise many types; each gets a message
                    log.debug("[%s] connect attempt %d failed: %r", self.host, attempt, exc)
                    if "No existing session" in str(exc) and \
                            time.monotonic() - started >= 0.8 * self.connect_timeout:
                        # paramiko hides a banner timeout (TCP accepted, no SSH spoken) behind this
                        exc = TimeoutError("banner timeout")
                    delay = CONNECT_RETRY_DELAY * attempt
                    if attempt < CONNECT_ATTEMPTS and _retryable_connect_error(exc) and \
                            time.monotonic() - first + delay < self.connect_timeout:
                        with contextlib.suppress(Exception):
                            self._conn.close()
                        time.sleep(delay)
                        continue
                    err = self._connect_error(exc)
                    if attempt > 1:
                        err.problem += f" ({attempt} attempts in {time.monotonic() - first:.1f}s)"
                    raise err from None
            self._keepalive()
        return self

    def _keepalive(self) -> None:
        """SSH keepalives and a bound on unacknowledged data (see :meth:`open`)."""
        transport = self._conn.client.get_transport()
        if transport is None:
            return
        transport.set_keepalive(KEEPALIVE_SECONDS)
        sock = transport.sock
        if not isinstance(sock, socket.socket):  # a ProxyJump channel: the hop's socket has it
            return
        for level, name, value in _socket_options():
            try:
                sock.setsockopt(level, name, value)
            except OSError as exc:  # an option this kernel lacks; the others still help
                log.debug("[%s] setsockopt %s failed: %s", self.host, name, exc)

    def _connect_error(self, exc: BaseException) -> RemoteError:
        import paramiko

        where = f"{self.address} as {self.user}"
        t = self.connect_timeout
        if isinstance(exc, _UnknownHostKey):
            kh = self.known_hosts[0] if self.known_hosts else Path("~/.ssh/known_hosts")
            port = self._conn.port
            scan = f"ssh-keyscan {'-p %d ' % port if port != 22 else ''}{self._conn.host} >> {kh}"
            return RemoteError(
                f"unknown host key for {exc.hostname} ({exc.key.get_name()} {_fingerprint(exc.key)}); "
                f"refusing to connect", host=self.host,
                fix=f"verify the fingerprint, then add it: {scan} (or trust on first contact with "
                    f"--accept-new-host-keys)")
        if isinstance(exc, paramiko.BadHostKeyException):
            return RemoteError(
                f"HOST KEY MISMATCH for {where}: got {exc.key.get_name()} {_fingerprint(exc.key)}, "
                f"known_hosts says {_fingerprint(exc.expected_key)}", host=self.host,
                fix=f"if the host was really reinstalled: ssh-keygen -R {exc.hostname} (in the known_hosts "
                    f"file that has it), then add the new key; otherwise someone may be intercepting the connection")
        if isinstance(exc, paramiko.AuthenticationException):
            return RemoteError(f"SSH authentication failed for {where} ({exc})", host=self.host,
                               fix="check the user name, that your key is loaded (ssh-add -l) or given with "
                                   "key_filename, and that it is in the host's authorized_keys")
        if isinstance(exc, socket.gaierror):
            return RemoteError(f"cannot resolve {self._conn.host} ({exc.strerror})", host=self.host,
                               fix="check the address in the inventory or ssh_config HostName")
        if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc) or \
                "banner" in str(exc).lower():
            return RemoteError(f"cannot reach {where}: no SSH answer within {t:g}s", host=self.host,
                               fix="check the address and port, that the host is up and sshd is running, and "
                                   "that no firewall drops the traffic (connect_timeout to wait longer)")
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) or isinstance(exc, ConnectionError):
            return RemoteError(f"cannot reach {where}: connection refused", host=self.host,
                               fix="check that sshd runs on that port (ss -tlnp on the host) and the port "
                                   "in the inventory or ssh_config")
        if isinstance(exc, OSError):
            return RemoteError(f"cannot reach {where}: {exc.strerror or exc}", host=self.host,
                               fix="check the address, routing and firewall between here and the host")
        if isinstance(exc, paramiko.SSHException):
            return RemoteError(f"SSH failed for {where}: {exc}", host=self.host,
                               fix="check the host's sshd logs; re-run with --debug for details")
        return RemoteError(f"cannot connect to {where}: {type(exc).__name__}: {exc}", host=self.host,
                           fix="re-run with --debug for details")

    def run(self, command: str | Sequence[str], *, check: bool = True,
            timeout: float | None = None) -> RunResult:  # noqa: D102 - see _BaseTransport.run
        self.open()  # connect first, so a failed connect is not counted as a round trip
        return super().run(command, check=check, timeout=timeout)

    @property
    def connection(self):
        """The open Fabric ``Connection`` (host keys verified). Round trips made through it
        are not counted here."""
        self.open()
        return self._conn

    @contextlib.contextmanager
    def forward(self, remote_host: str, remote_port: int):
        """Forward a free local port to ``remote_host:remote_port`` as seen from this host."""
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            local_port = s.getsockname()[1]
        with self.connection.forward_local(local_port, remote_port=remote_port, remote_host=remote_host,
                                           local_host="127.0.0.1"):
            yield "127.0.0.1", local_port

    def close(self) -> None:
        """Close the connection and every ProxyJump hop (Fabric leaves hops open)."""
        from fabric import Connection

        conn = self._conn
        while isinstance(conn, Connection):
            conn.close()
            conn = conn.gateway

    def _exec(self, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        import paramiko

        chan = self._session()
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            while True:
                got = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
                if chan.exit_status_ready() and (chan.eof_received or chan.closed) \
                        and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if chan.closed and not chan.exit_status_ready():
                    raise RemoteError(f"the connection to {self.address} was lost during a command",
                                      host=self.host, fix="check the host and re-run")
                if time.monotonic() > deadline:
                    raise RemoteError(f"command did not finish within {timeout:g}s", host=self.host,
                                      details=[ln for ln in self._scrub(out.decode("utf-8", "replace"))
                                               .splitlines()[-5:]],
                                      fix="check what the host is doing (load, a hung mount or service)")
                if not got:
                    chan.status_event.wait(0.005)
            return chan.recv_exit_status(), bytes(out), bytes(err)
        except (EOFError, OSError, paramiko.SSHException) as exc:
            # the host died or the link dropped while the command started or ran (paramiko
            # raises the transport's EOFError from exec_command, sendall or recv)
            raise RemoteError(f"the connection to {self.address} was lost during a command "
                              f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})",
                              host=self.host, fix="check the host and re-run") from None
        finally:
            chan.close()

    def start_held(self, script: str) -> "HeldCommand":
        """Start ``script`` as root on its own channel and return at once; its standard input
        stays open until :meth:`HeldCommand.close` (the host lock's holder: ``tasks/locks.py``).
        Not counted as a round trip: it runs beside the run's commands."""
        chan = self._session()
        stdin = b""
        wire = script
        if self.use_sudo:
            # like _wrap, but stdin is passed through: the holder ends when it closes
            inner = f"printf '%s\\n' {_SUDO_OK} >&2; exec sh -c \"$1\" kubefab"
            if self._sudo_password is None:
                wire = f"sudo -n -- sh -c {shlex.quote(inner)} kubefab {shlex.quote(script)}"
            else:
                pw = self._sudo_password.reveal()
                stdin = (pw if isinstance(pw, bytes) else pw.encode()) + b"\n"
                wire = f"sudo -S -k -p '' -- sh -c {shlex.quote(inner)} kubefab {shlex.quote(script)}"
        chan.exec_command(wire)
        if stdin:
            chan.sendall(stdin)
        return HeldCommand(self, chan)

    def _sftp(self):
        self.open()
        try:
            return self._conn.client.open_sftp()
        except Exception as exc:
            raise RemoteError(f"cannot open an SFTP session to {self.address}: {exc}", host=self.host,
                              fix="check that sshd has the sftp subsystem enabled (Subsystem sftp ...)") from None

    def _stage(self, files: list[tuple[int, FileWrite]],
               private_name: str | None) -> tuple[dict[int, str], str | None]:
        """ONE SFTP session: every file to its temp name (root) or to a private dir (sudo)."""
        started = time.monotonic()
        sftp = self._sftp()
        created: list[str] = []
        staged: dict[int, str] = {}
        sent = 0
        current = ""
        private_dir = None
        try:
            if private_name is not None:
                # the home directory is learned inside this session: no extra round trip
                private_dir = posixpath.join(sftp.normalize("."), private_name)
                sftp.mkdir(private_dir, 0o700)
                sftp.chmod(private_dir, 0o700)
                created.append(private_dir + "/")
            known_dirs: set[str] = set()
            for i, step in files:
                current = step.path
                if private_dir is not None:
                    dest = posixpath.join(private_dir, str(i))
                else:
                    for d in _parents(step.path):
                        if d in known_dirs:
                            continue
                        try:
                            st = sftp.stat(d)
                            if not _stat.S_ISDIR(st.st_mode):
                                raise RemoteError(f"{d} exists and is not a directory", host=self.host)
                        except FileNotFoundError:
                            sftp.mkdir(d, step.dir_mode)
                            sftp.chmod(d, step.dir_mode)
                        known_dirs.add(d)
                    dest = temp_path(step.path)
                    try:
                        sftp.remove(dest)  # a stale temp file from an interrupted run
                    except OSError:
                        pass
                with sftp.open(dest, "wb") as fh:
                    created.append(dest)
                    # mode before content: a private key is never readable by others, not even empty
                    fh.chmod(step.mode if private_dir is None else 0o600)
                    fh.set_pipelined(True)
                    payload = step.data()
                    fh.write(payload)
                    sent += len(payload)
                staged[i] = dest
        except Exception as exc:
            self._cleanup_sftp(sftp, created)
            sftp.close()
            self.stats.record("sftp", f"upload {len(files)} files (failed)", time.monotonic() - started)
            if isinstance(exc, RemoteError):
                raise RemoteError(f"upload failed at {current}: {exc.problem}; no target file was changed",
                                  host=self.host, fix="fix the path on the host and re-run") from None
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise RemoteError(f"upload failed at {current}: {reason}; no target file was changed",
                              host=self.host, fix="check free space and permissions on the host, then re-run") \
                from None
        sftp.close()
        self.stats.record("sftp", f"upload {len(files)} files", time.monotonic() - started, sent)
        return staged, private_dir

    def _cleanup_sftp(self, sftp, created: list[str]) -> None:
        for path in reversed(created):
            try:
                if path.endswith("/"):
                    sftp.rmdir(path.rstrip("/"))
                else:
                    sftp.remove(path)
            except Exception:  # best effort; the error being reported matters more
                log.debug("[%s] could not remove %s", self.host, path)


# ---- local -------------------------------------------------------------------------------

class LocalTransport(_BaseTransport):
    """The same interface on this machine, as the current user (tests, the lab).

    Staging writes the temp files directly (counted as one "sftp" round trip, so round-trip
    budgets mean the same thing as over SSH).
    """

    def __init__(self, host: str = "localhost") -> None:
        super().__init__(host)
        self.address = "local"
        self.user = str(os.getuid())

    @contextlib.contextmanager
    def forward(self, remote_host: str, remote_port: int):
        """This machine is the host: the address is reachable as it is."""
        yield remote_host, remote_port

    def _exec(self, command: str, stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        try:
            proc = subprocess.run(["sh", "-c", command], input=stdin or None,
                                  stdin=None if stdin else subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"command did not finish within {timeout:g}s", host=self.host) from None
        return proc.returncode, proc.stdout, proc.stderr

    def _stage(self, files: list[tuple[int, FileWrite]],
               private_name: str | None) -> tuple[dict[int, str], str | None]:
        started = time.monotonic()
        created: list[str] = []
        staged: dict[int, str] = {}
        sent = 0
        current = ""
        try:
            for i, step in files:
                current = step.path
                for d in _parents(step.path):
                    if not os.path.isdir(d):
                        os.mkdir(d, step.dir_mode)
                        os.chmod(d, step.dir_mode)
                dest = temp_path(step.path)
                try:
                    os.unlink(dest)
                except FileNotFoundError:
                    pass
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                created.append(dest)
                with os.fdopen(fd, "wb") as fh:
                    os.fchmod(fh.fileno(), step.mode)
                    payload = step.data()
                    fh.write(payload)
                    sent += len(payload)
                staged[i] = dest
        except OSError as exc:
            for path in created:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            self.stats.record("sftp", f"upload {len(files)} files (failed)", time.monotonic() - started)
            raise RemoteError(f"upload failed at {current}: {exc.strerror or exc}; no target file was changed",
                              host=self.host, fix="check the path and permissions, then re-run") from None
        self.stats.record("sftp", f"upload {len(files)} files", time.monotonic() - started, sent)
        return staged, None


class HeldCommand:
    """A command started by :meth:`SshTransport.start_held`, its input still open."""

    def __init__(self, transport: "SshTransport", chan) -> None:
        self.transport = transport
        self.chan = chan
        self.out = bytearray()
        self.err = bytearray()

    def _drain(self) -> None:
        while self.chan.recv_ready():
            self.out += self.chan.recv(65536)
        while self.chan.recv_stderr_ready():
            self.err += self.chan.recv_stderr(65536)

    def wait_for(self, marker: str, timeout: float) -> tuple[str, int | None]:
        """Wait until ``marker`` is on stdout (``(stdout, None)``) or the command exits
        (``(stdout, exit code)``); sudo's refusals raise as for any command.

        :raises RemoteError: neither within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        mark = marker.encode()
        while True:
            self._drain()
            if mark in self.out:
                return self.transport._scrub(self.out.decode("utf-8", "replace")), None
            err = self.err.decode("utf-8", "replace")
            if self.transport.use_sudo and _SUDO_OK not in err and (
                    "try again" in err.lower() or "incorrect password" in err.lower()):
                # sudo asks again on the input it keeps open: it would wait forever
                self.chan.close()
                self.transport._sudo_check(1, err)
            if self.chan.exit_status_ready() and not self.chan.recv_ready() and not self.chan.recv_stderr_ready():
                code = self.chan.recv_exit_status()
                self._drain()
                self.transport._sudo_check(code, self.err.decode("utf-8", "replace"))
                return self.transport._scrub(self.out.decode("utf-8", "replace")), code
            if time.monotonic() > deadline:
                raise RemoteError(f"no answer from the host lock's command within {timeout:g}s",
                                  host=self.transport.host, phase="lock",
                                  fix="check what the host is doing (load, a hung /run), then re-run")
            self.chan.status_event.wait(0.01)

    def close(self, wait: float = 0.0) -> None:
        """Close its input (the command then ends) and wait up to ``wait`` s for it to exit."""
        try:
            self.chan.shutdown_write()
            if wait:
                self.chan.status_event.wait(wait)
        except Exception:  # the connection is gone already: so is the command
            pass
        finally:
            self.chan.close()


def describe_stats(transport: Transport) -> str:
    """``5 round trips in 0.42s`` for -v output and the benchmark."""
    return f"{transport.stats.count} round trips in {transport.stats.seconds:.2f}s"


TransportFactory = Callable[[str], Transport]
