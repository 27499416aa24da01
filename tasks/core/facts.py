"""What kubefab knows about a host: the typed facts every phase reads (pure data).

Gathered once per host and command by :func:`tasks.remote.facts.gather_facts` (one shell probe,
one round trip); phases, preflight and the executor read these types only, so a plan is a pure
function of config + facts + the state dir, and tests build facts from fixtures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from .errors import RemoteError


@dataclass(frozen=True)
class PathFact:
    """State of one path on the host; dict-style ``get`` kept for the preflight checks."""

    path: str
    exists: bool = False
    type: str = ""  # file, directory, symlink, socket, fifo, char, block, other
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    owner: str = ""
    group: str = ""
    size: int | None = None
    sha256: str | None = None  # regular files (symlinks: of the target), when readable
    nonempty: bool | None = None  # directories only
    link_target: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, default)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket; ``pid``/``process`` are None where not visible."""

    address: str
    port: int
    pid: int | None = None
    process: str | None = None


@dataclass(frozen=True)
class HostFacts:
    """Everything kubefab knows about a host, read once per command."""

    hostname: str
    uid: int
    user: str = ""
    os_id: str = ""
    os_version: str = ""
    os_pretty: str = ""
    kernel: str = ""
    arch: str = ""
    cpus: int = 0
    mem_mb: int = 0
    swap_on: bool = False
    # raw first line of the /proc file ("1", "0") or None when unreadable (kubeadm errors)
    ip_forward: str | None = None
    ipv6_forwarding: str | None = None  # conf/default/forwarding, the file kubeadm checks
    ipv6_forwarding_all: str | None = None
    cgroup_version: int | None = None  # 1 when the memory controller is v1 (kubeadm's test), None: no /sys/fs/cgroup
    listeners: tuple[Listener, ...] = ()
    binaries: dict[str, str | None] = field(default_factory=dict)
    path_env: str = ""
    kubelet_version: str = ""  # "Kubernetes v1.34.1", "" when no kubelet
    kubelet_active: str | None = None  # systemctl is-active; None without systemctl
    kubelet_enabled: str | None = None  # systemctl is-enabled; None without systemctl
    firewalld_active: bool = False
    systemd_resolved_active: bool = False  # kubeadm then points the kubelet at its resolv.conf
    default_interface: str | None = None
    default_ip: str | None = None
    proxy_env: dict[str, str] = field(default_factory=dict)
    ca_dirs: tuple[str, ...] = ()
    cri_sockets: tuple[str, ...] = ()
    paths: dict[str, PathFact] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def listening_ports(self) -> dict[int, str]:
        """Port -> who holds it (``pid 812 (etcd)``), ``""`` when the owner is not visible."""
        ports: dict[int, str] = {}
        for lst in self.listeners:
            who = ""
            if lst.pid is not None:
                who = f"pid {lst.pid}" + (f" ({lst.process})" if lst.process else "")
            elif lst.process:
                who = lst.process
            if who or lst.port not in ports:
                ports[lst.port] = who
        return ports

    def path(self, path: str) -> PathFact:
        """The probed state of ``path`` (a missing entry means it was not probed)."""
        try:
            return self.paths[path]
        except KeyError:
            raise RemoteError(f"path {path} was not probed", fix="add it to gather_facts(paths=...)") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (fixtures, ``--dry-run`` output)."""
        data = asdict(self)
        data["listeners"] = [asdict(lst) for lst in self.listeners]
        data["ca_dirs"] = list(self.ca_dirs)
        data["cri_sockets"] = list(self.cri_sockets)
        data["paths"] = {p: asdict(v) for p, v in self.paths.items()}
        return data

    def with_paths(self, updates: Mapping[str, PathFact]) -> "HostFacts":
        """The same facts with some paths read again (a phase's :class:`Refresh`)."""
        return replace(self, paths={**self.paths, **updates})
