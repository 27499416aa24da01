"""The ClusterConfiguration as kubeadm writes it into the ``kubeadm-config`` ConfigMap
(reference §5.2): v1beta4, keys sorted, Go durations, go-yaml's quoting, byte-stable.
"""

from __future__ import annotations

from typing import Any, Iterable

import yaml

from ..spec import Arg, ClusterConfiguration, ControlPlaneComponent, EnvVar, HostPathMount
from .decode import V1BETA4
from .durations import format_go_duration


# --- kubeadm-config ConfigMap (reference §5.2) ---------------------------------------------------
def _args_out(args: Iterable[Arg]) -> list[dict[str, str]]:
    return [{"name": a.name, "value": a.value} for a in args]


def _envs_out(envs: Iterable[EnvVar]) -> list[dict[str, str]]:
    return [{"name": e.name, "value": e.value} for e in envs]


def _volumes_out(volumes: Iterable[HostPathMount]) -> list[dict[str, Any]]:
    out = []
    for v in volumes:
        item: dict[str, Any] = {"hostPath": v.host_path, "mountPath": v.mount_path, "name": v.name}
        if v.path_type:
            item["pathType"] = v.path_type
        if v.read_only:
            item["readOnly"] = True
        out.append(item)
    return out


def _component_out(c: ControlPlaneComponent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.extra_args:
        out["extraArgs"] = _args_out(c.extra_args)
    if c.extra_envs:
        out["extraEnvs"] = _envs_out(c.extra_envs)
    if c.extra_volumes:
        out["extraVolumes"] = _volumes_out(c.extra_volumes)
    return out


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def cluster_configuration_v1beta4(cluster: ClusterConfiguration) -> dict[str, Any]:
    """The ClusterConfiguration as kubeadm serializes it into ``kubeadm-config`` (§5.2).

    Keys alphabetical at every level, empty structs as ``{}``, empty optional values omitted,
    durations in Go form (``8760h0m0s``). ``etcd.local.dataDir`` and the external etcd file
    fields have no ``omitempty`` in kubeadm's types, so they are always present.
    """
    api = _component_out(cluster.api_server)
    if cluster.api_server.cert_sans:
        api["certSANs"] = list(cluster.api_server.cert_sans)
    etcd: dict[str, Any] = {}
    if cluster.etcd_external is not None:
        x = cluster.etcd_external
        ext: dict[str, Any] = {"caFile": x.ca_file, "certFile": x.cert_file, "endpoints": list(x.endpoints),
                               "keyFile": x.key_file}
        # kubeadm 1.35+ defaults httpEndpoints to endpoints; 1.34 and older have no such field
        http = x.http_endpoints or (x.endpoints if cluster.minor >= 35 else ())
        if http:
            ext["httpEndpoints"] = list(http)
        etcd["external"] = ext
    elif cluster.etcd_local is not None:
        e = cluster.etcd_local
        local: dict[str, Any] = {"dataDir": e.data_dir}
        for key, value in (("imageRepository", e.image_repository), ("imageTag", e.image_tag)):
            if value:
                local[key] = value
        if e.extra_args:
            local["extraArgs"] = _args_out(e.extra_args)
        if e.extra_envs:
            local["extraEnvs"] = _envs_out(e.extra_envs)
        if e.server_cert_sans:
            local["serverCertSANs"] = list(e.server_cert_sans)
        if e.peer_cert_sans:
            local["peerCertSANs"] = list(e.peer_cert_sans)
        etcd["local"] = local
    dns: dict[str, Any] = {}
    if cluster.dns.image_repository:
        dns["imageRepository"] = cluster.dns.image_repository
    if cluster.dns.image_tag:
        dns["imageTag"] = cluster.dns.image_tag
    if cluster.dns.disabled:
        dns["disabled"] = True
    networking: dict[str, Any] = {"dnsDomain": cluster.networking.dns_domain,
                                  "serviceSubnet": cluster.networking.service_subnet}
    if cluster.networking.pod_subnet:
        networking["podSubnet"] = cluster.networking.pod_subnet
    out: dict[str, Any] = {
        "apiServer": api,
        "apiVersion": V1BETA4,
        "caCertificateValidityPeriod": format_go_duration(cluster.ca_certificate_validity_period),
        "certificateValidityPeriod": format_go_duration(cluster.certificate_validity_period),
        "certificatesDir": cluster.certificates_dir,
        "clusterName": cluster.cluster_name,
        "controllerManager": _component_out(cluster.controller_manager),
        "dns": dns,
        "encryptionAlgorithm": cluster.encryption_algorithm,
        "etcd": etcd,
        "imageRepository": cluster.image_repository,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": cluster.kubernetes_version,
        "networking": networking,
        "proxy": {"disabled": True} if cluster.proxy_disabled else {},
        "scheduler": _component_out(cluster.scheduler),
    }
    if cluster.control_plane_endpoint:
        out["controlPlaneEndpoint"] = cluster.control_plane_endpoint
    if cluster.feature_gates:
        out["featureGates"] = dict(cluster.feature_gates)
    return _sorted(out)


class _GoStyleDumper(yaml.SafeDumper):
    """Quote like go-yaml (double quotes) so output resembles kubeadm's, byte-stable."""

    def choose_scalar_style(self):  # type: ignore[override]
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def render_yaml(data: Any) -> str:
    """Block-style YAML with keys in the given order, no line wrapping (byte-stable)."""
    return yaml.dump(data, Dumper=_GoStyleDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 30)


def render_cluster_configuration(cluster: ClusterConfiguration) -> str:
    """The ``ClusterConfiguration`` key of the ``kubeadm-config`` ConfigMap (§5.2)."""
    return render_yaml(cluster_configuration_v1beta4(cluster))
