"""The objects of kubeadm's ``addon`` phases (reference §5.5, §5.6): CoreDNS (with its
``corednsdeployment`` patches) and kube-proxy.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from .. import constants as K
from ..endpoints import is_ipv6 as _is_ipv6
from ..errors import ConfigError, KubefabError
from ..render import dump_yaml, render_template
from ..spec import ClusterConfiguration
from ..versions import for_version
from .common import (
    component_config_hash, control_plane_image, coredns_image, _deep_merge, _drop_false_bools,
    _env, _fill, service_ip,
)


KUBE_PROXY_CONFIG_DIR = "/var/lib/kube-proxy"


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


def patch_coredns_deployment(objects: list[dict[str, Any]], patch_dir) -> tuple[list[dict[str, Any]], list[str]]:
    """The CoreDNS objects with the ``corednsdeployment`` patches applied to the Deployment."""
    from .. import patches as P

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
