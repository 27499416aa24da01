"""The kubelet's files kubeadm's ``kubelet-start`` phase writes (reference §4): config.yaml,
instance-config.yaml, kubeadm-flags.env and the systemd drop-in, and the
``kubeletconfiguration`` patches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import constants as K
from ..errors import ConfigError
from ..render import render_template
from ..spec import ClusterConfiguration, NodeRegistration
from ..versions import for_version, keeps_user_arg_order
from .common import _deep_merge, _fill, Flag, _kubeconfig, merge_args, _pki, service_ip


KUBELET_BINARY = "/usr/bin/kubelet"


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


# --- kubelet (§4) ----------------------------------------------------------------------------


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


def patch_kubelet_config(doc: dict[str, Any], patch_dir) -> tuple[dict[str, Any], list[str]]:
    """The node's KubeletConfiguration with the ``kubeletconfiguration`` patches applied."""
    from .. import patches as P

    if patch_dir is None or not patch_dir.for_target(P.KUBELET_CONFIGURATION):
        return doc, []
    out, notes = patch_dir.apply(P.KUBELET_CONFIGURATION, doc, P.KUBELET_CONFIGURATION_SCHEMA)
    if not isinstance(out, dict):
        raise P.PatchError(f"the patched KubeletConfiguration is not a mapping (a {type(out).__name__})",
                           phase=P.PHASE, fix=f"correct the kubeletconfiguration patches in {patch_dir.directory}")
    return out, notes
