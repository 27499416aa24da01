"""What the static Pods, the kubelet files and the addons share: kubeadm's flag merge, service
IPs, the component-config hash, image names, and small dict helpers.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import constants as K
from ..errors import ConfigError
from ..spec import Arg, ClusterConfiguration, EnvVar
from ..versions import for_version, VersionInfo


# --- small helpers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    """A default flag kubeadm computes (``--name=value``); user ``extraArgs`` may replace it."""

    name: str
    value: str


def service_ip(cidr: str, n: int) -> str:
    """The ``n``-th address of the first CIDR of a (comma-separated) service subnet.

    kubeadm gives the ``kubernetes`` Service the 1st address and CoreDNS's ``kube-dns`` the
    10th (§5.5), counting from the network address.

    :raises ConfigError: if the CIDR is invalid or too small to hold address ``n``.
    """
    first = cidr.split(",")[0].strip()
    try:
        net = ipaddress.ip_network(first, strict=False)
    except ValueError as exc:
        raise ConfigError(f"networking.serviceSubnet {first!r} is not a valid CIDR",
                          fix="use a CIDR such as 10.96.0.0/12") from exc
    if n < 0 or n >= net.num_addresses:
        raise ConfigError(f"networking.serviceSubnet {first!r} has no address number {n}",
                          fix="use a service subnet with at least 16 addresses (e.g. a /28 or larger)")
    return str(net.network_address + n)


def merge_args(defaults: Iterable[Flag], overrides: Iterable[Arg], *,
               keep_user_order: bool) -> list[str]:
    """kubeadm's flag merge (§3.3): a user name drops every default of that name.

    Without ``keep_user_order`` the combined list is sorted by name then value. With it
    (kubernetes PR #135400, in 1.36 and back-ported to later 1.32-1.35 patches) the remaining
    defaults come first, sorted, then the user's entries in the order given, because order
    matters for flags such as ``--service-account-issuer`` (kubeadm 1.36.3's output decides).
    """
    user = list(overrides)
    names = {a.name for a in user}
    kept = [(d.name, d.value) for d in defaults if d.name not in names]
    if keep_user_order:
        pairs = sorted(kept) + [(a.name, a.value) for a in user]
    else:
        pairs = sorted(kept + [(a.name, a.value) for a in user])
    return [f"--{name}={value}" for name, value in pairs]


def _user_arg(args: Sequence[Arg], name: str) -> str | None:
    """The last value a user gave for ``name`` (what the component would use), or None."""
    found = None
    for a in args:
        if a.name == name:
            found = a.value
    return found


def component_config_hash(data: Mapping[str, str], binary: Mapping[str, bytes] | None = None) -> str:
    """``kubeadm.kubernetes.io/component-config.hash`` of a ConfigMap (§5.4).

    SHA-256 over the ``data`` values in ascending key order, then ``binaryData`` values in
    key order; kubeadm upgrades treat a matching hash as "kubeadm generated this config".
    """
    digest = hashlib.sha256()
    for key in sorted(data):
        digest.update(data[key].encode("utf-8"))
    for key in sorted(binary or {}):
        digest.update((binary or {})[key])
    return "sha256:" + digest.hexdigest()


# --- images (§3.5) ---------------------------------------------------------------------------

def control_plane_image(cluster: ClusterConfiguration, name: str) -> str:
    """``<imageRepository>/<name>:<version>``; Go image tags cannot hold ``+``."""
    return f"{cluster.image_repository}/{name}:{cluster.kubernetes_version.replace('+', '_')}"


def etcd_image(cluster: ClusterConfiguration, info: VersionInfo | None = None) -> str:
    info = info or for_version(cluster.kubernetes_version)
    local = cluster.etcd_local
    repo = (local.image_repository if local and local.image_repository else cluster.image_repository)
    tag = local.image_tag if local and local.image_tag else info.etcd_tag
    return f"{repo}/etcd:{tag}"


def coredns_image(cluster: ClusterConfiguration, info: VersionInfo | None = None) -> str:
    """Only the default registry nests CoreDNS under ``coredns/`` (kubeadm's GetDNSImage)."""
    info = info or for_version(cluster.kubernetes_version)
    repo = cluster.image_repository
    if repo == K.DEFAULT_IMAGE_REPOSITORY:
        repo = f"{repo}/coredns"
    if cluster.dns.image_repository:
        repo = cluster.dns.image_repository
    return f"{repo}/coredns:{cluster.dns.image_tag or info.coredns_tag}"


def _pki(cluster: ClusterConfiguration, name: str) -> str:
    return posixpath.join(cluster.certificates_dir, name)


def _kubeconfig(name: str) -> str:
    return posixpath.join(K.KUBERNETES_DIR, name)


def _env(proxy_env: Mapping[str, str], extra: Sequence[EnvVar]) -> list[dict[str, str]]:
    """Proxy variables of the operator's run, then extraEnvs (which win), sorted by name."""
    merged: dict[str, str] = {}
    for name, value in proxy_env.items():
        if name.lower().endswith("_proxy") and value:
            merged[name] = value
    for e in extra:
        merged[e.name] = e.value
    return [{"name": n, "value": merged[n]} for n in sorted(merged)]


# plain (not pointer) booleans with omitempty in a v1.PodSpec: kubeadm's re-read of a patched Pod
# drops them when false (a patch saying `readOnly: false` leaves no readOnly key)
_POD_SPEC_BOOLS = ("hostNetwork", "hostPID", "hostIPC")
_CONTAINER_BOOLS = ("stdin", "stdinOnce", "tty")


def _drop_false_bools(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    for key in _POD_SPEC_BOOLS:
        if spec.get(key) is False:
            del spec[key]
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or ():
            if not isinstance(c, dict):
                continue
            for key in _CONTAINER_BOOLS:
                if c.get(key) is False:
                    del c[key]
            for m in c.get("volumeMounts") or ():
                if isinstance(m, dict) and m.get("readOnly") is False:
                    del m["readOnly"]


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _fill(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path only when the user left it unset (kubeadm only warns on a conflict)."""
    *parents, leaf = path.split(".")
    node = doc
    for p in parents:
        child = node.get(p)
        if not isinstance(child, dict):
            child = {}
            node[p] = child
        node = child
    if node.get(leaf) in (None, "", [], {}):
        node[leaf] = value
