"""The lab kubelet, process side (issue 5): static pods as plain processes.

Stand-in, not the product: lab hosts cannot run the real kubelet (no container
runtime, no systemd). This daemon does the part of kubelet's job that kubeadm
depends on, started by the lab's systemctl through the kubelet unit and the
10-kubeadm.conf drop-in that kubefab writes:

- parses kubelet flags (--config, --kubeconfig, --bootstrap-kubeconfig,
  --hostname-override, --container-runtime-endpoint; others are logged and ignored);
- reads /var/lib/kubelet/config.yaml (missing -> exit 1, as kubelet does before
  kubeadm writes it, so the unit crash-loops exactly like on a fresh kubeadm node);
- serves /healthz on healthzBindAddress:healthzPort (127.0.0.1:10248);
- runs each static pod of staticPodPath as processes with the manifest's own
  command line (hostNetwork: the host's namespaces), restarting on manifest change
  (content hash), stopping on removal, restarting on death with capped back-off,
  logging to /var/log/pods/<ns>_<name>_<uid>/<container>/0.log;
- leaves its pods running when it stops, as a real kubelet does: containers belong
  to the container runtime. The lab has none, so the pod processes run in their own
  sessions and the kubelet records them in a small state file in the host's private
  /run (``STATE_FILE``, written atomically whenever a container starts or stops and
  at exit). A starting kubelet adopts every container process of that file that is
  still alive (same pid *and* same start time, so a reused PID is never adopted),
  then syncs as usual: a removed manifest stops the pod, a changed one restarts it,
  a dead container is restarted with back-off, a pod with no live process is started
  again. The lab's ``crictl`` stand-in (tests/lab/crictl.py) lists and removes pods
  through the same file, standing in for the runtime's CRI socket;
- calls ``tests.lab.kubelet_api.ApiSide(...).sync(static_pods=...)`` from a
  separate thread each loop when that module exists (TLS bootstrap, Node, mirror pods).

Binaries: $KUBEFAB_LAB_BIN/<name> wins when present; etcd otherwise runs the
machine's /usr/bin/etcd; kube-apiserver, kube-controller-manager and kube-scheduler
run ``<python> -m tests.lab.standins.<module>`` with the same arguments.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import http.server
import importlib
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.lab.systemctl import proc_start_time

VERSION_ENV = "KUBEFAB_LAB_KUBELET_VERSION"
LAB_BIN_ENV = "KUBEFAB_LAB_BIN"
SYNC_ENV = "KUBEFAB_LAB_KUBELET_SYNC_SECONDS"
BACKOFF_CAP_ENV = "KUBEFAB_LAB_KUBELET_BACKOFF_CAP"
DEFAULT_VERSION = "v1.36.0"
REPO_ROOT = str(Path(__file__).resolve().parents[2])
POD_LOG_DIR = "/var/log/pods"
# What the kubelet runs, for its next start and for crictl: the host's private /run (a tmpfs
# per lab host), so it lives as long as the host and its processes.
STATE_FILE = "/run/lab-kubelet/pods.json"
UNKNOWN_EXIT = -1  # the exit status of a process that is not our child cannot be read
STANDIN_MODULES = {
    "kube-apiserver": "tests.lab.standins.apiserver",
    "kube-controller-manager": "tests.lab.standins.controller_manager",
    "kube-scheduler": "tests.lab.standins.scheduler",
}
KNOWN_FLAGS = ("config", "kubeconfig", "bootstrap-kubeconfig", "hostname-override",
               "container-runtime-endpoint", "cert-dir", "node-ip", "register-with-taints", "node-labels")

log = logging.getLogger("lab-kubelet")


# ---------------------------------------------------------------------------- pure helpers
def parse_flags(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Parse ``--name=value`` / ``--name value`` / ``--bool`` kubelet flags.

    :returns: (known flags by name, the ignored arguments as given)
    """
    known: dict[str, str] = {}
    ignored: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            ignored.append(arg)
            i += 1
            continue
        name, sep, value = arg[2:].partition("=")
        if name in KNOWN_FLAGS:
            if not sep:
                if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    value = argv[i + 1]
                    i += 1
            known[name] = value
        else:
            ignored.append(arg)
        i += 1
    return known, ignored


def node_name(flags: dict[str, str], hostname: str | None = None) -> str:
    """--hostname-override, else the host name, lower-cased (as kubelet does)."""
    return (flags.get("hostname-override") or hostname or socket.gethostname()).strip().lower()


def translate_etcd_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Rewrite etcd 3.6 flags (kubeadm 1.34+) for the lab's etcd 3.4.

    A documented lab shim: Debian's etcd is 3.4.23, whose names for the same
    switches carry the ``experimental-`` prefix.
    :returns: (new args, one note per rewrite for the log)
    """
    out: list[str] = []
    notes: list[str] = []
    for arg in args:
        if arg.startswith("--feature-gates="):
            kept = []
            for gate in arg.split("=", 1)[1].split(","):
                if gate.split("=")[0] == "InitialCorruptCheck":
                    value = gate.split("=", 1)[1] if "=" in gate else "true"
                    out.append(f"--experimental-initial-corrupt-check={value}")
                    notes.append(f"{arg} -> --experimental-initial-corrupt-check={value}")
                elif gate:
                    kept.append(gate)
            if kept:
                out.append("--feature-gates=" + ",".join(kept))
        elif arg.startswith("--watch-progress-notify-interval="):
            new = "--experimental-" + arg[2:]
            out.append(new)
            notes.append(f"{arg} -> {new}")
        else:
            out.append(arg)
    return out, notes


def pod_uid(content: bytes, node: str) -> str:
    """A stable UID per manifest content and node, as kubelet derives for static pods."""
    h = hashlib.md5(content + node.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def resolve_command(command: list[str], lab_bin: str | None, python: str = sys.executable) -> tuple[list[str], str]:
    """Map a container command to a lab process; returns (argv, how) or raises LookupError."""
    if not command:
        raise LookupError("the container has no command")
    base = os.path.basename(command[0])
    rest = list(command[1:])
    if lab_bin and os.access(os.path.join(lab_bin, base), os.X_OK):
        return [os.path.join(lab_bin, base), *rest], f"real binary from ${LAB_BIN_ENV}"
    if base == "etcd":
        etcd = shutil.which("etcd")
        if not etcd:
            raise LookupError("etcd is not installed on this machine (apt install etcd-server)")
        if etcd_minor(etcd) < (3, 6):
            rest, _ = translate_etcd_args(rest)
        return [etcd, *rest], etcd
    if base in STANDIN_MODULES:
        module = STANDIN_MODULES[base]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise LookupError(f"stand-in module {module} is missing")
        return [python, "-m", module, *rest], f"stand-in {module}"
    path = shutil.which(command[0])
    if not path:
        raise LookupError(f"{command[0]} not found on PATH")
    return [path, *rest], path


_ETCD_VERSIONS: dict[str, tuple[int, int]] = {}


def etcd_minor(path: str) -> tuple[int, int]:
    if path not in _ETCD_VERSIONS:
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"etcd Version: (\d+)\.(\d+)", out)
        _ETCD_VERSIONS[path] = (int(m.group(1)), int(m.group(2))) if m else (3, 6)
    return _ETCD_VERSIONS[path]


# ---------------------------------------------------------------------------- runtime state
class AdoptedProcess:
    """A container process found running at start: the interface the kubelet uses of Popen.

    It is not the kubelet's child (its parent is gone), so its exit status cannot be read:
    once it is gone, ``returncode`` is ``UNKNOWN_EXIT``. Alive means: the pid exists, is not a
    zombie and still has the recorded start time.
    """

    def __init__(self, pid: int, start_time: int) -> None:
        self.pid = pid
        self.start_time = start_time
        self.returncode: int | None = None
        self.args = [f"pid {pid}"]

    def poll(self) -> int | None:
        if self.returncode is None and proc_start_time(self.pid) != self.start_time:
            self.returncode = UNKNOWN_EXIT
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode


def adopt_process(pid: object, start_time: object) -> AdoptedProcess | None:
    """The recorded process when it still runs (same pid, same start time, not a zombie), else None."""
    if not isinstance(pid, int) or not isinstance(start_time, int) or isinstance(pid, bool):
        return None
    if proc_start_time(pid) != start_time:
        return None
    return AdoptedProcess(pid, start_time)


@contextlib.contextmanager
def state_lock(path: str):
    """Hold the state file's lock (a ``.lock`` file beside it) for a read-modify-write."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_state(path: str) -> dict:
    """The state file's document; ``{"pods": []}`` when it is missing or unreadable."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"pods": []}
    if not isinstance(doc, dict) or not isinstance(doc.get("pods"), list):
        return {"pods": []}
    doc["pods"] = [p for p in doc["pods"] if isinstance(p, dict)]
    return doc


def write_state(path: str, doc: dict) -> None:
    """Replace the state file atomically (temp file + rename); hold :func:`state_lock`."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def new_id() -> str:
    """A 64-hex-digit ID, the shape of the runtime's pod sandbox and container IDs."""
    return secrets.token_hex(32)


# ---------------------------------------------------------------------------- static pods
@dataclass
class Container:
    name: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    image: str = ""
    proc: subprocess.Popen | AdoptedProcess | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 0.0
    error: str = ""
    started_at: float = 0.0
    started_wall: float = 0.0
    last_exit: int | None = None
    id: str = ""  # the current (or last) process's container ID; "" before the first start
    start_time: int | None = None  # /proc/<pid>/stat field 22 of the current process


@dataclass
class StaticPod:
    path: str
    digest: str
    manifest: dict
    uid: str
    containers: list[Container]
    id: str = field(default_factory=new_id)  # the pod sandbox ID crictl shows
    created: float = field(default_factory=time.time)

    @property
    def namespace(self) -> str:
        return self.manifest.get("metadata", {}).get("namespace") or "default"

    @property
    def name(self) -> str:
        return self.manifest.get("metadata", {}).get("name") or Path(self.path).stem


class Kubelet:
    """The sync loop: manifests -> processes, plus health and the API side."""

    def __init__(self, flags: dict[str, str], config: dict, node: str, state_path: str | None = None) -> None:
        self.flags, self.config, self.node = flags, config, node
        self.pods: dict[str, StaticPod] = {}
        self.stopping = threading.Event()
        self.lab_bin = os.environ.get(LAB_BIN_ENV) or None
        self.backoff_cap = float(os.environ.get(BACKOFF_CAP_ENV, "30"))
        self.sync_interval = float(os.environ.get(SYNC_ENV, "1"))
        self.api = None
        self.api_failed_import = False
        self.api_thread: threading.Thread | None = None
        self.pod_log_dir = POD_LOG_DIR
        self.state_path = state_path or STATE_FILE
        self._state_dirty = False
        self._state_stat: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of our last write

    # -- manifests
    def manifests(self) -> dict[str, tuple[bytes, dict]]:
        root = self.config.get("staticPodPath")
        found: dict[str, tuple[bytes, dict]] = {}
        if not root or not os.path.isdir(root):
            return found
        for entry in sorted(os.listdir(root)):
            path = os.path.join(root, entry)
            if entry.startswith(".") or not os.path.isfile(path):
                continue  # kubelet ignores dot files (atomic writers use them)
            try:
                content = Path(path).read_bytes()
                doc = yaml.safe_load(content)
            except (OSError, yaml.YAMLError) as exc:
                log.warning("static pod %s: cannot read: %s", path, exc)
                continue
            if not isinstance(doc, dict) or doc.get("kind") != "Pod":
                log.warning("static pod %s: not a Pod, ignored", path)
                continue
            found[path] = (content, doc)
        return found

    def _make_pod(self, path: str, content: bytes, doc: dict) -> StaticPod:
        containers = []
        for c in doc.get("spec", {}).get("containers", []) or []:
            env = {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")}
            for item in c.get("env", []) or []:
                if "value" in item:
                    env[item["name"]] = str(item["value"])
            image = str(c.get("image") or "")
            if ":" in image.rsplit("/", 1)[-1]:
                # the stand-ins report the version of the image they stand in for (/version)
                env.setdefault("KUBEFAB_STANDIN_VERSION", image.rsplit(":", 1)[1])
            containers.append(Container(name=c.get("name", "main"),
                                        argv=list(c.get("command") or []) + [str(a) for a in c.get("args") or []],
                                        env=env, workdir=c.get("workingDir") or "/", image=image))
        return StaticPod(path=path, digest=hashlib.sha256(content).hexdigest(), manifest=doc,
                         uid=pod_uid(content, self.node), containers=containers)

    def sync_pods(self) -> None:
        wanted = self.manifests()
        for path in list(self.pods):
            pod = self.pods[path]
            if path not in wanted:
                log.info("static pod %s/%s: manifest removed, stopping", pod.namespace, pod.name)
                self.stop_pod(pod)
                del self.pods[path]
                self._state_dirty = True
            elif hashlib.sha256(wanted[path][0]).hexdigest() != pod.digest:
                log.info("static pod %s/%s: manifest changed, restarting", pod.namespace, pod.name)
                self.stop_pod(pod)
                del self.pods[path]
                self._state_dirty = True
        for path, (content, doc) in wanted.items():
            if path not in self.pods:
                self.pods[path] = self._make_pod(path, content, doc)
                log.info("static pod %s/%s: added (uid %s)", self.pods[path].namespace, self.pods[path].name,
                         self.pods[path].uid)
        now = time.monotonic()
        for pod in self.pods.values():
            for c in pod.containers:
                if c.proc is not None and c.proc.poll() is not None:
                    c.last_exit = c.proc.returncode
                    ran = now - c.started_at
                    c.backoff = 1.0 if ran > 10 * self.backoff_cap else min(max(c.backoff * 2, 1.0), self.backoff_cap)
                    c.next_start = now + c.backoff
                    c.restarts += 1
                    log.warning("static pod %s/%s container %s exited with %s; restart in %.0fs",
                                pod.namespace, pod.name, c.name, c.last_exit, c.backoff)
                    c.proc = None
                    c.start_time = None
                    self._state_dirty = True
                if c.proc is None and now >= c.next_start:
                    self.start_container(pod, c)
        self.save_state()

    def start_container(self, pod: StaticPod, c: Container) -> None:
        try:
            argv, how = resolve_command(c.argv, self.lab_bin)
        except LookupError as exc:
            c.error = str(exc)
            c.backoff = min(max(c.backoff * 2, 1.0), self.backoff_cap)
            c.next_start = time.monotonic() + c.backoff
            log.error("static pod %s/%s container %s failed: %s; retry in %.0fs",
                      pod.namespace, pod.name, c.name, exc, c.backoff)
            return
        if os.path.basename(argv[0]) == "etcd" and argv != c.argv:
            for note in translate_etcd_args(c.argv[1:])[1]:
                log.info("lab shim for etcd %s: %s", ".".join(map(str, etcd_minor(argv[0]))), note)
        env = c.env
        if how.startswith("stand-in"):
            # The stand-ins are modules of this repository: make them importable from "/".
            env = {**c.env, "PYTHONPATH": REPO_ROOT}
        logdir = Path(self.pod_log_dir) / f"{pod.namespace}_{pod.name}_{pod.uid}" / c.name
        logdir.mkdir(parents=True, exist_ok=True)
        with open(logdir / "0.log", "ab") as out:
            try:
                c.proc = subprocess.Popen(argv, env=env, cwd=c.workdir, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                c.error = f"cannot start {argv[0]}: {exc.strerror}"
                c.backoff = min(max(c.backoff * 2, 1.0), self.backoff_cap)
                c.next_start = time.monotonic() + c.backoff
                log.error("static pod %s/%s: %s", pod.namespace, pod.name, c.error)
                return
        c.error = ""
        c.id = new_id()
        c.start_time = proc_start_time(c.proc.pid)
        c.started_at = time.monotonic()
        c.started_wall = time.time()
        log.info("static pod %s/%s container %s started: pid %d (%s)", pod.namespace, pod.name, c.name,
                 c.proc.pid, how)
        # Recorded at once: a kubelet killed now must still find this process when it starts again.
        self._state_dirty = True
        self.save_state()

    def stop_pod(self, pod: StaticPod, grace: float = 10.0) -> None:
        procs = [c.proc for c in pod.containers if c.proc is not None and c.proc.poll() is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for c in pod.containers:
            c.proc = None
            c.start_time = None
        self._state_dirty = True

    # -- the state file (what the runtime would know: the pods and their processes)
    def state_document(self) -> dict:
        """The state file's document: per static pod its manifest path and digest, uid, sandbox
        ID and name, and per container its ID, pid, start time, restarts and start (epoch)."""
        pods = []
        for pod in self.pods.values():
            containers = []
            for c in pod.containers:
                alive = c.proc is not None and c.proc.poll() is None
                containers.append({
                    "name": c.name, "id": c.id, "image": c.image,
                    "pid": c.proc.pid if alive else None, "start_time": c.start_time if alive else None,
                    "restarts": c.restarts, "started_wall": c.started_wall or None, "exit_code": c.last_exit,
                    "log": str(Path(self.pod_log_dir) / f"{pod.namespace}_{pod.name}_{pod.uid}" / c.name / "0.log"),
                })
            pods.append({
                "id": pod.id, "path": pod.path, "digest": pod.digest, "uid": pod.uid,
                "name": f"{pod.name}-{self.node}", "static_name": pod.name, "namespace": pod.namespace,
                "created": pod.created, "attempt": 0, "ready": True,
                "labels": dict((pod.manifest.get("metadata") or {}).get("labels") or {}),
                "containers": containers,
            })
        return {"kubelet_pid": os.getpid(), "node": self.node, "updated": time.time(), "pods": pods}

    def save_state(self, force: bool = False) -> None:
        """Write the state file when something started or stopped, or when someone else (crictl)
        rewrote it: while the kubelet runs, it is the one that knows what runs."""
        if not (force or self._state_dirty):
            try:
                st = os.stat(self.state_path)
                if (st.st_ino, st.st_mtime_ns, st.st_size) == self._state_stat:
                    return
            except OSError:
                if self._state_stat is None and not self.pods:
                    return  # nothing ever written and nothing to write
        try:
            with state_lock(self.state_path):
                write_state(self.state_path, self.state_document())
                st = os.stat(self.state_path)
            self._state_stat = (st.st_ino, st.st_mtime_ns, st.st_size)
            self._state_dirty = False
        except OSError as exc:
            log.error("cannot write the pod state file %s: %s", self.state_path, exc)

    def adopt(self) -> None:
        """Take over the pods a previous kubelet left running (read from the state file).

        A container whose process still runs (same pid and start time) is adopted as it is;
        one whose process is gone is started again by the next sync. A pod whose manifest
        changed or disappeared meanwhile is kept as recorded, so that the sync restarts or
        stops it as it would for a pod it had started itself.
        """
        with state_lock(self.state_path):
            state = read_state(self.state_path)
        wanted = self.manifests()
        adopted = gone = 0
        for entry in state["pods"]:
            path = entry.get("path")
            if not isinstance(path, str) or not path:
                continue
            recorded: dict[str, tuple[dict, AdoptedProcess | None]] = {}
            for ce in entry.get("containers") or []:
                if isinstance(ce, dict) and isinstance(ce.get("name"), str):
                    recorded[ce["name"]] = (ce, adopt_process(ce.get("pid"), ce.get("start_time")))
            if path in self.pods:  # a duplicate entry: keep the first, stop what this one runs
                for _, proc in recorded.values():
                    if proc is not None:
                        self.stop_pod(StaticPod(path, "", {}, "", [Container(name="dup", proc=proc)]))
                continue
            digest = entry.get("digest")
            if path in wanted and hashlib.sha256(wanted[path][0]).hexdigest() == digest:
                pod = self._make_pod(path, *wanted[path])
            else:
                meta = {"name": entry.get("static_name") or Path(path).stem,
                        "namespace": entry.get("namespace") or "default"}
                pod = StaticPod(path=path, digest=str(digest or ""), manifest={"metadata": meta},
                                uid=str(entry.get("uid") or ""), containers=[Container(name=n) for n in recorded])
            pod.id = str(entry.get("id") or pod.id)
            pod.uid = str(entry.get("uid") or pod.uid)
            if isinstance(entry.get("created"), (int, float)):
                pod.created = float(entry["created"])
            for c in pod.containers:
                ce, proc = recorded.get(c.name, ({}, None))
                c.id = str(ce.get("id") or "")
                c.restarts = int(ce.get("restarts") or 0)
                c.last_exit = ce.get("exit_code") if isinstance(ce.get("exit_code"), int) else None
                if proc is not None:
                    c.proc, c.start_time = proc, proc.start_time
                    wall = ce.get("started_wall")
                    c.started_wall = float(wall) if isinstance(wall, (int, float)) else time.time()
                    c.started_at = time.monotonic() - max(0.0, time.time() - c.started_wall)
                    adopted += 1
                    log.info("static pod %s/%s container %s: adopted running pid %d", pod.namespace, pod.name,
                             c.name, proc.pid)
                elif ce.get("pid"):
                    c.restarts += 1  # it died while no kubelet watched: started again at once
                    gone += 1
                    log.info("static pod %s/%s container %s: pid %s is gone, starting it again", pod.namespace,
                             pod.name, c.name, ce.get("pid"))
            self.pods[path] = pod
        if state["pods"]:
            log.info("found %d static pods of a previous kubelet: %d containers adopted, %d gone",
                     len(self.pods), adopted, gone)
        self._state_dirty = True
        self.save_state()

    # -- the API side
    def pod_reports(self) -> list[dict]:
        """Static pods for the API side, in the shape tests/lab/kubelet_api.py reads.

        Each entry: ``{"manifest": <the Pod as written>, "running", "pid", "restarts",
        "started_at" (epoch), "uid", "path", "containers": [...]}``.
        """
        out = []
        for pod in self.pods.values():
            alive = [c for c in pod.containers if c.proc is not None and c.proc.poll() is None]
            running = bool(pod.containers) and len(alive) == len(pod.containers)
            out.append({
                "manifest": copy.deepcopy(pod.manifest),
                "running": running,
                "pid": alive[0].proc.pid if alive else None,
                "restarts": sum(c.restarts for c in pod.containers),
                "started_at": max((c.started_wall for c in alive), default=None),
                "uid": pod.uid,
                "path": pod.path,
                "failed": any(c.error for c in pod.containers),
                "containers": [{"name": c.name, "running": c in alive, "restarts": c.restarts,
                                "pid": c.proc.pid if c in alive else None, "error": c.error,
                                "lastExitCode": c.last_exit} for c in pod.containers],
            })
        return out

    def sync_api(self) -> None:
        """Run one ApiSide.sync in its own thread (skipped while the last is running)."""
        if self.api_failed_import or (self.api_thread and self.api_thread.is_alive()):
            return
        if self.api is None:
            try:
                module = importlib.import_module("tests.lab.kubelet_api")
            except ImportError as exc:
                log.warning("API side unavailable (tests.lab.kubelet_api: %s); running static pods only", exc)
                self.api_failed_import = True
                return
            try:
                kwargs = dict(
                    node_name=self.node,
                    kubeconfig=self.flags.get("kubeconfig") or "/etc/kubernetes/kubelet.conf",
                    bootstrap_kubeconfig=self.flags.get("bootstrap-kubeconfig") or None,
                    cert_dir=self.flags.get("cert-dir") or "/var/lib/kubelet/pki",
                    kubelet_config=self.config,
                    log=logging.getLogger("lab-kubelet.api"),
                )
                try:  # node-ip, register-with-taints, node-labels, when the API side takes them
                    self.api = module.ApiSide(**kwargs, flags=dict(self.flags))
                except TypeError:
                    self.api = module.ApiSide(**kwargs)
            except Exception as exc:  # the other side's bug must not kill the pods
                log.error("API side could not start: %s", exc)
                return
        reports = self.pod_reports()

        def run() -> None:
            try:
                self.api.sync(static_pods=reports)
            except Exception as exc:
                log.error("API side sync failed: %s", exc)

        self.api_thread = threading.Thread(target=run, name="kubelet-api-sync", daemon=True)
        self.api_thread.start()

    # -- main loop
    def run(self) -> int:
        server = self.serve_healthz()
        log.info("lab kubelet %s on node %s: staticPodPath=%s", os.environ.get(VERSION_ENV, DEFAULT_VERSION),
                 self.node, self.config.get("staticPodPath"))
        adopted = False
        try:
            self.adopt()
            adopted = True
            while not self.stopping.is_set():
                self.sync_pods()
                self.sync_api()
                self.stopping.wait(self.sync_interval)
        finally:
            # As a real kubelet: the containers belong to the runtime and keep running; the next
            # kubelet adopts them, crictl (or kubeadm reset through the CRI) removes them.
            log.info("stopping: leaving %d static pods running (state in %s)", len(self.pods), self.state_path)
            if adopted:  # else the file still holds what the previous kubelet left: keep it
                self.save_state(force=True)
            if server is not None:
                server.shutdown()
        return 0

    def serve_healthz(self) -> http.server.ThreadingHTTPServer | None:
        port = int(self.config.get("healthzPort", 10248))
        if port == 0:
            return None
        address = self.config.get("healthzBindAddress") or "127.0.0.1"

        class Health(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = b"ok" if self.path.split("?")[0] == "/healthz" else b"404 page not found\n"
                self.send_response(200 if body == b"ok" else 404)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer((address, port), Health)
        threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
        return server


def main(argv: list[str]) -> int:
    if "--version" in argv or "--version=true" in argv:
        print(f"Kubernetes {os.environ.get(VERSION_ENV, DEFAULT_VERSION)}")
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname).1s %(name)s] %(message)s")
    flags, ignored = parse_flags(argv)
    for arg in ignored:
        log.info("flag %s ignored by the lab kubelet", arg)
    config_path = flags.get("config")
    config: dict = {}
    if config_path:
        try:
            config = yaml.safe_load(Path(config_path).read_text()) or {}
        except OSError as exc:
            # The real kubelet exits the same way before kubeadm wrote its config.
            log.error('failed to load kubelet config file, path: %s, error: %s', config_path, exc.strerror)
            return 1
        except yaml.YAMLError as exc:
            log.error("failed to parse kubelet config file %s: %s", config_path, exc)
            return 1
    kubelet = Kubelet(flags, config, node_name(flags))
    signal.signal(signal.SIGTERM, lambda *_: kubelet.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: kubelet.stopping.set())
    try:
        return kubelet.run()
    except OSError as exc:
        log.error("lab kubelet failed: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
