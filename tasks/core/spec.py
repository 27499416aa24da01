"""The validated, defaulted model of a kubeadm configuration.

``tasks.core.config`` builds these from kubeadm's own files (v1beta4, v1beta3 converted) and
applies kubeadm's defaults; everything downstream (PKI, kubeconfigs, manifests, phases) reads
only these frozen dataclasses. Field names follow kubeadm's v1beta4 API in snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .secrets import Secret


@dataclass(frozen=True)
class Arg:
    """One ``--name=value`` flag (v1beta4 ``extraArgs`` entry)."""

    name: str
    value: str


@dataclass(frozen=True)
class EnvVar:
    """One ``extraEnvs`` entry (only ``name``/``value`` form is supported)."""

    name: str
    value: str


@dataclass(frozen=True)
class HostPathMount:
    """One ``extraVolumes`` entry."""

    name: str
    host_path: str
    mount_path: str
    read_only: bool = False
    path_type: str = ""


@dataclass(frozen=True)
class ControlPlaneComponent:
    extra_args: tuple[Arg, ...] = ()
    extra_volumes: tuple[HostPathMount, ...] = ()
    extra_envs: tuple[EnvVar, ...] = ()


@dataclass(frozen=True)
class APIServer(ControlPlaneComponent):
    cert_sans: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalEtcd:
    image_repository: str = ""
    image_tag: str = ""
    data_dir: str = "/var/lib/etcd"
    extra_args: tuple[Arg, ...] = ()
    extra_envs: tuple[EnvVar, ...] = ()
    server_cert_sans: tuple[str, ...] = ()
    peer_cert_sans: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExternalEtcd:
    endpoints: tuple[str, ...]
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    http_endpoints: tuple[str, ...] = ()  # v1beta4 httpEndpoints (kubeadm 1.35+)


@dataclass(frozen=True)
class Networking:
    service_subnet: str = "10.96.0.0/12"
    pod_subnet: str = ""
    dns_domain: str = "cluster.local"


@dataclass(frozen=True)
class DNS:
    image_repository: str = ""
    image_tag: str = ""
    disabled: bool = False


@dataclass(frozen=True)
class ClusterConfiguration:
    """kubeadm ClusterConfiguration after defaulting (what ``kubeadm-config`` stores)."""

    kubernetes_version: str  # "v1.36.0"
    control_plane_endpoint: str = ""
    cluster_name: str = "kubernetes"
    certificates_dir: str = "/etc/kubernetes/pki"
    image_repository: str = "registry.k8s.io"
    networking: Networking = field(default_factory=Networking)
    etcd_local: LocalEtcd | None = field(default_factory=LocalEtcd)
    etcd_external: ExternalEtcd | None = None
    api_server: APIServer = field(default_factory=APIServer)
    controller_manager: ControlPlaneComponent = field(default_factory=ControlPlaneComponent)
    scheduler: ControlPlaneComponent = field(default_factory=ControlPlaneComponent)
    dns: DNS = field(default_factory=DNS)
    proxy_disabled: bool = False
    feature_gates: tuple[tuple[str, bool], ...] = ()
    encryption_algorithm: str = "RSA-2048"
    certificate_validity_period: timedelta = timedelta(hours=8760)
    ca_certificate_validity_period: timedelta = timedelta(hours=87600)

    @property
    def minor(self) -> int:
        """The Kubernetes minor version (``36`` for ``v1.36.2``)."""
        return int(self.kubernetes_version.lstrip("v").split(".")[1])

    def feature_gate(self, name: str, default: bool) -> bool:
        return dict(self.feature_gates).get(name, default)


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def __str__(self) -> str:  # kubelet's --register-with-taints form
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True)
class NodeRegistration:
    name: str
    cri_socket: str = "unix:///var/run/containerd/containerd.sock"
    # None = kubeadm's default (control-plane taint on control planes); () = no taints
    taints: tuple[Taint, ...] | None = None
    kubelet_extra_args: tuple[Arg, ...] = ()
    ignore_preflight_errors: tuple[str, ...] = ()
    image_pull_policy: str = "IfNotPresent"
    image_pull_serial: bool = True


@dataclass(frozen=True)
class APIEndpoint:
    advertise_address: str
    bind_port: int = 6443


@dataclass(frozen=True)
class BootstrapToken:
    token: Secret  # "abcdef.0123456789abcdef"
    description: str = ""
    ttl: timedelta | None = timedelta(hours=24)  # None or 0 = never expires
    expires: datetime | None = None
    usages: tuple[str, ...] = ("signing", "authentication")
    groups: tuple[str, ...] = ("system:bootstrappers:kubeadm:default-node-token",)

    @property
    def token_id(self) -> str:
        return self.token.reveal().split(".", 1)[0]


@dataclass(frozen=True)
class Timeouts:
    control_plane_component_health_check: timedelta = timedelta(minutes=4)
    kubelet_health_check: timedelta = timedelta(minutes=4)
    kubernetes_api_call: timedelta = timedelta(minutes=1)
    etcd_api_call: timedelta = timedelta(minutes=2)
    tls_bootstrap: timedelta = timedelta(minutes=5)
    discovery: timedelta = timedelta(minutes=5)
    upgrade_manifests: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class InitConfiguration:
    """kubeadm InitConfiguration (node-local; never uploaded to the cluster)."""

    node_registration: NodeRegistration
    local_api_endpoint: APIEndpoint
    bootstrap_tokens: tuple[BootstrapToken, ...] = ()
    certificate_key: Secret | None = None
    skip_phases: tuple[str, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    dry_run: bool = False
    patches_directory: str = ""


@dataclass(frozen=True)
class Discovery:
    # bootstrapToken discovery
    token: Secret | None = None
    api_server_endpoint: str = ""
    ca_cert_hashes: tuple[str, ...] = ()
    unsafe_skip_ca_verification: bool = False
    # file discovery
    file_kubeconfig_path: str = ""
    tls_bootstrap_token: Secret | None = None


@dataclass(frozen=True)
class JoinControlPlane:
    local_api_endpoint: APIEndpoint
    certificate_key: Secret | None = None


@dataclass(frozen=True)
class JoinConfiguration:
    node_registration: NodeRegistration
    discovery: Discovery = field(default_factory=Discovery)
    ca_cert_path: str = "/etc/kubernetes/pki/ca.crt"
    control_plane: JoinControlPlane | None = None
    skip_phases: tuple[str, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    dry_run: bool = False
    patches_directory: str = ""


@dataclass(frozen=True)
class KubeadmConfig:
    """Everything read from one kubeadm config file (multi-document YAML).

    ``kubelet`` and ``kube_proxy`` are the component configs as plain dicts: the user's document
    (or ``{}``) with kubeadm's defaults filled in by ``tasks.core.config``.
    """

    cluster: ClusterConfiguration
    init: InitConfiguration | None = None
    join: JoinConfiguration | None = None
    kubelet: dict[str, Any] = field(default_factory=dict)
    kube_proxy: dict[str, Any] = field(default_factory=dict)
    # ResetConfiguration / UpgradeConfiguration documents of the same file, as plain dicts
    reset: dict[str, Any] = field(default_factory=dict)
    upgrade: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # file it came from, for messages
