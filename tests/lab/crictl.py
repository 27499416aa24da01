"""A ``crictl`` stand-in for lab hosts, which have no container runtime (issue 5).

Stand-in, not the product: the lab installs it as /usr/local/bin/crictl inside each host
(private through the host's /usr overlay), beside the systemctl stand-in. The lab kubelet
(tests/lab/kubelet.py) runs static pods as plain processes and records them in its state
file (``kubelet.STATE_FILE``, in the host's private /run); this tool reads that file where
the real crictl would ask the runtime over its CRI socket. It does what operators and
kubeadm-style tools use:

- global ``--runtime-endpoint``/``-r`` (also ``CONTAINER_RUNTIME_ENDPOINT``, then
  ``runtime-endpoint`` of /etc/crictl.yaml or ``--config``/``-c``, else the deprecated
  default endpoints with crictl's warning). The endpoint must accept a connection, as
  crictl's: each lab host keeps a listener on /run/containerd/containerd.sock, and a
  socket that is not there fails with crictl's message and exit code 1;
- ``pods`` (POD ID, CREATED, STATE, NAME, NAMESPACE, ATTEMPT, RUNTIME; ``-q``, ``--no-trunc``,
  ``--name``, ``--namespace``, ``--state``, ``--id``, ``-o json|yaml|table``);
- ``ps`` (running containers; ``-a`` all, ``-q``, ``--pod``, ``--name``, ``--state``, ``-o``);
- ``stopp POD-ID...`` and ``rmp POD-ID...`` / ``rmp --all|-a [--force|-f]``: SIGTERM to each
  container's process group, SIGKILL after a grace period (capped at ``STOP_GRACE`` s), then
  the pods are marked NotReady (``stopp``) or dropped from the state file (``rmp``), under the
  file's lock and atomically;
- ``version``.

IDs may be given as unique prefixes (as containerd accepts). Errors print like crictl's
logrus output (``time=... level=fatal msg=...``) and exit 1. A kubelet that is still running
starts a removed static pod again while its manifest exists, as a real kubelet does.
Lab differences: IMAGE shows the manifest's image reference (there are no image IDs);
a pod is Ready until ``stopp``/``rmp`` (there is no pause container).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import sys
import threading
import time

import yaml

from tests.lab.kubelet import (
    DEFAULT_VERSION,
    STATE_FILE,
    proc_start_time,
    read_state,
    state_lock,
    write_state,
)

DEFAULT_RUNTIME_ENDPOINTS = ("unix:///run/containerd/containerd.sock", "unix:///run/crio/crio.sock",
                             "unix:///var/run/cri-dockerd.sock")
CONFIG_FILE = "/etc/crictl.yaml"
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL (a cap: the processes usually exit at once)
TRUNCATED_ID_LEN = 13
RUNTIME_NAME, RUNTIME_VERSION = "lab", "1.0.0"


class CrictlError(Exception):
    """A failure crictl reports through logrus.Fatal: message on stderr, exit code 1."""


class UsageError(Exception):
    """A command line urfave/cli refuses."""


# ---------------------------------------------------------------------------- output helpers
def _log(level: str, msg: str) -> None:
    if sys.stderr.isatty():
        print(f"{level.upper()[:4]}[0000] {msg}", file=sys.stderr)
    else:
        now = dt.datetime.now().astimezone().isoformat(timespec="seconds").replace("+00:00", "Z")
        print(f'time="{now}" level={level} msg={json.dumps(msg, ensure_ascii=False)}', file=sys.stderr)


def human_duration(seconds: float) -> str:
    """docker/go-units HumanDuration, which crictl's CREATED column uses."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def table(rows: list[list[str]]) -> str:
    """Go's tabwriter as crictl sets it up (minwidth 20, padding 3; the last cell unpadded)."""
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [max(20, max((len(r[i]) for r in rows if i < len(r) - 1), default=0) + 3) for i in range(ncols)]
    out = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        out.append("".join(cells))
    return "\n".join(out) + "\n"


def truncate(id_: str, no_trunc: bool) -> str:
    return id_ if no_trunc else id_[:TRUNCATED_ID_LEN]


# ---------------------------------------------------------------------------- the "runtime"
def container_running(c: dict) -> bool:
    pid, start = c.get("pid"), c.get("start_time")
    return isinstance(pid, int) and isinstance(start, int) and proc_start_time(pid) == start


def pod_ready(p: dict) -> bool:
    return p.get("ready", True) is not False


def _ns(epoch: object) -> int:
    return int(float(epoch) * 1e9) if isinstance(epoch, (int, float)) else 0


def pod_labels(p: dict) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in (p.get("labels") or {}).items()}
    labels.update({"io.kubernetes.pod.name": str(p.get("name", "")),
                   "io.kubernetes.pod.namespace": str(p.get("namespace", "")),
                   "io.kubernetes.pod.uid": str(p.get("uid", ""))})
    return labels


def containers_of(state: dict) -> list[tuple[dict, dict]]:
    """(pod, container) pairs of every container that was started (has an ID)."""
    return [(p, c) for p in state["pods"] for c in p.get("containers") or []
            if isinstance(c, dict) and c.get("id")]


def resolve(ids: list[str], state: dict, what: str = "sandbox") -> tuple[list[dict], list[tuple[str, str]]]:
    """Pods by ID or unique ID prefix: (found pods, [(given id, error)])."""
    found, errors = [], []
    for given in ids:
        matches = [p for p in state["pods"] if str(p.get("id", "")).startswith(given)] if given else []
        exact = [p for p in matches if p.get("id") == given]
        if exact:
            matches = exact
        if len(matches) == 1:
            found.append(matches[0])
        else:
            why = "not found" if not matches else f"ambiguous ID {json.dumps(given)}"
            message = f"an error occurred when try to find {what} {json.dumps(given)}: {why}"
            errors.append((given, f"rpc error: code = NotFound desc = {message}"))
    return found, errors


def stop_processes(pods: list[dict], grace: float = STOP_GRACE) -> None:
    """SIGTERM every running container's process group, SIGKILL what is left after ``grace``."""
    live = [(c["pid"], c["start_time"]) for p in pods for c in p.get("containers") or []
            if isinstance(c, dict) and container_running(c)]
    for pid, _ in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + min(grace, STOP_GRACE)
    while time.monotonic() < deadline and any(proc_start_time(pid) == st for pid, st in live):
        time.sleep(0.02)
    for pid, st in live:
        if proc_start_time(pid) == st:  # never signal a group whose leader's pid may be reused
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(proc_start_time(pid) == st for pid, st in live):
        time.sleep(0.02)


# ---------------------------------------------------------------------------- command line
class Args:
    """urfave/cli-style parsing: flags first (``--x=v``, ``--x v``, ``-abc`` for booleans),
    parsing stops at the first argument that is not a flag (as Go's flag package does)."""

    def __init__(self, argv: list[str], bools: dict[str, str], values: dict[str, str]) -> None:
        self.flags: dict[str, object] = {}
        self.args: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                self.args.extend(argv[i + 1:])
                break
            if not arg.startswith("-") or arg == "-":
                self.args.extend(argv[i:])
                break
            name, eq, value = arg.lstrip("-").partition("=")
            if name in bools:
                self.flags[bools[name]] = value.lower() not in ("false", "0") if eq else True
            elif name in values:
                if not eq:
                    if i + 1 >= len(argv):
                        raise UsageError(f"flag needs an argument: {arg}")
                    value = argv[i + 1]
                    i += 1
                key = values[name]
                if key == "label":
                    self.flags.setdefault(key, [])
                    self.flags[key].append(value)  # type: ignore[union-attr]
                else:
                    self.flags[key] = value
            elif not arg.startswith("--") and not eq and all(ch in bools for ch in name):
                for ch in name:  # -af == -a -f
                    self.flags[bools[ch]] = True
            else:
                raise UsageError(f"flag provided but not defined: {arg.split('=')[0]}")
            i += 1

    def get(self, key: str, default: object = None) -> object:
        return self.flags.get(key, default)


GLOBAL_BOOLS = {"debug": "debug", "D": "debug", "help": "help", "h": "help", "version": "version",
                "v": "version", "enable-tracing": "enable-tracing"}
GLOBAL_VALUES = {"runtime-endpoint": "runtime-endpoint", "r": "runtime-endpoint", "image-endpoint": "image-endpoint",
                 "i": "image-endpoint", "config": "config", "c": "config", "timeout": "timeout", "t": "timeout",
                 "tracing-endpoint": "x", "tracing-sampling-rate-per-million": "x", "profile-cpu": "x",
                 "profile-mem": "x"}
COMMANDS = {
    "pods": ("List pods",
             {"quiet": "quiet", "q": "quiet", "verbose": "verbose", "v": "verbose", "no-trunc": "no-trunc",
              "latest": "latest", "l": "latest"},
             {"id": "id", "name": "name", "namespace": "namespace", "state": "state", "s": "state",
              "output": "output", "o": "output", "last": "last", "n": "last", "label": "label"}),
    "ps": ("List containers",
           {"all": "all", "a": "all", "quiet": "quiet", "q": "quiet", "verbose": "verbose", "v": "verbose",
            "no-trunc": "no-trunc", "latest": "latest", "l": "latest"},
           {"id": "id", "pod": "pod", "p": "pod", "name": "name", "namespace": "namespace", "state": "state",
            "s": "state", "output": "output", "o": "output", "last": "last", "n": "last", "label": "label",
            "image": "image"}),
    "stopp": ("Stop one or more running pods", {}, {}),
    "rmp": ("Remove one or more pods", {"force": "force", "f": "force", "all": "all", "a": "all"}, {}),
    "version": ("Display runtime version information", {}, {}),
}
USAGE = {"pods": "crictl pods [command options]", "ps": "crictl ps [command options]",
         "stopp": "crictl stopp POD-ID [POD-ID...]", "rmp": "crictl rmp [command options] POD-ID [POD-ID...]",
         "version": "crictl version"}


def print_help() -> None:
    print("NAME:\n   crictl - client for CRI (kubefab lab stand-in)\n\nUSAGE:\n   crictl [global options] command "
          "[command options]\n\nCOMMANDS:")
    for name, (usage, _, _) in COMMANDS.items():
        print(f"   {name:<10}{usage}")
    print("\nGLOBAL OPTIONS:\n   --config value, -c value            Location of the client config file\n"
          "   --runtime-endpoint value, -r value  Endpoint of CRI container runtime service\n"
          "   --timeout value, -t value           Timeout of connecting to the server (default: 2s)\n"
          "   --debug, -D                         Enable debug mode\n"
          "   --help, -h                          show help\n   --version, -v                       print the version")


def print_command_help(name: str) -> None:
    usage, bools, values = COMMANDS[name]
    print(f"NAME:\n   crictl {name} - {usage}\n\nUSAGE:\n   {USAGE[name]}")
    flags = sorted({v for v in list(bools.values()) + list(values.values())})
    if flags:
        print("\nOPTIONS:")
        for f in flags:
            print(f"   --{f}")


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        raise UsageError(f'invalid value "{text}" for flag -timeout: parse error')
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def _endpoint_path(endpoint: str) -> str:
    if endpoint.startswith("unix://"):
        return endpoint[len("unix://"):]
    if "://" in endpoint:
        scheme = endpoint.split("://", 1)[0]
        raise CrictlError(f'validate service connection: protocol "{scheme}" not supported by the lab '
                          f"runtime (only unix sockets)")
    _log("warning", f'Using "{endpoint}" as endpoint is deprecated, please consider using full url format '
                    f'"unix://{endpoint}".')
    return endpoint


def connect(endpoint: str, timeout: float) -> None:
    """Open and close a connection to the runtime's socket, as crictl's dial would."""
    path = _endpoint_path(endpoint)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(max(timeout, 0.1))
    try:
        s.connect(path)
    except OSError as exc:
        reason = {FileNotFoundError: "no such file or directory", ConnectionRefusedError: "connection refused",
                  PermissionError: "permission denied"}.get(type(exc), (exc.strerror or str(exc)).lower())
        if isinstance(exc, TimeoutError):
            reason = "i/o timeout"
        raise CrictlError(
            f'validate service connection: validate CRI v1 runtime API for endpoint "{endpoint}": rpc error: '
            f'code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix '
            f'{path}: connect: {reason}"') from None
    finally:
        s.close()


def runtime_endpoint(glob: Args, timeout: float) -> None:
    """Find and dial the endpoint as crictl does (flag/env, config file, deprecated defaults)."""
    endpoint = glob.get("runtime-endpoint")
    if endpoint is None and os.environ.get("CONTAINER_RUNTIME_ENDPOINT") is not None:
        endpoint = os.environ["CONTAINER_RUNTIME_ENDPOINT"]
    if endpoint is None:
        config_path = glob.get("config") or os.environ.get("CRI_CONFIG_FILE") or CONFIG_FILE
        try:
            with open(str(config_path)) as fh:
                config = yaml.safe_load(fh) or {}
        except OSError as exc:
            if glob.get("config"):
                raise CrictlError(f"load config file: {exc}") from None
            config = {}
        except yaml.YAMLError as exc:
            raise CrictlError(f"load config file: {exc}") from None
        if isinstance(config, dict) and config.get("runtime-endpoint"):
            endpoint = str(config["runtime-endpoint"])
    if endpoint == "":
        raise CrictlError("--runtime-endpoint is not set")
    if endpoint is not None:
        connect(str(endpoint), timeout)
        return
    _log("warning", f"runtime connect using default endpoints: [{' '.join(DEFAULT_RUNTIME_ENDPOINTS)}]. As the "
                    "default settings are now deprecated, you should set the endpoint instead.")
    last: CrictlError | None = None
    for ep in DEFAULT_RUNTIME_ENDPOINTS:
        try:
            connect(ep, timeout)
            return
        except CrictlError as exc:
            _log("error", str(exc))
            last = exc
    assert last is not None
    raise last


# ---------------------------------------------------------------------------- commands
def _matches(pattern: object, value: str) -> bool:
    return not pattern or re.search(str(pattern), value) is not None


def _labels_match(wanted: object, labels: dict[str, str]) -> bool:
    for item in wanted or []:  # type: ignore[union-attr]
        key, _, value = str(item).partition("=")
        if labels.get(key) != value:
            return False
    return True


def _limit(items: list, opts: Args) -> list:
    n = len(items)
    if opts.get("latest"):
        n = 1
    if opts.get("last"):
        n = int(str(opts.get("last")))
    return items[: min(n, len(items))]


def _dump(doc: dict, output: str) -> None:
    if output == "json":
        print(json.dumps(doc, indent=2))
    else:
        print(yaml.safe_dump(doc, sort_keys=False), end="")


def cmd_pods(opts: Args, state: dict) -> int:
    output = str(opts.get("output") or "table")
    if output not in ("table", "json", "yaml"):
        raise CrictlError(f'listing pod sandboxes: unsupported output format "{output}"')
    wanted_state = str(opts.get("state") or "").lower()
    if wanted_state not in ("", "ready", "notready"):
        raise CrictlError("--state should be ready or notready")
    pods = []
    for p in state["pods"]:
        ready = pod_ready(p)
        if opts.get("id") and not str(p.get("id", "")).startswith(str(opts.get("id"))):
            continue
        if wanted_state and (wanted_state == "ready") != ready:
            continue
        if not (_matches(opts.get("name"), str(p.get("name", "")))
                and _matches(opts.get("namespace"), str(p.get("namespace", "")))
                and _labels_match(opts.get("label"), pod_labels(p))):
            continue
        pods.append(p)
    pods = _limit(sorted(pods, key=lambda p: -float(p.get("created") or 0)), opts)
    if output != "table":
        _dump({"items": [{
            "id": p.get("id"), "metadata": {"name": p.get("name"), "uid": p.get("uid"),
                                            "namespace": p.get("namespace"), "attempt": int(p.get("attempt") or 0)},
            "state": "SANDBOX_READY" if pod_ready(p) else "SANDBOX_NOTREADY", "createdAt": str(_ns(p.get("created"))),
            "labels": pod_labels(p), "annotations": {"kubernetes.io/config.source": "file"}, "runtimeHandler": "",
        } for p in pods]}, output)
        return 0
    if opts.get("quiet"):
        for p in pods:
            print(p.get("id"))
        return 0
    rows = [["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]]
    now = time.time()
    for p in pods:
        rows.append([truncate(str(p.get("id", "")), bool(opts.get("no-trunc"))),
                     human_duration(now - float(p.get("created") or now)) + " ago",
                     "Ready" if pod_ready(p) else "NotReady", str(p.get("name", "")), str(p.get("namespace", "")),
                     str(int(p.get("attempt") or 0)), "(default)"])
    sys.stdout.write(table(rows))
    return 0


def cmd_ps(opts: Args, state: dict) -> int:
    output = str(opts.get("output") or "table")
    if output not in ("table", "json", "yaml"):
        raise CrictlError(f'listing containers: unsupported output format "{output}"')
    wanted_state = str(opts.get("state") or "").lower()
    if wanted_state not in ("", "created", "running", "exited", "unknown"):
        raise CrictlError("--state should be one of created, running, exited or unknown")
    if not wanted_state and not opts.get("all") and not (opts.get("latest") or opts.get("last")):
        wanted_state = "running"
    rows_in = []
    for p, c in containers_of(state):
        st = "running" if container_running(c) else "exited"
        if wanted_state and st != wanted_state:
            continue
        if opts.get("id") and not str(c.get("id", "")).startswith(str(opts.get("id"))):
            continue
        if opts.get("pod") and not str(p.get("id", "")).startswith(str(opts.get("pod"))):
            continue
        if opts.get("image") and str(opts.get("image")) not in str(c.get("image", "")):
            continue
        labels = {**pod_labels(p), "io.kubernetes.container.name": str(c.get("name", ""))}
        if not (_matches(opts.get("name"), str(c.get("name", "")))
                and _matches(opts.get("namespace"), str(p.get("namespace", "")))
                and _labels_match(opts.get("label"), labels)):
            continue
        rows_in.append((p, c, st, labels))
    rows_in = _limit(sorted(rows_in, key=lambda r: -float(r[1].get("started_wall") or 0)), opts)
    if output != "table":
        _dump({"containers": [{
            "id": c.get("id"), "podSandboxId": p.get("id"),
            "metadata": {"name": c.get("name"), "attempt": int(c.get("restarts") or 0)},
            "image": {"image": c.get("image", "")}, "imageRef": c.get("image", ""),
            "state": f"CONTAINER_{st.upper()}", "createdAt": str(_ns(c.get("started_wall"))),
            "labels": labels, "annotations": {},
        } for p, c, st, labels in rows_in]}, output)
        return 0
    if opts.get("quiet"):
        for _, c, _, _ in rows_in:
            print(c.get("id"))
        return 0
    rows = [["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"]]
    now = time.time()
    no_trunc = bool(opts.get("no-trunc"))
    for p, c, st, _ in rows_in:
        rows.append([truncate(str(c.get("id", "")), no_trunc), str(c.get("image", "")),
                     human_duration(now - float(c.get("started_wall") or now)) + " ago", st.capitalize(),
                     str(c.get("name", "")), str(int(c.get("restarts") or 0)),
                     truncate(str(p.get("id", "")), no_trunc), str(p.get("name", "")), str(p.get("namespace", ""))])
    sys.stdout.write(table(rows))
    return 0


def _aggregate(errors: list[str]) -> str:
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def _update(state_path: str, change) -> None:
    """Read-modify-write of the state file under its lock (the kubelet writes it too)."""
    with state_lock(state_path):
        state = read_state(state_path)
        change(state)
        write_state(state_path, state)


def _mark_stopped(state: dict, ids: set) -> None:
    for p in state["pods"]:
        if p.get("id") in ids:
            p["ready"] = False


def cmd_stopp(opts: Args, state_path: str) -> int:
    if not opts.args:
        print_command_help("stopp")
        return 0
    state = read_state(state_path)
    for given in opts.args:  # one at a time, stopping at the first error, as crictl does
        found, errors = resolve([given], state)
        if errors:
            raise CrictlError(f"stopping the pod sandbox {json.dumps(given)}: {errors[0][1]}")
        stop_processes(found)
        ids = {p.get("id") for p in found}
        _update(state_path, lambda st, ids=ids: _mark_stopped(st, ids))
        print(f"Stopped sandbox {given}")
    return 0


def cmd_rmp(opts: Args, state_path: str) -> int:
    state = read_state(state_path)
    ids = [str(p.get("id")) for p in state["pods"]] if opts.get("all") else list(opts.args)
    if not ids:
        if opts.get("all"):
            _log("info", "No pods to remove")
            return 0
        print_command_help("rmp")
        return 0
    errors: list[str] = []
    targets: list[tuple[str, dict]] = []
    for given in ids:
        found, missing = resolve([given], state)
        if missing:
            errors.append(f"getting sandbox status of pod {json.dumps(given)}: {missing[0][1]}")
            continue
        pod = found[0]
        if pod_ready(pod) and not opts.get("force"):
            errors.append(f"pod sandbox {json.dumps(given)} is running, please stop it first")
            continue
        targets.append((given, pod))
    # Stop them together (crictl runs one goroutine per pod), then report pod by pod.
    threads = [threading.Thread(target=stop_processes, args=([pod],)) for _, pod in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    removed = {pod.get("id") for _, pod in targets}

    def drop_removed(st: dict) -> None:
        st["pods"] = [p for p in st["pods"] if p.get("id") not in removed]

    if targets:
        _update(state_path, drop_removed)
    for given, pod in targets:
        if pod_ready(pod):
            print(f"Stopped sandbox {given}")
        print(f"Removed sandbox {given}")
    if errors:
        raise CrictlError(_aggregate(errors))
    return 0


def cmd_version() -> int:
    print(f"Version:  0.1.0\nRuntimeName:  {RUNTIME_NAME}\nRuntimeVersion:  {RUNTIME_VERSION}\n"
          "RuntimeApiVersion:  v1")
    return 0


def main(argv: list[str], state_path: str | None = None) -> int:
    state_path = state_path or STATE_FILE
    try:
        glob = Args(argv, GLOBAL_BOOLS, GLOBAL_VALUES)
    except UsageError as exc:
        print(f"Incorrect Usage: {exc}\n", file=sys.stderr)
        print_help()
        _log("fatal", str(exc))
        return 1
    if glob.get("version"):
        print(f"crictl version {DEFAULT_VERSION}")
        return 0
    if glob.get("help") or not glob.args:
        print_help()
        return 0
    name, rest = glob.args[0], glob.args[1:]
    if name == "help":
        if rest and rest[0] in COMMANDS:
            print_command_help(rest[0])
        else:
            print_help()
        return 0
    if name not in COMMANDS:
        print(f"No help topic for '{name}'", file=sys.stderr)
        return 3
    _, bools, values = COMMANDS[name]
    try:
        opts = Args(rest, {**bools, "help": "help", "h": "help"}, values)
        timeout = _seconds(str(glob.get("timeout") or "2s"))
    except UsageError as exc:
        print(f"Incorrect Usage: {exc}\n", file=sys.stderr)
        print_command_help(name)
        _log("fatal", str(exc))
        return 1
    if opts.get("help"):
        print_command_help(name)
        return 0
    try:
        runtime_endpoint(glob, timeout)
        if name == "pods":
            return cmd_pods(opts, read_state(state_path))
        if name == "ps":
            return cmd_ps(opts, read_state(state_path))
        if name == "stopp":
            return cmd_stopp(opts, state_path)
        if name == "rmp":
            return cmd_rmp(opts, state_path)
        return cmd_version()
    except CrictlError as exc:
        sys.stdout.flush()
        _log("fatal", str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
