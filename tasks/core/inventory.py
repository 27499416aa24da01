"""The kubefab inventory: which hosts, in which roles, reached how, running which cluster.

Schema (YAML; paths are relative to the inventory file)::

    cluster:
      name: example                 # names the state dir .kubefab/<name>/
      config: kubeadm.yaml          # a kubeadm config file (optional: kubeadm's defaults)
      controlPlaneEndpoint: ...     # any ClusterConfiguration field (v1beta4 camelCase),
                                    # deep-merged over the file's ClusterConfiguration
    hosts:
      cp1: {address: 192.0.2.11, roles: [control-plane], node_name: ..., user: ...,
            port: 22, advertise_address: ...}
    ssh: {user: root, port: 22, identity: id_ed25519, known_hosts: known_hosts,
          ssh_config: ssh_config}

Validation reports every problem at once (ansible's ``ArgumentSpecValidator`` habit), including
those of the kubeadm config it points to, so a broken inventory costs one round of fixes.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .config.load import load_config_file, load_config_text, read_text_file
from .endpoints import is_dns1123_subdomain, is_ip
from .errors import ConfigError, KubefabError
from .spec import KubeadmConfig
from .yamlload import load_document, read_file, shown

__all__ = ["ROLES", "Host", "SshSettings", "Inventory", "load_inventory", "parse_inventory"]

CONTROL_PLANE = "control-plane"
WORKER = "worker"
ROLES = (CONTROL_PLANE, WORKER)
STATE_ROOT = ".kubefab"

_TOP_KEYS = ("cluster", "hosts", "ssh")
_CLUSTER_KEYS = ("name", "config")
_HOST_KEYS = ("address", "roles", "node_name", "user", "port", "advertise_address")
_SSH_KEYS = ("user", "port", "identity", "known_hosts", "ssh_config")
_CLUSTER_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Host:
    """One inventory host.

    :param name: the inventory name (what ``-H`` takes and messages show).
    :param address: where SSH connects (IP or DNS name).
    :param roles: ``control-plane`` and/or ``worker``.
    :param node_name: the Kubernetes Node name (default: ``name`` lower-cased, as kubeadm
        lower-cases the host name).
    :param user: SSH login user (host value, else ``ssh.user``; None = ssh_config/local user).
    :param port: SSH port (host value, else ``ssh.port``; None = ssh_config/22).
    :param advertise_address: the API server advertise address (default: ``address`` when it
        is an IP).
    """

    name: str
    address: str
    roles: tuple[str, ...]
    node_name: str
    user: str | None = None
    port: int | None = None
    advertise_address: str = ""
    # whether node_name/advertise_address were set explicitly for this host: explicit
    # per-host values win over the shared kubeadm config file, defaults only fill gaps
    explicit_node_name: bool = field(default=False, compare=False, repr=False)
    explicit_advertise_address: bool = field(default=False, compare=False, repr=False)

    @property
    def is_control_plane(self) -> bool:
        return CONTROL_PLANE in self.roles

    @property
    def is_worker(self) -> bool:
        return WORKER in self.roles


@dataclass(frozen=True)
class SshSettings:
    """Inventory-wide SSH settings; paths are absolute (resolved against the inventory)."""

    user: str | None = None
    port: int | None = None
    identity: str = ""
    known_hosts: str = ""
    ssh_config: str = ""


@dataclass(frozen=True)
class Inventory:
    """A loaded, validated inventory.

    :param path: the inventory file (absolute).
    :param cluster_name: ``cluster.name``.
    :param config_path: the kubeadm config file (absolute), or None for kubeadm's defaults.
    :param inline_cluster: ClusterConfiguration fields given inline under ``cluster:``.
    :param hosts: the hosts, in file order.
    :param ssh: the SSH settings.
    """

    path: Path
    cluster_name: str
    config_path: Path | None
    inline_cluster: Mapping[str, Any]
    hosts: tuple[Host, ...]
    ssh: SshSettings = field(default_factory=SshSettings)
    _configs: dict = field(default_factory=dict, compare=False, repr=False)

    # --- host lookup -------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        """The host called ``name`` (inventory name, node name or address).

        :raises ConfigError: naming it and listing the known hosts.
        """
        for match in (lambda h: h.name == name, lambda h: h.node_name == name, lambda h: h.address == name):
            for h in self.hosts:
                if match(h):
                    return h
        raise ConfigError(f"{self.path.name}: no host {name!r} in the inventory",
                          fix=f"use one of {', '.join(h.name for h in self.hosts)}")

    def resolve(self, names: list[str] | tuple[str, ...]) -> list[Host]:
        """The hosts for ``-H`` names (inventory names, node names or addresses), in the order
        given, duplicates dropped.

        :raises ConfigError: naming every unknown name at once.
        """
        out: list[Host] = []
        unknown: list[str] = []
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            try:
                h = self.host(name)
            except ConfigError:
                unknown.append(name)
                continue
            if h not in out:
                out.append(h)
        if unknown:
            what = "host" if len(unknown) == 1 else "hosts"
            raise ConfigError(f"{self.path.name}: no {what} {', '.join(repr(u) for u in unknown)} in the inventory",
                              fix=f"use one of {', '.join(h.name for h in self.hosts)}")
        return out

    @property
    def control_planes(self) -> list[Host]:
        return [h for h in self.hosts if h.is_control_plane]

    @property
    def workers(self) -> list[Host]:
        """Hosts that join as workers (not control planes)."""
        return [h for h in self.hosts if not h.is_control_plane]

    @property
    def first_control_plane(self) -> Host:
        """The host ``init`` runs on by default (the first control plane in file order)."""
        return self.control_planes[0]

    @property
    def state_dir(self) -> Path:
        """``.kubefab/<cluster name>/`` next to the inventory file (the design's default)."""
        return self.path.parent / STATE_ROOT / self.cluster_name

    # --- kubeadm configuration ---------------------------------------------------------------
    def kubeadm_config(self, host: Host, *, join: bool = False) -> KubeadmConfig:
        """The host's kubeadm configuration: the cluster config file (or kubeadm's defaults)
        with the inventory's inline ClusterConfiguration fields, and the host's node name and
        advertise address filling what the file leaves empty. A node name or advertise address
        set explicitly on the host in the inventory wins over the file.

        :param join: read the file as ``kubeadm join`` does for this host: ``init`` is None,
            ``join`` is always set (defaults when the file has no JoinConfiguration), and
            ``join.control_plane`` is set exactly when the host has the control-plane role.
        :raises ConfigError: listing every problem in the file.
        """
        key = (host.name, join)
        cached = self._configs.get(key)
        if cached is not None:
            return cached
        mode = (CONTROL_PLANE if host.is_control_plane else WORKER) if join else None
        if self.config_path is None:
            cfg = self._load_kubeadm_text("", host, mode)
        else:
            cfg = _apply_host_overrides(load_config_file(
                self.config_path, source=self._config_source(), **self._load_kwargs(host, mode)), host)
        if not join and cfg.init is not None:
            # kubeadm init ignores the JoinConfiguration of a file that serves init and join alike
            cfg = replace(cfg, join=None)
        self._configs[key] = cfg
        return cfg

    def _config_source(self) -> str:
        if self.config_path is None:
            return f"{self.path.name} (no cluster.config)"
        return _display(self.config_path, self.path)

    def _load_kwargs(self, host: Host, mode: str | None = None) -> dict[str, Any]:
        return dict(node_name=host.node_name, advertise_address=host.advertise_address,
                    inline_cluster=dict(self.inline_cluster) or None, inline_source=self.path.name,
                    for_join=mode)

    def _load_kubeadm_text(self, text: str, host: Host, mode: str | None = None) -> KubeadmConfig:
        cfg = load_config_text(text, source=self._config_source(), **self._load_kwargs(host, mode))
        return _apply_host_overrides(cfg, host)


def _display(path: Path, inventory: Path) -> str:
    try:
        return str(path.relative_to(inventory.parent))
    except ValueError:
        return str(path)


def _apply_host_overrides(cfg: KubeadmConfig, host: Host) -> KubeadmConfig:
    init, join = cfg.init, cfg.join
    if host.explicit_node_name:
        if init is not None:
            init = replace(init, node_registration=replace(init.node_registration, name=host.node_name))
        if join is not None:
            join = replace(join, node_registration=replace(join.node_registration, name=host.node_name))
    if host.explicit_advertise_address:
        if init is not None:
            init = replace(init, local_api_endpoint=replace(init.local_api_endpoint,
                                                            advertise_address=host.advertise_address))
        if join is not None and join.control_plane is not None:
            cp = join.control_plane
            join = replace(join, control_plane=replace(cp, local_api_endpoint=replace(
                cp.local_api_endpoint, advertise_address=host.advertise_address)))
    return replace(cfg, init=init, join=join)


# --- loading -----------------------------------------------------------------------------------
class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, problem: str) -> None:
        self.items.append(f"{self.source}: {path}: {problem}")


def _mapping(value: Any, path: str, p: _Problems) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.add(path, f"must be a mapping, got {type(value).__name__}")
        return {}
    return value


def _unknown(node: Mapping, path: str, allowed: tuple[str, ...], p: _Problems) -> None:
    for key in node:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(allowed)}"
            p.add(f"{path}.{key}", f"unknown key {str(key)!r} ({hint})")


def _opt_str(node: Mapping, key: str, path: str, p: _Problems) -> str | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        p.add(f"{path}.{key}", f"must be a non-empty string, got {shown(value)}")
        return None
    return value


def _opt_port(node: Mapping, key: str, path: str, p: _Problems) -> int | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        p.add(f"{path}.{key}", f"must be a port number from 1 to 65535, got {shown(value)}")
        return None
    return value


def _path(node: Mapping, key: str, path: str, base: Path, p: _Problems) -> str:
    value = _opt_str(node, key, path, p)
    if value is None:
        return ""
    return str((base / os.path.expanduser(value)).resolve()) if value else ""


def parse_inventory(text: str, path: Path) -> Inventory:
    """Validate an inventory's text (``path`` names it and anchors relative paths).

    :raises ConfigError: listing every problem, those of the kubeadm config included.
    """
    path = Path(path).absolute()
    source = path.name
    p = _Problems(source)
    data = load_document(text, source=source)  # bounded; duplicate keys are errors
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the inventory must be a mapping with cluster, hosts and ssh",
                          fix="see inventory/hosts.yaml for an example")
    _unknown(data, "(top level)", _TOP_KEYS, p)
    base = path.parent

    # cluster
    cluster = _mapping(data.get("cluster"), "cluster", p)
    name = cluster.get("name")
    if name is None:
        p.add("cluster.name", "required (it names the state directory .kubefab/<name>/)")
        name = "kubernetes"
    elif not isinstance(name, str) or not _CLUSTER_NAME_RE.match(name):
        p.add("cluster.name", f"{shown(name)} must be lower case letters, digits, '-', '_' or '.'")
        name = "kubernetes"
    config_rel = _opt_str(cluster, "config", "cluster", p)
    config_path = (base / os.path.expanduser(config_rel)).resolve() if config_rel else None
    inline = {k: v for k, v in cluster.items() if k not in _CLUSTER_KEYS}
    for key in ("apiVersion", "kind"):
        if key in inline:
            p.add(f"cluster.{key}", "not allowed inline; put whole documents in the cluster.config file")
            inline.pop(key)

    # ssh
    ssh_raw = _mapping(data.get("ssh"), "ssh", p)
    _unknown(ssh_raw, "ssh", _SSH_KEYS, p)
    ssh = SshSettings(
        user=_opt_str(ssh_raw, "user", "ssh", p),
        port=_opt_port(ssh_raw, "port", "ssh", p),
        identity=_path(ssh_raw, "identity", "ssh", base, p),
        known_hosts=_path(ssh_raw, "known_hosts", "ssh", base, p),
        ssh_config=_path(ssh_raw, "ssh_config", "ssh", base, p),
    )

    # hosts
    hosts_raw = _mapping(data.get("hosts"), "hosts", p)
    hosts: list[Host] = []
    for hname, raw in hosts_raw.items():
        hp = f"hosts.{hname}"
        if not isinstance(hname, str) or not hname:
            p.add(hp, "host names must be non-empty strings")
            continue
        h = _mapping(raw, hp, p)
        _unknown(h, hp, _HOST_KEYS, p)
        address = h.get("address")
        if address is None:
            p.add(f"{hp}.address", "required (the IP or DNS name SSH connects to)")
            address = ""
        elif not isinstance(address, str) or not address.strip():
            p.add(f"{hp}.address", f"must be a non-empty string, got {shown(address)}")
            address = ""
        roles_raw = h.get("roles")
        roles: list[str] = []
        if roles_raw is None:
            p.add(f"{hp}.roles", f"required: a list of {' and/or '.join(ROLES)}")
        elif not isinstance(roles_raw, list) or not roles_raw:
            p.add(f"{hp}.roles", f"must be a non-empty list of {' and/or '.join(ROLES)}, got {shown(roles_raw)}")
        else:
            for i, role in enumerate(roles_raw):
                if role not in ROLES:
                    hint = " (kubeadm calls it control-plane)" if role == "master" else ""
                    p.add(f"{hp}.roles[{i}]", f"unknown role {shown(role)}{hint}; use {' or '.join(ROLES)}")
                elif role not in roles:
                    roles.append(role)
        node_name_raw = _opt_str(h, "node_name", hp, p)
        node_name = node_name_raw or hname.lower()
        if not is_dns1123_subdomain(node_name):
            where = f"{hp}.node_name" if node_name_raw else hp
            p.add(where, f"node name {node_name!r} is not a DNS-1123 subdomain (lower case letters, digits, "
                         f"'-', '.'); set node_name")
        adv_raw = _opt_str(h, "advertise_address", hp, p)
        advertise = adv_raw or (address if is_ip(address) else "")
        if adv_raw and not is_ip(adv_raw):
            p.add(f"{hp}.advertise_address", f"{adv_raw!r} is not an IP address")
        elif CONTROL_PLANE in roles and address and not advertise:
            p.add(f"{hp}.advertise_address", f"required for a control plane whose address {address!r} is not an IP")
        hosts.append(Host(
            name=hname, address=address, roles=tuple(roles), node_name=node_name,
            user=_opt_str(h, "user", hp, p) or ssh.user, port=_opt_port(h, "port", hp, p) or ssh.port,
            advertise_address=advertise,
            explicit_node_name=node_name_raw is not None, explicit_advertise_address=adv_raw is not None,
        ))

    if not hosts_raw:
        p.add("hosts", "required: at least one host")
    elif not any(h.is_control_plane for h in hosts):
        p.add("hosts", f"no host has the {CONTROL_PLANE} role; give at least one")
    for attr, label in (("address", "address"), ("node_name", "node name")):
        seen: dict[str, str] = {}
        for h in hosts:
            value = getattr(h, attr)
            if value and value in seen:
                p.add(f"hosts.{h.name}", f"{label} {value!r} is also used by host {seen[value]!r}")
            seen.setdefault(value, h.name)

    inv = Inventory(path=path, cluster_name=name, config_path=config_path, inline_cluster=inline,
                    hosts=tuple(hosts), ssh=ssh)

    # the kubeadm config, checked now so all problems arrive together
    details = list(p.items)
    cps = [h for h in hosts if h.is_control_plane and h.advertise_address and h.node_name]
    # with no usable control plane, stand-in fallbacks still let the file's own problems show
    probe = cps[0] if cps else Host("(probe)", "", (CONTROL_PLANE,), "probe", advertise_address="192.0.2.1")
    text = ""
    if config_path is not None:
        if not config_path.exists():
            details.append(f"{source}: cluster.config: {config_path} does not exist")
        else:
            try:
                text = read_file(config_path, what="kubeadm config file", missing_fix="")
            except ConfigError as exc:  # unreadable, too large or not UTF-8
                details.append(f"{source}: cluster.config: {exc.problem}")
    try:
        # the inline fields are checked even when the file is missing
        inv._load_kubeadm_text(text, probe)
    except KubefabError as exc:
        details += list(exc.details) or [exc.problem]
    if details:
        n = len(details)
        raise ConfigError(f"{source}: {n} problem{'s' if n != 1 else ''} in the inventory", details=details,
                          fix="correct each entry listed (see inventory/hosts.yaml for an example)")
    return inv


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load and validate an inventory file (and the kubeadm config it names).

    :raises ConfigError: the file is missing or unreadable, or lists every problem found.
    """
    p = Path(path)
    text = read_text_file(p, what="inventory",
                                         missing_fix="pass --inventory FILE (see inventory/hosts.yaml for an example)")
    return parse_inventory(text, p)
