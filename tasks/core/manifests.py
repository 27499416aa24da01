"""Every node file and addon object that kubeadm init/join writes, rendered from ``templates/``.

Mirrors kubeadm's ``controlplane``, ``etcd``, ``kubelet`` and ``addons`` phases
(kubeadm-reference.md §3, §4, §5.4-§5.6): static Pod manifests, the kubelet's config.yaml,
instance-config.yaml and kubeadm-flags.env, the kubelet systemd drop-in, and the CoreDNS and
kube-proxy objects. Pure functions: the same inputs always give the same bytes; per-minor
differences come from :func:`tasks.core.versions.for_version`, never from minor comparisons
here (one exception, documented at :data:`_LAST_MINOR_WITH_NULL_CREATION_TIMESTAMP`).

Example::

    pods = render_static_pods(cluster, node_name="m1", advertise_address="10.0.0.11")
    pods["kube-apiserver"]          # bytes of /etc/kubernetes/manifests/kube-apiserver.yaml
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import math
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from . import constants as K
from .errors import ConfigError, KubefabError
from .render import dump_yaml, render_template
from .spec import Arg, ClusterConfiguration, EnvVar, HostPathMount, NodeRegistration, Timeouts
from .versions import VersionInfo, for_version, keeps_user_arg_order

__all__ = [
    "DEFAULT_HOST_CA_DIRS",
    "KUBE_PROXY_ZERO_FIELDS",
    "KUBELET_ZERO_FIELDS",
    "OPTIONAL_CA_DIRS",
    "Flag",
    "component_config_hash",
    "coredns_image",
    "control_plane_image",
    "etcd_image",
    "join_host_port",
    "merge_args",
    "render_coredns_objects",
    "render_instance_config",
    "render_kube_proxy_objects",
    "render_kubeadm_flags_env",
    "render_kubelet_config",
    "render_kubelet_dropin",
    "render_static_pods",
    "service_ip",
    "uses_instance_config",
]

# §3.4: certificate directories mounted read-only into kube-apiserver and KCM when they exist
# on the host, in kubeadm's order (1.32+ list: /etc/pki split into ca-trust and tls/certs).
OPTIONAL_CA_DIRS = (
    "/etc/ca-certificates",
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/usr/local/share/ca-certificates",
    "/usr/share/ca-certificates",
)
# what a Debian/Ubuntu host typically has; callers pass the directories the host really has
DEFAULT_HOST_CA_DIRS = ("/etc/ca-certificates", "/usr/local/share/ca-certificates",
                        "/usr/share/ca-certificates")
CA_CERTS_DIR = "/etc/ssl/certs"
FLEXVOLUME_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
KUBE_PROXY_CONFIG_DIR = "/var/lib/kube-proxy"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBELET_BINARY = "/usr/bin/kubelet"

# apimachinery stopped writing ``creationTimestamp: null`` for unset timestamps in 1.34
# (kubernetes PR #130989); kubeadm 1.33 manifests still carry the line. versions.py has no
# switch for it, hence the one minor comparison in this module.
_LAST_MINOR_WITH_NULL_CREATION_TIMESTAMP = 33

# §4.1: kubeadm marshals the whole KubeletConfiguration struct, so zero durations ("0s") and
# empty sub-structs appear in its output. These are the fields of kubelet.config.k8s.io/v1beta1
# that do so in every supported minor (beta APIs never drop fields).
KUBELET_ZERO_FIELDS: dict[str, Any] = {
    "authentication": {"anonymous": {}, "webhook": {"cacheTTL": "0s"}, "x509": {}},
    "authorization": {"webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"}},
    "containerRuntimeEndpoint": "",
    "cpuManagerReconcilePeriod": "0s",
    "crashLoopBackOff": {},
    "evictionPressureTransitionPeriod": "0s",
    "fileCheckFrequency": "0s",
    "httpCheckFrequency": "0s",
    "imageMaximumGCAge": "0s",
    "imageMinimumGCAge": "0s",
    "logging": {"flushFrequency": 0, "options": {"json": {"infoBufferSize": "0"},
                                                 "text": {"infoBufferSize": "0"}},
                "verbosity": 0},
    "memorySwap": {},
    "nodeStatusReportFrequency": "0s",
    "nodeStatusUpdateFrequency": "0s",
    "runtimeRequestTimeout": "0s",
    "shutdownGracePeriod": "0s",
    "shutdownGracePeriodCriticalPods": "0s",
    "streamingConnectionIdleTimeout": "0s",
    "syncFrequency": "0s",
    "volumeStatsAggPeriod": "0s",
}

# §5.6: likewise for kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration.
KUBE_PROXY_ZERO_FIELDS: dict[str, Any] = {
    "bindAddress": "",
    "bindAddressHardFail": False,
    "clientConnection": {"acceptContentTypes": "", "burst": 0, "contentType": "", "kubeconfig": "",
                         "qps": 0},
    "clusterCIDR": "",
    "configSyncPeriod": "0s",
    "conntrack": {"maxPerCore": None, "min": None, "tcpBeLiberal": False,
                  "tcpCloseWaitTimeout": None, "tcpEstablishedTimeout": None,
                  "udpStreamTimeout": "0s", "udpTimeout": "0s"},
    "detectLocal": {"bridgeInterface": "", "interfaceNamePrefix": ""},
    "detectLocalMode": "",
    "enableProfiling": False,
    "healthzBindAddress": "",
    "hostnameOverride": "",
    "iptables": {"localhostNodePorts": None, "masqueradeAll": False, "masqueradeBit": None,
                 "minSyncPeriod": "0s", "syncPeriod": "0s"},
    "ipvs": {"excludeCIDRs": None, "minSyncPeriod": "0s", "scheduler": "", "strictARP": False,
             "syncPeriod": "0s", "tcpFinTimeout": "0s", "tcpTimeout": "0s", "udpTimeout": "0s"},
    "logging": {"flushFrequency": 0, "options": {"json": {"infoBufferSize": "0"},
                                                 "text": {"infoBufferSize": "0"}},
                "verbosity": 0},
    "metricsBindAddress": "",
    "mode": "",
    "nftables": {"masqueradeAll": False, "masqueradeBit": None, "minSyncPeriod": "0s",
                 "syncPeriod": "0s"},
    "nodePortAddresses": None,
    "oomScoreAdj": None,
    "portRange": "",
    "showHiddenMetricsForVersion": "",
    "winkernel": {"enableDSR": False, "forwardHealthCheckVip": False, "networkName": "",
                  "rootHnsEndpointName": "", "sourceVip": ""},
}


# --- small helpers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    """A default flag kubeadm computes (``--name=value``); user ``extraArgs`` may replace it."""

    name: str
    value: str


from .endpoints import is_ipv6 as _is_ipv6  # noqa: E402 - the one copy of these helpers
from .endpoints import is_unspecified as _is_unspecified  # noqa: E402
from .endpoints import join_host_port  # noqa: E402,F401


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


# --- static pods (§3) ------------------------------------------------------------------------

def _pki(cluster: ClusterConfiguration, name: str) -> str:
    return posixpath.join(cluster.certificates_dir, name)


def _kubeconfig(name: str) -> str:
    return posixpath.join(K.KUBERNETES_DIR, name)


def _apiserver_flags(cluster: ClusterConfiguration, adv: str, port: int) -> list[Flag]:
    user = cluster.api_server.extra_args
    flags = [
        Flag("advertise-address", adv),
        Flag("allow-privileged", "true"),
        Flag("client-ca-file", _pki(cluster, "ca.crt")),
        Flag("enable-admission-plugins", "NodeRestriction"),
        Flag("enable-bootstrap-token-auth", "true"),
        Flag("kubelet-client-certificate", _pki(cluster, "apiserver-kubelet-client.crt")),
        Flag("kubelet-client-key", _pki(cluster, "apiserver-kubelet-client.key")),
        Flag("kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"),
        Flag("proxy-client-cert-file", _pki(cluster, "front-proxy-client.crt")),
        Flag("proxy-client-key-file", _pki(cluster, "front-proxy-client.key")),
        Flag("requestheader-allowed-names", "front-proxy-client"),
        Flag("requestheader-client-ca-file", _pki(cluster, "front-proxy-ca.crt")),
        Flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        Flag("requestheader-group-headers", "X-Remote-Group"),
        Flag("requestheader-username-headers", "X-Remote-User"),
        Flag("secure-port", str(port)),
        Flag("service-account-issuer", f"https://kubernetes.default.svc.{cluster.networking.dns_domain}"),
        Flag("service-account-key-file", _pki(cluster, "sa.pub")),
        Flag("service-account-signing-key-file", _pki(cluster, "sa.key")),
        Flag("service-cluster-ip-range", cluster.networking.service_subnet),
        Flag("tls-cert-file", _pki(cluster, "apiserver.crt")),
        Flag("tls-private-key-file", _pki(cluster, "apiserver.key")),
    ]
    # --authorization-mode: gone when the user configures authorization by file. (kubeadm
    # filters a user's mode list into the default, but the user's own flag then replaces
    # that default by name, so the user's value is what ends up on the command line.)
    if _user_arg(user, "authorization-config") is None:
        flags.append(Flag("authorization-mode", "Node,RBAC"))
    if cluster.etcd_external is not None:
        ext = cluster.etcd_external
        flags.append(Flag("etcd-servers", ",".join(ext.endpoints)))
        if ext.ca_file:
            flags.append(Flag("etcd-cafile", ext.ca_file))
        if ext.cert_file and ext.key_file:
            flags += [Flag("etcd-certfile", ext.cert_file), Flag("etcd-keyfile", ext.key_file)]
    else:
        lo = "[::1]" if _is_ipv6(adv) else "127.0.0.1"
        servers = f"https://{lo}:{K.ETCD_CLIENT_PORT}"
        # an etcd advertise-client-urls override is where the apiserver must look for etcd
        if cluster.etcd_local is not None:
            servers = _user_arg(cluster.etcd_local.extra_args, "advertise-client-urls") or servers
        flags += [
            Flag("etcd-cafile", _pki(cluster, "etcd/ca.crt")),
            Flag("etcd-certfile", _pki(cluster, "apiserver-etcd-client.crt")),
            Flag("etcd-keyfile", _pki(cluster, "apiserver-etcd-client.key")),
            Flag("etcd-servers", servers),
        ]
    return flags


def _controller_manager_flags(cluster: ClusterConfiguration, external_ca: bool = False) -> list[Flag]:
    conf = _kubeconfig(K.CONTROLLER_MANAGER_KUBECONFIG)
    # kubeadm's UsingExternalCA (ca.crt without ca.key): the signer flags stay, but empty
    signing_cert = "" if external_ca else _pki(cluster, "ca.crt")
    signing_key = "" if external_ca else _pki(cluster, "ca.key")
    flags = [
        Flag("authentication-kubeconfig", conf),
        Flag("authorization-kubeconfig", conf),
        Flag("bind-address", "127.0.0.1"),
        Flag("client-ca-file", _pki(cluster, "ca.crt")),
        Flag("cluster-signing-cert-file", signing_cert),
        Flag("cluster-signing-key-file", signing_key),
        Flag("controllers", "*,bootstrapsigner,tokencleaner"),
        Flag("kubeconfig", conf),
        Flag("leader-elect", "true"),
        Flag("requestheader-client-ca-file", _pki(cluster, "front-proxy-ca.crt")),
        Flag("root-ca-file", _pki(cluster, "ca.crt")),
        Flag("service-account-private-key-file", _pki(cluster, "sa.key")),
        Flag("use-service-account-credentials", "true"),
    ]
    if cluster.cluster_name:
        flags.append(Flag("cluster-name", cluster.cluster_name))
    # node IPAM only runs when kubeadm was told the pod network
    if cluster.networking.pod_subnet:
        flags += [
            Flag("allocate-node-cidrs", "true"),
            Flag("cluster-cidr", cluster.networking.pod_subnet),
            Flag("service-cluster-ip-range", cluster.networking.service_subnet),
        ]
    return flags


def _scheduler_flags() -> list[Flag]:
    conf = _kubeconfig(K.SCHEDULER_KUBECONFIG)
    return [
        Flag("authentication-kubeconfig", conf),
        Flag("authorization-kubeconfig", conf),
        Flag("bind-address", "127.0.0.1"),
        Flag("kubeconfig", conf),
        Flag("leader-elect", "true"),
    ]


def _initial_cluster_text(initial_cluster: str | Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    if isinstance(initial_cluster, str):
        return initial_cluster
    items = initial_cluster.items() if isinstance(initial_cluster, Mapping) else initial_cluster
    return ",".join(f"{name}={url}" for name, url in items)


def _etcd_flags(cluster: ClusterConfiguration, info: VersionInfo, node_name: str, adv: str,
                initial_cluster: Any, join: bool) -> list[Flag]:
    a = f"[{adv}]" if _is_ipv6(adv) else adv
    lo = "[::1]" if _is_ipv6(adv) else "127.0.0.1"
    pki = cluster.certificates_dir
    assert cluster.etcd_local is not None
    peer_url = f"https://{a}:{K.ETCD_PEER_PORT}"
    flags = [
        Flag("advertise-client-urls", f"https://{a}:{K.ETCD_CLIENT_PORT}"),
        Flag("cert-file", posixpath.join(pki, "etcd/server.crt")),
        Flag("client-cert-auth", "true"),
        Flag("data-dir", cluster.etcd_local.data_dir),
        Flag("initial-advertise-peer-urls", peer_url),
        Flag("key-file", posixpath.join(pki, "etcd/server.key")),
        Flag("listen-client-urls", f"https://{lo}:{K.ETCD_CLIENT_PORT},https://{a}:{K.ETCD_CLIENT_PORT}"),
        Flag("listen-metrics-urls", f"http://{lo}:{K.ETCD_METRICS_PORT}"),
        Flag("listen-peer-urls", peer_url),
        Flag("name", node_name),
        Flag("peer-cert-file", posixpath.join(pki, "etcd/peer.crt")),
        Flag("peer-client-cert-auth", "true"),
        Flag("peer-key-file", posixpath.join(pki, "etcd/peer.key")),
        Flag("peer-trusted-ca-file", posixpath.join(pki, "etcd/ca.crt")),
        Flag("snapshot-count", "10000"),
        Flag("trusted-ca-file", posixpath.join(pki, "etcd/ca.crt")),
    ]
    # etcd 3.6 promoted these two; kubeadm 1.34+ writes the new spellings (PR #132838)
    if info.etcd36_flags:
        flags += [Flag("feature-gates", "InitialCorruptCheck=true"),
                  Flag("watch-progress-notify-interval", "5s")]
    else:
        flags += [Flag("experimental-initial-corrupt-check", "true"),
                  Flag("experimental-watch-progress-notify-interval", "5s")]
    if join and not initial_cluster:
        raise KubefabError(
            "the etcd member list is needed to write the etcd manifest of a joining "
            "control-plane node",
            fix="run the etcd member-add step first; it returns the member list "
                "(name=peerURL pairs) that --initial-cluster must carry")
    # as kubeadm: a member list (which includes this node) means joining an existing cluster
    if initial_cluster:
        flags += [Flag("initial-cluster", _initial_cluster_text(initial_cluster)),
                  Flag("initial-cluster-state", "existing")]
    else:
        flags.append(Flag("initial-cluster", f"{node_name}={peer_url}"))
    return flags


def _probe(host: str, path: str, port: int | str, scheme: str, *, period: int,
           failure: int, initial_delay: int = 0) -> dict[str, Any]:
    http: dict[str, Any] = {"path": path, "port": port, "scheme": scheme}
    if host:
        http["host"] = host
    probe: dict[str, Any] = {"failureThreshold": failure, "httpGet": http, "periodSeconds": period,
                             "timeoutSeconds": 15}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def _probes(host: str, port: int, scheme: str, live: str, ready: str | None, startup: str,
            startup_failures: int, info: VersionInfo) -> dict[str, Any]:
    """Liveness/readiness/startup as §3.2; 1.34+ point at the named container port."""
    target: int | str = "probe-port" if info.probe_port_name else port
    out: dict[str, Any] = {
        "liveness_probe": _probe(host, live, target, scheme, period=10, failure=8, initial_delay=10),
        "readiness_probe": (_probe(host, ready, target, scheme, period=1, failure=3)
                            if ready else None),
        "startup_probe": _probe(host, startup, target, scheme, period=10, failure=startup_failures,
                                initial_delay=10),
        "ports": ([{"containerPort": port, "name": "probe-port", "protocol": "TCP"}]
                  if info.probe_port_name else []),
    }
    return out


def _startup_failures(timeouts: Timeouts) -> int:
    """kubeadm lets the startup probe run for timeouts.controlPlaneComponentHealthCheck."""
    seconds = timeouts.control_plane_component_health_check.total_seconds()
    return max(1, math.ceil(seconds / 10))


def _bind_probe_host(user: Sequence[Arg]) -> str:
    """KCM/scheduler probe host: their bind address, none if it is the unspecified address."""
    bind = _user_arg(user, "bind-address")
    if bind is None:
        return "127.0.0.1"
    return "" if _is_unspecified(bind) else bind


def _apiserver_probe_host(adv: str) -> str:
    if not adv:
        return "127.0.0.1"
    return "" if _is_unspecified(adv) else adv


def _etcd_probe_target(cluster: ClusterConfiguration, adv: str) -> tuple[str, int, str]:
    """etcd probes use the first --listen-metrics-urls entry when the user set one (§3.2)."""
    host = "::1" if _is_ipv6(adv) else "127.0.0.1"
    port, scheme = K.ETCD_METRICS_PORT, "HTTP"
    assert cluster.etcd_local is not None
    metrics = _user_arg(cluster.etcd_local.extra_args, "listen-metrics-urls")
    if metrics:
        url = urlsplit(metrics.split(",")[0].strip())
        if url.hostname:
            host = url.hostname
        if url.port:
            port = url.port
        if url.scheme == "https":
            scheme = "HTTPS"
    return host, port, scheme


@dataclass(frozen=True)
class _Volume:
    name: str
    path: str
    read_only: bool
    path_type: str
    mount_path: str = ""


def _volume_name(path: str) -> str:
    """kubeadm names optional CA volumes after their path: /etc/pki/tls/certs -> etc-pki-tls-certs."""
    return path.strip("/").replace("/", "-")


def _etcd_cert_volumes(cluster: ClusterConfiguration) -> list[_Volume]:
    """External etcd: mount the directories of its CA/cert/key that are not mounted anyway (§3.4).

    kubeadm skips directories that start with the certificates dir, /etc/ssl/certs or any
    optional CA directory (whether or not that one exists here), keeps the minimal set by
    plain string prefix, and names the rest ``etcd-certs-<n>`` in sorted order.
    """
    ext = cluster.etcd_external
    assert ext is not None
    covered = (cluster.certificates_dir, CA_CERTS_DIR, *OPTIONAL_CA_DIRS)
    dirs: set[str] = set()
    for f in (ext.ca_file, ext.cert_file, ext.key_file):
        if not f:
            continue
        d = posixpath.dirname(f) or "."
        if d == "." or d.startswith(covered):
            continue
        if any(d.startswith(other) for other in dirs):
            continue
        dirs = {other for other in dirs if not other.startswith(d)} | {d}
    return [_Volume(f"etcd-certs-{i}", d, True, "DirectoryOrCreate") for i, d in enumerate(sorted(dirs))]


def _ca_volumes(cluster: ClusterConfiguration, host_ca_dirs: Iterable[str]) -> list[_Volume]:
    present = set(host_ca_dirs)
    vols = [_Volume("k8s-certs", cluster.certificates_dir, True, "DirectoryOrCreate"),
            _Volume("ca-certs", CA_CERTS_DIR, True, "DirectoryOrCreate")]
    # kubeadm mounts only the optional CA directories that exist on this host at render time
    vols += [_Volume(_volume_name(d), d, True, "DirectoryOrCreate")
             for d in OPTIONAL_CA_DIRS if d in present]
    return vols


def _apply_extra_volumes(defaults: list[_Volume], extra: Sequence[HostPathMount]) -> list[_Volume]:
    """extraVolumes replace a default volume of the same name, then everything sorts by name."""
    by_name = {v.name: v for v in defaults}
    for e in extra:
        by_name[e.name] = _Volume(e.name, e.host_path, e.read_only, e.path_type, e.mount_path)
    return [by_name[n] for n in sorted(by_name)]


def _volume_lists(vols: list[_Volume]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, mounts = [], []
    for v in vols:
        host_path: dict[str, Any] = {"path": v.path}
        if v.path_type:
            host_path["type"] = v.path_type
        volumes.append({"hostPath": host_path, "name": v.name})
        mount: dict[str, Any] = {"mountPath": v.mount_path or v.path, "name": v.name}
        if v.read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    return volumes, mounts


def _env(proxy_env: Mapping[str, str], extra: Sequence[EnvVar]) -> list[dict[str, str]]:
    """Proxy variables of the operator's run, then extraEnvs (which win), sorted by name."""
    merged: dict[str, str] = {}
    for name, value in proxy_env.items():
        if name.lower().endswith("_proxy") and value:
            merged[name] = value
    for e in extra:
        merged[e.name] = e.value
    return [{"name": n, "value": merged[n]} for n in sorted(merged)]


def _render_pod(name: str, *, minor: int, image: str, command: list[str],
                annotations: Mapping[str, str], env: list[dict[str, str]], requests: dict[str, str],
                probes: dict[str, Any], vols: list[_Volume], mount_order: Sequence[str] = ()) -> bytes:
    volumes, mounts = _volume_lists(vols)
    if mount_order:  # etcd: kubeadm lists its two mounts data first, its volumes by name
        mounts.sort(key=lambda m: mount_order.index(m["name"]))
    return render_template(
        "static-pod.yaml.j2",
        name=name,
        annotations=dict(annotations),
        null_creation_timestamp=minor <= _LAST_MINOR_WITH_NULL_CREATION_TIMESTAMP,
        command=command,
        env=env,
        image=image,
        image_pull_policy="IfNotPresent",
        requests=requests,
        volumes=volumes,
        volume_mounts=mounts,
        **probes,
    )


def render_static_pods(
    cluster: ClusterConfiguration,
    *,
    node_name: str,
    advertise_address: str,
    bind_port: int = K.DEFAULT_API_BIND_PORT,
    host_ca_dirs: Iterable[str] = DEFAULT_HOST_CA_DIRS,
    proxy_env: Mapping[str, str] | None = None,
    timeouts: Timeouts | None = None,
    initial_cluster: str | Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    join: bool = False,
    external_ca: bool = False,
) -> dict[str, bytes]:
    """The static Pod manifests of one control-plane node (kubeadm ``control-plane`` + ``etcd``).

    :param node_name: ``nodeRegistration.name`` (etcd member name).
    :param advertise_address: this node's ``localAPIEndpoint.advertiseAddress``.
    :param host_ca_dirs: CA directories that exist on the host (only those get mounted).
    :param proxy_env: the ``*_proxy`` variables kubeadm would copy from its environment.
    :param initial_cluster: etcd members ``name=peerURL`` (str, mapping or pairs) including this
        node, as returned by the member-add; given, etcd joins the existing cluster. None on init
        (this node alone).
    :param join: a control-plane join; then ``initial_cluster`` is required.
    :param external_ca: ca.key is not available (kubeadm's external-CA mode): the controller
        manager gets empty ``--cluster-signing-*-file`` flags.
    :returns: component name -> manifest bytes; no ``etcd`` entry with external etcd.
    :raises KubefabError: on a join without the etcd member list.
    """
    info = for_version(cluster.kubernetes_version)
    minor = info.minor
    keep = keeps_user_arg_order(cluster.kubernetes_version)
    timeouts = timeouts or Timeouts()
    proxy_env = proxy_env or {}
    host_ca_dirs = tuple(host_ca_dirs)
    startup_failures = _startup_failures(timeouts)
    pods: dict[str, bytes] = {}

    # kube-apiserver
    api = cluster.api_server
    ca_vols = _ca_volumes(cluster, host_ca_dirs)
    api_vols = list(ca_vols)
    if cluster.etcd_external is not None:
        api_vols += _etcd_cert_volumes(cluster)
    probe_host = _apiserver_probe_host(advertise_address)
    pods[K.KUBE_APISERVER] = _render_pod(
        K.KUBE_APISERVER, minor=minor,
        image=control_plane_image(cluster, K.KUBE_APISERVER),
        command=[K.KUBE_APISERVER] + merge_args(_apiserver_flags(cluster, advertise_address, bind_port),
                                                api.extra_args, keep_user_order=keep),
        annotations={K.APISERVER_ADVERTISE_ANNOTATION: join_host_port(advertise_address, bind_port)},
        env=_env(proxy_env, api.extra_envs),
        requests={"cpu": "250m"},
        probes=_probes(probe_host, bind_port, "HTTPS", "/livez", "/readyz", "/livez",
                       startup_failures, info),
        vols=_apply_extra_volumes(api_vols, api.extra_volumes),
    )

    # kube-controller-manager
    kcm = cluster.controller_manager
    kcm_vols = list(ca_vols) + [
        _Volume("kubeconfig", _kubeconfig(K.CONTROLLER_MANAGER_KUBECONFIG), True, "FileOrCreate"),
    ]
    if info.flexvolume_mount:  # 1.36 dropped it: flex volumes are the user's own extraVolumes now
        flex = _user_arg(kcm.extra_args, "flex-volume-plugin-dir") or FLEXVOLUME_DIR
        # the KCM may install flexvolume drivers here, so it stays writable
        kcm_vols.append(_Volume("flexvolume-dir", flex, False, "DirectoryOrCreate"))
    pods[K.KUBE_CONTROLLER_MANAGER] = _render_pod(
        K.KUBE_CONTROLLER_MANAGER, minor=minor,
        image=control_plane_image(cluster, K.KUBE_CONTROLLER_MANAGER),
        command=[K.KUBE_CONTROLLER_MANAGER] + merge_args(_controller_manager_flags(cluster, external_ca),
                                                         kcm.extra_args, keep_user_order=keep),
        annotations={},
        env=_env(proxy_env, kcm.extra_envs),
        requests={"cpu": "200m"},
        probes=_probes(_bind_probe_host(kcm.extra_args), K.KUBE_CONTROLLER_MANAGER_PORT, "HTTPS",
                       "/healthz", None, "/healthz", startup_failures, info),
        vols=_apply_extra_volumes(kcm_vols, kcm.extra_volumes),
    )

    # kube-scheduler (1.32+ probes /livez and /readyz)
    sched = cluster.scheduler
    pods[K.KUBE_SCHEDULER] = _render_pod(
        K.KUBE_SCHEDULER, minor=minor,
        image=control_plane_image(cluster, K.KUBE_SCHEDULER),
        command=[K.KUBE_SCHEDULER] + merge_args(_scheduler_flags(), sched.extra_args,
                                                keep_user_order=keep),
        annotations={},
        env=_env(proxy_env, sched.extra_envs),
        requests={"cpu": "100m"},
        probes=_probes(_bind_probe_host(sched.extra_args), K.KUBE_SCHEDULER_PORT, "HTTPS",
                       "/livez", "/readyz", "/livez", startup_failures, info),
        vols=_apply_extra_volumes(
            [_Volume("kubeconfig", _kubeconfig(K.SCHEDULER_KUBECONFIG), True, "FileOrCreate")],
            sched.extra_volumes),
    )

    # etcd (local only)
    if cluster.etcd_local is not None and cluster.etcd_external is None:
        local = cluster.etcd_local
        a = f"[{advertise_address}]" if _is_ipv6(advertise_address) else advertise_address
        host, port, scheme = _etcd_probe_target(cluster, advertise_address)
        pods[K.ETCD] = _render_pod(
            K.ETCD, minor=minor,
            image=etcd_image(cluster, info),
            command=[K.ETCD] + merge_args(
                _etcd_flags(cluster, info, node_name, advertise_address, initial_cluster, join),
                local.extra_args, keep_user_order=keep),
            # kubeadm finds etcd client endpoints through this annotation on the mirror Pods
            annotations={K.ETCD_ADVERTISE_CLIENT_URLS_ANNOTATION: f"https://{a}:{K.ETCD_CLIENT_PORT}"},
            # kubeadm gives etcd only its extraEnvs: no proxy variables
            env=_env({}, local.extra_envs),
            requests={"cpu": "100m", "memory": "100Mi"},
            probes=_probes(host, port, scheme, "/livez", "/readyz", "/readyz", startup_failures, info),
            vols=[_Volume("etcd-certs", posixpath.join(cluster.certificates_dir, "etcd"), False,
                          "DirectoryOrCreate"),
                  _Volume("etcd-data", local.data_dir, False, "DirectoryOrCreate")],
            mount_order=("etcd-data", "etcd-certs"),
        )
    return dict(sorted(pods.items()))


# --- patches (--patches DIR) -----------------------------------------------------------------

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


def patch_static_pod(data: bytes, component: str, patch_dir) -> tuple[bytes, list[str]]:
    """A static Pod manifest with ``patch_dir``'s patches for ``component`` applied, as kubeadm's
    PatchStaticPod does, and kubeadm's lines about them. Unchanged bytes when none apply.

    kubeadm re-reads the patched Pod as a v1.Pod before writing it, which puts back
    ``creationTimestamp: null`` (up to 1.33) and ``status: {}``; so does this.
    """
    from . import patches as P
    from .render import dump_yaml

    if not patch_dir.for_target(component):
        return data, []
    original = yaml.safe_load(data)
    doc, notes = patch_dir.apply(component, copy.deepcopy(original), P.POD)
    if not isinstance(doc, dict):
        raise P.PatchError(f"the patched {component} manifest is not a Pod (a {type(doc).__name__})",
                           phase=P.PHASE, fix=f"correct the {component} patches in {patch_dir.directory}")
    meta = doc.get("metadata")
    if "creationTimestamp" in (original.get("metadata") or {}) and isinstance(meta, dict):
        meta.setdefault("creationTimestamp", None)
    doc.setdefault("status", {})
    _drop_false_bools(doc.get("spec"))
    return dump_yaml(doc).encode(), notes


def patch_kubelet_config(doc: dict[str, Any], patch_dir) -> tuple[dict[str, Any], list[str]]:
    """The node's KubeletConfiguration with the ``kubeletconfiguration`` patches applied."""
    from . import patches as P

    if patch_dir is None or not patch_dir.for_target(P.KUBELET_CONFIGURATION):
        return doc, []
    out, notes = patch_dir.apply(P.KUBELET_CONFIGURATION, doc, P.KUBELET_CONFIGURATION_SCHEMA)
    if not isinstance(out, dict):
        raise P.PatchError(f"the patched KubeletConfiguration is not a mapping (a {type(out).__name__})",
                           phase=P.PHASE, fix=f"correct the kubeletconfiguration patches in {patch_dir.directory}")
    return out, notes


def patch_coredns_deployment(objects: list[dict[str, Any]], patch_dir) -> tuple[list[dict[str, Any]], list[str]]:
    """The CoreDNS objects with the ``corednsdeployment`` patches applied to the Deployment."""
    from . import patches as P

    if patch_dir is None or not patch_dir.for_target(P.COREDNS_DEPLOYMENT):
        return objects, []
    out, notes = [], []
    for obj in objects:
        if obj.get("kind") == "Deployment":
            obj, notes = patch_dir.apply(P.COREDNS_DEPLOYMENT, copy.deepcopy(obj), P.DEPLOYMENT)
            if not isinstance(obj, dict):
                raise P.PatchError("the patched CoreDNS Deployment is not a mapping", phase=P.PHASE,
                                   fix=f"correct the corednsdeployment patches in {patch_dir.directory}")
            _drop_false_bools(((obj.get("spec") or {}).get("template") or {}).get("spec"))
        out.append(obj)
    return out, notes


# --- kubelet (§4) ----------------------------------------------------------------------------

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


SYSTEMD_RESOLVED_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"


def resolver_mutation(doc: dict[str, Any], systemd_resolved: bool) -> str | None:
    """kubeadm's change to a node's config.yaml (not to the ConfigMap) where systemd-resolved
    runs: the kubelet reads the real upstream servers, not the 127.0.0.53 stub (CoreDNS would
    otherwise forward to itself). A value the user set is kept; returns a warning then."""
    if not systemd_resolved:
        return None
    have = doc.get("resolvConf")
    if have in (None, ""):
        doc["resolvConf"] = SYSTEMD_RESOLVED_RESOLV_CONF
        return None
    if have != SYSTEMD_RESOLVED_RESOLV_CONF:
        return (f"[WARNING] systemd-resolved is active but the kubelet's resolvConf is {have!r}, not "
                f"{SYSTEMD_RESOLVED_RESOLV_CONF!r}: pods may resolve through the 127.0.0.53 stub")
    return None


def kubelet_config_dict(cluster: ClusterConfiguration, user_kubelet: Mapping[str, Any], *,
                        cri_socket: str | None = None, systemd_resolved: bool = False) -> dict[str, Any]:
    """The KubeletConfiguration kubeadm writes: the user's document plus kubeadm's fills (§4.1);
    for a node's own file (``cri_socket`` given), ``systemd_resolved`` from its facts."""
    for key, want in (("apiVersion", "kubelet.config.k8s.io/v1beta1"), ("kind", "KubeletConfiguration")):
        got = user_kubelet.get(key)
        if got not in (None, "", want):
            raise ConfigError(f"kubelet configuration has {key} {got!r}, expected {want!r}",
                              fix=f"set {key}: {want} in the KubeletConfiguration document")
    doc = _deep_merge(KUBELET_ZERO_FIELDS, user_kubelet)
    doc["apiVersion"] = "kubelet.config.k8s.io/v1beta1"
    doc["kind"] = "KubeletConfiguration"
    _fill(doc, "staticPodPath", K.MANIFESTS_DIR)
    _fill(doc, "clusterDNS", [service_ip(cluster.networking.service_subnet, 10)])
    _fill(doc, "clusterDomain", cluster.networking.dns_domain)
    _fill(doc, "authentication.x509.clientCAFile", _pki(cluster, "ca.crt"))
    if doc["authentication"].get("anonymous", {}).get("enabled") is None:
        doc["authentication"].setdefault("anonymous", {})["enabled"] = False
    if doc["authentication"].get("webhook", {}).get("enabled") is None:
        doc["authentication"].setdefault("webhook", {})["enabled"] = True
    _fill(doc, "authorization.mode", "Webhook")
    _fill(doc, "healthzBindAddress", "127.0.0.1")
    if doc.get("healthzPort") is None:
        doc["healthzPort"] = K.KUBELET_HEALTHZ_PORT
    # kubeadm relies on client certificate rotation (kubelet-finalize), so it forces it on
    doc["rotateCertificates"] = True
    _fill(doc, "cgroupDriver", "systemd")
    # an empty featureGates map is dropped by the marshaller (omitempty)
    if not doc.get("featureGates"):
        doc.pop("featureGates", None)
    if cri_socket is not None:
        doc["containerRuntimeEndpoint"] = cri_socket
    resolver_mutation(doc, systemd_resolved)
    return doc


def render_kubelet_config(cluster: ClusterConfiguration, user_kubelet: Mapping[str, Any], *,
                          cri_socket: str | None = None, systemd_resolved: bool = False, patches=None) -> bytes:
    """``/var/lib/kubelet/config.yaml`` and the ``kubelet`` key of ``kubelet-config``.

    :param user_kubelet: the user's KubeletConfiguration document (``{}`` for none).
    :param cri_socket: on 1.34+ nodes kubeadm patches instance-config.yaml into the node's
        config.yaml; pass the node's CRI socket for that file, None for the ConfigMap.
    :param patches: the node's patch directory: its ``kubeletconfiguration`` patches apply
        after kubeadm's own changes and before the instance configuration (kubeadm's order).
    """
    doc = kubelet_config_dict(cluster, user_kubelet, systemd_resolved=systemd_resolved)
    doc, _ = patch_kubelet_config(doc, patches)
    if cri_socket is not None:
        doc["containerRuntimeEndpoint"] = cri_socket
    return render_template("kubelet/config.yaml.j2", config=doc)


def render_instance_config(cri_socket: str) -> bytes:
    """``/var/lib/kubelet/instance-config.yaml`` (1.34+ NodeLocalCRISocket, §4.2)."""
    return render_template("kubelet/instance-config.yaml.j2", cri_socket=cri_socket)


def uses_instance_config(cluster: ClusterConfiguration) -> bool:
    """Whether this cluster's nodes get instance-config.yaml instead of the CRI flag (§4.2).

    The minor's default (NodeLocalCRISocket on from 1.34), unless ``featureGates`` in the
    ClusterConfiguration sets the gate, as kubeadm's flag builder checks.
    """
    return cluster.feature_gate("NodeLocalCRISocket", for_version(cluster.kubernetes_version).instance_config)


def kubelet_flags(cluster: ClusterConfiguration, node: NodeRegistration, *, host_hostname: str,
                  worker_join: bool = False) -> list[str]:
    """The arguments of ``KUBELET_KUBEADM_ARGS`` (§4.3), merged with kubeletExtraArgs."""
    info = for_version(cluster.kubernetes_version)
    flags: list[Flag] = []
    if not uses_instance_config(cluster):
        flags.append(Flag("container-runtime-endpoint", node.cri_socket))
    if info.pod_infra_flag:
        flags.append(Flag("pod-infra-container-image", f"{cluster.image_repository}/pause:{info.pause_tag}"))
    # kubeadm compares with the lower-cased machine host name
    if node.name != host_hostname.strip().lower():
        flags.append(Flag("hostname-override", node.name))
    # control planes get their taints from mark-control-plane; workers must register with them
    if worker_join and node.taints:
        flags.append(Flag("register-with-taints", ",".join(str(t) for t in node.taints)))
    return merge_args(flags, node.kubelet_extra_args,
                      keep_user_order=keeps_user_arg_order(cluster.kubernetes_version))


def render_kubeadm_flags_env(cluster: ClusterConfiguration, node_registration: NodeRegistration, *,
                             host_hostname: str, worker_join: bool = False) -> bytes:
    """``/var/lib/kubelet/kubeadm-flags.env``: one ``KUBELET_KUBEADM_ARGS="..."`` line."""
    return render_template("kubelet/kubeadm-flags.env.j2",
                           args=kubelet_flags(cluster, node_registration, host_hostname=host_hostname,
                                              worker_join=worker_join))


def render_kubelet_dropin() -> bytes:
    """``10-kubeadm.conf``: the kubelet unit drop-in the kubeadm packages ship (§4.3)."""
    return render_template(
        "kubelet/10-kubeadm.conf.j2",
        bootstrap_kubeconfig=_kubeconfig(K.BOOTSTRAP_KUBELET_KUBECONFIG),
        kubeconfig=_kubeconfig(K.KUBELET_KUBECONFIG),
        config_file=K.KUBELET_CONFIG_FILE,
        flags_env_file=K.KUBELET_FLAGS_ENV_FILE,
        defaults_file=K.KUBELET_DEFAULTS_FILE,
        kubelet_binary=KUBELET_BINARY,
    )


# --- addons (§5.5, §5.6) ---------------------------------------------------------------------

def _load_objects(text: bytes, template: str) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:  # a template bug, not a user error
        raise KubefabError(f"template {template!r} rendered invalid YAML: {exc}",
                           fix="report this as a kubefab bug") from exc
    return docs


def render_coredns_objects(cluster: ClusterConfiguration) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, Deployment, Service kube-dns."""
    info = for_version(cluster.kubernetes_version)
    corefile = render_template("addons/Corefile.j2", dns_domain=cluster.networking.dns_domain).decode()
    text = render_template(
        "addons/coredns.yaml.j2",
        data={"Corefile": corefile},
        image=coredns_image(cluster, info),
        control_plane_taint=K.CONTROL_PLANE_TAINT_KEY,
        cluster_ip=service_ip(cluster.networking.service_subnet, 10),
        named_probe_ports=info.probe_port_name,
    )
    return _load_objects(text, "addons/coredns.yaml.j2")


def kube_proxy_config_dict(cluster: ClusterConfiguration, user_kube_proxy: Mapping[str, Any], *,
                           advertise_address: str) -> dict[str, Any]:
    """The KubeProxyConfiguration kubeadm stores: user's document plus kubeadm's fills (§5.6)."""
    want = ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration")
    for key, value in zip(("apiVersion", "kind"), want):
        got = user_kube_proxy.get(key)
        if got not in (None, "", value):
            raise ConfigError(f"kube-proxy configuration has {key} {got!r}, expected {value!r}",
                              fix=f"set {key}: {value} in the KubeProxyConfiguration document")
    doc = _deep_merge(KUBE_PROXY_ZERO_FIELDS, user_kube_proxy)
    doc["apiVersion"], doc["kind"] = want
    _fill(doc, "bindAddress", "::" if _is_ipv6(advertise_address) else "0.0.0.0")
    if cluster.networking.pod_subnet:
        _fill(doc, "clusterCIDR", cluster.networking.pod_subnet)
    _fill(doc, "clientConnection.kubeconfig", posixpath.join(KUBE_PROXY_CONFIG_DIR, "kubeconfig.conf"))
    return doc


def render_kube_proxy_objects(cluster: ClusterConfiguration, user_kube_proxy: Mapping[str, Any], *,
                              control_plane_url: str, advertise_address: str,
                              proxy_env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRoleBinding, Role, RoleBinding, ConfigMap and DaemonSet kube-proxy.

    :param control_plane_url: ``https://`` control-plane endpoint (kubeconfig.conf's server).
    :param advertise_address: decides ``bindAddress`` (``::`` for an IPv6 control plane).
    :param proxy_env: ``*_proxy`` variables added to the DaemonSet's container.
    """
    config_text = render_template(
        "addons/kube-proxy-config.conf.j2",
        config=kube_proxy_config_dict(cluster, user_kube_proxy, advertise_address=advertise_address),
    ).decode()
    kubeconfig_text = render_template("addons/kube-proxy-kubeconfig.conf.j2",
                                      server=control_plane_url).decode()
    # kubeadm's ConfigMap template uses "|-" blocks: the stored values have no final newline,
    # and the hash annotation is computed over exactly those values
    data = {"config.conf": config_text.rstrip("\n"), "kubeconfig.conf": kubeconfig_text.rstrip("\n")}
    env = [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    env += _env(proxy_env or {}, ())
    text = render_template(
        "addons/kube-proxy.yaml.j2",
        bootstrap_group=K.DEFAULT_BOOTSTRAP_GROUP,
        hash_annotation=K.COMPONENT_CONFIG_HASH_ANNOTATION,
        hash=component_config_hash(data),
        data=data,
        image=control_plane_image(cluster, K.KUBE_PROXY),
        env=env,
    )
    return _load_objects(text, "addons/kube-proxy.yaml.j2")


def dump_objects(objects: Iterable[Mapping[str, Any]]) -> bytes:
    """Objects as one multi-document YAML stream (dry-run output, golden files)."""
    return "---\n".join(dump_yaml(dict(o)) for o in objects).encode()
