"""kubeadm config loading: defaults, v1beta3 conversion, strict validation, kubeadm-config round trip."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tasks.core.config.durations import format_go_duration, parse_go_duration
from tasks.core.config.encode import cluster_configuration_v1beta4, render_cluster_configuration
from tasks.core.config.load import default_config, load_config_file, load_config_text, parse_cluster_configuration
from tasks.core.config.validate import check_command_line
from tasks.core import constants as K
from tasks.core.errors import ConfigError
from tasks.core.secrets import Secret
from tasks.core.spec import APIEndpoint, Arg, EnvVar, HostPathMount, Taint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "config"
NODE = dict(node_name="Node-A", advertise_address="192.0.2.5")


def load(text: str, source: str = "test.yaml", **kw):
    args = {**NODE, **kw}
    return load_config_text(text, source=source, **args)


def load_fixture(name: str, **kw):
    return load_config_file(FIXTURES / name, source=name, **{**NODE, **kw})


def errors_of(text: str, source: str = "test.yaml", **kw) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load(text, source, **kw)
    return list(exc.value.details)


CLUSTER = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
INIT = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
JOIN = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"


# --- defaults (kubeadm-reference §11) ------------------------------------------------------------
DEFAULTS = [
    ("cluster.kubernetes_version", "v1.36.0"),
    ("cluster.control_plane_endpoint", ""),
    ("cluster.cluster_name", "kubernetes"),
    ("cluster.certificates_dir", "/etc/kubernetes/pki"),
    ("cluster.image_repository", "registry.k8s.io"),
    ("cluster.networking.service_subnet", "10.96.0.0/12"),
    ("cluster.networking.pod_subnet", ""),
    ("cluster.networking.dns_domain", "cluster.local"),
    ("cluster.etcd_local.data_dir", "/var/lib/etcd"),
    ("cluster.etcd_external", None),
    ("cluster.dns.disabled", False),
    ("cluster.proxy_disabled", False),
    ("cluster.feature_gates", ()),
    ("cluster.encryption_algorithm", "RSA-2048"),
    ("cluster.certificate_validity_period", timedelta(hours=8760)),
    ("cluster.ca_certificate_validity_period", timedelta(hours=87600)),
    ("init.node_registration.name", "node-a"),
    ("init.node_registration.cri_socket", "unix:///var/run/containerd/containerd.sock"),
    ("init.node_registration.taints", None),
    ("init.node_registration.kubelet_extra_args", ()),
    ("init.node_registration.image_pull_policy", "IfNotPresent"),
    ("init.node_registration.image_pull_serial", True),
    ("init.local_api_endpoint.advertise_address", "192.0.2.5"),
    ("init.local_api_endpoint.bind_port", 6443),
    ("init.certificate_key", None),
    ("init.skip_phases", ()),
    ("init.dry_run", False),
    ("init.patches_directory", ""),
    ("init.timeouts.control_plane_component_health_check", timedelta(minutes=4)),
    ("init.timeouts.kubelet_health_check", timedelta(minutes=4)),
    ("init.timeouts.kubernetes_api_call", timedelta(minutes=1)),
    ("init.timeouts.etcd_api_call", timedelta(minutes=2)),
    ("init.timeouts.tls_bootstrap", timedelta(minutes=5)),
    ("init.timeouts.discovery", timedelta(minutes=5)),
    ("init.timeouts.upgrade_manifests", timedelta(minutes=5)),
    ("join", None),
    ("kubelet", {}),
    ("kube_proxy", {}),
]


def attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("path,expected", DEFAULTS, ids=[d[0] for d in DEFAULTS])
@pytest.mark.parametrize("how", ["default_config", "empty file", "bare ClusterConfiguration"])
def test_kubeadm_defaults(how, path, expected):
    if how == "default_config":
        cfg = default_config(**NODE)
    else:
        cfg = load("" if how == "empty file" else CLUSTER)
    assert attr(cfg, path) == expected


def test_default_bootstrap_token_is_one_unset_token_with_kubeadm_defaults():
    (tok,) = default_config(**NODE).init.bootstrap_tokens
    assert isinstance(tok.token, Secret) and not tok.token  # minted by the init phases
    assert tok.ttl == timedelta(hours=24) and tok.expires is None and tok.description == ""
    assert tok.usages == ("signing", "authentication")
    assert tok.groups == ("system:bootstrappers:kubeadm:default-node-token",)


def test_given_token_gets_defaults_and_is_a_secret():
    cfg = load(INIT + "bootstrapTokens:\n- token: abcdef.0123456789abcdef\n")
    (tok,) = cfg.init.bootstrap_tokens
    assert isinstance(tok.token, Secret) and tok.token.reveal() == "abcdef.0123456789abcdef"
    assert tok.token_id == "abcdef" and tok.ttl == K.DEFAULT_TOKEN_TTL
    assert "0123456789abcdef" not in repr(cfg) and "0123456789abcdef" not in str(cfg)


def test_default_config_takes_a_version():
    assert default_config(**NODE, kubernetes_version="1.34").cluster.kubernetes_version == "v1.34.0"


def test_file_values_win_over_fallbacks():
    cfg = load(INIT + "nodeRegistration: {name: cp-7}\nlocalAPIEndpoint: {advertiseAddress: 198.51.100.7}\n")
    assert cfg.init.node_registration.name == "cp-7"
    assert cfg.init.local_api_endpoint.advertise_address == "198.51.100.7"


@pytest.mark.parametrize("given,expected", [
    ("/run/containerd/containerd.sock", "unix:///run/containerd/containerd.sock"),
    ("unix:///var/run/crio/crio.sock", "unix:///var/run/crio/crio.sock"),
    ("", "unix:///var/run/containerd/containerd.sock"),
])
def test_cri_socket(given, expected):
    cfg = load(INIT + f"nodeRegistration: {{criSocket: '{given}'}}\n")
    assert cfg.init.node_registration.cri_socket == expected


@pytest.mark.parametrize("yaml_taints,expected", [
    ("", None),                       # unset: kubeadm adds the control-plane taint later
    ("taints: null\n", None),
    ("taints: []\n", ()),             # explicitly none
    ("taints:\n  - {key: a, effect: NoSchedule}\n  - {key: b, value: c, effect: NoExecute}\n",
     (Taint("a", "NoSchedule"), Taint("b", "NoExecute", "c"))),
])
def test_taints_nil_versus_empty(yaml_taints, expected):
    reg = "nodeRegistration:\n" + "".join("  " + line + "\n" for line in yaml_taints.splitlines()) if yaml_taints else ""
    cfg = load(INIT + reg)
    assert cfg.init.node_registration.taints == expected


def test_join_only_file_has_no_init_and_join_defaults():
    cfg = load(JOIN + "discovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n"
               "    apiServerEndpoint: 192.0.2.10:6443\n    unsafeSkipCAVerification: true\n")
    assert cfg.init is None
    j = cfg.join
    assert j.node_registration.name == "node-a" and j.control_plane is None
    assert j.ca_cert_path == "/etc/kubernetes/pki/ca.crt"
    # tlsBootstrapToken defaults to the discovery token (§11.3)
    assert j.discovery.tls_bootstrap_token == j.discovery.token == Secret("abcdef.0123456789abcdef")
    assert j.timeouts.discovery == timedelta(minutes=5)


def test_join_control_plane_endpoint_defaults():
    cfg = load(JOIN + "controlPlane: {}\n")
    assert cfg.join.control_plane.local_api_endpoint.advertise_address == "192.0.2.5"
    assert cfg.join.control_plane.local_api_endpoint.bind_port == 6443
    assert cfg.join.control_plane.certificate_key is None


# --- a full v1beta4 file -------------------------------------------------------------------------
def test_full_v1beta4_file():
    cfg = load_fixture("v1beta4-full.yaml")
    c, i, j = cfg.cluster, cfg.init, cfg.join
    assert c.kubernetes_version == "v1.35.0"
    assert c.control_plane_endpoint == "[2001:db8::10]:6443"
    assert c.certificates_dir == "/srv/pki" and c.cluster_name == "prod"
    assert c.encryption_algorithm == "ECDSA-P384"
    assert c.certificate_validity_period == timedelta(hours=2160)
    assert c.ca_certificate_validity_period == timedelta(hours=43800)
    assert c.feature_gates == (("NodeLocalCRISocket", False),)
    assert c.networking.service_subnet == "10.96.0.0/16,fd00:10:96::/112"
    assert c.api_server.cert_sans == ("*.api.example.com", "2001:db8::10")
    assert c.api_server.extra_envs == (EnvVar("GODEBUG", "x509sha1=1"),)
    assert c.api_server.extra_volumes == (HostPathMount("audit", "/var/log/kubernetes", "/var/log/kubernetes",
                                                        False, "DirectoryOrCreate"),)
    assert c.scheduler.extra_volumes[0].read_only is True
    assert c.etcd_local.image_tag == "3.6.5-0" and c.etcd_local.data_dir == "/data/etcd"
    assert c.etcd_local.extra_args == (Arg("quota-backend-bytes", "8589934592"),)
    assert c.dns.image_repository == "registry.example.com/coredns" and c.proxy_disabled
    assert i.node_registration.name == "master-1.example.com"
    assert i.node_registration.cri_socket == "unix:///var/run/crio/crio.sock"
    # duplicates allowed and kept in order (v1beta4 list form)
    assert [a.name for a in i.node_registration.kubelet_extra_args] == ["node-ip", "node-labels", "node-labels"]
    assert i.node_registration.ignore_preflight_errors == ("swap", "numcpu")
    assert i.node_registration.image_pull_policy == "Never" and not i.node_registration.image_pull_serial
    assert i.local_api_endpoint.bind_port == 8443
    assert i.certificate_key.reveal() == "3f2a6b8c1d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd"
    assert i.bootstrap_tokens[0].ttl == timedelta(hours=1, minutes=30)
    assert i.bootstrap_tokens[1].expires == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert i.timeouts.etcd_api_call == timedelta(seconds=90) and i.timeouts.upgrade_manifests == timedelta(minutes=7)
    assert i.patches_directory == "/etc/kubernetes/patches" and i.skip_phases == ("addon/kube-proxy",)
    assert j.dry_run and j.ca_cert_path == "/srv/pki/ca.crt" and j.skip_phases == ("preflight",)
    assert j.node_registration.taints is None
    assert j.discovery.unsafe_skip_ca_verification
    assert j.discovery.tls_bootstrap_token.reveal() == "0123ab.cdef0123456789ab"
    assert j.control_plane.local_api_endpoint == APIEndpoint("192.0.2.5", 8443)
    assert cfg.kubelet == {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                           "cgroupDriver": "cgroupfs"}
    assert cfg.kube_proxy["mode"] == "ipvs" and cfg.reset["force"] is True
    assert cfg.source == "v1beta4-full.yaml"


# --- v1beta3 conversion (reference §11.8) --------------------------------------------------------
def test_v1beta3_converts_to_the_equivalent_v1beta4():
    old, new = load_fixture("v1beta3-full.yaml"), load_fixture("v1beta4-equivalent.yaml")
    assert old.cluster == new.cluster
    assert old.init == new.init
    assert old.join == new.join
    assert old.kubelet == new.kubelet


def test_v1beta3_conversion_details():
    cfg = load_fixture("v1beta3-full.yaml")
    assert cfg.cluster.encryption_algorithm == "ECDSA-P256"
    assert cfg.cluster.feature_gates == (("ControlPlaneKubeletLocalMode", True),)  # gate removed
    # map -> list sorted by name
    assert cfg.cluster.api_server.extra_args == (Arg("audit-log-maxage", "30"), Arg("authorization-mode", "Node,RBAC"))
    assert cfg.init.timeouts.control_plane_component_health_check == timedelta(minutes=6)
    assert cfg.join.timeouts.control_plane_component_health_check == timedelta(minutes=6)
    assert cfg.join.timeouts.discovery == timedelta(minutes=2)
    assert cfg.init.timeouts.discovery == timedelta(minutes=5)
    assert cfg.join.discovery.ca_cert_hashes == ("sha256:8d4f0b2c1e3a5f6789abcdef0123456789abcdef0123456789abcdef01234567",)


def test_v1beta3_rejects_v1beta4_only_fields():
    details = errors_of((FIXTURES / "bad-v1beta3-with-v1beta4-fields.yaml").read_text(), "old.yaml")
    assert any("old.yaml: ClusterConfiguration.encryptionAlgorithm: unknown field" in d for d in details)
    assert any("old.yaml: ClusterConfiguration.proxy: unknown field" in d for d in details)
    assert any("old.yaml: ClusterConfiguration.apiServer.extraArgs:" in d for d in details)


def test_v1beta3_public_keys_ecdsa_false_keeps_rsa():
    text = CLUSTER.replace("v1beta4", "v1beta3") + "featureGates: {PublicKeysECDSA: false}\n"
    cfg = load(text)
    assert cfg.cluster.encryption_algorithm == "RSA-2048" and cfg.cluster.feature_gates == ()


# --- validation: each error names the file and the field -----------------------------------------
BAD = [
    ("pod CIDR", CLUSTER + "networking: {podSubnet: 10.244.0.0/33}\n", "ClusterConfiguration.networking.podSubnet",
     "not a valid CIDR"),
    ("service CIDR", CLUSTER + "networking: {serviceSubnet: banana}\n", "ClusterConfiguration.networking.serviceSubnet",
     "not a valid CIDR"),
    ("service subnet too large v4", CLUSTER + "networking: {serviceSubnet: 10.96.0.0/11}\n",
     "ClusterConfiguration.networking.serviceSubnet", "too large"),
    ("service subnet too large v6", CLUSTER + "networking: {serviceSubnet: 'fd00::/107'}\n",
     "ClusterConfiguration.networking.serviceSubnet", "/108"),
    ("service subnet too small", CLUSTER + "networking: {serviceSubnet: 10.96.0.0/29}\n",
     "ClusterConfiguration.networking.serviceSubnet", "too small"),
    ("dual-stack same family", CLUSTER + "networking: {serviceSubnet: '10.96.0.0/16,10.97.0.0/16'}\n",
     "ClusterConfiguration.networking.serviceSubnet", "different IP families"),
    ("pod subnet too small", CLUSTER + "networking: {podSubnet: 10.244.0.0/25}\n", "ClusterConfiguration.networking.podSubnet",
     "at least 254"),
    ("pod subnet below node mask", CLUSTER + "networking: {podSubnet: 10.244.0.0/16}\ncontrollerManager:\n"
     "  extraArgs: [{name: node-cidr-mask-size-ipv4, value: '14'}]\n", "ClusterConfiguration.networking.podSubnet",
     "smaller than one node's subnet"),
    ("pod subnet too far from node mask", CLUSTER + "networking: {podSubnet: 10.0.0.0/7}\n",
     "ClusterConfiguration.networking.podSubnet", "differ by more than 16"),
    ("pod subnet v6 node mask", CLUSTER + "networking: {podSubnet: 'fd00::/40'}\n",
     "ClusterConfiguration.networking.podSubnet", "/64"),
    ("image repository", CLUSTER + "imageRepository: 'Registry Example'\n", "ClusterConfiguration.imageRepository",
     "not a valid image repository"),
    ("dns image repository", CLUSTER + "dns: {imageRepository: 'x/UPPER'}\n", "ClusterConfiguration.dns.imageRepository",
     "not a valid image repository"),
    ("cri socket scheme", INIT + "nodeRegistration: {criSocket: 'tcp://1.2.3.4:1'}\n",
     "InitConfiguration.nodeRegistration.criSocket", "only unix://"),
    ("dns domain", CLUSTER + "networking: {dnsDomain: Cluster_Local}\n", "ClusterConfiguration.networking.dnsDomain",
     "DNS-1123"),
    ("advertise address", INIT + "localAPIEndpoint: {advertiseAddress: master1}\n",
     "InitConfiguration.localAPIEndpoint.advertiseAddress", "not an IP address"),
    ("bind port", INIT + "localAPIEndpoint: {bindPort: 0x10000}\n", "InitConfiguration.localAPIEndpoint.bindPort",
     "not a port"),
    ("endpoint host", CLUSTER + "controlPlaneEndpoint: 'lb_1.example.com:6443'\n",
     "ClusterConfiguration.controlPlaneEndpoint", "DNS-1123 subdomain"),
    ("endpoint port", CLUSTER + "controlPlaneEndpoint: 'lb.example.com:http'\n",
     "ClusterConfiguration.controlPlaneEndpoint", "port 'http'"),
    ("unknown field", CLUSTER + "networkin: {}\n", "ClusterConfiguration.networkin",
     "unknown field 'networkin' (did you mean 'networking'?)"),
    ("unknown field far off", CLUSTER + "zzz: {}\n", "ClusterConfiguration.zzz", "known fields: etcd, networking"),
    ("unknown nested field", INIT + "nodeRegistration: {nmae: x}\n", "InitConfiguration.nodeRegistration.nmae",
     "unknown field 'nmae'"),
    ("unknown field in list item", CLUSTER + "apiServer:\n  extraArgs:\n  - {name: a, value: b, vaule: c}\n",
     "ClusterConfiguration.apiServer.extraArgs[0].vaule", "unknown field"),
    ("v1beta3 args in v1beta4", CLUSTER + "apiServer:\n  extraArgs: {a: b}\n", "ClusterConfiguration.apiServer.extraArgs",
     "maps are v1beta3"),
    ("unsupported version", CLUSTER + "kubernetesVersion: v1.30.2\n", "ClusterConfiguration.kubernetesVersion",
     "v1.33, v1.34, v1.35, v1.36"),
    ("unquoted version", CLUSTER + "kubernetesVersion: 1.34\n", "ClusterConfiguration.kubernetesVersion", "quote it"),
    ("encryption algorithm", CLUSTER + "encryptionAlgorithm: RSA-1024\n", "ClusterConfiguration.encryptionAlgorithm",
     "RSA-2048, RSA-3072"),
    ("P384 before 1.34", CLUSTER + "kubernetesVersion: v1.33.1\nencryptionAlgorithm: ECDSA-P384\n",
     "ClusterConfiguration.encryptionAlgorithm", "v1.34"),
    ("duration", CLUSTER + "certificateValidityPeriod: 1y\n", "ClusterConfiguration.certificateValidityPeriod",
     "invalid duration '1y'"),
    ("duration not a string", INIT + "timeouts: {discovery: 300}\n", "InitConfiguration.timeouts.discovery",
     "duration string"),
    ("token", INIT + "bootstrapTokens:\n- token: ABCDEF.0123456789abcdef\n", "InitConfiguration.bootstrapTokens[0].token",
     "invalid token"),
    ("token usage", INIT + "bootstrapTokens:\n- usages: [signing, sining]\n", "InitConfiguration.bootstrapTokens[0].usages[1]",
     "unknown usage 'sining'"),
    ("token group", INIT + "bootstrapTokens:\n- groups: [system:nodes]\n", "InitConfiguration.bootstrapTokens[0].groups[0]",
     "system:bootstrappers"),
    ("certificate key", INIT + "certificateKey: '0123'\n", "InitConfiguration.certificateKey", "64 hexadecimal"),
    ("join certificate key", JOIN + "controlPlane: {certificateKey: zz}\n", "JoinConfiguration.controlPlane.certificateKey",
     "64 hexadecimal"),
    ("ca cert hash", JOIN + "discovery:\n  bootstrapToken: {caCertHashes: [md5:abc]}\n",
     "JoinConfiguration.discovery.bootstrapToken.caCertHashes[0]", "sha256:"),
    ("discovery exclusive", JOIN + "discovery:\n  bootstrapToken: {}\n  file: {kubeConfigPath: /x}\n",
     "JoinConfiguration.discovery", "mutually exclusive"),
    ("taint effect", INIT + "nodeRegistration:\n  taints: [{key: a, effect: Never}]\n",
     "InitConfiguration.nodeRegistration.taints[0].effect", "NoSchedule"),
    ("pull policy", INIT + "nodeRegistration: {imagePullPolicy: always}\n", "InitConfiguration.nodeRegistration.imagePullPolicy",
     "IfNotPresent"),
    ("node name", INIT + "nodeRegistration: {name: Node_1}\n", "InitConfiguration.nodeRegistration.name", "node name"),
    ("cri socket", INIT + "nodeRegistration: {criSocket: containerd}\n", "InitConfiguration.nodeRegistration.criSocket",
     "unix://"),
    ("cert SAN", CLUSTER + "apiServer: {certSANs: ['not a name']}\n", "ClusterConfiguration.apiServer.certSANs[0]",
     "not an IP address"),
    ("relative certificatesDir", CLUSTER + "certificatesDir: pki\n", "ClusterConfiguration.certificatesDir", "absolute"),
    ("local and external etcd", CLUSTER + "etcd: {local: {}, external: {endpoints: ['https://e:2379']}}\n",
     "ClusterConfiguration.etcd", "mutually exclusive"),
    ("external etcd files", CLUSTER + "etcd: {external: {endpoints: ['https://e:2379']}}\n",
     "ClusterConfiguration.etcd.external.caFile", "required"),
    ("extraVolume", CLUSTER + "scheduler:\n  extraVolumes: [{name: v, mountPath: /m}]\n",
     "ClusterConfiguration.scheduler.extraVolumes[0].hostPath", "required"),
    ("feature gate value", CLUSTER + "featureGates: {X: yes please}\n", "ClusterConfiguration.featureGates.X",
     "true or false"),
    ("string expected", CLUSTER + "clusterName: 42\n", "ClusterConfiguration.clusterName", "must be a string"),
    ("valueFrom env", CLUSTER + "apiServer:\n  extraEnvs: [{name: A, valueFrom: {}}]\n",
     "ClusterConfiguration.apiServer.extraEnvs[0].valueFrom", "not supported"),
    # --- kubeadm rules added after comparing with kubeadm's validation ---------------------------
    ("feature gate typo", CLUSTER + "featureGates: {NodeLocalCriSocket: true}\n",
     "ClusterConfiguration.featureGates.NodeLocalCriSocket", "did you mean 'NodeLocalCRISocket'?"),
    ("component feature gate", CLUSTER + "featureGates: {SidecarContainers: true}\n",
     "ClusterConfiguration.featureGates.SidecarContainers", "extraArgs (feature-gates)"),
    ("PublicKeysECDSA in v1beta4", CLUSTER + "featureGates: {PublicKeysECDSA: true}\n",
     "ClusterConfiguration.featureGates.PublicKeysECDSA", "encryptionAlgorithm: ECDSA-P256"),
    ("GA feature gate turned off", CLUSTER + "kubernetesVersion: v1.35.0\n"
     "featureGates: {WaitForAllControlPlaneComponents: false}\n",
     "ClusterConfiguration.featureGates.WaitForAllControlPlaneComponents", "always on in kubeadm v1.35"),
    ("GA gate turned off in 1.36", CLUSTER + "featureGates: {ControlPlaneKubeletLocalMode: false}\n",
     "ClusterConfiguration.featureGates.ControlPlaneKubeletLocalMode", "always on in kubeadm v1.36"),
    ("kubelet local mode off", CLUSTER + "kubernetesVersion: v1.34.0\nfeatureGates: {ControlPlaneKubeletLocalMode: false}\n",
     "ClusterConfiguration.featureGates.ControlPlaneKubeletLocalMode", "false is not supported"),
    ("rootless control plane", CLUSTER + "featureGates: {RootlessControlPlane: true}\n",
     "ClusterConfiguration.featureGates.RootlessControlPlane", "true is not supported"),
    ("etcd TLS files with http", CLUSTER + "etcd: {external: {endpoints: ['http://e:2379'], certFile: /e.crt, "
     "keyFile: /e.key}}\n", "ClusterConfiguration.etcd.external.endpoints[0]", "etcd must be reached over https://"),
    ("etcd httpEndpoints URL", CLUSTER + "etcd: {external: {endpoints: ['http://e:2379'], httpEndpoints: ['e:2381']}}\n",
     "ClusterConfiguration.etcd.external.httpEndpoints[0]", "not an http(s):// URL"),
    ("etcd httpEndpoints with TLS", CLUSTER + "etcd: {external: {endpoints: ['https://e:2379'], httpEndpoints: "
     "['http://e:2381'], caFile: /ca.crt, certFile: /e.crt, keyFile: /e.key}}\n",
     "ClusterConfiguration.etcd.external.httpEndpoints[0]", "https://"),
    ("caCertPath not a .crt", JOIN + "caCertPath: /etc/kubernetes/pki/ca.pem\n", "JoinConfiguration.caCertPath", ".crt"),
    ("discovery endpoint without port", JOIN + "discovery:\n  bootstrapToken: {apiServerEndpoint: 192.0.2.10}\n",
     "JoinConfiguration.discovery.bootstrapToken.apiServerEndpoint", "has no port"),
    ("discovery endpoint bare IPv6", JOIN + "discovery:\n  bootstrapToken: {apiServerEndpoint: '2001:db8::10'}\n",
     "JoinConfiguration.discovery.bootstrapToken.apiServerEndpoint", "[2001:db8::10]:6443"),
    ("discovery file over http", JOIN + "discovery:\n  file: {kubeConfigPath: 'http://example.com/cluster-info.yaml'}\n",
     "JoinConfiguration.discovery.file.kubeConfigPath", "must be https://"),
    ("token without authentication", INIT + "bootstrapTokens:\n- usages: [signing]\n",
     "InitConfiguration.bootstrapTokens[0].usages", "must include 'authentication'"),
    ("bracketed IPv6 endpoint without port", CLUSTER + "controlPlaneEndpoint: '[2001:db8::10]'\n",
     "ClusterConfiguration.controlPlaneEndpoint", "needs a port"),
    ("spaces in a CIDR list", CLUSTER + "networking: {serviceSubnet: '10.96.0.0/16, fd00::/112'}\n",
     "ClusterConfiguration.networking.serviceSubnet", "no spaces around the ','"),
    ("address instead of a CIDR", CLUSTER + "networking: {podSubnet: 10.244.0.1}\n",
     "ClusterConfiguration.networking.podSubnet", "add the prefix length"),
    ("netmask instead of a prefix", CLUSTER + "networking: {podSubnet: 10.244.0.0/255.255.0.0}\n",
     "ClusterConfiguration.networking.podSubnet", "not a valid CIDR"),
    ("advertise address with a zone", INIT + "localAPIEndpoint: {advertiseAddress: 'fe80::1%eth0'}\n",
     "InitConfiguration.localAPIEndpoint.advertiseAddress", "not an IP address"),
    ("loopback advertise address", INIT + "localAPIEndpoint: {advertiseAddress: 127.0.0.1}\n",
     "InitConfiguration.localAPIEndpoint.advertiseAddress", "loopback"),
    ("join loopback advertise address", JOIN + "controlPlane: {localAPIEndpoint: {advertiseAddress: '::1'}}\n",
     "JoinConfiguration.controlPlane.localAPIEndpoint.advertiseAddress", "loopback"),
    ("relative patches directory", INIT + "patches: {directory: patches}\n", "InitConfiguration.patches.directory",
     "absolute"),
    ("relative join patches directory", JOIN + "patches: {directory: ./patches}\n", "JoinConfiguration.patches.directory",
     "absolute"),
]


@pytest.mark.parametrize("text,field,fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_each_validation_error_names_file_and_field(text, field, fragment):
    details = errors_of(text, "cluster.yaml")
    hits = [d for d in details if d.startswith(f"cluster.yaml: {field}: ")]
    assert hits, details
    assert any(fragment in d for d in hits), hits


@pytest.mark.parametrize("text,fragment", [
    ("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n", "unsupported apiVersion 'kubeadm.k8s.io/v1beta2'"),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: KubeletConfiguration\n", "unsupported apiVersion"),
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: NodeConfiguration\n", "unknown kind 'NodeConfiguration'"),
    ("kind: ClusterConfiguration\n", "apiVersion missing"),
    ("- a\n- b\n", "must be a mapping"),
    (CLUSTER + "---\n" + CLUSTER, "a second ClusterConfiguration"),
])
def test_document_level_errors_list_the_supported_kinds(text, fragment):
    (detail,) = errors_of(text, "docs.yaml")
    assert detail.startswith("docs.yaml: document ") and fragment in detail
    if "kind" in fragment or "apiVersion" in fragment:
        assert "kubeadm.k8s.io/v1beta4" in detail


def test_all_errors_at_once():
    with pytest.raises(ConfigError) as exc:
        load_fixture("bad-many.yaml")
    err = exc.value
    fields = ["document 3", "document 4", "ClusterConfiguration.apiServr", "ClusterConfiguration.kubernetesVersion",
              "ClusterConfiguration.controlPlaneEndpoint", "ClusterConfiguration.networking.serviceSubnet",
              "ClusterConfiguration.networking.podSubnet", "ClusterConfiguration.encryptionAlgorithm",
              "ClusterConfiguration.certificateValidityPeriod", "InitConfiguration.nodeRegistration.imagePullPolicy",
              "InitConfiguration.localAPIEndpoint.advertiseAddress", "InitConfiguration.localAPIEndpoint.bindPort",
              "InitConfiguration.bootstrapTokens[0].token", "InitConfiguration.bootstrapTokens[0].ttl",
              "InitConfiguration.certificateKey"]
    assert len(err.details) == len(fields)
    for f in fields:
        assert any(d.startswith(f"bad-many.yaml: {f}") for d in err.details), f
    assert err.problem == "bad-many.yaml: 15 problems in the kubeadm configuration"
    assert err.fix and "Traceback" not in str(err)
    assert "10.96.0.0/8" in str(err)  # the user's own text, not a normalized network


def test_malformed_yaml_reports_line_and_column():
    with pytest.raises(ConfigError) as exc:
        load_fixture("bad-yaml.yaml")
    (detail,) = exc.value.details
    assert detail.startswith("bad-yaml.yaml: line 5, column 12: malformed YAML")


def test_duplicate_field_is_an_error():
    (detail,) = errors_of(CLUSTER + "clusterName: a\nclusterName: b\n", "dup.yaml")
    assert detail == "dup.yaml: line 4, column 1: duplicate field 'clusterName'"


def test_unquoted_numeric_secret_is_not_echoed():
    key = "1" * 64  # YAML reads it as a number
    (detail,) = errors_of(INIT + f"certificateKey: {key}\n")
    assert "quote it" in detail and key not in detail


def test_secrets_never_appear_in_errors():
    bad_token = "abcdef.0123456789abcdeX"
    bad_key = "f" * 63 + "g"
    with pytest.raises(ConfigError) as exc:
        load(INIT + f"bootstrapTokens:\n- token: {bad_token}\ncertificateKey: {bad_key}\n")
    text = str(exc.value) + repr(exc.value.details)
    assert bad_token not in text and bad_key not in text and "0123456789abcde" not in text


def test_fallbacks_are_required_when_the_file_is_silent():
    details = errors_of(INIT, node_name="", advertise_address="")
    assert any("InitConfiguration.nodeRegistration.name: required" in d for d in details)
    assert any("InitConfiguration.localAPIEndpoint.advertiseAddress: required" in d for d in details)


@pytest.mark.parametrize("endpoint", ["192.0.2.10", "192.0.2.10:6443", "lb.example.com", "lb.example.com:443",
                                      "[2001:db8::1]:6443", "2001:db8::1"])
def test_good_control_plane_endpoints(endpoint):
    assert load(CLUSTER + f"controlPlaneEndpoint: '{endpoint}'\n").cluster.control_plane_endpoint == endpoint


@pytest.mark.parametrize("repo", ["registry.k8s.io", "registry.example.com:5000/k8s", "localhost/a/b", "my_repo",
                                  "gcr.io/k8s-staging-ci-images"])
def test_good_image_repositories(repo):
    assert load(CLUSTER + f"imageRepository: {repo}\n").cluster.image_repository == repo


@pytest.mark.parametrize("pods,cm_args", [
    ("10.244.0.0/24", ""),
    ("10.244.0.0/24", "  extraArgs: [{name: node-cidr-mask-size-ipv4, value: '26'}]\n"),
    ("10.0.0.0/7", "  extraArgs: [{name: allocate-node-cidrs, value: 'false'}]\n"),
    ("fd00:10:244::/56", ""),
])
def test_good_pod_subnets(pods, cm_args):
    text = CLUSTER + f"networking: {{podSubnet: '{pods}'}}\n" + ("controllerManager:\n" + cm_args if cm_args else "")
    assert load(text).cluster.networking.pod_subnet == pods


@pytest.mark.parametrize("subnet", ["10.96.0.0/12", "10.96.0.0/28", "fd00::/108", "10.96.0.0/16,fd00::/112"])
def test_good_service_subnets(subnet):
    assert load(CLUSTER + f"networking: {{serviceSubnet: '{subnet}'}}\n").cluster.networking.service_subnet == subnet


@pytest.mark.parametrize("version,gates", [
    ("v1.33.0", "{WaitForAllControlPlaneComponents: false, ControlPlaneKubeletLocalMode: true, RootlessControlPlane: false}"),
    ("v1.34.0", "{NodeLocalCRISocket: false, WaitForAllControlPlaneComponents: true}"),
    ("v1.35.0", "{ControlPlaneKubeletLocalMode: true, NodeLocalCRISocket: true}"),
    ("v1.36.0", "{NodeLocalCRISocket: true}"),
])
def test_kubeadm_feature_gates_of_each_version(version, gates):
    cfg = load(CLUSTER + f"kubernetesVersion: {version}\nfeatureGates: {gates}\n")
    assert cfg.cluster.feature_gates == tuple(sorted(yaml.safe_load(gates).items()))


def test_feature_gates_are_not_judged_against_a_wrong_version():
    (detail,) = errors_of(CLUSTER + "kubernetesVersion: v1.30.0\nfeatureGates: {EtcdLearnerMode: true}\n")
    assert "ClusterConfiguration.kubernetesVersion" in detail


def test_kubeadm_config_read_from_a_cluster_keeps_its_feature_gates():
    # a cluster's kubeadm-config was accepted when it was written; joining must not trip on it
    text = CLUSTER + "kubernetesVersion: v1.36.0\nfeatureGates: {ControlPlaneKubeletLocalMode: true}\n"
    assert parse_cluster_configuration(text).feature_gates == (("ControlPlaneKubeletLocalMode", True),)


def test_node_name_and_api_server_sans_are_lower_cased_as_kubeadm_does():
    cfg = load(INIT + "nodeRegistration: {name: ' Master-1.Example.com '}\n---\n" + CLUSTER
               + "apiServer: {certSANs: [LB.Example.COM, '*.Api.Example.com', '2001:DB8::10']}\n")
    assert cfg.init.node_registration.name == "master-1.example.com"
    assert cfg.cluster.api_server.cert_sans == ("lb.example.com", "*.api.example.com", "2001:db8::10")
    assert load(JOIN + "nodeRegistration: {name: Worker-7}\n").join.node_registration.name == "worker-7"


@pytest.mark.parametrize("unspecified", ["0.0.0.0", "'::'"])
def test_unspecified_advertise_address_means_the_hosts_own(unspecified):
    # kubeadm detects the host's address for 0.0.0.0 / ::; kubefab takes the inventory's
    cfg = load(INIT + f"localAPIEndpoint: {{advertiseAddress: {unspecified}}}\n---\n"
               + JOIN + f"controlPlane: {{localAPIEndpoint: {{advertiseAddress: {unspecified}}}}}\n")
    assert cfg.init.local_api_endpoint.advertise_address == "192.0.2.5"
    assert cfg.join.control_plane.local_api_endpoint.advertise_address == "192.0.2.5"
    (detail,) = errors_of(INIT + f"localAPIEndpoint: {{advertiseAddress: {unspecified}}}\n", advertise_address="")
    assert "InitConfiguration.localAPIEndpoint.advertiseAddress" in detail and "host's own address" in detail


@pytest.mark.parametrize("discovery,expected", [
    ("file: {kubeConfigPath: 'file:///etc/kubernetes/discovery.conf'}", "/etc/kubernetes/discovery.conf"),
    ("file: {kubeConfigPath: 'https://example.com/discovery.conf'}", "https://example.com/discovery.conf"),
    ("file: {kubeConfigPath: discovery.conf}", "discovery.conf"),
])
def test_good_discovery_files(discovery, expected):
    assert load(JOIN + f"discovery:\n  {discovery}\n").join.discovery.file_kubeconfig_path == expected


@pytest.mark.parametrize("endpoint", ["192.0.2.10:6443", "api.example.com:443", "[2001:db8::10]:6443"])
def test_good_discovery_endpoints(endpoint):
    cfg = load(JOIN + f"discovery:\n  bootstrapToken: {{apiServerEndpoint: '{endpoint}'}}\n")
    assert cfg.join.discovery.api_server_endpoint == endpoint


@pytest.mark.parametrize("external", [
    "{endpoints: ['http://e:2379'], httpEndpoints: ['http://e:2381']}",
    ("{endpoints: ['https://e:2379'], httpEndpoints: ['https://e:2381'], caFile: /ca.crt, certFile: /e.crt, "
     "keyFile: /e.key}"),
])
def test_good_external_etcd(external):
    cfg = load(CLUSTER + f"etcd: {{external: {external}}}\n")
    assert cfg.cluster.etcd_external.endpoints and cfg.cluster.etcd_external.http_endpoints


def test_a_bad_pod_subnet_is_reported_once():
    # the node-mask check runs only on a pod subnet that parsed
    (detail,) = errors_of(CLUSTER + "networking: {podSubnet: '10.0.0.0/7, fd00::/40'}\n")
    assert "no spaces" in detail


def test_component_configs_are_kept_as_dicts():
    cfg = load(CLUSTER + "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
               "maxPods: 10\n---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
               "mode: nftables\n")
    assert cfg.kubelet["maxPods"] == 10 and cfg.kube_proxy["mode"] == "nftables"


# --- inline ClusterConfiguration (from the inventory) ---------------------------------------------
def test_inline_cluster_fields_override_the_file():
    cfg = load(CLUSTER + "clusterName: file\nnetworking: {podSubnet: 10.1.0.0/16, dnsDomain: file.local}\n",
               inline_cluster={"clusterName": "inline", "networking": {"podSubnet": "10.2.0.0/16"}})
    assert cfg.cluster.cluster_name == "inline"
    assert cfg.cluster.networking.pod_subnet == "10.2.0.0/16"
    assert cfg.cluster.networking.dns_domain == "file.local"  # deep merge keeps the rest


def test_inline_cluster_over_a_v1beta3_file():
    text = CLUSTER.replace("v1beta4", "v1beta3") + "apiServer:\n  extraArgs: {a: b}\n"
    cfg = load(text, inline_cluster={"apiServer": {"certSANs": ["lb.example.com"]}})
    assert cfg.cluster.api_server.extra_args == (Arg("a", "b"),)
    assert cfg.cluster.api_server.cert_sans == ("lb.example.com",)


def test_inline_errors_are_attributed_to_the_inventory():
    details = errors_of(CLUSTER + "networking: {podSubnet: 10.1.0.0/16}\n", "kubeadm.yaml",
                        inline_cluster={"networking": {"podSubnet": "nope"}, "clustrName": "x"},
                        inline_source="hosts.yaml")
    assert any(d.startswith("hosts.yaml: cluster.networking.podSubnet: ") for d in details), details
    assert any(d.startswith("hosts.yaml: cluster.clustrName: unknown field") for d in details), details


# --- files -----------------------------------------------------------------------------------------
def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config_file(tmp_path / "nope.yaml", **NODE)
    assert "nope.yaml" in exc.value.problem and "does not exist" in exc.value.problem and exc.value.fix


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config_file(tmp_path, **NODE)  # a directory
    assert "cannot read" in exc.value.problem


# --- Go durations --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value,canonical", [
    ("8760h", timedelta(hours=8760), "8760h0m0s"),
    ("87600h0m0s", timedelta(hours=87600), "87600h0m0s"),
    ("4m0s", timedelta(minutes=4), "4m0s"),
    ("1h30m", timedelta(hours=1, minutes=30), "1h30m0s"),
    ("90s", timedelta(seconds=90), "1m30s"),
    ("1.5s", timedelta(seconds=1.5), "1.5s"),
    ("500ms", timedelta(milliseconds=500), "500ms"),
    ("1.25ms", timedelta(microseconds=1250), "1.25ms"),
    ("0", timedelta(0), "0s"),
    ("0s", timedelta(0), "0s"),
    ("2h45m30.5s", timedelta(hours=2, minutes=45, seconds=30.5), "2h45m30.5s"),
    ("-5m", timedelta(minutes=-5), "-5m0s"),
])
def test_go_durations(text, value, canonical):
    assert parse_go_duration(text) == value
    assert format_go_duration(value) == canonical
    assert parse_go_duration(canonical) == value


@pytest.mark.parametrize("text", ["", "1", "1d", "h", "1h 30m", "1.h.", "1y", "--1s"])
def test_bad_go_durations(text):
    with pytest.raises(ValueError):
        parse_go_duration(text)


# --- kubeadm-config round trip (reference §5.2) ------------------------------------------------
def test_default_rendering_is_what_kubeadm_uploads():
    text = render_cluster_configuration(default_config(**NODE, kubernetes_version="v1.33.0").cluster)
    expected = yaml.safe_load((FIXTURES / "kubeadm-configmap-v1beta4.yaml").read_text())["data"]["ClusterConfiguration"]
    assert text == expected


@pytest.mark.parametrize("fixture", ["minimal.yaml", "v1beta4-full.yaml", "v1beta3-full.yaml", "v1beta4-equivalent.yaml"])
def test_round_trip(fixture):
    cluster = load_fixture(fixture).cluster
    data = cluster_configuration_v1beta4(cluster)
    assert list(data) == sorted(data)
    text = render_cluster_configuration(cluster)
    assert parse_cluster_configuration(text) == cluster
    assert render_cluster_configuration(parse_cluster_configuration(text)) == text  # byte-stable
    assert yaml.safe_load(text) == data


def test_rendering_details():
    cluster = load_fixture("v1beta4-full.yaml").cluster
    data = cluster_configuration_v1beta4(cluster)
    assert data["certificateValidityPeriod"] == "2160h0m0s"
    assert data["proxy"] == {"disabled": True}
    assert data["etcd"]["local"]["dataDir"] == "/data/etcd"
    assert data["apiServer"]["extraVolumes"] == [{"hostPath": "/var/log/kubernetes", "mountPath": "/var/log/kubernetes",
                                                  "name": "audit", "pathType": "DirectoryOrCreate"}]
    text = render_cluster_configuration(cluster)
    assert '"*.api.example.com"' in text and "'" not in text  # go-yaml quotes with double quotes
    assert "caCertificateValidityPeriod: 43800h0m0s\n" in text


@pytest.mark.parametrize("fixture", ["kubeadm-config-v1beta4.yaml", "kubeadm-configmap-v1beta4.yaml"])
def test_kubeadm_written_config_parses_and_renders_identically(fixture):
    text = (FIXTURES / fixture).read_text()
    if fixture.startswith("kubeadm-configmap"):
        text = yaml.safe_load(text)["data"]["ClusterConfiguration"]
    cluster = parse_cluster_configuration(text)
    assert cluster.kubernetes_version.startswith("v1.33.")
    assert render_cluster_configuration(cluster) == text


def test_kubeadm_written_config_values():
    cluster = parse_cluster_configuration((FIXTURES / "kubeadm-config-v1beta4.yaml").read_text())
    assert cluster.control_plane_endpoint == "192.0.2.10:6443"
    assert cluster.api_server.extra_args == (Arg("audit-log-maxage", "30"), Arg("profiling", "false"))
    assert cluster.controller_manager.extra_args == (Arg("bind-address", "0.0.0.0"),)
    assert cluster.feature_gate("ControlPlaneKubeletLocalMode", False) is True
    assert cluster.networking.pod_subnet == "10.244.0.0/16"


def test_old_v1beta3_kubeadm_config_parses():
    cluster = parse_cluster_configuration((FIXTURES / "kubeadm-config-v1beta3.yaml").read_text())
    assert cluster.api_server.extra_args == (Arg("authorization-mode", "Node,RBAC"),)
    assert cluster.control_plane_endpoint == "lb.example.com:6443"
    assert "apiVersion: kubeadm.k8s.io/v1beta4\n" in render_cluster_configuration(cluster)


@pytest.mark.parametrize("text,fragment", [
    ("", "found 0"),
    (INIT, "expected kind ClusterConfiguration"),
    (CLUSTER + "bogus: 1\n", "ClusterConfiguration.bogus: unknown field"),
    (CLUSTER + "---\n" + CLUSTER, "found 2"),
])
def test_parse_cluster_configuration_errors(text, fragment):
    with pytest.raises(ConfigError) as exc:
        parse_cluster_configuration(text)
    assert any(fragment in d and d.startswith("kubeadm-config ConfigMap: ") for d in exc.value.details), exc.value.details


def test_core_config_stays_pure():
    code = ("import sys, tasks.core.config.load, tasks.core.config.encode, tasks.core.inventory; "
            "bad = [m for m in ('fabric', 'invoke', 'paramiko') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def test_inline_empty_mapping_keeps_the_file_values():
    cfg = load(CLUSTER + "etcd: {local: {dataDir: /data/etcd}}\n", inline_cluster={"etcd": {}})
    assert cfg.cluster.etcd_local.data_dir == "/data/etcd"


def test_inline_list_replaces_the_file_list():
    cfg = load(CLUSTER + "apiServer: {certSANs: [a.example.com, b.example.com]}\n",
               inline_cluster={"apiServer": {"certSANs": ["c.example.com"]}})
    assert cfg.cluster.api_server.cert_sans == ("c.example.com",)


# --- reading a file for a join (kubeadm join semantics) -------------------------------------------
def test_for_join_ignores_init_and_defaults_the_join():
    text = INIT + "localAPIEndpoint: {advertiseAddress: 192.0.2.1}\n---\n" + CLUSTER
    cfg = load(text, for_join="worker", advertise_address="")
    assert cfg.init is None
    assert cfg.join.node_registration.name == "node-a" and cfg.join.control_plane is None
    assert cfg.join.discovery.token is None


def test_for_join_control_plane_adds_the_local_endpoint():
    cfg = load(CLUSTER, for_join="control-plane")
    assert cfg.join.control_plane.local_api_endpoint.advertise_address == "192.0.2.5"


def test_for_join_worker_drops_a_shared_control_plane_section():
    text = JOIN + "controlPlane: {localAPIEndpoint: {bindPort: 7443}}\ncaCertPath: /x/ca.crt\n"
    assert load(text, for_join="worker").join.control_plane is None
    cfg = load(text, for_join="control-plane")
    assert cfg.join.control_plane.local_api_endpoint.bind_port == 7443 and cfg.join.ca_cert_path == "/x/ca.crt"


def test_for_join_keeps_v1beta3_discovery_timeout():
    text = JOIN.replace("v1beta4", "v1beta3") + "discovery: {timeout: 1m}\n"
    assert load(text, for_join="worker").join.timeouts.discovery == timedelta(minutes=1)


def test_for_join_rejects_unknown_modes():
    with pytest.raises(ValueError):
        load(CLUSTER, for_join="master")


@pytest.mark.parametrize("gates", ["{WaitForAllControlPlaneComponents: true}", "{ControlPlaneKubeletLocalMode: true}",
                                   "{EtcdLearnerMode: true}"])
def test_a_ga_gate_set_to_its_locked_value_is_accepted(gates):
    text = CLUSTER + f"featureGates: {gates}\n"
    assert load(text, "cluster.yaml").cluster.kubernetes_version.startswith("v1.36")


# --- issue 15: wrong types and bounds are clean errors ---------------------------------------------
@pytest.mark.parametrize("doc,detail", [
    ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: {a: 1}\n", "kind must be a string, got mapping"),
    ("apiVersion: [kubeadm.k8s.io/v1beta4]\nkind: InitConfiguration\n", "apiVersion must be a string, got list"),
])
def test_kind_and_api_version_of_the_wrong_type(doc, detail):
    (got,) = errors_of(doc)
    assert got == f"test.yaml: document 1 (line 1): {detail}"


def test_durations_are_bounded_as_go_durations():
    assert parse_go_duration("2562047h") == timedelta(hours=2562047)
    for text in ("2562048h", "9" * 40 + "h", "9" * 5000 + "s", "1" + "0" * 20 + "ns"):
        with pytest.raises(ValueError, match="out of range"):
            parse_go_duration(text)
    assert parse_go_duration("1." + "0" * 5000 + "1s") == timedelta(seconds=1)  # Go drops the extra digits
    (detail,) = errors_of(CLUSTER + "certificateValidityPeriod: " + "9" * 40 + "h\n")
    assert "ClusterConfiguration.certificateValidityPeriod" in detail and "out of range" in detail


@pytest.mark.parametrize("doc,field,want", [
    ("authentication: {anonymous: 5}", "authentication.anonymous", "mapping"),
    ("authentication: x", "authentication", "mapping"),
    ("authentication: {webhook: {enabled: 'yes'}}", "authentication.webhook.enabled", "boolean"),
    ("featureGates: [a]", "featureGates", "mapping of booleans"),
    ("featureGates: {A: 1}", "featureGates", "mapping of booleans"),
    ("clusterDNS: [1]", "clusterDNS", "list of strings"),
    ("healthzPort: '10248'", "healthzPort", "integer"),
])
def test_kubelet_fields_kubefab_reads_are_type_checked(doc, field, want):
    (detail,) = errors_of(f"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{doc}\n")
    assert detail.startswith(f"test.yaml: KubeletConfiguration.{field}: must be a {want}, got ")


def test_kube_proxy_fields_kubefab_reads_are_type_checked():
    (detail,) = errors_of("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                          "clientConnection: {kubeconfig: [x]}\n")
    assert detail == "test.yaml: KubeProxyConfiguration.clientConnection.kubeconfig: must be a string, got list"


def test_yaml_bounds_are_problems_of_the_file():
    (detail,) = errors_of(CLUSTER + "clusterName: " + "[" * 100 + "]" * 100 + "\n")
    assert detail.startswith("test.yaml: line 3, column ") and "levels deep" in detail
    (detail,) = errors_of(CLUSTER + "apiServer: &a {certSANs: [*a]}\n")
    assert "recursive alias" in detail


def test_command_line_values_are_checked_and_never_echoed():
    key = "f" * 63 + "g"
    with pytest.raises(ConfigError) as exc:
        check_command_line(token=Secret("abcdef.0123456789abcdeX", "t"), ca_cert_hashes=["sha256:xyz"],
                             endpoint="192.0.2.10", certificate_key=Secret(key, "k"))
    err = exc.value
    assert [d.split(":")[1].strip() for d in err.details] == [
        "--token", "--discovery-token-ca-cert-hash[0]", "--endpoint", "--certificate-key"]
    assert "0123456789abcdeX" not in str(err) and key not in str(err) and err.fix
    check_command_line(token=Secret("abcdef.0123456789abcdef", "t"), ca_cert_hashes=["sha256:" + "a" * 64],
                         endpoint="[2001:db8::1]:6443", certificate_key=Secret("A" * 64, "k"))
