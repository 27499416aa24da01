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
- calls ``tests.lab.kubelet_api.ApiSide(...).sync(static_pods=...)`` from a
  separate thread each loop when that module exists (TLS bootstrap, Node, mirror pods).

Binaries: $KUBEFAB_LAB_BIN/<name> wins when present; etcd otherwise runs the
machine's /usr/bin/etcd; kube-apiserver, kube-controller-manager and kube-scheduler
run ``<python> -m tests.lab.standins.<module>`` with the same arguments.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import http.server
import importlib
import importlib.util
import logging
import os
import re
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

VERSION_ENV = "KUBEFAB_LAB_KUBELET_VERSION"
LAB_BIN_ENV = "KUBEFAB_LAB_BIN"
SYNC_ENV = "KUBEFAB_LAB_KUBELET_SYNC_SECONDS"
BACKOFF_CAP_ENV = "KUBEFAB_LAB_KUBELET_BACKOFF_CAP"
DEFAULT_VERSION = "v1.36.0"
REPO_ROOT = str(Path(__file__).resolve().parents[2])
POD_LOG_DIR = "/var/log/pods"
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


# ---------------------------------------------------------------------------- static pods
@dataclass
class Container:
    name: str
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 0.0
    error: str = ""
    started_at: float = 0.0
    started_wall: float = 0.0
    last_exit: int | None = None


@dataclass
class StaticPod:
    path: str
    digest: str
    manifest: dict
    uid: str
    containers: list[Container]

    @property
    def namespace(self) -> str:
        return self.manifest.get("metadata", {}).get("namespace") or "default"

    @property
    def name(self) -> str:
        return self.manifest.get("metadata", {}).get("name") or Path(self.path).stem


class Kubelet:
    """The sync loop: manifests -> processes, plus health and the API side."""

    def __init__(self, flags: dict[str, str], config: dict, node: str) -> None:
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
                                        env=env, workdir=c.get("workingDir") or "/"))
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
            elif hashlib.sha256(wanted[path][0]).hexdigest() != pod.digest:
                log.info("static pod %s/%s: manifest changed, restarting", pod.namespace, pod.name)
                self.stop_pod(pod)
                del self.pods[path]
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
                if c.proc is None and now >= c.next_start:
                    self.start_container(pod, c)

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
        c.started_at = time.monotonic()
        c.started_wall = time.time()
        log.info("static pod %s/%s container %s started: pid %d (%s)", pod.namespace, pod.name, c.name,
                 c.proc.pid, how)

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
        try:
            while not self.stopping.is_set():
                self.sync_pods()
                self.sync_api()
                self.stopping.wait(self.sync_interval)
        finally:
            log.info("stopping: %d static pods", len(self.pods))
            for pod in self.pods.values():
                self.stop_pod(pod)
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
