"""kube-controller-manager stand-in for the test lab.

The machines kubefab is tested on cannot run the real kube-controller-manager. This module
stands in for it: the lab kubelet starts it from kubefab's static pod manifest as
``<python> -m tests.lab.standins.controller_manager <kube-controller-manager flags>``. It reads
the same flags (reference §3.3), serves ``/healthz`` over HTTPS on ``--bind-address``:10257
with a self-signed certificate as the real one does, and runs the controllers kubeadm relies on,
each pass every ``KUBEFAB_STANDIN_SYNC_SECONDS`` (default 1 s):

- ``bootstrapsigner``: keeps ``jws-kubeconfig-<id>`` in ``kube-public/cluster-info`` equal to the
  detached JWS of ``data.kubeconfig`` for every signing token (reference §5.3, §7.3);
- ``tokencleaner``: deletes expired bootstrap token Secrets (reference §6);
- ``csrapproving``: approves kubelet client CSRs whose requester holds ``create`` on
  ``certificatesigningrequests/nodeclient`` (bootstrap) or ``.../selfnodeclient`` (renewal),
  checked with a SubjectAccessReview as the real approver does (the lab's stand-in API server
  serves them), or by evaluating the stored RBAC objects itself when the server answers 404;
- ``csrsigning``: signs approved ``kubernetes.io/kube-apiserver-client-kubelet`` CSRs with
  ``--cluster-signing-cert-file``/``--cluster-signing-key-file``;
- ``garbagecollector``: deletes Secrets, ConfigMaps, Pods and Leases whose owners are all gone (so
  ``kubeadm-certs`` goes with its 2-hour token Secret, reference §8.3);
- ``root-ca-cert-publisher``: the ``kube-root-ca.crt`` ConfigMap in every namespace;
- ``nodelifecycle``: a Node whose kubelet stopped posting status for
  ``--node-monitor-grace-period`` (50 s) turns Ready=Unknown and gets the
  ``node.kubernetes.io/unreachable`` taints, removed when the kubelet is back.

Differences from the real binary (test infrastructure only): no leader election (several
copies may run; every action is idempotent and guarded by uid/resourceVersion preconditions),
no watches (periodic lists). With ``--use-service-account-credentials=true`` each controller
runs as its own service account through the TokenRequest API, as the real binary does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.lab.standins.clientkit import (
    GENERIC_COMPONENT_FLAGS,
    ApiStatusError,
    FlagError,
    Kubeconfig,
    KubeClient,
    flag_true,
    load_kubeconfig,
    parse_flags,
    parse_go_duration,
    parse_rfc3339,
    rfc3339,
    setup_logging,
    start_health_server,
    utc_now,
)

PROGRAM = "kube-controller-manager"
SYNC_ENV = "KUBEFAB_STANDIN_SYNC_SECONDS"

# Bootstrap token wire facts (reference §6, §7.3; k8s.io/cluster-bootstrap/token/api).
TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
TOKEN_SECRET_PREFIX = "bootstrap-token-"
TOKEN_ID_RE = re.compile(r"^[a-z0-9]{6}$")
JWS_PREFIX = "jws-kubeconfig-"
KUBE_SYSTEM = "kube-system"
KUBE_PUBLIC = "kube-public"
CLUSTER_INFO = "cluster-info"

# CSR wire facts (k8s.io/api/certificates/v1).
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
# The real approver accepts exactly one of these usage sets for a kubelet client CSR
# (pkg/apis/certificates ValidateKubeletClientCSR): key encipherment only matters for RSA.
KUBELET_CLIENT_USAGES = (
    frozenset({"digital signature", "key encipherment", "client auth"}),
    frozenset({"digital signature", "client auth"}),
)
SIGNING_BACKDATE = dt.timedelta(minutes=5)
SHORT_CERT = dt.timedelta(hours=8)
MIN_REQUESTED_DURATION = dt.timedelta(minutes=10)
DEFAULT_SIGNING_DURATION = dt.timedelta(hours=8760)

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

# Controllers kubeadm relies on, by their legacy and current (1.28+) names. bootstrapsigner and
# tokencleaner are off unless named, which is why kubeadm passes
# --controllers=*,bootstrapsigner,tokencleaner.
CONTROLLER_ALIASES = {
    "bootstrapsigner": "bootstrapsigner", "bootstrap-signer-controller": "bootstrapsigner",
    "tokencleaner": "tokencleaner", "token-cleaner-controller": "tokencleaner",
    "csrapproving": "csrapproving", "certificatesigningrequest-approving-controller": "csrapproving",
    "csrsigning": "csrsigning", "certificatesigningrequest-signing-controller": "csrsigning",
    "garbagecollector": "garbagecollector", "garbage-collector-controller": "garbagecollector",
    "root-ca-cert-publisher": "root-ca-cert-publisher",
    "root-ca-certificate-publisher-controller": "root-ca-cert-publisher",
    "nodelifecycle": "nodelifecycle", "node-lifecycle-controller": "nodelifecycle",
}
DISABLED_BY_DEFAULT = {"bootstrapsigner", "tokencleaner"}
# Other controller names the real binary knows; accepted in --controllers, not run here.
OTHER_CONTROLLERS = {
    "attachdetach", "cloud-node-lifecycle", "clusterrole-aggregation", "cronjob", "csrcleaner",
    "daemonset", "deployment", "disruption", "endpoint", "endpointslice", "endpointslicemirroring",
    "ephemeral-volume", "horizontalpodautoscaling", "job", "legacy-service-account-token-cleaner",
    "namespace", "nodeipam", "persistentvolume-binder", "persistentvolume-expander",
    "podgc", "pv-protection", "pvc-protection", "replicaset", "replicationcontroller",
    "resource-claim-controller", "resourcequota", "route", "service", "serviceaccount",
    "serviceaccount-token", "statefulset", "ttl", "ttl-after-finished", "storage-version-gc",
    "validatingadmissionpolicy-status", "service-lb-controller", "node-route-controller",
    "cloud-node-controller", "selinux-warning-controller", "kube-apiserver-serving-clustertrustbundle-publisher",
}

# kube-controller-manager's flags (name -> is boolean). Unknown flags make the real binary exit
# with "unknown flag", so a typo in kubefab's manifest fails here as it would on a real node.
_BOOL = True
_VAL = False
KNOWN_FLAGS: dict[str, bool] = {
    **GENERIC_COMPONENT_FLAGS,
    **{name: _VAL for name in (
        "cluster-signing-cert-file", "cluster-signing-key-file", "cluster-signing-duration",
        "cluster-signing-kubelet-serving-cert-file", "cluster-signing-kubelet-serving-key-file",
        "cluster-signing-kubelet-client-cert-file", "cluster-signing-kubelet-client-key-file",
        "cluster-signing-kube-apiserver-client-cert-file", "cluster-signing-kube-apiserver-client-key-file",
        "cluster-signing-legacy-unknown-cert-file", "cluster-signing-legacy-unknown-key-file", "controllers",
        "cluster-name", "cluster-cidr", "service-cluster-ip-range", "node-cidr-mask-size",
        "node-cidr-mask-size-ipv4", "node-cidr-mask-size-ipv6", "cidr-allocator-type", "cloud-provider",
        "cloud-config", "external-cloud-volume-plugin", "root-ca-file", "service-account-private-key-file",
        "flex-volume-plugin-dir", "min-resync-period", "controller-start-interval", "node-monitor-period",
        "node-monitor-grace-period", "node-startup-grace-period", "node-eviction-rate",
        "secondary-node-eviction-rate", "large-cluster-size-threshold", "unhealthy-zone-threshold",
        "route-reconciliation-period", "terminated-pod-gc-threshold", "namespace-sync-period",
        "attach-detach-reconcile-sync-period", "concurrent-deployment-syncs", "concurrent-endpoint-syncs",
        "concurrent-gc-syncs", "concurrent-namespace-syncs", "concurrent-replicaset-syncs",
        "concurrent-service-syncs", "concurrent-serviceaccount-token-syncs", "concurrent-statefulset-syncs",
        "concurrent-rc-syncs", "concurrent-resource-quota-syncs", "concurrent-ttl-after-finished-syncs",
        "concurrent-job-syncs", "concurrent-cron-job-syncs", "concurrent-daemonset-syncs",
        "concurrent-horizontal-pod-autoscaler-syncs", "concurrent-service-endpoint-syncs",
        "concurrent-ephemeralvolume-syncs", "concurrent-validating-admission-policy-status-syncs",
        "horizontal-pod-autoscaler-sync-period", "horizontal-pod-autoscaler-tolerance",
        "horizontal-pod-autoscaler-downscale-stabilization",
        "horizontal-pod-autoscaler-cpu-initialization-period",
        "horizontal-pod-autoscaler-initial-readiness-delay", "pv-recycler-increment-timeout-nfs",
        "pv-recycler-minimum-timeout-hostpath", "pv-recycler-minimum-timeout-nfs",
        "pv-recycler-pod-template-filepath-hostpath", "pv-recycler-pod-template-filepath-nfs",
        "pv-recycler-timeout-increment-hostpath", "volume-host-cidr-denylist", "leader-migration-config",
    )},
    **{name: _BOOL for name in (
        "use-service-account-credentials", "allocate-node-cidrs", "configure-cloud-routes",
        "enable-garbage-collector", "enable-hostpath-provisioner", "disable-attach-detach-reconcile-sync",
        "enable-dynamic-provisioning", "enable-leader-migration", "volume-host-allow-local-loopback",
        "disable-force-detach-on-timeout",
    )},
}


# ---------------------------------------------------------------------------- pure helpers
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compute_detached_jws(content: str, token_id: str, token_secret: str) -> str:
    """The detached JWS kubeadm verifies during discovery (reference §7.3).

    HS256 keyed by the token *secret*; protected header exactly ``{"alg":"HS256","kid":"<id>"}``;
    value ``<b64 header>..<b64 signature>`` (payload removed). HMAC zero-pads keys to the block
    size, so go-jose's 32-byte zero padding of the 16-char secret gives the same bytes.
    """
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    signing_input = f"{header}.{_b64url(content.encode())}".encode()
    signature = hmac.new(token_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}..{_b64url(signature)}"


def secret_value(secret: dict[str, Any], key: str) -> str:
    """A Secret's data value, base64-decoded ('' when absent or undecodable)."""
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return ""
    try:
        return base64.b64decode(raw).decode()
    except ValueError:
        return ""


def token_expired(secret: dict[str, Any], now: dt.datetime) -> bool:
    """Expired as cluster-bootstrap decides: past ``expiration``, or an unparsable one."""
    expiration = secret_value(secret, "expiration")
    if not expiration:
        return False
    try:
        return parse_rfc3339(expiration) <= now
    except ValueError:
        return True


def signing_token(secret: dict[str, Any], now: dt.datetime) -> tuple[str, str] | None:
    """(id, secret) when this token Secret may sign cluster-info, as the bootstrapsigner checks:
    name ``bootstrap-token-<id>`` matching ``token-id``, a secret, not expired,
    ``usage-bootstrap-signing: "true"``."""
    if secret.get("type") != TOKEN_SECRET_TYPE:
        return None
    name = (secret.get("metadata") or {}).get("name", "")
    if not name.startswith(TOKEN_SECRET_PREFIX):
        return None
    name_id = name[len(TOKEN_SECRET_PREFIX):]
    token_id = secret_value(secret, "token-id")
    if not TOKEN_ID_RE.match(name_id) or token_id != name_id:
        return None
    token_secret = secret_value(secret, "token-secret")
    if not token_secret or token_expired(secret, now):
        return None
    if secret_value(secret, "usage-bootstrap-signing") != "true":
        return None
    return token_id, token_secret


def parse_csr_pem(request_b64: str) -> x509.CertificateSigningRequest:
    """spec.request (base64 of a PEM ``CERTIFICATE REQUEST``) -> parsed CSR.

    :raises ValueError: when it is not one.
    """
    pem = base64.b64decode(request_b64)
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    return x509.load_pem_x509_csr(pem)


def kubelet_client_csr_problem(req: x509.CertificateSigningRequest, usages: list[str]) -> str | None:
    """Why a CSR is not a valid kubelet client request (None when it is).

    The rules of the real approver and signer: O exactly ``[system:nodes]``, no SANs of any
    kind, CN ``system:node:<name>``, usages exactly {digital signature, client auth} plus
    optionally key encipherment.
    """
    orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if orgs != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    try:
        san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for kind, label in ((x509.DNSName, "DNS"), (x509.RFC822Name, "Email"),
                            (x509.IPAddress, "IP"), (x509.UniformResourceIdentifier, "URI")):
            if san.get_values_for_type(kind):
                return f"{label} subjectAltNames are not allowed"
    cns = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or not str(cns[0].value).startswith(NODE_USER_PREFIX):
        return "subject common name does not begin with system:node:"
    if frozenset(usages) not in KUBELET_CLIENT_USAGES or len(set(usages)) != len(usages):
        return "usages did not match [client auth digital signature key encipherment]"
    return None


def csr_common_name(req: x509.CertificateSigningRequest) -> str:
    cns = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def condition_true(csr: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == "True"
               for c in (csr.get("status") or {}).get("conditions") or [])


_KEY_USAGE_BITS = {
    "signing": "digital_signature", "digital signature": "digital_signature",
    "content commitment": "content_commitment", "key encipherment": "key_encipherment",
    "key agreement": "key_agreement", "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign", "crl sign": "crl_sign",
    "encipher only": "encipher_only", "decipher only": "decipher_only",
}
_EXT_USAGES = {
    "any": x509.ObjectIdentifier("2.5.29.37.0"), "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION, "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING, "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}


def sign_csr(req: x509.CertificateSigningRequest, usages: list[str], ca_cert: x509.Certificate,
             ca_key: Any, ttl: dt.timedelta, now: dt.datetime) -> bytes:
    """Sign like the real csrsigning controller (PermissiveSigningPolicy), return PEM.

    Subject copied from the request, random 128-bit serial, the requested usages, CA=false,
    NotBefore backdated 5 min, NotAfter = NotBefore + ttl (now + ttl under 8 h), capped at the
    CA's NotAfter; the issuer's SKID as AKID (what Go's x509 adds).

    :raises ValueError: for a bad CSR signature, an unknown usage or an expired signer.
    """
    if not req.is_signature_valid:
        raise ValueError("unable to verify certificate request signature")
    bits = dict.fromkeys(_KEY_USAGE_BITS.values(), False)
    ekus: list[x509.ObjectIdentifier] = []
    for usage in usages:
        if usage in _KEY_USAGE_BITS:
            bits[_KEY_USAGE_BITS[usage]] = True
        elif usage in _EXT_USAGES:
            if _EXT_USAGES[usage] not in ekus:
                ekus.append(_EXT_USAGES[usage])
        else:
            raise ValueError(f"unrecognized usage values: {usage!r}")
    ca_not_after = ca_cert.not_valid_after_utc
    if now >= ca_not_after:
        raise ValueError("refusing to sign a certificate that expired in the past")
    not_before = now - SIGNING_BACKDATE
    not_after = now + ttl if ttl < SHORT_CERT else not_before + ttl
    not_after = min(not_after, ca_not_after)
    builder = (
        x509.CertificateBuilder()
        .subject_name(req.subject).issuer_name(ca_cert.subject)
        .public_key(req.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1 or 1)
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if any(bits.values()):
        if not bits["key_agreement"]:
            bits["encipher_only"] = bits["decipher_only"] = False
        builder = builder.add_extension(x509.KeyUsage(**bits), critical=True)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    try:
        skid = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(skid), critical=False)
    except x509.ExtensionNotFound:
        pass
    san = None
    try:
        san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    algorithm: hashes.HashAlgorithm = hashes.SHA256()
    if isinstance(ca_key, ec.EllipticCurvePrivateKey) and ca_key.curve.key_size >= 384:
        algorithm = hashes.SHA384()  # Go picks SHA-384 for P-384 issuers
    cert = builder.sign(ca_key, algorithm)
    return cert.public_bytes(serialization.Encoding.PEM)


def signing_duration(flag_value: str | None) -> dt.timedelta:
    """Parse --cluster-signing-duration (a Go duration such as ``8760h0m0s`` or ``90m``).

    :raises ValueError: on a malformed value.
    """
    if not flag_value:
        return DEFAULT_SIGNING_DURATION
    return parse_go_duration(flag_value)


def requested_duration(csr: dict[str, Any], max_ttl: dt.timedelta) -> dt.timedelta:
    """spec.expirationSeconds honoured below the signer's maximum, never under 10 minutes."""
    seconds = (csr.get("spec") or {}).get("expirationSeconds")
    if seconds is None:
        return max_ttl
    wanted = dt.timedelta(seconds=int(seconds))
    return max(MIN_REQUESTED_DURATION, min(wanted, max_ttl))


# ---------------------------------------------------------------------------- RBAC evaluation
def _rule_allows(rule: dict[str, Any], verb: str, group: str, resource: str, subresource: str,
                 name: str) -> bool:
    # Mirrors RBAC's rule matching: "*" wildcards, "<resource>/<sub>" and "*/<sub>" resources,
    # resourceNames restricting by name (a create carries no name, so they never match it).
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    combined = f"{resource}/{subresource}" if subresource else resource
    resources = rule.get("resources") or []
    if not any(r == "*" or r == combined or (subresource and r == f"*/{subresource}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or name in names


def _subject_matches(subject: dict[str, Any], user: str, groups: list[str], binding_ns: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


def rbac_allows(cluster_roles: list[dict[str, Any]], cluster_bindings: list[dict[str, Any]],
                user: str, groups: list[str], verb: str, group: str, resource: str,
                subresource: str = "", name: str = "") -> bool:
    """Decide a cluster-scoped request from ClusterRoles and ClusterRoleBindings as RBAC does.

    ``system:masters`` is always allowed, as the real server's privileged group is.
    """
    if "system:masters" in groups:
        return True
    roles = {(r.get("metadata") or {}).get("name"): r for r in cluster_roles}
    for binding in cluster_bindings:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") != "ClusterRole":
            continue
        if not any(_subject_matches(s, user, groups, "") for s in binding.get("subjects") or []):
            continue
        role = roles.get(ref.get("name"))
        if role and any(_rule_allows(rule, verb, group, resource, subresource, name)
                        for rule in role.get("rules") or []):
            return True
    return False


# ---------------------------------------------------------------------------- controllers
@dataclass
class Options:
    """The flags the stand-in acts on (others are accepted and ignored, as documented)."""

    kubeconfig: str
    bind_address: str = "127.0.0.1"
    secure_port: int = 10257
    controllers: list[str] = field(default_factory=lambda: ["*"])
    signing_cert_file: str = ""
    signing_key_file: str = ""
    signing_duration: dt.timedelta = DEFAULT_SIGNING_DURATION
    root_ca_file: str = ""
    node_monitor_grace_period: dt.timedelta = dt.timedelta(seconds=50)


def controller_enabled(spec: list[str], name: str) -> bool:
    """Evaluate --controllers as the real binary does: ``*`` = default-on ones, ``-x`` = off."""
    wanted = {CONTROLLER_ALIASES.get(s.lstrip("-"), s.lstrip("-")) for s in spec if not s.startswith("-")}
    unwanted = {CONTROLLER_ALIASES.get(s[1:], s[1:]) for s in spec if s.startswith("-")}
    if name in unwanted:
        return False
    if name in wanted:
        return True
    return "*" in spec and name not in DISABLED_BY_DEFAULT


def options_from_flags(flags: dict[str, str]) -> Options:
    """Validate the flags the way the real binary fails at start-up.

    :raises FlagError: with the message the operator needs.
    """
    kubeconfig = flags.get("kubeconfig", "")
    if not kubeconfig:
        raise FlagError(f"{PROGRAM} stand-in: --kubeconfig is required (no in-cluster config in the lab)")
    controllers = [c.strip() for c in flags.get("controllers", "*").split(",") if c.strip()]
    for c in controllers:
        bare = c.lstrip("-")
        if bare != "*" and bare not in CONTROLLER_ALIASES and bare not in OTHER_CONTROLLERS \
                and not bare.endswith("-controller"):
            raise FlagError(f"{PROGRAM}: {bare!r} is not in the list of known controllers")
    try:
        duration = signing_duration(flags.get("cluster-signing-duration"))
        grace = parse_go_duration(flags.get("node-monitor-grace-period", "50s"))
        port = int(flags.get("secure-port", "10257"))
    except ValueError as exc:
        raise FlagError(f"{PROGRAM}: {exc}") from exc
    cert, key = flags.get("cluster-signing-cert-file", ""), flags.get("cluster-signing-key-file", "")
    if bool(cert) != bool(key):
        raise FlagError(f"{PROGRAM}: --cluster-signing-cert-file and --cluster-signing-key-file "
                        "must be set together")
    # A signer-specific pair overrides the shared one for kubelet client certificates.
    kcert = flags.get("cluster-signing-kubelet-client-cert-file", "")
    kkey = flags.get("cluster-signing-kubelet-client-key-file", "")
    if bool(kcert) != bool(kkey):
        raise FlagError(f"{PROGRAM}: --cluster-signing-kubelet-client-cert-file and "
                        "--cluster-signing-kubelet-client-key-file must be set together")
    if kcert and cert:
        raise FlagError(f"{PROGRAM}: --cluster-signing-{{cert,key}}-file cannot be combined with "
                        "signer-specific files")
    cert, key = (kcert, kkey) if kcert else (cert, key)
    # Files the real binary reads at start-up: a missing one stops it there.
    for name in ("kubeconfig", "cluster-signing-cert-file", "cluster-signing-key-file", "root-ca-file",
                 "service-account-private-key-file", "cluster-signing-kubelet-client-cert-file",
                 "cluster-signing-kubelet-client-key-file"):
        value = flags.get(name, "")
        if value and not Path(value).is_file():
            raise FlagError(f"{PROGRAM}: --{name}={value}: no such file")
    return Options(
        kubeconfig=kubeconfig, bind_address=flags.get("bind-address", "0.0.0.0"), secure_port=port,
        controllers=controllers, signing_cert_file=cert, signing_key_file=key,
        signing_duration=duration, root_ca_file=flags.get("root-ca-file", ""),
        node_monitor_grace_period=grace,
    )


# Kinds whose owners the garbage collector can look up: (apiVersion, kind) -> (path, namespaced).
OWNER_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Secret"): ("/api/v1/{ns}secrets/", True),
    ("v1", "ConfigMap"): ("/api/v1/{ns}configmaps/", True),
    ("v1", "Pod"): ("/api/v1/{ns}pods/", True),
    ("v1", "Service"): ("/api/v1/{ns}services/", True),
    ("v1", "ServiceAccount"): ("/api/v1/{ns}serviceaccounts/", True),
    ("v1", "Node"): ("/api/v1/nodes/", False),
    ("v1", "Namespace"): ("/api/v1/namespaces/", False),
    ("apps/v1", "Deployment"): ("/apis/apps/v1/{ns}deployments/", True),
    ("apps/v1", "DaemonSet"): ("/apis/apps/v1/{ns}daemonsets/", True),
    ("apps/v1", "ReplicaSet"): ("/apis/apps/v1/{ns}replicasets/", True),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): (CSR_PATH + "/", False),
}
# Dependents the garbage collector looks at: (API prefix, namespaced resource).
GC_RESOURCES = (("/api/v1", "secrets"), ("/api/v1", "configmaps"), ("/api/v1", "pods"),
                ("/apis/coordination.k8s.io/v1", "leases"))


# The service account each controller runs as with --use-service-account-credentials=true
# (kubeadm's default), named as the real controller-manager names them.
CONTROLLER_SERVICE_ACCOUNTS = {
    "bootstrapsigner": "bootstrap-signer", "tokencleaner": "token-cleaner",
    "csrapproving": "certificate-controller", "csrsigning": "certificate-controller",
    "garbagecollector": "generic-garbage-collector", "root-ca-cert-publisher": "root-ca-cert-publisher",
    "nodelifecycle": "node-controller",
}
SA_TOKEN_SECONDS = 3607  # what the real controller-manager asks for (1 h + jitter)


def _rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        rule["resourceNames"] = names
    return rule


_EVENTS = _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"])


def controller_policy_objects() -> list[tuple[str, dict[str, Any]]]:
    """The ``system:controller:*`` roles and bindings the real API server's bootstrap policy
    gives the controllers this stand-in runs, as (collection path, object) pairs.

    With ``--use-service-account-credentials=true`` these are what let each controller write;
    an API server stand-in should create them at start-up like the other default roles.
    """
    rbac = "rbac.authorization.k8s.io"
    cluster_roles = {
        "system:controller:certificate-controller": [
            _rule(["delete", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
            _rule(["update"], ["certificates.k8s.io"],
                  ["certificatesigningrequests/approval", "certificatesigningrequests/status"]),
            _rule(["approve"], ["certificates.k8s.io"], ["signers"], [
                "kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/legacy-unknown"]),
            _rule(["sign"], ["certificates.k8s.io"], ["signers"], [
                "kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving", "kubernetes.io/legacy-unknown"]),
            _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            _EVENTS,
        ],
        "system:controller:generic-garbage-collector": [
            _rule(["delete", "get", "list", "patch", "update", "watch"], ["*"], ["*"]), _EVENTS],
        "system:controller:root-ca-cert-publisher": [
            _rule(["create", "update"], [""], ["configmaps"]), _EVENTS],
        "system:controller:node-controller": [
            _rule(["delete", "get", "list", "patch", "update"], [""], ["nodes"]),
            _rule(["patch", "update"], [""], ["nodes/status"]),
            _rule(["patch", "update"], [""], ["pods/status"]),
            _rule(["delete", "list"], [""], ["pods"]),
            _EVENTS],
    }
    roles = {
        (KUBE_SYSTEM, "system:controller:bootstrap-signer"): [_rule(["get", "list", "watch"], [""], ["secrets"])],
        (KUBE_PUBLIC, "system:controller:bootstrap-signer"): [
            _rule(["get", "list", "watch"], [""], ["configmaps"]),
            _rule(["update"], [""], ["configmaps"], [CLUSTER_INFO]), _EVENTS],
        (KUBE_SYSTEM, "system:controller:token-cleaner"): [
            _rule(["delete", "get", "list", "watch"], [""], ["secrets"]), _EVENTS],
    }
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

    def sa_subject(role_name: str) -> list[dict[str, str]]:
        return [{"kind": "ServiceAccount", "name": role_name.rsplit(":", 1)[1], "namespace": KUBE_SYSTEM}]

    out: list[tuple[str, dict[str, Any]]] = []
    for name, rules in cluster_roles.items():
        meta = {"name": name, "labels": labels, "annotations": annotations}
        out.append((f"/apis/{rbac}/v1/clusterroles", {
            "apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}))
        out.append((f"/apis/{rbac}/v1/clusterrolebindings", {
            "apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": dict(meta),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name}, "subjects": sa_subject(name)}))
    for (ns, name), rules in roles.items():
        meta = {"name": name, "namespace": ns, "labels": labels, "annotations": annotations}
        out.append((f"/apis/{rbac}/v1/namespaces/{ns}/roles", {
            "apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": meta, "rules": rules}))
        out.append((f"/apis/{rbac}/v1/namespaces/{ns}/rolebindings", {
            "apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": dict(meta),
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": name}, "subjects": sa_subject(name)}))
    return out


class Credentials:
    """The client each controller uses.

    With ``--use-service-account-credentials=true`` the real controller-manager runs each
    controller as ``system:serviceaccount:kube-system:<controller sa>``: it creates the service
    account with its own identity and gets a token through the TokenRequest API. So the API
    server's bootstrap policy (the ``system:controller:*`` roles) decides what each controller
    may do, exactly as on a real cluster. Without the flag every controller uses ``--kubeconfig``.
    """

    def __init__(self, main: KubeClient, config: Kubeconfig | None, use_service_accounts: bool,
                 log: Any, now: Callable[[], dt.datetime] = utc_now) -> None:
        self.main = main
        self._config = config
        self._use_sa = use_service_accounts and config is not None
        self._log = log
        self._now = now
        self._cache: dict[str, tuple[dt.datetime, KubeClient]] = {}

    @property
    def uses_service_accounts(self) -> bool:
        return self._use_sa

    def forget(self, controller: str) -> None:
        """Drop the cached token of ``controller``'s service account."""
        cached = self._cache.pop(CONTROLLER_SERVICE_ACCOUNTS.get(controller, ""), None)
        if cached is not None:
            cached[1].close()

    def client(self, controller: str) -> KubeClient:
        if not self._use_sa or self._config is None:
            return self.main
        sa = CONTROLLER_SERVICE_ACCOUNTS[controller]
        cached = self._cache.get(sa)
        if cached and self._now() < cached[0]:
            return cached[1]
        base = f"/api/v1/namespaces/{KUBE_SYSTEM}/serviceaccounts"
        if self.main.get(f"{base}/{sa}") is None:
            status, body = self.main.request("POST", base, {
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": KUBE_SYSTEM}})
            if status not in (201, 409):
                message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
                raise ApiStatusError(status, "", f"creating service account {KUBE_SYSTEM}/{sa}: {message}")
            self._log.info("created service account %s/%s", KUBE_SYSTEM, sa)
        answer = self.main.call("POST", f"{base}/{sa}/token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": SA_TOKEN_SECONDS}})
        token = (answer.get("status") or {}).get("token")
        if not token:
            raise ApiStatusError(500, "", f"TokenRequest for {KUBE_SYSTEM}/{sa} returned no token")
        now = self._now()
        try:
            expires = parse_rfc3339((answer.get("status") or {}).get("expirationTimestamp", ""))
        except ValueError:
            expires = now + dt.timedelta(seconds=SA_TOKEN_SECONDS)
        # CA only: a client certificate would win over the bearer token at the API server.
        sa_config = replace(self._config, cert_pem=None, key_pem=None, token=token)
        client = KubeClient(sa_config.server, sa_config.ssl_context(), token=token,
                            user_agent=f"kube-controller-manager-standin/{sa}")
        self._cache[sa] = (now + (expires - now) * 0.8, client)
        return client


class ControllerManager:
    """The controllers, one pass per :meth:`sync_once`; each controller's errors are logged
    and never stop the others.

    Reads go through the controller-manager's own identity (the real one reads through shared
    informers started with it: ``system:kube-controller-manager`` may list everything), writes
    through each controller's credentials (its service account with
    ``--use-service-account-credentials``), so the ``system:controller:*`` roles decide them.
    """

    def __init__(self, creds: Credentials, options: Options, log: Any,
                 now: Callable[[], dt.datetime] = utc_now) -> None:
        self.creds = creds
        self.client = creds.main
        self.options = options
        self.log = log
        self.now = now
        self._ca: tuple[float, x509.Certificate, Any] | None = None
        self._sar_supported: bool | None = None
        self._last_errors: dict[str, str] = {}
        self.controllers: list[tuple[str, Callable[[], None]]] = []
        for name, fn in (("tokencleaner", self.token_cleaner), ("bootstrapsigner", self.bootstrap_signer),
                         ("csrapproving", self.csr_approver), ("csrsigning", self.csr_signer),
                         ("garbagecollector", self.garbage_collector),
                         ("root-ca-cert-publisher", self.root_ca_publisher),
                         ("nodelifecycle", self.node_lifecycle)):
            if not controller_enabled(options.controllers, name):
                continue
            if name == "csrsigning" and not options.signing_cert_file:
                # The real binary skips the signer without a CA key (external-CA mode).
                log.info("skipping CSR signer controller because no csr cert/key was specified")
                continue
            if name == "root-ca-cert-publisher" and not options.root_ca_file:
                continue
            self.controllers.append((name, fn))
        log.info("controllers enabled: %s", ", ".join(n for n, _ in self.controllers) or "none")

    def sync_once(self) -> None:
        for name, fn in self.controllers:
            try:
                fn()
                if self._last_errors.pop(name, None) is not None:
                    self.log.info("%s: recovered", name)
            except Exception as exc:  # noqa: BLE001 - a controller failure must not stop the loop
                if isinstance(exc, ApiStatusError) and exc.code == 401:
                    self.creds.forget(name)  # a token the server no longer accepts: get a new one
                text = f"{type(exc).__name__}: {exc}"
                if (isinstance(exc, ApiStatusError) and exc.code == 403 and self.creds.uses_service_accounts
                        and "system:serviceaccount:" in exc.message):
                    text += (f" (the API server's default policy must grant the system:controller:* role of "
                             f"service account {KUBE_SYSTEM}/{CONTROLLER_SERVICE_ACCOUNTS[name]}, as the real "
                             "kube-apiserver does; see controller_policy_objects())")
                if self._last_errors.get(name) != text:
                    self.log.error("%s: %s", name, text)
                self._last_errors[name] = text

    # -- bootstrapsigner ---------------------------------------------------------------------
    def _token_secrets(self, client: KubeClient) -> list[dict[str, Any]]:
        secrets = client.list(f"/api/v1/namespaces/{KUBE_SYSTEM}/secrets")
        return [s for s in secrets if s.get("type") == TOKEN_SECRET_TYPE]

    def bootstrap_signer(self) -> None:
        """Keep one ``jws-kubeconfig-<id>`` per signing token in cluster-info, nothing stale."""
        path = f"/api/v1/namespaces/{KUBE_PUBLIC}/configmaps/{CLUSTER_INFO}"
        cm = self.client.get(path)
        if cm is None:
            return
        data = dict(cm.get("data") or {})
        content = data.get("kubeconfig")
        if content is None:
            return
        now = self.now()
        wanted: dict[str, str] = {}
        for secret in self._token_secrets(self.client):
            token = signing_token(secret, now)
            if token and token[0] not in wanted:
                wanted[token[0]] = compute_detached_jws(content, *token)
        current = {k[len(JWS_PREFIX):]: v for k, v in data.items() if k.startswith(JWS_PREFIX)}
        if current == wanted:
            return
        new_data = {k: v for k, v in data.items() if not k.startswith(JWS_PREFIX)}
        new_data.update({JWS_PREFIX + tid: sig for tid, sig in wanted.items()})
        cm["data"] = new_data
        try:
            self.creds.client("bootstrapsigner").replace(path, cm)  # carries resourceVersion: a concurrent edit -> 409, retry next pass
        except ApiStatusError as exc:
            if exc.code in (404, 409):
                return
            raise
        added = sorted(set(wanted) - set(current))
        removed = sorted(set(current) - set(wanted))
        changed = sorted(t for t in set(wanted) & set(current) if wanted[t] != current[t])
        self.log.info("bootstrapsigner: cluster-info signatures updated (added %s, removed %s, re-signed %s)",
                      added, removed, changed)

    # -- tokencleaner ------------------------------------------------------------------------
    def token_cleaner(self) -> None:
        """Delete expired bootstrap token Secrets (uid precondition: never a newer namesake)."""
        now = self.now()
        for secret in self._token_secrets(self.client):
            if not token_expired(secret, now):
                continue
            meta = secret.get("metadata") or {}
            name = meta.get("name", "")
            path = f"/api/v1/namespaces/{KUBE_SYSTEM}/secrets/{name}"
            if self.creds.client("tokencleaner").delete(path, uid=meta.get("uid")):
                self.log.info("tokencleaner: deleted expired bootstrap token Secret %s/%s", KUBE_SYSTEM, name)

    # -- csrapproving ------------------------------------------------------------------------
    def _authorized(self, csr: dict[str, Any], subresource: str) -> bool:
        spec = csr.get("spec") or {}
        user, groups = spec.get("username", ""), list(spec.get("groups") or [])
        if self._sar_supported is not False:
            sar = {
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user, "uid": spec.get("uid", ""), "groups": groups,
                         "extra": spec.get("extra") or {},
                         "resourceAttributes": {"group": "certificates.k8s.io", "resource":
                                                "certificatesigningrequests", "verb": "create",
                                                "subresource": subresource}},
            }
            status, body = self.creds.client("csrapproving").request(
                "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
            if status in (200, 201) and isinstance(body, dict):
                self._sar_supported = True
                return bool((body.get("status") or {}).get("allowed"))
            if status in (404, 405):
                self._sar_supported = False
                self.log.info("csrapproving: the API server does not serve SubjectAccessReviews; "
                              "evaluating the stored RBAC objects instead")
            else:
                message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
                raise ApiStatusError(status, "", f"SubjectAccessReview failed: {message}")
        # Read with the controller-manager's own identity (it may list everything).
        roles = self.client.list("/apis/rbac.authorization.k8s.io/v1/clusterroles")
        bindings = self.client.list("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")
        return rbac_allows(roles, bindings, user, groups, "create", "certificates.k8s.io",
                           "certificatesigningrequests", subresource)

    def csr_approver(self) -> None:
        """Approve kubelet client CSRs the requester may have auto-approved (self first)."""
        for csr in self.client.list(CSR_PATH):
            status = csr.get("status") or {}
            if status.get("certificate") or condition_true(csr, "Approved") or condition_true(csr, "Denied"):
                continue
            spec = csr.get("spec") or {}
            name = (csr.get("metadata") or {}).get("name", "")
            if spec.get("signerName") != KUBELET_CLIENT_SIGNER:
                continue
            try:
                req = parse_csr_pem(spec.get("request", ""))
            except ValueError as exc:
                self._note(f"csr-parse/{name}", f"csrapproving: unable to parse csr {name!r}: {exc}")
                continue
            if kubelet_client_csr_problem(req, list(spec.get("usages") or [])) is not None:
                continue  # not a kubelet client request: the real approver ignores it too
            tried: list[str] = []
            recognizers = [("selfnodeclient", spec.get("username") == csr_common_name(req)), ("nodeclient", True)]
            for subresource, recognized in recognizers:
                if not recognized:
                    continue
                tried.append(subresource)
                if self._authorized(csr, subresource):
                    self._approve(csr, subresource)
                    break
            else:
                self._note(f"csr-denied/{name}", f"csrapproving: recognized csr {name!r} as {tried} "
                           "but subject access review was not approved")

    def _approve(self, csr: dict[str, Any], subresource: str) -> None:
        name = csr["metadata"]["name"]
        when = rfc3339(self.now())
        message = ("Auto-approved by the kube-controller-manager stand-in: requester may create "
                   f"certificatesigningrequests/{subresource}")
        status = dict(csr.get("status") or {})
        status["conditions"] = list(status.get("conditions") or []) + [{
            "type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
            "lastUpdateTime": when, "lastTransitionTime": when,
        }]
        csr["status"] = status
        try:
            self.creds.client("csrapproving").replace(f"{CSR_PATH}/{name}/approval", csr)
        except ApiStatusError as exc:
            if exc.code in (404, 409):
                return
            raise
        self.log.info("csrapproving: approved %s for %s (%s)", name, csr["spec"].get("username"), subresource)

    # -- csrsigning --------------------------------------------------------------------------
    def _signing_ca(self) -> tuple[x509.Certificate, Any]:
        cert_file, key_file = self.options.signing_cert_file, self.options.signing_key_file
        stamp = max(os.stat(cert_file).st_mtime, os.stat(key_file).st_mtime)
        if self._ca is None or self._ca[0] != stamp:
            # Reloaded when the files change, as the real signer's dynamic CA provider does.
            cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
            if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
                raise ValueError(f"{key_file}: unsupported key type (RSA or ECDSA expected)")
            spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
                raise ValueError(f"{cert_file} and {key_file} do not match")
            self._ca = (stamp, cert, key)
        return self._ca[1], self._ca[2]

    def csr_signer(self) -> None:
        """Issue certificates for approved kubelet client CSRs (or mark them Failed)."""
        for csr in self.client.list(CSR_PATH):
            spec = csr.get("spec") or {}
            status = csr.get("status") or {}
            if spec.get("signerName") != KUBELET_CLIENT_SIGNER or status.get("certificate"):
                continue
            if not condition_true(csr, "Approved") or condition_true(csr, "Failed"):
                continue
            name = csr["metadata"]["name"]
            usages = list(spec.get("usages") or [])
            try:
                req = parse_csr_pem(spec.get("request", ""))
            except ValueError as exc:
                self._note(f"csr-parse/{name}", f"csrsigning: unable to parse csr {name!r}: {exc}")
                continue
            problem = kubelet_client_csr_problem(req, usages)
            if problem is not None:
                when = rfc3339(self.now())
                status = dict(status)
                status["conditions"] = list(status.get("conditions") or []) + [{
                    "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                    "message": problem, "lastUpdateTime": when, "lastTransitionTime": when}]
                csr["status"] = status
                self._put_status(csr, f"csrsigning: {name} failed validation: {problem}")
                continue
            ca_cert, ca_key = self._signing_ca()
            pem = sign_csr(req, usages, ca_cert, ca_key,
                           requested_duration(csr, self.options.signing_duration), self.now())
            status = dict(status)
            status["certificate"] = base64.b64encode(pem).decode()
            csr["status"] = status
            self._put_status(csr, f"csrsigning: issued a certificate for {name} ({csr_common_name(req)})")

    def _put_status(self, csr: dict[str, Any], done: str) -> None:
        try:
            self.creds.client("csrsigning").replace(f"{CSR_PATH}/{csr['metadata']['name']}/status", csr)
        except ApiStatusError as exc:
            if exc.code in (404, 409):
                return
            raise
        self.log.info(done)

    # -- garbagecollector --------------------------------------------------------------------
    def _list_all(self, client: KubeClient, prefix: str, resource: str) -> list[dict[str, Any]]:
        status, body = client.request("GET", f"{prefix}/{resource}")
        if status == 200 and isinstance(body, dict):
            return list(body.get("items") or [])
        items: list[dict[str, Any]] = []
        for ns in client.list("/api/v1/namespaces"):
            items += client.list(f"{prefix}/namespaces/{ns['metadata']['name']}/{resource}")
        return items

    def _owner_exists(self, client: KubeClient, ref: dict[str, Any], namespace: str) -> bool | None:
        """True/False for a resolvable owner, None for a kind this stand-in cannot look up."""
        where = OWNER_KINDS.get((ref.get("apiVersion", ""), ref.get("kind", "")))
        if where is None or not ref.get("name"):
            return None
        template, namespaced = where
        ns = f"namespaces/{namespace}/" if namespaced else ""
        owner = client.get(template.format(ns=ns) + ref["name"])
        # An owner recreated under the same name is a different object: uid decides, as in the GC.
        return owner is not None and (not ref.get("uid") or owner["metadata"].get("uid") == ref["uid"])

    def garbage_collector(self) -> None:
        """Delete dependents whose every owner is gone (background propagation).

        Owners are looked up in one list per owner collection and pass; a dependent is deleted
        only after a direct GET confirms each owner is gone (a list may predate a new owner).
        """
        client = self.creds.client("garbagecollector")
        listed: dict[str, dict[str, str]] = {}

        def listed_state(ref: dict[str, Any], namespace: str) -> bool | None:
            where = OWNER_KINDS.get((ref.get("apiVersion", ""), ref.get("kind", "")))
            if where is None or not ref.get("name"):
                return None
            template, namespaced = where
            collection = template.format(ns=f"namespaces/{namespace}/" if namespaced else "").rstrip("/")
            if collection not in listed:
                listed[collection] = {o["metadata"]["name"]: o["metadata"].get("uid", "")
                                      for o in self.client.list(collection)}
            uid = listed[collection].get(ref["name"])
            return uid is not None and (not ref.get("uid") or uid == ref["uid"])

        for prefix, resource in GC_RESOURCES:
            for obj in self._list_all(self.client, prefix, resource):
                meta = obj.get("metadata") or {}
                refs = meta.get("ownerReferences") or []
                if not refs or meta.get("deletionTimestamp"):
                    continue
                namespace = meta.get("namespace", "")
                if any(listed_state(ref, namespace) is not False for ref in refs):
                    continue
                if any(self._owner_exists(client, ref, namespace) is not False for ref in refs):
                    continue
                path = f"{prefix}/namespaces/{namespace}/{resource}/{meta['name']}"
                if client.delete(path, uid=meta.get("uid")):
                    owners = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in refs)
                    self.log.info("garbagecollector: deleted %s %s/%s (owners gone: %s)",
                                  resource, namespace, meta["name"], owners)

    # -- root-ca-cert-publisher --------------------------------------------------------------
    def root_ca_publisher(self) -> None:
        """Keep ConfigMap ``kube-root-ca.crt`` (key ``ca.crt``) in every active namespace."""
        client = self.creds.client("root-ca-cert-publisher")
        ca = Path(self.options.root_ca_file).read_text()
        for ns in self.client.list("/api/v1/namespaces"):
            meta = ns.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue
            path = f"/api/v1/namespaces/{meta['name']}/configmaps/{ROOT_CA_CONFIGMAP}"
            cm = self.client.get(path)
            if cm is None:
                body = {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": meta["name"],
                                     "annotations": {"kubernetes.io/description": (
                                         "Contains a CA bundle that can be used to verify the "
                                         "kube-apiserver when using internal endpoints such as the "
                                         "internal service IP or kubernetes.default.svc. No other "
                                         "usage is guaranteed across distributions of Kubernetes "
                                         "clusters.")}},
                        "data": {"ca.crt": ca}}
                status, _ = client.request("POST", f"/api/v1/namespaces/{meta['name']}/configmaps", body)
                if status == 201:
                    self.log.info("root-ca-cert-publisher: created %s/%s", meta["name"], ROOT_CA_CONFIGMAP)
            elif (cm.get("data") or {}).get("ca.crt") != ca:
                cm["data"] = {**(cm.get("data") or {}), "ca.crt": ca}
                client.request("PUT", path, cm)

    # -- nodelifecycle -----------------------------------------------------------------------
    def node_lifecycle(self) -> None:
        """Ready=Unknown + unreachable taints for silent nodes; taints off when they are back."""
        client = self.creds.client("nodelifecycle")
        now = self.now()
        for node in self.client.list("/api/v1/nodes"):
            name = node["metadata"]["name"]
            conditions = (node.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None:
                continue
            try:
                heartbeat = parse_rfc3339(ready.get("lastHeartbeatTime") or "")
            except ValueError:
                continue
            taints = list((node.get("spec") or {}).get("taints") or [])
            has_unreachable = any(t.get("key") == UNREACHABLE_TAINT for t in taints)
            if now - heartbeat > self.options.node_monitor_grace_period:
                if ready.get("status") != "Unknown":
                    when = rfc3339(now)
                    for cond in conditions:
                        cond.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                                     "message": "Kubelet stopped posting node status.", "lastTransitionTime": when})
                    if client.request("PUT", f"/api/v1/nodes/{name}/status", node)[0] < 300:
                        self.log.info("nodelifecycle: node %s stopped posting status: Ready=Unknown", name)
                    continue  # taint on the next pass, against the new resourceVersion
                if not has_unreachable:
                    node.setdefault("spec", {})["taints"] = taints + [
                        {"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
                        {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": rfc3339(now)}]
                    if client.request("PUT", f"/api/v1/nodes/{name}", node)[0] < 300:
                        self.log.info("nodelifecycle: tainted %s %s", name, UNREACHABLE_TAINT)
            elif has_unreachable and ready.get("status") == "True":
                node["spec"]["taints"] = [t for t in taints if t.get("key") != UNREACHABLE_TAINT]
                if client.request("PUT", f"/api/v1/nodes/{name}", node)[0] < 300:
                    self.log.info("nodelifecycle: node %s is back: removed %s", name, UNREACHABLE_TAINT)

    def _note(self, key: str, message: str) -> None:
        """Log a per-object problem once (the loop sees it every second)."""
        if self._last_errors.get(key) != message:
            self._last_errors[key] = message
            self.log.info(message)


# ---------------------------------------------------------------------------- entry point
def sync_interval() -> float:
    try:
        return max(0.05, float(os.environ.get(SYNC_ENV, "1")))
    except ValueError:
        return 1.0


def main(argv: list[str] | None = None) -> int:
    """Run like kube-controller-manager: exit 1 on bad flags, 0 on SIGTERM/SIGINT."""
    args = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_flags(args, KNOWN_FLAGS, PROGRAM)
        options = options_from_flags(flags)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    log = setup_logging(PROGRAM, flags.get("v"))
    log.info("kube-controller-manager stand-in (test lab; the real binary cannot run here) starting")
    try:
        config = load_kubeconfig(options.kubeconfig)
        client = KubeClient(config.server, config.ssl_context(), token=config.token,
                            user_agent="kube-controller-manager-standin")
    except (OSError, ValueError, ssl.SSLError) as exc:
        print(f"Error: {PROGRAM}: invalid kubeconfig {options.kubeconfig}: {exc}", file=sys.stderr)
        return 1
    try:
        health = start_health_server(options.bind_address, options.secure_port,
                                     {"/healthz": lambda: None, "/healthz/leaderElection": lambda: None}, log)
    except OSError as exc:
        print(f"Error: {PROGRAM}: failed to listen on {options.bind_address}:{options.secure_port}: {exc}",
              file=sys.stderr)
        return 1
    log.info("serving /healthz securely on %s:%d", options.bind_address, health.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    use_sa = flag_true(flags, "use-service-account-credentials")
    manager = ControllerManager(Credentials(client, config, use_sa, log), options, log)
    interval = sync_interval()
    while not stop.is_set():
        started = time.monotonic()
        manager.sync_once()
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    health.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
