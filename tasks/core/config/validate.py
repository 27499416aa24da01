"""kubeadm's validation (``apis/kubeadm/validation``): formats, subnets, endpoints, SANs, feature
gates, the component configs' field types, and the command-line values that carry the same data.
Each check records its problems on the reader; nothing here raises but :func:`check_command_line`.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Any, Iterable, Mapping

from ..endpoints import is_dns1123_subdomain, is_ip, split_host_port
from ..errors import ConfigError
from ..secrets import Secret
from ..spec import ControlPlaneComponent
from ..versions import for_version
from ..yamlload import shown
from .decode import _dig, _Reader, _type_name


# --- formats ---------------------------------------------------------------------------------
# Bootstrap token format, cluster-bootstrap's BootstrapTokenPattern (reference §6).
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
# auth-extra-groups entries, cluster-bootstrap's BootstrapGroupPattern (reference §6).
TOKEN_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
TOKEN_USAGES = ("signing", "authentication")
CERTIFICATE_KEY_RE = re.compile(r"^[0-9a-fA-F]{64}$")  # AES-256 key, hex (reference §8.1)
CA_CERT_HASH_RE = re.compile(r"^sha256:[0-9a-fA-F]{64}$", re.I)  # discovery pins (§7.1)
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                    "CharDevice", "BlockDevice")


def _san_ok(text: str) -> bool:
    # kubeadm's ValidateCertSANs: an IP, a DNS-1123 subdomain or a wildcard subdomain.
    return is_ip(text) or is_dns1123_subdomain(text) or (
        text.startswith("*.") and is_dns1123_subdomain(text[2:]))


def _check_sans(r: _Reader, values: tuple[str, ...], path: str) -> None:
    for i, san in enumerate(values):
        if not _san_ok(san):
            r.err(f"{path}[{i}]", f"{san!r} is not an IP address, a DNS-1123 subdomain or a wildcard (*.example.com)")


def _check_absolute(r: _Reader, value: str, path: str) -> None:
    if value and not value.startswith("/"):
        r.err(path, f"{value!r} must be an absolute path")


# kubeadm constants: MinimumAddressesInServiceSubnet, MinimumAddressesInPodSubnet,
# PodSubnetNodeMaskMaxDiff; default node CIDR masks of kube-controller-manager
MIN_SERVICE_SUBNET_ADDRESSES = 10
MIN_POD_SUBNET_ADDRESSES = 254
POD_SUBNET_NODE_MASK_MAX_DIFF = 16
DEFAULT_NODE_MASK = {4: 24, 6: 64}

# image references as the container "reference" grammar has them (domain[:port]/path...)
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_NAME_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*$")


def _check_image_repository(r: _Reader, value: str, path: str) -> None:
    # kubeadm ValidateImageRepository: "<repo>/name:tag" must be a valid image reference
    if value and not _IMAGE_NAME_RE.match(value + "/name"):
        r.err(path, f"{value!r} is not a valid image repository (e.g. registry.k8s.io or registry.example.com:5000/k8s)")


def _check_pod_subnet_node_mask(r: _Reader, value: str, path: str, controller_manager: ControlPlaneComponent) -> None:
    """kubeadm ValidatePodSubnetNodeMask: the pod subnet must hold whole node subnets."""
    args = {a.name: a.value for a in controller_manager.extra_args}  # last one wins, as flags do
    if args.get("allocate-node-cidrs") == "false":
        return
    for part in value.split(","):
        try:
            net = ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            return  # already reported
        flag = f"node-cidr-mask-size-ipv{net.version}"
        raw = args.get(flag)
        if raw is None:
            node_mask = DEFAULT_NODE_MASK[net.version]
        elif raw.isdigit():
            node_mask = int(raw)
        else:
            r.err("ClusterConfiguration.controllerManager.extraArgs", f"{flag} {raw!r} is not an integer")
            continue
        if net.prefixlen > node_mask:
            r.err(path, f"{part.strip()}: the pod subnet (/{net.prefixlen}) is smaller than one node's subnet "
                        f"(/{node_mask}, kube-controller-manager {flag})")
        elif node_mask - net.prefixlen > POD_SUBNET_NODE_MASK_MAX_DIFF:
            r.err(path, f"{part.strip()}: the pod subnet mask /{net.prefixlen} and the node mask /{node_mask} "
                        f"differ by more than {POD_SUBNET_NODE_MASK_MAX_DIFF} (set {flag} in controllerManager.extraArgs)")


# one CIDR as Go's net.ParseCIDR takes it: <address>/<prefix length>, nothing around it
_CIDR_RE = re.compile(r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$")


def _check_cidrs(r: _Reader, value: str, path: str, *, service: bool) -> bool:
    """kubeadm ValidateIPNetFromString (+ ValidateServiceSubnetSize); True when the value is usable."""
    parts = value.split(",")
    nets: list[tuple[str, Any]] = []
    for part in parts:
        if part != part.strip():
            # kubeadm splits on "," and parses each piece as it is; so do the control-plane flags
            r.err(path, f"{value!r}: no spaces around the ',' between CIDRs (write {','.join(p.strip() for p in parts)!r})")
            continue
        if "/" not in part and is_ip(part):
            r.err(path, f"{part!r} is an address, not a CIDR: add the prefix length (e.g. 10.96.0.0/12)")
            continue
        try:
            if not _CIDR_RE.match(part):
                raise ValueError(part)
            # kubeadm parses sloppily (host bits may be set), like Go's net.ParseCIDR
            nets.append((part, ipaddress.ip_network(part, strict=False)))
        except ValueError:
            r.err(path, f"{part!r} is not a valid CIDR (e.g. 10.96.0.0/12)")
    if len(nets) != len(parts):
        return False
    if len(nets) > 2 or (len(nets) == 2 and nets[0][1].version == nets[1][1].version):
        r.err(path, f"{value!r}: give one CIDR, or two of different IP families for dual-stack")
        return False
    ok = True
    minimum = MIN_SERVICE_SUBNET_ADDRESSES if service else MIN_POD_SUBNET_ADDRESSES
    for text, net in nets:
        # kubeadm ValidateIPNetFromString: room for the service IPs kubeadm picks (.1, .10)
        if net.num_addresses < minimum:
            what = "service" if service else "pod"
            r.err(path, f"{text} is too small: a {what} subnet needs at least {minimum} addresses")
            ok = False
        # kube-apiserver's service CIDR limit (kubeadm ValidateServiceSubnetSize): at most
        # 20 host bits (/12 IPv4, /108 IPv6)
        elif service and net.max_prefixlen - net.prefixlen > 20:
            limit = "/12" if net.version == 4 else "/108"
            r.err(path, f"{text} is too large: the service subnet can be at most {limit}")
            ok = False
    return ok


def _check_endpoint(r: _Reader, value: str, path: str, *, what: str, require_port: bool = False) -> None:
    """kubeadm ParseHostPort (``host[:port]``); ``require_port`` as net.SplitHostPort (``host:port``)."""
    if value.startswith("[") and "]" not in value:
        r.err(path, f"{what} {value!r} has an unclosed '['")
        return
    host, port = split_host_port(value)
    if not (is_ip(host) or is_dns1123_subdomain(host)):
        r.err(path, f"{what} host {host!r} must be an IP address or a DNS-1123 subdomain (lower case)")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        r.err(path, f"{what} port {port!r} must be a number from 1 to 65535")
    elif not port:
        if require_port:
            r.err(path, f"{what} {value!r} has no port: give host:port, with an IPv6 address in brackets "
                        f"(192.0.2.10:6443, [2001:db8::10]:6443)")
        elif value.startswith("[") and value.endswith("]"):
            # kubeadm reads "[addr]" without a port as a host name, which it is not
            r.err(path, f"{what} {value!r}: an IPv6 address in brackets needs a port ({value}:6443); "
                        f"without a port write it bare ({host})")


# kubeadm's own feature gates (features.InitFeatureGates) that its validation accepts, per minor.
# A deprecated gate counts as unknown there: PublicKeysECDSA (v1beta3 only; kubefab converts it).
_KUBEADM_FEATURE_GATES: dict[int, tuple[str, ...]] = {
    33: ("ControlPlaneKubeletLocalMode", "NodeLocalCRISocket", "RootlessControlPlane",
         "WaitForAllControlPlaneComponents"),
    34: ("ControlPlaneKubeletLocalMode", "NodeLocalCRISocket", "RootlessControlPlane",
         "WaitForAllControlPlaneComponents"),
    35: ("ControlPlaneKubeletLocalMode", "NodeLocalCRISocket", "RootlessControlPlane"),
    36: ("NodeLocalCRISocket", "RootlessControlPlane"),
}
# gate -> the first minor in which the feature is GA and always on (true accepted, false refused)
_KUBEADM_GATES_REMOVED = {"EtcdLearnerMode": 33, "WaitForAllControlPlaneComponents": 35,
                          "ControlPlaneKubeletLocalMode": 36}
# gate values kubeadm accepts but kubefab does not implement: the cluster would silently differ
_KUBEFAB_UNSUPPORTED_GATES = {
    ("RootlessControlPlane", True): "kubefab runs the control-plane static Pods as root (kubeadm's default)",
    ("ControlPlaneKubeletLocalMode", False): "kubefab always points a control plane's kubelet at its local "
                                             "API server (kubeadm's default since v1.33)",
}


def _check_feature_gates(r: _Reader, gates: Iterable[tuple[str, bool]], path: str, version: str) -> None:
    """kubeadm ValidateFeatureGates: only kubeadm's own gates, by name, for the chosen version."""
    minor = for_version(version).minor
    known = _KUBEADM_FEATURE_GATES.get(minor, ())
    for name, value in gates:
        p = f"{path}.{name}"
        if name not in known:
            if name == "PublicKeysECDSA":
                r.err(p, "not accepted in v1beta4 (kubeadm deprecated it); set encryptionAlgorithm: ECDSA-P256 "
                         "instead")
            elif minor >= _KUBEADM_GATES_REMOVED.get(name, 1 << 30):
                # GA: kubeadm keeps such a gate locked on for a while before deleting it, so
                # "true" is accepted (it changes nothing); "false" cannot be honoured
                if value is not True:
                    r.err(p, f"the feature is always on in kubeadm v1.{minor} (the gate went GA); remove the gate")
            else:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
                hint = f"did you mean {close[0]!r}?" if close else f"kubeadm v1.{minor} knows: {', '.join(known)}"
                r.err(p, f"unknown kubeadm feature gate {name!r} ({hint}); gates of the Kubernetes components "
                         f"go in their extraArgs (feature-gates) or the KubeletConfiguration")
        elif (name, value) in _KUBEFAB_UNSUPPORTED_GATES:
            r.err(p, f"{str(value).lower()} is not supported: {_KUBEFAB_UNSUPPORTED_GATES[(name, value)]}; "
                     f"remove the gate")


# --- component configs ----------------------------------------------------------------------------
# The fields of KubeletConfiguration and KubeProxyConfiguration that kubefab reads or fills in
# (manifests.kubelet.kubelet_config_dict, manifests.addons.kube_proxy_config_dict); the documents
# are otherwise passed on as they are. kubeadm decodes them strictly into their Go types: a wrong
# type is its error too.
_COMPONENT_FIELD_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "KubeletConfiguration": (
        ("authentication", "mapping"), ("authentication.anonymous", "mapping"),
        ("authentication.anonymous.enabled", "boolean"), ("authentication.webhook", "mapping"),
        ("authentication.webhook.enabled", "boolean"), ("authentication.x509", "mapping"),
        ("authentication.x509.clientCAFile", "string"), ("authorization", "mapping"), ("authorization.mode", "string"),
        ("staticPodPath", "string"), ("clusterDNS", "list of strings"), ("clusterDomain", "string"),
        ("healthzBindAddress", "string"), ("healthzPort", "integer"), ("rotateCertificates", "boolean"),
        ("cgroupDriver", "string"), ("featureGates", "mapping of booleans"), ("resolvConf", "string"),
        ("containerRuntimeEndpoint", "string"),
    ),
    "KubeProxyConfiguration": (
        ("bindAddress", "string"), ("clusterCIDR", "string"), ("clientConnection", "mapping"),
        ("clientConnection.kubeconfig", "string"),
    ),
}
_TYPE_CHECKS = {
    "mapping": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "list of strings": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "mapping of booleans": lambda v: isinstance(v, dict) and all(isinstance(i, bool) for i in v.values()),
}


def _check_component_fields(r: _Reader, kind: str, doc: Mapping) -> None:
    for dotted, want in _COMPONENT_FIELD_TYPES.get(kind, ()):
        parent, leaf = _dig(doc, dotted)  # None when a parent is missing or already reported
        value = parent.get(leaf) if parent is not None else None
        if value is not None and not _TYPE_CHECKS[want](value):
            r.err(f"{kind}.{dotted}", f"must be a {want}, got {_type_name(value)}")


# --- command-line values ------------------------------------------------------------------------
def check_command_line(*, token: Secret | None = None, ca_cert_hashes: Iterable[str] = (), endpoint: str = "",
                       certificate_key: Secret | None = None) -> None:
    """The checks a config file's token, CA pins, endpoint and certificate key get, for the flags
    that carry them (kubeadm validates its flags the same way), before anything is written.

    :raises ConfigError: naming every bad flag (credentials are never echoed).
    """
    issues: list[str] = []
    r = _Reader("command line", issues)
    if token is not None and not TOKEN_RE.match(token.reveal()):
        r.err("--token", "invalid token: must be <id>.<secret>, 6 and 16 lower-case letters or digits")
    for i, pin in enumerate(ca_cert_hashes):
        if not CA_CERT_HASH_RE.match(pin):
            r.err(f"--discovery-token-ca-cert-hash[{i}]", f"{shown(pin)} must be sha256:<64 hex characters>")
    if endpoint:
        _check_endpoint(r, endpoint, "--endpoint", what="endpoint", require_port=True)
    if certificate_key is not None and not CERTIFICATE_KEY_RE.match(certificate_key.reveal()):
        r.err("--certificate-key", f"invalid certificate key: must be 64 hexadecimal characters "
                                   f"(got {len(certificate_key.reveal())} characters)")
    if issues:
        n = len(issues)
        raise ConfigError(f"{n} invalid command-line value{'s' if n != 1 else ''}", details=issues,
                          fix="correct each flag listed: a token is <6>.<16> lower-case letters and digits, a CA "
                              "pin is what `fab certs.ca-hash` prints, a certificate key is the 64-hex key "
                              "`fab init --upload-certs` printed")
