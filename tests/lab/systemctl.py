"""A ``systemctl`` stand-in for lab hosts, which have no systemd (issue 5).

Stand-in, not the product: the lab installs it as /usr/local/sbin/systemctl
inside each host (private through the host's /usr overlay). It honours what
kubeadm-style setups rely on:

- unit files in /etc/systemd/system, /run/systemd/system, /lib/systemd/system,
  and drop-ins ``<unit>.d/*.conf`` sorted by file name (a later directory's file
  of the same name is shadowed by an earlier one, as in systemd);
- ``ExecStart=`` with an empty value resets the list (kubeadm's 10-kubeadm.conf
  relies on it to replace the packaged command line);
- ``Environment=`` then ``EnvironmentFile=`` (``-`` prefix: optional), files
  overriding assignments, as systemd documents;
- ``$VAR`` alone as a word splits the value on whitespace into words (quotes in the
  value are honoured); ``${VAR}`` is replaced in place as one word; a quoted
  ``"$VAR"`` stays one word; ``$$`` is a literal dollar;
- start/stop/restart/is-active/is-enabled/enable/disable/daemon-reload/status/show/
  reset-failed with systemctl's output and exit codes (is-active 0/3, is-enabled
  0/1 and ``not-found`` 4, status 0/3/4, start of an unknown unit 5).

Each started service runs under a small supervisor (``--supervise``) started like
``setsid -f``: it owns the PID/state file in /run/kubefab-lab/systemd and honours
``Restart=always|on-failure`` with ``RestartSec=``. Output goes to
/var/log/kubefab-lab/<unit>.log (read back by the lab's ``journalctl``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system")
STATE_DIR = "/run/kubefab-lab/systemd"
LOG_DIR = "/var/log/kubefab-lab"
SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STOP_TIMEOUT_CAP = 15.0


# ---------------------------------------------------------------------------- parsing (pure)
def parse_unit_text(text: str) -> list[tuple[str, str, str]]:
    """Parse unit-file text into (section, key, value) in file order.

    Comments start with ``#`` or ``;``; a trailing backslash continues a line.
    """
    out: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if "=" in line:
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    if pending.strip():
        key, _, value = pending.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def split_words(text: str) -> list[tuple[str, bool]]:
    """Split like systemd: whitespace separates, quotes group, backslash escapes.

    :returns: (word, was_quoted) pairs; ``was_quoted`` is True if any part was quoted.
    """
    words: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        word, quoted = [], False
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in "\"'":
                quoted = True
                end = i + 1
                while end < n and text[end] != ch:
                    if ch == '"' and text[end] == "\\" and end + 1 < n:
                        word.append(text[end + 1])
                        end += 2
                        continue
                    word.append(text[end])
                    end += 1
                i = end + 1
            elif ch == "\\" and i + 1 < n:
                word.append(text[i + 1])
                i += 2
            else:
                word.append(ch)
                i += 1
        words.append(("".join(word), quoted))
    return words


def _substitute(word: str, env: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(word):
        if word.startswith("$$", i):
            out.append("$")
            i += 2
        elif word.startswith("${", i) and "}" in word[i:]:
            end = word.index("}", i)
            out.append(env.get(word[i + 2 : end], ""))
            i = end + 1
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def expand_command(line: str, env: dict[str, str]) -> list[str]:
    """Expand an ExecStart= command line into argv as systemd does.

    A word that is exactly ``$VAR`` (unquoted) becomes the value split on
    whitespace (zero or more words); ``${VAR}`` is replaced inside its word.
    """
    argv: list[str] = []
    for word, quoted in split_words(line):
        name = word[1:]
        bare = word.startswith("$") and name and not name.startswith(("{", "$")) and (
            name.replace("_", "a").isalnum()
        )
        if bare and not quoted:
            argv.extend(w for w, _ in split_words(env.get(name, "")))
        elif bare:
            argv.append(env.get(name, ""))  # "$VAR" quoted: one word, not split
        else:
            argv.append(_substitute(word, env))
    return argv


def parse_env_file(text: str) -> dict[str, str]:
    """Parse an EnvironmentFile: KEY=VALUE lines, quotes removed, # and ; comments."""
    env: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if raw.strip().endswith('"'):
                value = value.replace('\\"', '"').replace("\\\\", "\\")
        env[key] = value
    return env


@dataclass
class Unit:
    """A service unit after its fragment and drop-ins are merged."""

    name: str
    path: str
    dropins: list[str] = field(default_factory=list)
    description: str = ""
    type: str = "simple"
    exec_start: list[str] = field(default_factory=list)
    exec_start_pre: list[str] = field(default_factory=list)
    environment: list[tuple[str, str]] = field(default_factory=list)
    environment_files: list[str] = field(default_factory=list)
    restart: str = "no"
    restart_sec: float = 0.1
    timeout_stop_sec: float = 90.0
    remain_after_exit: bool = False
    kill_mode: str = "control-group"  # "process": stop signals the main process only (containerd's shims live on)
    working_directory: str = "/"
    wanted_by: list[str] = field(default_factory=list)
    has_install: bool = False


def _seconds(value: str, default: float) -> float:
    value = value.strip()
    units = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if value.endswith(suffix):
            with contextlib.suppress(ValueError):
                return float(value[: -len(suffix)]) * factor
    with contextlib.suppress(ValueError):
        return float(value)
    return default


def normalize(name: str) -> str:
    """``kubelet`` -> ``kubelet.service`` (systemctl's default suffix)."""
    return name if "." in name else name + ".service"


def find_unit(name: str, root: str = "/") -> Unit | None:
    """Load a unit and its drop-ins from the unit directories under ``root``."""
    name = normalize(name)
    seen_dirs: list[Path] = []
    for d in UNIT_DIRS:
        p = Path(root, d.lstrip("/"))
        if p.is_dir() and all(not p.samefile(s) for s in seen_dirs):
            seen_dirs.append(p)
    fragment = next((d / name for d in seen_dirs if (d / name).is_file()), None)
    if fragment is None:
        return None
    dropins: dict[str, Path] = {}
    for d in seen_dirs:
        ddir = d / (name + ".d")
        if ddir.is_dir():
            for conf in ddir.glob("*.conf"):
                dropins.setdefault(conf.name, conf)  # earlier (higher-priority) directory wins
    ordered = [dropins[k] for k in sorted(dropins)]
    unit = Unit(name=name, path=str(fragment), dropins=[str(p) for p in ordered])
    for source in [fragment, *ordered]:
        apply_entries(unit, parse_unit_text(source.read_text(errors="replace")))
    return unit


def apply_entries(unit: Unit, entries: list[tuple[str, str, str]]) -> None:
    """Fold parsed entries into ``unit`` with systemd's list/reset rules."""
    for section, key, value in entries:
        if section == "Unit" and key == "Description":
            unit.description = value
        elif section == "Install":
            unit.has_install = True
            if key in ("WantedBy", "RequiredBy"):
                unit.wanted_by = [] if not value else unit.wanted_by + value.split()
        elif section == "Service":
            if key == "ExecStart":
                unit.exec_start = [] if not value else unit.exec_start + [value]
            elif key == "ExecStartPre":
                unit.exec_start_pre = [] if not value else unit.exec_start_pre + [value]
            elif key == "Environment":
                if not value:
                    unit.environment = []
                for word, _ in split_words(value):
                    k, sep, v = word.partition("=")
                    if sep:
                        unit.environment.append((k, v))
            elif key == "EnvironmentFile":
                unit.environment_files = [] if not value else unit.environment_files + [value]
            elif key == "Type":
                unit.type = value
            elif key == "Restart":
                unit.restart = value
            elif key == "RestartSec":
                unit.restart_sec = _seconds(value, unit.restart_sec)
            elif key in ("TimeoutStopSec", "TimeoutSec"):
                unit.timeout_stop_sec = _seconds(value, unit.timeout_stop_sec)
            elif key == "RemainAfterExit":
                unit.remain_after_exit = value.lower() in ("yes", "true", "1", "on")
            elif key == "KillMode":
                unit.kill_mode = value.strip()
            elif key == "WorkingDirectory":
                unit.working_directory = value.lstrip("-") or "/"


def service_environment(unit: Unit, root: str = "/") -> dict[str, str]:
    """The environment a service starts with: systemd's base, Environment=, then files."""
    env = {"PATH": SERVICE_PATH, "LANG": "C.UTF-8", "INVOCATION_ID": uuid.uuid4().hex}
    env.update(dict(unit.environment))
    for spec in unit.environment_files:
        optional = spec.startswith("-")
        path = Path(root, spec.lstrip("-").lstrip("/"))
        try:
            env.update(parse_env_file(path.read_text()))
        except OSError:
            if not optional:
                raise FileNotFoundError(f"Failed to load environment files: {spec} not found")
    return env


def command_argv(line: str, env: dict[str, str]) -> tuple[list[str], bool]:
    """Strip ExecStart prefixes (``-@:+!``) and expand; returns (argv, ignore_failure)."""
    ignore = False
    argv0_override = False
    while line and line[0] in "-@:+!":
        ignore |= line[0] == "-"
        argv0_override |= line[0] == "@"
        line = line[1:]
    argv = expand_command(line, env) if not line.startswith(":") else [w for w, _ in split_words(line)]
    if argv0_override and len(argv) >= 2:
        argv = [argv[0], *argv[2:]]  # the lab cannot set argv[0] separately; keep the binary
    return argv, ignore


# ---------------------------------------------------------------------------- runtime state
def _state_path(name: str) -> Path:
    return Path(STATE_DIR) / f"{name}.json"


def read_state(name: str) -> dict:
    try:
        return json.loads(_state_path(name).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(name: str, **values: object) -> None:
    path = _state_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = read_state(name)
    state.update(values)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def proc_start_time(pid: int | None) -> int | None:
    """The start time of a live process (field 22 of /proc/<pid>/stat, clock ticks after boot).

    None when there is no such process or it is a zombie (it has exited; only its parent's
    wait is missing). Together with the pid it names one process: a reused pid has a later
    start time.
    """
    if not pid or pid <= 0:
        return None
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    rest = stat[stat.rindex(b")") + 2:].split()  # field 3 (state) onwards; comm may hold spaces
    if len(rest) < 20 or rest[0] in (b"Z", b"X", b"x"):
        return None
    return int(rest[19])


def pid_alive(pid: int | None) -> bool:
    """The process exists and is neither a zombie nor dead (its /proc state)."""
    return proc_start_time(pid) is not None


def active_state(name: str) -> tuple[str, str]:
    """(ActiveState, SubState) as systemd would report them."""
    st = read_state(name)
    sup = st.get("supervisor_pid")
    if st.get("state") == "oneshot-active":
        return "active", "exited"
    if pid_alive(sup):
        if st.get("state") == "active" and pid_alive(st.get("main_pid")):
            return "active", "running"
        if st.get("state") == "deactivating":
            return "deactivating", "stop-sigterm"
        return "activating", "auto-restart" if st.get("restarts") else "start"
    if st.get("state") == "failed":
        return "failed", "failed"
    return "inactive", "dead"


def enabled_links(unit: Unit, root: str = "/") -> list[Path]:
    base = Path(root, "etc/systemd/system")
    return [base / f"{t}.wants" / unit.name for t in unit.wanted_by]


def unit_file_state(unit: Unit, root: str = "/") -> str:
    if not unit.has_install or not unit.wanted_by:
        return "static"
    return "enabled" if any(p.is_symlink() or p.exists() for p in enabled_links(unit, root)) else "disabled"


# ---------------------------------------------------------------------------- supervisor
def supervise(name: str) -> int:
    """Run one service: ExecStartPre, ExecStart, Restart= policy, clean stop on SIGTERM."""
    unit = find_unit(name)
    if unit is None:
        return 5
    stopping = False
    child: subprocess.Popen | None = None

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    restarts = 0
    _write_state(unit.name, supervisor_pid=os.getpid(), state="activating", main_pid=None, restarts=0,
                 since=time.time(), result="success")
    while not stopping:
        try:
            env = service_environment(unit)
        except FileNotFoundError as exc:
            print(f"{unit.name}: {exc}", flush=True)
            _write_state(unit.name, state="failed", result="resources", supervisor_pid=None)
            return 1
        failed = False
        for line in unit.exec_start_pre:
            argv, ignore = command_argv(line, env)
            try:
                code = subprocess.call(argv, env=env, cwd=unit.working_directory, stdin=subprocess.DEVNULL)
            except OSError as exc:  # as systemd: a missing program is a failure, which "-" ignores
                print(f"{unit.name}: Failed to execute {argv[0] if argv else '?'}: {exc.strerror}", flush=True)
                code = 203
            if code != 0 and not ignore:
                failed = True
                break
        code = 1
        if not failed and unit.exec_start:
            argv, _ = command_argv(unit.exec_start[-1] if unit.type != "oneshot" else unit.exec_start[0], env)
            try:
                child = subprocess.Popen(argv, env=env, cwd=unit.working_directory, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            except OSError as exc:
                print(f"{unit.name}: Failed to execute {argv[0] if argv else '?'}: {exc.strerror}", flush=True)
                code = 203  # systemd's EXIT_EXEC
            else:
                _write_state(unit.name, state="active", main_pid=child.pid, since=time.time())
                Path(STATE_DIR, f"{unit.name}.pid").write_text(f"{child.pid}\n")
                while child.poll() is None and not stopping:
                    with contextlib.suppress(subprocess.TimeoutExpired, InterruptedError):
                        child.wait(timeout=0.2)
                if stopping:
                    break
                code = child.returncode
        elif not unit.exec_start:
            print(f"{unit.name}: Service has no ExecStart= setting. Refusing.", flush=True)
            _write_state(unit.name, state="failed", result="resources", supervisor_pid=None)
            return 1
        result = "success" if code == 0 else "exit-code"
        if unit.restart == "always" or (unit.restart == "on-failure" and code != 0):
            restarts += 1
            print(f"{unit.name}: Main process exited, code={code}; scheduling restart ({restarts}).", flush=True)
            _write_state(unit.name, state="activating", main_pid=None, restarts=restarts, result=result,
                         exit_code=code)
            deadline = time.monotonic() + unit.restart_sec
            while not stopping and time.monotonic() < deadline:
                time.sleep(min(0.1, unit.restart_sec))
            continue
        _write_state(unit.name, state="failed" if code else "inactive", main_pid=None, supervisor_pid=None,
                     result=result, exit_code=code)
        return 0
    # Stopping: SIGTERM the service's process group, SIGKILL after the stop timeout.
    _write_state(unit.name, state="deactivating")
    if child is not None and child.poll() is None:
        kill = os.kill if unit.kill_mode == "process" else os.killpg
        with contextlib.suppress(ProcessLookupError):
            kill(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=min(unit.timeout_stop_sec, STOP_TIMEOUT_CAP))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                kill(child.pid, signal.SIGKILL)
            child.wait()
    _write_state(unit.name, state="inactive", main_pid=None, supervisor_pid=None, result="success")
    return 0


# ---------------------------------------------------------------------------- verbs
class Ctl:
    """The verbs, printing what systemctl prints and returning its exit codes."""

    def __init__(self, quiet: bool = False, value_only: bool = False, properties: list[str] | None = None,
                 now: bool = False) -> None:
        self.quiet, self.value_only, self.properties, self.now = quiet, value_only, properties or [], now

    def start(self, names: list[str]) -> int:
        for raw in names:
            unit = find_unit(raw)
            if unit is None:
                print(f"Failed to start {normalize(raw)}: Unit {normalize(raw)} not found.", file=sys.stderr)
                return 5
            if active_state(unit.name)[0] in ("active", "activating"):
                continue
            if unit.type == "oneshot":
                code = self._oneshot(unit)
                if code:
                    return code
                continue
            Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
            log = open(Path(LOG_DIR) / f"{unit.name}.log", "ab")
            _write_state(unit.name, state="activating", supervisor_pid=None, main_pid=None, restarts=0)
            sup = subprocess.Popen([sys.executable, "-m", "tests.lab.systemctl", "--supervise", unit.name],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd="/")
            log.close()
            _write_state(unit.name, supervisor_pid=sup.pid)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                st = read_state(unit.name)
                if st.get("main_pid") or st.get("state") in ("failed", "inactive") or st.get("restarts"):
                    break
                time.sleep(0.02)
        return 0

    def _oneshot(self, unit: Unit) -> int:
        env = service_environment(unit)
        Path(LOG_DIR).mkdir(parents=True, exist_ok=True)
        with open(Path(LOG_DIR) / f"{unit.name}.log", "ab") as log:
            for line in unit.exec_start_pre + unit.exec_start:
                argv, ignore = command_argv(line, env)
                code = subprocess.call(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=unit.working_directory)
                if code and not ignore:
                    _write_state(unit.name, state="failed", result="exit-code", exit_code=code)
                    print(f"Job for {unit.name} failed because the control process exited with error code.\n"
                          f'See "systemctl status {unit.name}" and "journalctl -xeu {unit.name}" for details.',
                          file=sys.stderr)
                    return 1
        _write_state(unit.name, state="oneshot-active" if unit.remain_after_exit else "inactive",
                     result="success", supervisor_pid=None, main_pid=None)
        return 0

    def stop(self, names: list[str]) -> int:
        for raw in names:
            name = normalize(raw)
            if find_unit(name) is None and not _state_path(name).exists():
                print(f"Failed to stop {name}: Unit {name} not loaded.", file=sys.stderr)
                return 5
            st = read_state(name)
            sup, main = st.get("supervisor_pid"), st.get("main_pid")
            if pid_alive(sup):
                os.kill(sup, signal.SIGTERM)
                deadline = time.monotonic() + STOP_TIMEOUT_CAP + 5
                while pid_alive(sup) and time.monotonic() < deadline:
                    time.sleep(0.02)
            elif pid_alive(main):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(main, signal.SIGKILL)
            if st:
                state = "inactive" if read_state(name).get("state") != "failed" else "failed"
                _write_state(name, state=state, supervisor_pid=None, main_pid=None)
        return 0

    def restart(self, names: list[str]) -> int:
        for raw in names:
            if find_unit(raw) is None:
                print(f"Failed to restart {normalize(raw)}: Unit {normalize(raw)} not found.", file=sys.stderr)
                return 5
        self.stop(names)
        for raw in names:
            _write_state(normalize(raw), state="inactive")
        return self.start(names)

    def is_active(self, names: list[str]) -> int:
        code = 3
        for raw in names:
            state = active_state(normalize(raw))[0]
            if not self.quiet:
                print(state)
            if state == "active":
                code = 0
        return code

    def is_failed(self, names: list[str]) -> int:
        code = 1
        for raw in names:
            state = active_state(normalize(raw))[0]
            if not self.quiet:
                print(state)
            if state == "failed":
                code = 0
        return code

    def is_enabled(self, names: list[str]) -> int:
        code = 1
        for raw in names:
            unit = find_unit(raw)
            if unit is None:
                if not self.quiet:
                    print("not-found")
                return 4
            state = unit_file_state(unit)
            if not self.quiet:
                print(state)
            if state in ("enabled", "static"):
                code = 0
        return code

    def enable(self, names: list[str]) -> int:
        for raw in names:
            unit = find_unit(raw)
            if unit is None:
                print(f"Failed to enable unit: Unit file {normalize(raw)} does not exist.", file=sys.stderr)
                return 1
            if not unit.wanted_by:
                print("The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\n"
                      "Alias= settings in the [Install] section, and DefaultInstance= for template\n"
                      "units). This means they are not meant to be enabled or disabled using systemctl.",
                      file=sys.stderr)
            for link in enabled_links(unit):
                if not link.is_symlink():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(unit.path)
                    print(f"Created symlink {link} \u2192 {unit.path}.", file=sys.stderr)
        return self.start(names) if self.now else 0

    def disable(self, names: list[str]) -> int:
        for raw in names:
            unit = find_unit(raw)
            if unit is None:
                print(f"Failed to disable unit: Unit file {normalize(raw)} does not exist.", file=sys.stderr)
                return 1
            for link in enabled_links(unit):
                if link.is_symlink():
                    link.unlink()
                    print(f'Removed "{link}".', file=sys.stderr)
        return self.stop(names) if self.now else 0

    def daemon_reload(self, names: list[str]) -> int:
        # Unit files are read on every call and at every service start, which is what
        # a daemon-reload followed by (re)start gives on a real host.
        return 0

    def reset_failed(self, names: list[str]) -> int:
        for raw in names:
            name = normalize(raw)
            if read_state(name).get("state") == "failed":
                _write_state(name, state="inactive")
        return 0

    def status(self, names: list[str]) -> int:
        code = 0
        for raw in names or []:
            unit = find_unit(raw)
            name = normalize(raw)
            if unit is None:
                print(f"Unit {name} could not be found.", file=sys.stderr)
                return 4
            active, sub = active_state(name)
            st = read_state(name)
            since = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(st.get("since", time.time())))
            print(f"{'●' if active != 'failed' else '×'} {name} - {unit.description or name}")
            print(f"     Loaded: loaded ({unit.path}; {unit_file_state(unit)}; preset: enabled)")
            if unit.dropins:
                dirs: dict[str, list[str]] = {}
                for d in unit.dropins:
                    dirs.setdefault(os.path.dirname(d), []).append(os.path.basename(d))
                first = True
                for d, files in dirs.items():
                    print(f"    {'Drop-In' if first else '       '}: {d}")
                    print(f"             └─{', '.join(files)}")
                    first = False
            when = f" since {since}" if active != "inactive" else ""
            print(f"     Active: {active} ({sub}){when}")
            if pid_alive(st.get("main_pid")):
                comm = Path(f"/proc/{st['main_pid']}/comm").read_text().strip()
                print(f"   Main PID: {st['main_pid']} ({comm})")
                try:
                    cmd = Path(f"/proc/{st['main_pid']}/cmdline").read_bytes().split(b"\0")
                    print(f"     CGroup: /system.slice/{name}\n             └─{st['main_pid']} "
                          + " ".join(a.decode(errors="replace") for a in cmd if a))
                except OSError:
                    pass
            if active != "active":
                code = 3
        return code

    def show(self, names: list[str]) -> int:
        for raw in names:
            name = normalize(raw)
            unit = find_unit(name)
            active, sub = active_state(name)
            st = read_state(name)
            props = {
                "Id": name, "Names": name,
                "Description": unit.description if unit else name,
                "LoadState": "loaded" if unit else "not-found",
                "ActiveState": active, "SubState": sub,
                "UnitFileState": unit_file_state(unit) if unit else "",
                "FragmentPath": unit.path if unit else "",
                "DropInPaths": " ".join(unit.dropins) if unit else "",
                "MainPID": str(st.get("main_pid") or 0) if active == "active" else "0",
                "ExecMainPID": str(st.get("main_pid") or 0),
                "NRestarts": str(st.get("restarts", 0)),
                "Result": st.get("result", "success"),
                "Restart": unit.restart if unit else "no",
                "Type": unit.type if unit else "",
            }
            wanted = self.properties or list(props)
            for key in wanted:
                if key in props:
                    print(props[key] if self.value_only else f"{key}={props[key]}")
        return 0


VERBS = {"start": "start", "stop": "stop", "restart": "restart", "try-restart": "restart",
         "reload-or-restart": "restart", "is-active": "is_active", "is-failed": "is_failed",
         "is-enabled": "is_enabled", "enable": "enable", "disable": "disable",
         "daemon-reload": "daemon_reload", "status": "status", "show": "show", "reset-failed": "reset_failed"}


def journalctl(args: list[str]) -> int:
    """Tiny ``journalctl -u UNIT [-n N]`` over the stand-in's service logs."""
    units, lines = [], None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-u", "--unit"):
            units.append(normalize(args[i + 1]))
            i += 1
        elif a.startswith("--unit="):
            units.append(normalize(a.split("=", 1)[1]))
        elif a in ("-n", "--lines"):
            lines = int(args[i + 1])
            i += 1
        elif a.startswith("--lines="):
            lines = int(a.split("=", 1)[1])
        i += 1
    for name in units:
        path = Path(LOG_DIR) / f"{name}.log"
        if path.exists():
            text = path.read_text(errors="replace").splitlines()
            print("\n".join(text[-lines:] if lines else text))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--supervise"]:
        return supervise(argv[1])
    if argv[:1] == ["--journalctl"]:
        return journalctl(argv[1:])
    if "--version" in argv:
        print("systemd 252 (252-lab)\n+kubefab-lab systemctl stand-in (tests/lab/systemctl.py)")
        return 0
    opts = {"quiet": False, "value_only": False, "properties": [], "now": False}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-q", "--quiet"):
            opts["quiet"] = True
        elif a == "--value":
            opts["value_only"] = True
        elif a == "--now":
            opts["now"] = True
        elif a in ("-p", "--property"):
            opts["properties"] += argv[i + 1].split(",")
            i += 1
        elif a.startswith("--property="):
            opts["properties"] += a.split("=", 1)[1].split(",")
        elif a.startswith("-"):
            pass  # --no-pager, --no-block, --system, -l, --full: no effect here
        else:
            rest.append(a)
        i += 1
    if not rest:
        print("kubefab lab systemctl: give a verb (start, stop, is-active, ...)", file=sys.stderr)
        return 1
    verb, names = rest[0], rest[1:]
    if verb not in VERBS:
        print(f"Unknown command verb '{verb}'.", file=sys.stderr)
        return 1
    if not names and verb not in ("daemon-reload", "reset-failed", "status"):
        print("Too few arguments.", file=sys.stderr)
        return 1
    return getattr(Ctl(**opts), VERBS[verb])(names)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
