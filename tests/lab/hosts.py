"""The test lab's hosts: many Linux "machines" on one machine (issue 5).

Each lab host is a set of namespaces (network, mount, UTS, IPC, PID) whose
PID 1 is a real OpenSSH sshd with its own host key. Its network namespace has
one veth on a bridge that lives in a dedicated "switch" namespace with no
uplink: the lab's private address range exists only there, so nothing can leak
off the machine and the root namespace is untouched (design.md section 5).

Stand-ins, not the product: this module is test infrastructure. It stands in
for the machines kubefab would normally reach over a real network.

Layout of the lab directory (``KUBEFAB_LAB_DIR``, default /var/tmp/kubefab-lab)::

    lab.json            state: names, addresses, pids (the source of truth for status/down)
    id_ed25519[.pub]    the operator's SSH identity
    known_hosts         every host's key under its name and its address
    ssh_config          Host blocks: name -> address, identity, strict host key checking
    inventory.yaml      a kubefab inventory for the lab
    kubeadm.yaml        a v1beta4 kubeadm config beside it
    hosts/<name>/       overlay upper/work dirs, private dirs, init script, console log
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tasks.core.errors import KubefabError
from tests.lab import images
from tests.lab.netns import in_netns, netns_inode
from tests.lab.systemctl import pid_alive

DEFAULT_LAB_DIR = "/var/tmp/kubefab-lab"
LAB_DIR_ENV = "KUBEFAB_LAB_DIR"
K8S_VERSION_ENV = "KUBEFAB_LAB_K8S_VERSION"
DEFAULT_K8S_VERSION = images.DEFAULT_K8S_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
LB_NAME = "lb"
LB_OCTET = 254
FIRST_HOST_OCTET = 11
MAX_HOSTS = 200  # node<i> gets .(10+i) in the lab's /24; .254 is the LB
APISERVER_PORT = 6443
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Copy-on-write overlays: the host sees the machine's files and writes its own.
# /usr is overlaid whole (it contains /usr/local, which the issue names) so that
# the lab can place /usr/bin/kubelet and /lib/systemd/system/kubelet.service
# (/lib -> /usr/lib on Debian 12) where the distribution packages put them.
OVERLAYS = {"/etc": "etc", "/usr": "usr", "/var/lib": "varlib", "/var/log": "varlog"}
# Private, initially empty directories kubeadm writes to (bind mounts).
PRIVATE_DIRS = {
    "/etc/kubernetes": "etc-kubernetes",
    "/var/lib/kubelet": "var-lib-kubelet",
    "/var/lib/etcd": "var-lib-etcd",
    "/etc/systemd/system/kubelet.service.d": "kubelet-dropins",
    # containerd's overlayfs snapshots cannot live on the host's /var/lib overlay.
    "/var/lib/containerd": "var-lib-containerd",
}
# Replaced whole: (mount point, kind). Paths under them that the lab needs to keep
# (the repo and its Python, when CI clones under /root or /tmp) are re-bound inside.
REPLACED = (("/root", "bind"), ("/run", "tmpfs"), ("/tmp", "tmpfs"), ("/dev/shm", "tmpfs"))

KUBELET_UNIT = """\
# Lab copy of the kubelet unit shipped by the Kubernetes deb/rpm packages.
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
# The packages use 10s; the lab restarts faster so that tests stay quick.
RestartSec=2

[Install]
WantedBy=multi-user.target
"""


CONTAINERD_CONFIG = """\
# kubefab lab: containerd for a host without systemd (cgroupfs) and without a registry
# (every image is preloaded with `ctr -n k8s.io images import`).
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  disable_apparmor = true
  # This machine gives root no CAP_SYS_RESOURCE, so no process may lower its oom_score_adj
  # (the kubelet asks -998 for pause containers): keep scores at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
"""

CRICTL_CONFIG = """\
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
"""

# The pod network, as an operator installs one on each host: a bridge with host-local IPAM on
# the host's own pod range and, on every other host, a route to it (see _pod_routes).
POD_NETWORK = "10.244.0.0/16"


def pod_range(index: int) -> str:
    """The pod range of node<index>: 10.244.<index>.0/24, inside the cluster's podSubnet."""
    return f"10.244.{index}.0/24"


def cni_config(index: int) -> str:
    return json.dumps({
        "cniVersion": "1.0.0",
        "name": "kubefab-lab",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_range(index)}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2) + "\n"


@dataclass(frozen=True)
class CgroupHierarchy:
    """One cgroup hierarchy of the machine: where it is mounted and how to mount it again."""

    mountpoint: str      # /sys/fs/cgroup/memory
    fstype: str          # cgroup | cgroup2
    options: str         # mount options that select it: "memory", "none,name=systemd", ""
    own_path: str        # this process's cgroup in it: /process_api/...


@functools.cache
def cgroup_hierarchies() -> tuple[CgroupHierarchy, ...]:
    """The machine's cgroup hierarchies (v1 controllers, name=systemd, the unified v2 one), read
    once per process: every lab exec joins a host's cgroups."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else [""]):
            own[c] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if not rfields or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        mountpoint, fstype, super_opts = fields[4], rfields[0], rfields[2].split(",")
        if fstype == "cgroup2":
            found.append(CgroupHierarchy(mountpoint, fstype, "", own.get("", "/")))
            continue
        ctrls = [o for o in super_opts if o not in ("rw", "ro") and not o.startswith(("release_agent", "clone_"))
                 and o not in ("nsdelegate", "noprefix", "xattr")]
        named = [o for o in ctrls if o.startswith("name=")]
        opts = f"none,{named[0]}" if named else ",".join(ctrls)
        path = own.get(named[0] if named else (ctrls[0] if ctrls else ""), "/")
        found.append(CgroupHierarchy(mountpoint, fstype, opts, path))
    return tuple(found)


class LabError(KubefabError):
    """The lab could not be brought up, inspected or torn down."""


@dataclass
class HostState:
    """One lab host as recorded in lab.json."""

    name: str
    address: str
    roles: list[str]
    index: int
    netns: str
    pid: int = 0  # the host's PID 1 (sshd) as seen from the root PID namespace
    launcher_pid: int = 0  # the `unshare --fork` process that waits for it


@dataclass
class LabState:
    """Everything `status` and `down` need, persisted as lab.json."""

    tag: str
    subnet: str
    switch_netns: str
    bridge: str
    hosts: dict[str, HostState] = field(default_factory=dict)
    lb: bool = False
    control_planes: int = 0
    k8s_version: str = DEFAULT_K8S_VERSION  # the Kubernetes release on the hosts and in kubeadm.yaml


def lab_dir_from_env() -> Path:
    """Return the lab directory: $KUBEFAB_LAB_DIR or the default."""
    return Path(os.environ.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR)


def lab_identity(lab_dir: Path) -> tuple[str, str]:
    """Derive (tag, subnet) from the lab directory so two labs never collide.

    The subnet is a /24 inside 10.0.0.0/8; it exists only in this lab's switch
    namespace, so even a hash collision could not disturb the machine.
    """
    digest = hashlib.sha256(str(lab_dir.resolve()).encode()).digest()
    tag = digest.hex()[:6]
    subnet = f"10.{100 + digest[3] % 100}.{digest[4]}.0/24"
    return tag, subnet


# Every kubelet and containerd on the machine takes inotify instances from one per-user budget
# (128 by default): a few labs side by side ran out ("inotify_init: too many open files" from a
# kubelet). kind asks its users to raise the same limits.
INOTIFY_LIMITS = {"/proc/sys/fs/inotify/max_user_instances": 1024,
                  "/proc/sys/fs/inotify/max_user_watches": 524288}


def raise_inotify_limits() -> None:
    """Raise the machine's inotify limits to at least INOTIFY_LIMITS (never lower them)."""
    for path, want in INOTIFY_LIMITS.items():
        try:
            if int(Path(path).read_text()) < want:
                Path(path).write_text(f"{want}\n")
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot raise {path} to {want}: {exc}",
                           fix=f"run as root, or set it by hand: sysctl -w {path[10:].replace('/', '.')}={want}")


def default_control_planes(n: int) -> int:
    """1 control plane for fewer than 3 hosts, else 3 (the issue's rule)."""
    return 1 if n < 3 else 3


def _run(argv: Sequence[str], *, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), input=input, capture_output=True)
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed ({proc.returncode}): {' '.join(argv)}",
            details=[line for line in proc.stderr.decode(errors="replace").splitlines()[-10:]],
            fix="check that you are root and that iproute2/util-linux are installed",
        )
    return proc


def _openssh_keypair() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def _ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _keep_paths() -> list[str]:
    """Paths that must stay visible inside hosts at the same place (repo, venv, python)."""
    paths = {str(REPO_ROOT), sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent)}
    return sorted(p for p in paths if p and p != "/")


class Lab:
    """A lab of hosts under one lab directory.

    Example::

        lab = Lab()                   # $KUBEFAB_LAB_DIR or /var/tmp/kubefab-lab
        lab.up(4, lb=True)            # node1-3 control planes, node4 worker, lb
        lab.ssh("node1", "hostname")  # real ssh through the lab's ssh_config
        lab.down()
    """

    def __init__(self, lab_dir: str | os.PathLike[str] | None = None) -> None:
        self.dir = Path(lab_dir) if lab_dir is not None else lab_dir_from_env()
        self.tag, self.subnet = lab_identity(self.dir)
        self.switch_netns = f"kfl-{self.tag}-sw"
        self.bridge = f"kflbr{self.tag}"
        self._launchers: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ paths
    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def identity(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def switch_netns_path(self) -> str:
        return f"/run/netns/{self.switch_netns}"

    def host_dir(self, name: str) -> Path:
        return self.dir / "hosts" / name

    # ------------------------------------------------------------------ state
    def load(self) -> LabState | None:
        """Return the recorded state, or None when there is no lab here."""
        try:
            raw = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        hosts = {n: HostState(**h) for n, h in raw.pop("hosts", {}).items()}
        return LabState(hosts=hosts, **raw)

    def _save(self, state: LabState) -> None:
        data = asdict(state)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        with open(self.dir / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def host_alive(self, host: HostState) -> bool:
        """True when the host's sshd (its PID 1) runs in the host's namespace."""
        if not pid_alive(host.pid):
            return False
        try:
            cmd = Path(f"/proc/{host.pid}/cmdline").read_bytes()
            net = os.readlink(f"/proc/{host.pid}/ns/net")
        except OSError:
            return False
        return b"sshd" in cmd.split(b"\0")[0] and net == f"net:[{netns_inode('/run/netns/' + host.netns)}]"

    # ------------------------------------------------------------------ up
    def up(
        self,
        n: int,
        *,
        lb: bool = False,
        control_planes: int | None = None,
        k8s_version: str | None = None,
    ) -> dict:
        """Bring up (or grow) the lab to ``n`` hosts; return :meth:`status`.

        Idempotent: running hosts are left alone, dead ones are recreated fresh.

        :param n: number of node hosts (node1..nodeN), not counting the LB host.
        :param lb: also run an haproxy host balancing :6443 over the control planes.
        :param control_planes: how many of the first hosts are control planes.
        :param k8s_version: the Kubernetes release the hosts run (kubelet, images); built when
            missing (``tests/lab/k8s/build.sh``).
        :raises LabError: when something cannot be created.
        """
        if not 1 <= n <= MAX_HOSTS:
            raise LabError(f"a lab has 1 to {MAX_HOSTS} hosts, not {n}", fix=f"pass 1 <= N <= {MAX_HOSTS}")
        k = control_planes if control_planes else default_control_planes(n)
        if not 1 <= k <= n:
            raise LabError(f"--control-planes {k} is not between 1 and {n}", fix="pick K <= N")
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, mounts)", fix="run it as root")
        for tool in ("ip", "unshare", "nsenter", "/usr/sbin/sshd") + (("haproxy",) if lb else ()):
            if not shutil.which(tool):
                raise LabError(f"{tool} is not installed", fix="run scripts/ensure-apt.sh as root")
        version = k8s_version or os.environ.get(K8S_VERSION_ENV) or DEFAULT_K8S_VERSION
        # The real components, built (once) before any host exists; then their images.
        self.images = images.ensure_images(version)
        raise_inotify_limits()
        with self._locked():
            state = self.load()
            if state is not None and netns_inode(self.switch_netns_path) is None:
                # Left over from a reboot or a crash: nothing of it runs any more.
                self._teardown(state)
                state = None
            if state is None:
                state = LabState(tag=self.tag, subnet=self.subnet, switch_netns=self.switch_netns, bridge=self.bridge)
                self._create_switch()
            if not self.identity.exists():
                private, public = _openssh_keypair()
                _write(self.identity, private, 0o600)
                _write(self.identity.with_suffix(".pub"), public + " kubefab-lab\n", 0o644)
            state.lb = state.lb or lb
            state.control_planes = k
            state.k8s_version = version
            net = ipaddress.ip_network(self.subnet)
            wanted = [f"node{i}" for i in range(1, n + 1)]
            for name in list(state.hosts):
                if name != LB_NAME and name not in wanted and self.host_alive(state.hosts[name]):
                    wanted.append(name)  # growing only: never shrink a live lab silently
            for i, name in enumerate(sorted((w for w in wanted), key=lambda s: int(s[4:]))):
                roles = ["control-plane"] if i < k else ["worker"]
                idx = int(name[4:])
                if name in state.hosts:
                    state.hosts[name].roles = roles
                else:
                    state.hosts[name] = HostState(
                        name=name,
                        address=str(net[FIRST_HOST_OCTET - 1 + idx]),
                        roles=roles,
                        index=idx,
                        netns=f"kfl-{self.tag}-{name}",
                    )
            if state.lb and LB_NAME not in state.hosts:
                state.hosts[LB_NAME] = HostState(
                    name=LB_NAME, address=str(net[LB_OCTET]), roles=["load-balancer"], index=0,
                    netns=f"kfl-{self.tag}-{LB_NAME}",
                )
            to_start = [h for h in state.hosts.values() if not self.host_alive(h)]
            for h in to_start:
                self._discard_host(h)
            self._write_client_files(state)
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda h: self._prepare_host(state, h), to_start))
            self._write_known_hosts(state)
            self._wire_hosts(state, to_start)
            for h in to_start:
                self._launch(h)
            self._find_pids(to_start)
            self._save(state)
            self._wait_ssh(to_start)
            self._pod_routes(state)
            self._refresh_hosts_files(state, exclude={h.name for h in to_start})
            self._load_images(state, [h for h in to_start if h.name != LB_NAME])
            if state.lb:
                self._configure_lb(state)
            self._save(state)
        return self.status()

    def _create_switch(self) -> None:
        gw = ipaddress.ip_network(self.subnet)[1]
        prefix = ipaddress.ip_network(self.subnet).prefixlen
        if netns_inode(self.switch_netns_path) is None:
            _run(["ip", "netns", "add", self.switch_netns])
        batch = (
            f"link set lo up\n"
            f"link add {self.bridge} type bridge\n"
            f"addr add {gw}/{prefix} dev {self.bridge}\n"
            f"link set {self.bridge} up\n"
        )
        _run(["ip", "-n", self.switch_netns, "-batch", "-"], input=batch.encode())

    def _discard_host(self, host: HostState) -> None:
        """Remove what a dead host left (netns, files) before recreating it."""
        if netns_inode(f"/run/netns/{host.netns}") is not None:
            self._kill_netns_processes(f"/run/netns/{host.netns}")
            _run(["ip", "netns", "del", host.netns], check=False)
        _run(["ip", "-n", self.switch_netns, "link", "del", f"ve-{host.name}"], check=False)
        self._remove_cgroups(host.name)
        shutil.rmtree(self.host_dir(host.name), ignore_errors=True)
        host.pid = host.launcher_pid = 0

    def _prepare_host(self, state: LabState, host: HostState) -> None:
        """Write the host's files: overlay uppers, private dirs, sshd, units, init."""
        hd = self.host_dir(host.name)
        for sub in OVERLAYS.values():
            (hd / f"{sub}.up").mkdir(parents=True, exist_ok=True)
            (hd / f"{sub}.wk").mkdir(parents=True, exist_ok=True)
        for sub in PRIVATE_DIRS.values():
            (hd / "priv" / sub).mkdir(parents=True, exist_ok=True)
        # Mount points for the private dirs, created in the uppers (never on the machine).
        for path in PRIVATE_DIRS:
            for mount, sub in OVERLAYS.items():
                if path.startswith(mount + "/"):
                    (hd / f"{sub}.up" / path[len(mount) + 1 :]).mkdir(parents=True, exist_ok=True)
        root = hd / "priv" / "root"
        (root / ".ssh").mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        os.chmod(root / ".ssh", 0o700)
        pub = self.identity.with_suffix(".pub").read_text()
        _write(root / ".ssh" / "authorized_keys", pub, 0o600)
        etc = hd / "etc.up"
        _write(etc / "hostname", host.name + "\n")
        _write(etc / "hosts", self._hosts_file(state))
        _write(etc / "machine-id", uuid.uuid4().hex + "\n", 0o444)
        # No DNS server is reachable from the lab: the switch's address answers nothing, so lookups
        # fail at once. (Not 127.0.0.1: CoreDNS forwards to the host's resolver, and a loopback
        # resolver inside its pod would be CoreDNS itself, a loop its `loop` plugin refuses.)
        gw = ipaddress.ip_network(self.subnet)[1]
        _write(etc / "resolv.conf", f"nameserver {gw}\noptions timeout:1 attempts:1\n")
        private, public = _openssh_keypair()
        _write(etc / "ssh" / "ssh_host_ed25519_key", private, 0o600)
        _write(etc / "ssh" / "ssh_host_ed25519_key.pub", public + f" root@{host.name}\n")
        _write(etc / "ssh" / "sshd_config", SSHD_CONFIG)
        (hd / "host_key.pub").write_text(public + "\n")
        usr = hd / "usr.up"
        py = sys.executable
        _write(usr / "local" / "sbin" / "systemctl",
               f"#!/bin/sh\n# kubefab lab: systemctl stand-in (no systemd in the lab)\n"
               f"exec env PYTHONPATH={REPO_ROOT} {py} -m tests.lab.systemctl \"$@\"\n", 0o755)
        # Also shadow the machine's real (inert) systemctl, whatever PATH a caller has.
        (usr / "bin").mkdir(parents=True, exist_ok=True)
        os.symlink("/usr/local/sbin/systemctl", usr / "bin" / "systemctl")
        _write(usr / "local" / "bin" / "journalctl",
               f"#!/bin/sh\n# kubefab lab: journalctl stand-in reading the systemctl stand-in's logs\n"
               f"exec env PYTHONPATH={REPO_ROOT} {py} -m tests.lab.systemctl --journalctl \"$@\"\n", 0o755)
        if host.name == LB_NAME:
            _write(hd / "init.sh", self._init_script(host), 0o755)
            return
        # What an operator installs on a Kubernetes host: the kubelet (and its unit), a container
        # runtime (Debian's containerd and runc, CNI plugins), crictl, and etcdctl (kubefab runs
        # etcd's membership commands on the host). Real binaries, from the lab's build cache.
        bins = images.Binaries(state.k8s_version)
        os.symlink(bins.kubelet, usr / "bin" / "kubelet")
        os.symlink(bins.crictl, usr / "local" / "bin" / "crictl")
        os.symlink(bins.etcd / "etcdctl", usr / "local" / "bin" / "etcdctl")
        os.symlink(bins.etcd / "etcdutl", usr / "local" / "bin" / "etcdutl")
        _write(usr / "lib" / "systemd" / "system" / "kubelet.service", KUBELET_UNIT)
        pause = f"{images.REGISTRY}/pause:{images.PAUSE_VERSION}"
        _write(etc / "containerd" / "config.toml", CONTAINERD_CONFIG.format(pause_image=pause))
        _write(etc / "crictl.yaml", CRICTL_CONFIG)
        _write(etc / "cni" / "net.d" / "10-kubefab-lab.conflist", cni_config(host.index))
        _write(hd / "init.sh", self._init_script(host), 0o755)

    def _init_script(self, host: HostState) -> str:
        hd = self.host_dir(host.name)
        lines = ["#!/bin/sh", "# PID 1 of a kubefab lab host: build the mount tree, then become sshd.", "set -e",
                 f"hostname {host.name}", "mount -n -t sysfs sysfs /sys"]
        if host.name != LB_NAME:
            # The host runs in a cgroup namespace rooted at its own cgroup (see _launch): mount
            # the hierarchies again so that the kubelet, containerd and runc see that root as "/".
            lines.append("mount -n -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup")
            for h in cgroup_hierarchies():
                rel = os.path.relpath(h.mountpoint, "/sys/fs/cgroup")
                opts = f" -o {h.options}" if h.options else ""
                lines.append(f"mkdir -p /sys/fs/cgroup/{rel} && mount -n -t {h.fstype}{opts} {h.fstype} "
                             f"/sys/fs/cgroup/{rel}")
        for mount, sub in OVERLAYS.items():
            lines.append(
                f"mount -n -t overlay overlay -o lowerdir={mount},upperdir={hd}/{sub}.up,workdir={hd}/{sub}.wk {mount}"
            )
        for path, sub in PRIVATE_DIRS.items():
            lines.append(f"mount -n --bind {hd}/priv/{sub} {path}")
        keep = _keep_paths()
        for target, kind in REPLACED:
            # Build the replacement at /mnt, re-bind what must stay visible, move it in place.
            if kind == "bind":
                lines.append(f"mount -n --bind {hd}/priv/root /mnt")
            else:
                mode = "0755" if target == "/run" else "1777"
                lines.append(f"mount -n -t tmpfs -o mode={mode} tmpfs /mnt")
            for path in keep:
                if path.startswith(target + "/"):
                    rel = path[len(target) + 1 :]
                    lines.append(f"mkdir -p /mnt/{rel} && mount -n --rbind {path} /mnt/{rel}")
            if target == "/run":
                # Drop the copies of the machine's /run/netns mounts: they would keep
                # other labs' network namespaces alive after those labs are down.
                lines.append("umount -n -l /run/netns 2>/dev/null || true")
            lines.append(f"mount -n --move /mnt {target}")
        lines += [
            "mkdir -p /run/sshd /run/lock /run/containerd",
            # A host prepared for Kubernetes forwards IPv4 and passes bridged traffic through
            # iptables (kubeadm's preflight checks both); the settings are per network namespace.
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ]
        if host.name != LB_NAME:
            lines += [
                "for f in /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables;"
                " do [ -w $f ] && echo 1 > $f; done",
                # The container runtime starts at boot, as its package enables it.
                "systemctl start containerd",
            ]
        lines += [
            "exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config",
        ]
        return "\n".join(lines) + "\n"

    def _wire_hosts(self, state: LabState, hosts: list[HostState]) -> None:
        if not hosts:
            return
        prefix = ipaddress.ip_network(self.subnet).prefixlen
        gw = ipaddress.ip_network(self.subnet)[1]
        switch_batch = []
        for h in hosts:
            _run(["ip", "netns", "add", h.netns])
            # eth0's MAC follows from the address, so a host brought up again (a fault test's
            # restart) has the same one: the neighbours' ARP entries for it stay right (a new
            # random MAC was a black hole until they expired: "sshd not answering after 30 s")
            octets = ipaddress.ip_address(h.address).packed
            mac = "02:6b:66:" + ":".join(f"{b:02x}" for b in octets[1:])
            _run(["ip", "link", "add", f"ve-{h.name}", "netns", self.switch_netns, "type", "veth",
                  "peer", "name", "eth0", "address", mac, "netns", h.netns])
            switch_batch.append(f"link set ve-{h.name} master {self.bridge} up")
            host_batch = (
                f"link set lo up\naddr add {h.address}/{prefix} dev eth0\nlink set eth0 up\n"
                # A default route into the switch keeps route-hungry software happy;
                # the switch has no uplink, so nothing goes further.
                f"route add default via {gw}\n"
            )
            _run(["ip", "-n", h.netns, "-batch", "-"], input=host_batch.encode())
        _run(["ip", "-n", self.switch_netns, "-batch", "-"], input=("\n".join(switch_batch) + "\n").encode())

    # ------------------------------------------------------------------ cgroups
    def cgroup_dirs(self, name: str) -> list[Path]:
        """The host's cgroup in every hierarchy: <ours>/kubefab-lab-<tag>/<host> (as kind gives
        each node a cgroup namespace of its own, so that kubelets never share cgroups)."""
        return [Path(h.mountpoint + h.own_path.rstrip("/")) / f"kubefab-lab-{self.tag}" / name
                for h in cgroup_hierarchies()]

    def _make_cgroups(self, host: HostState) -> list[Path]:
        dirs = self.cgroup_dirs(host.name)
        for d in dirs:
            for level in (d.parent, d):
                if level.is_dir():
                    continue
                level.mkdir()
                # cgroup v1 cpuset: a new cgroup has no CPUs or memory nodes until given some.
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    if (level / knob).exists():
                        (level / knob).write_text((level.parent / knob).read_text())
        return dirs

    def _remove_cgroups(self, name: str) -> None:
        """Remove a dead host's cgroups, deepest first (its processes are gone or going)."""
        deadline = time.monotonic() + 10
        for d in self.cgroup_dirs(name):
            if not d.is_dir():
                continue
            subdirs = sorted((p for p, _, _ in os.walk(d)), key=len, reverse=True)
            for sub in subdirs:
                while True:
                    try:
                        os.rmdir(sub)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        with contextlib.suppress(OSError):
                            for pid in Path(sub, "cgroup.procs").read_text().split():
                                with contextlib.suppress(OSError):
                                    os.kill(int(pid), signal.SIGKILL)
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
            with contextlib.suppress(OSError):
                d.parent.rmdir()  # the lab's own level, once its last host is gone

    # ------------------------------------------------------------------ runtime and network
    def _pod_routes(self, state: LabState) -> None:
        """Every node host (and the switch, where tests run) routes each other host's pod range
        to that host: the pod network's routing, as a flat network of static routes."""
        nodes = [h for h in state.hosts.values() if h.name != LB_NAME]
        for h in [None, *nodes]:
            batch = "".join(f"route replace {pod_range(o.index)} via {o.address}\n" for o in nodes if o is not h)
            ns = self.switch_netns if h is None else h.netns
            if batch and (h is None or self.host_alive(h)):
                _run(["ip", "-n", ns, "-batch", "-"], input=batch.encode())

    def _load_images(self, state: LabState, hosts: list[HostState]) -> None:
        """Preload each new host's containerd with its role's images (no registry is reachable)."""
        if not hosts:
            return
        wait = ("end=$(($(date +%s) + 60)); until [ -S /run/containerd/containerd.sock ] && "
                "ctr --timeout 2s version >/dev/null 2>&1; do [ $(date +%s) -gt $end ] && "
                "{ echo 'containerd did not start:' >&2; tail -20 /var/log/kubefab-lab/containerd.service.log >&2; "
                "exit 1; }; sleep 0.1; done; ")

        def load(h: HostState) -> None:
            role = "control-plane" if "control-plane" in h.roles else "worker"
            archive = self.images[role]
            self.exec(h.name, ["sh", "-c", wait + f"ctr -n k8s.io images import --digests {archive} >/dev/null"],
                      check=True, timeout=600, state=state)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(load, hosts))

    def _launch(self, host: HostState) -> None:
        hd = self.host_dir(host.name)
        console = open(hd / "console.log", "ab")
        procs = [d / "cgroup.procs" for d in self._make_cgroups(host)] if host.name != LB_NAME else []

        def enter_cgroups() -> None:  # in the child, before exec: the host starts in its cgroups
            for f in procs:
                with open(f, "w") as fh:
                    fh.write(str(os.getpid()))

        try:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.netns}", "unshare", "--mount", "--uts", "--ipc",
                 "--pid", "--fork", "--mount-proc", "--propagation", "private",
                 *(["--cgroup"] if procs else []), "/bin/sh", str(hd / "init.sh")],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True, cwd="/", preexec_fn=enter_cgroups if procs else None,
            )
        finally:
            console.close()
        self._launchers[host.name] = proc
        host.launcher_pid = proc.pid

    def _find_pids(self, hosts: list[HostState]) -> None:
        """Find each host's PID 1: the launcher's only child (no /proc children file here)."""
        deadline = time.monotonic() + 10
        pending = {h.launcher_pid: h for h in hosts}
        while pending:
            kids = _ppid_map()
            for lpid, h in list(pending.items()):
                if kids.get(lpid):
                    h.pid = kids[lpid][0]
                    del pending[lpid]
                elif not pid_alive(lpid):
                    raise self._host_failed(h, "its launcher exited")
            if pending and time.monotonic() > deadline:
                raise self._host_failed(next(iter(pending.values())), "no PID 1 after 10 s")
            if pending:
                time.sleep(0.005)

    def _host_failed(self, host: HostState, why: str) -> LabError:
        log = self.host_dir(host.name) / "console.log"
        tail = log.read_text(errors="replace").splitlines()[-10:] if log.exists() else []
        return LabError(f"lab host {host.name} did not start: {why}", host=host.name, details=tail,
                        fix=f"see {log}; run 'python -m tests.lab down' and retry")

    def _wait_ssh(self, hosts: list[HostState], timeout: float = 30.0) -> None:
        """Wait until every new host's sshd sends its banner (probed from the switch). A loaded
        2-core machine (a lab beside a cluster) has taken over 10 s for an sshd's first banner."""
        if not hosts:
            return
        errors: list[LabError] = []

        def probe() -> None:
            with in_netns(self.switch_netns_path):
                deadline = time.monotonic() + timeout
                pending = list(hosts)
                while pending:
                    for h in list(pending):
                        try:
                            with socket.create_connection((h.address, 22), timeout=2) as s:
                                if s.recv(8).startswith(b"SSH-"):
                                    pending.remove(h)
                        except OSError:
                            if not pid_alive(h.pid):
                                errors.append(self._host_failed(h, "sshd exited"))
                                return
                    if pending and time.monotonic() > deadline:
                        errors.append(self._host_failed(pending[0], f"sshd not answering after {timeout} s"))
                        return
                    if pending:
                        time.sleep(0.01)

        t = threading.Thread(target=probe, name="lab-ssh-probe")
        t.start()
        t.join()
        if errors:
            raise errors[0]

    def _hosts_file(self, state: LabState) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += [f"{h.address}\t{h.name}" for h in sorted(state.hosts.values(), key=lambda h: h.address)]
        return "\n".join(lines) + "\n"

    def _refresh_hosts_files(self, state: LabState, exclude: set[str]) -> None:
        content = self._hosts_file(state).encode()
        for h in state.hosts.values():
            if h.name not in exclude:
                self.exec(h.name, ["sh", "-c", "cat > /etc/hosts"], input=content, check=True, state=state)

    def _write_client_files(self, state: LabState) -> None:
        """ssh_config, inventory and kubeadm.yaml (known_hosts after keys exist)."""
        hosts = sorted(state.hosts.values(), key=lambda h: (h.name == LB_NAME, h.index))
        cfg = ["# kubefab lab: use with ssh -F <this file> <host>", ""]
        for h in hosts:
            cfg += [f"Host {h.name} {h.address}", f"  HostName {h.address}", "  User root", "  Port 22",
                    f"  IdentityFile {self.identity}", "  IdentitiesOnly yes",
                    f"  UserKnownHostsFile {self.known_hosts}", "  StrictHostKeyChecking yes",
                    "  GlobalKnownHostsFile /dev/null", "  BatchMode yes", "  LogLevel ERROR",
                    # The post-quantum default kex costs ~0.1 s per connection on these machines.
                    "  KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org",
                    "  GSSAPIAuthentication no", ""]
        _write(self.ssh_config, "\n".join(cfg), 0o644)
        cps = [h for h in hosts if "control-plane" in h.roles]
        cluster: dict = {"name": "lab", "config": "kubeadm.yaml"}
        lb = state.hosts.get(LB_NAME) if state.lb else None
        if lb:
            cluster["controlPlaneEndpoint"] = f"{lb.address}:{APISERVER_PORT}"
        inventory = {
            "cluster": cluster,
            "hosts": {h.name: {"address": h.address, "roles": list(h.roles)} for h in hosts if h.name != LB_NAME},
            "ssh": {"user": "root", "port": 22, "identity": self.identity.name,
                    "known_hosts": self.known_hosts.name, "ssh_config": self.ssh_config.name},
        }
        _write(self.inventory, "# kubefab inventory for the test lab (written by python -m tests.lab up)\n"
               + yaml.safe_dump(inventory, sort_keys=False))
        first = cps[0]
        init = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
                "localAPIEndpoint": {"advertiseAddress": first.address, "bindPort": APISERVER_PORT},
                "nodeRegistration": {"name": first.name, "ignorePreflightErrors": ["SystemVerification"]}}
        clus: dict = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                      "clusterName": "lab", "kubernetesVersion": state.k8s_version,
                      "networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": POD_NETWORK,
                                     "dnsDomain": "cluster.local"}}
        if lb:
            clus["controlPlaneEndpoint"] = f"{lb.address}:{APISERVER_PORT}"
        # What an operator of these hosts must say: no systemd (cgroupfs, as containerd is set up),
        # cgroup v1 (Kubernetes 1.35+ refuses it unless failCgroupV1 is false, and kubeadm's
        # SystemVerification check must be skipped, on every node), and kube-proxy not
        # touching the machine-wide conntrack table size (the hosts are network namespaces).
        kubelet = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                   "cgroupDriver": "cgroupfs", "failCgroupV1": False}
        proxy = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
                 "conntrack": {"maxPerCore": 0}}
        # kubeadm join reads only its JoinConfiguration: the cgroup v1 skip must be said there too
        join = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
                "nodeRegistration": {"ignorePreflightErrors": ["SystemVerification"]}}
        _write(self.dir / "kubeadm.yaml", "# kubeadm config for the test lab (v1beta4)\n"
               + yaml.safe_dump_all([init, join, clus, kubelet, proxy], sort_keys=False))

    def _write_known_hosts(self, state: LabState) -> None:
        lines = []
        for h in sorted(state.hosts.values(), key=lambda h: h.address):
            key = (self.host_dir(h.name) / "host_key.pub").read_text().strip()
            lines.append(f"{h.name},{h.address} {key}")
        _write(self.known_hosts, "\n".join(lines) + "\n", 0o644)

    def _configure_lb(self, state: LabState) -> None:
        cps = sorted((h for h in state.hosts.values() if "control-plane" in h.roles), key=lambda h: h.index)
        cfg = HAPROXY_CONFIG + "".join(
            f"    server {h.name} {h.address}:{APISERVER_PORT} check\n" for h in cps
        )
        script = (
            "mkdir -p /etc/haproxy && cat > /etc/haproxy/haproxy.cfg && "
            "if [ -s /run/haproxy.pid ] && kill -0 $(cat /run/haproxy.pid) 2>/dev/null; then "
            "haproxy -q -D -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid -sf $(cat /run/haproxy.pid); "
            "else haproxy -q -D -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid; fi"
        )
        self.exec(LB_NAME, ["sh", "-c", script], input=cfg.encode(), check=True, state=state)

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        """Return the lab's description (the `status --json` document)."""
        state = self.load()
        if state is None:
            return {"hosts": [], "inventory": None, "ssh_config": None, "known_hosts": None, "lb": None,
                    "dir": str(self.dir), "running": False}
        hosts = [
            {"name": h.name, "address": h.address, "roles": list(h.roles), "running": self.host_alive(h)}
            for h in sorted(state.hosts.values(), key=lambda h: (h.name == LB_NAME, h.index))
            if h.name != LB_NAME
        ]
        lb = state.hosts.get(LB_NAME)
        return {
            "hosts": hosts,
            "inventory": str(self.inventory),
            "ssh_config": str(self.ssh_config),
            "known_hosts": str(self.known_hosts),
            "lb": {"address": lb.address, "running": self.host_alive(lb)} if lb and state.lb else None,
            "dir": str(self.dir),
            "switch_netns": self.switch_netns_path,
            "subnet": self.subnet,
            "running": all(h["running"] for h in hosts),
        }

    # ------------------------------------------------------------------ exec / sw
    def _host(self, name: str, state: LabState | None = None) -> HostState:
        state = state or self.load()
        if state is None or name not in state.hosts:
            known = ", ".join(sorted(state.hosts)) if state else "none (the lab is down)"
            raise LabError(f"no lab host named {name!r}", fix=f"known hosts: {known}")
        host = state.hosts[name]
        if not self.host_alive(host):
            raise LabError(f"lab host {name} is not running", host=name, fix="run 'python -m tests.lab up N'")
        return host

    def exec_argv(self, name: str, argv: Sequence[str], state: LabState | None = None) -> list[str]:
        """The command line that runs ``argv`` inside host ``name``'s namespaces."""
        host = self._host(name, state)
        enter: list[str] = []
        if name != LB_NAME:
            # Join the host's cgroups too (then its cgroup namespace), as its own processes are.
            procs = " ".join(shlex.quote(str(d / "cgroup.procs")) for d in self.cgroup_dirs(name))
            enter = ["sh", "-c", f'for f in {procs}; do echo $$ > "$f"; done; exec "$@"', "enter", ]
        return [*enter, "nsenter", f"--target={host.pid}", "--mount", "--uts", "--ipc", "--net", "--pid",
                *(["--cgroup"] if enter else []), "--root", "--wd=/", "env", "-i", f"PATH={HOST_PATH}", "HOME=/root", "USER=root", "LOGNAME=root",
                "SHELL=/bin/bash", "LANG=C.UTF-8", f"TERM={os.environ.get('TERM', 'dumb')}", *argv]

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        check: bool = False,
        timeout: float | None = 60,
        capture: bool = True,
        state: LabState | None = None,
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` inside host ``name`` (as root, like its sshd would)."""
        try:
            proc = subprocess.run(self.exec_argv(name, argv, state), input=input, timeout=timeout,
                                  capture_output=capture)
        except subprocess.TimeoutExpired as exc:
            err = (exc.stderr or b"").decode(errors="replace") if capture else ""
            raise LabError(f"command on {name} did not finish within {timeout:.0f} s: {' '.join(argv)[:200]}",
                           host=name, details=err.splitlines()[-10:],
                           fix=f"look at {self.host_dir(name)}/console.log and the host's /var/log/kubefab-lab/") from None
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace") if capture else ""
            raise LabError(f"command failed on {name} ({proc.returncode}): {' '.join(argv)}", host=name,
                           details=err.splitlines()[-10:])
        return proc

    def sw_argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` in the switch namespace."""
        if netns_inode(self.switch_netns_path) is None:
            raise LabError("the lab is down (no switch namespace)", fix="run 'python -m tests.lab up N'")
        return ["nsenter", f"--net={self.switch_netns_path}", *argv]

    def sw(self, argv: Sequence[str], *, input: bytes | None = None, timeout: float | None = 60,
           capture: bool = True) -> subprocess.CompletedProcess:
        """Run ``argv`` on the orchestrator side, where the hosts are reachable."""
        return subprocess.run(self.sw_argv(argv), input=input, timeout=timeout, capture_output=capture)

    def ssh_argv(self, name: str, command: str) -> list[str]:
        """Real ssh to a host through the lab's ssh_config (run it via :meth:`sw`)."""
        return ["ssh", "-F", str(self.ssh_config), name, command]

    def ssh(self, name: str, command: str, *, input: bytes | None = None,
            timeout: float | None = 60) -> subprocess.CompletedProcess:
        """Run ``command`` on host ``name`` over real SSH from the switch namespace."""
        return self.sw(self.ssh_argv(name, command), input=input, timeout=timeout)

    def put(self, name: str, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write a file inside a host (parents created), e.g. test certificates."""
        payload = data.encode() if isinstance(data, str) else data
        script = f'mkdir -p "$(dirname "$1")" && cat > "$1.lab-tmp" && chmod {mode:o} "$1.lab-tmp" && mv -f "$1.lab-tmp" "$1"'
        self.exec(name, ["sh", "-c", script, "put", path], input=payload, check=True)

    @contextlib.contextmanager
    def switch(self) -> Iterator[None]:
        """Run the calling thread's sockets in the switch namespace for the block."""
        with in_netns(self.switch_netns_path):
            yield

    # ------------------------------------------------------------------ down
    def stop_host(self, name: str) -> None:
        """Power a host off: kill its PID 1 (the kernel then kills everything in it)."""
        host = self._host(name)
        os.kill(host.pid, signal.SIGKILL)
        self._reap([host])

    def down(self) -> None:
        """Tear the lab down: no namespace, bridge, process, mount or file left."""
        with self._locked():
            self._teardown(self.load())
        with contextlib.suppress(OSError):
            (self.dir / ".lock").unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()

    def _teardown(self, state: LabState | None) -> None:
        prefix = f"kfl-{self.tag}-"
        names = [line.split()[0] for line in _run(["ip", "netns", "list"]).stdout.decode().splitlines()
                 if line.startswith(prefix)]
        hosts = list(state.hosts.values()) if state else []
        # unshare --fork ignores SIGTERM: a host is stopped by killing its PID 1.
        for h in hosts:
            if self.host_alive(h):
                os.kill(h.pid, signal.SIGKILL)
        for ns in names:
            self._kill_netns_processes(f"/run/netns/{ns}")
        self._reap(hosts)
        for ns in names:
            _run(["ip", "netns", "del", ns], check=False)
        for h in hosts:
            self._remove_cgroups(h.name)
        for item in ("hosts",):
            shutil.rmtree(self.dir / item, ignore_errors=True)
        for item in ("lab.json", "lab.tmp", "id_ed25519", "id_ed25519.pub", "known_hosts", "ssh_config",
                     "inventory.yaml", "kubeadm.yaml"):
            with contextlib.suppress(OSError):
                (self.dir / item).unlink()

    def _kill_netns_processes(self, path: str) -> None:
        """Kill stray processes still in a lab namespace (e.g. from `sw -- cmd &`)."""
        ino = netns_inode(path)
        if ino is None:
            return
        marker = f"net:[{ino}]"
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/ns/net") == marker:
                        os.kill(int(entry), signal.SIGKILL)

    def _reap(self, hosts: list[HostState]) -> None:
        deadline = time.monotonic() + 10
        for h in hosts:
            proc = self._launchers.pop(h.name, None)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            while (pid_alive(h.pid) or pid_alive(h.launcher_pid)) and time.monotonic() < deadline:
                time.sleep(0.01)


SSHD_CONFIG = """\
# kubefab lab host: key-only root login, own host key.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
AuthorizedKeysFile .ssh/authorized_keys
Subsystem sftp internal-sftp
MaxStartups 200
MaxSessions 100
AcceptEnv LANG LC_*
PidFile none
LogLevel INFO
"""

HAPROXY_CONFIG = """\
# kubefab lab load balancer: TCP passthrough to the control planes' kube-apiservers.
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    retries 3
    option redispatch

frontend kube-apiserver
    bind *:6443
    default_backend control-planes

backend control-planes
    balance roundrobin
    # As kubeadm's HA guide has it: only a ready API server gets requests. A TCP check would send
    # them to a starting one, which answers 403 until its RBAC caches are filled.
    option httpchk GET /readyz
    http-check expect status 200
    # A check may take up to 3 s (without "timeout check" haproxy gives it the 500 ms of "inter",
    # and a loaded 2-core machine answers /readyz slower than that: every backend flapped down);
    # a stopped API server refuses the check's connection at once, so it still leaves in ~1 s.
    timeout check 3s
    default-server inter 500ms fall 2 rise 2 check-ssl verify none
"""
