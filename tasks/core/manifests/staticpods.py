"""The static Pod manifests kubeadm's ``control-plane`` and ``etcd local`` phases write (reference
§3), rendered from ``templates/``: flags, probes, volumes, and the ``--patches`` of each Pod.

Per-minor differences come from :func:`tasks.core.versions.for_version`, never from minor
comparisons here (one exception, documented at :data:`_LAST_MINOR_WITH_NULL_CREATION_TIMESTAMP`).

Example::

    pods = render_static_pods(cluster, node_name="m1", advertise_address="10.0.0.11")
    pods["kube-apiserver"]          # bytes of /etc/kubernetes/manifests/kube-apiserver.yaml
"""

from __future__ import annotations

import copy
import math
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from .. import constants as K
from ..endpoints import is_ipv6 as _is_ipv6
from ..endpoints import is_unspecified as _is_unspecified
from ..endpoints import join_host_port
from ..errors import KubefabError
from ..render import render_template
from ..spec import Arg, ClusterConfiguration, HostPathMount, Timeouts
from ..versions import VersionInfo, for_version, keeps_user_arg_order
from .common import (
    control_plane_image, _drop_false_bools, _env, etcd_image, Flag, _kubeconfig, merge_args,
    _pki, _user_arg,
)


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


SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


# apimachinery stopped writing ``creationTimestamp: null`` for unset timestamps in 1.34
# (kubernetes PR #130989); kubeadm 1.33 manifests still carry the line. versions.py has no
# switch for it, hence the one minor comparison in this module.
_LAST_MINOR_WITH_NULL_CREATION_TIMESTAMP = 33


# --- static pods (§3) ------------------------------------------------------------------------


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


def patch_static_pod(data: bytes, component: str, patch_dir) -> tuple[bytes, list[str]]:
    """A static Pod manifest with ``patch_dir``'s patches for ``component`` applied, as kubeadm's
    PatchStaticPod does, and kubeadm's lines about them. Unchanged bytes when none apply.

    kubeadm re-reads the patched Pod as a v1.Pod before writing it, which puts back
    ``creationTimestamp: null`` (up to 1.33) and ``status: {}``; so does this.
    """
    from .. import patches as P
    from ..render import dump_yaml

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
