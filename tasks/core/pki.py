"""kubeadm's certificate tree, made and reused on the operator machine.

Faithful to kubeadm-reference.md §1: the same files, issuers, subjects, SANs, key usages,
validity (5-minute backdate, configurable periods), key algorithms and PEM encodings as
``kubeadm init phase certs``, and the same create-or-reuse contract (§1.5), so a host set up
by kubefab can be managed by kubeadm afterwards and the other way round.

Layout of the central PKI (the cluster state dir, mode 0700 dirs, keys 0600)::

    <state>/pki/                 ca.*, front-proxy-ca.*, etcd/ca.*, sa.key, sa.pub
    <state>/nodes/<node>/pki/    the node's leaves in kubeadm's relative layout
                                 (apiserver.*, apiserver-kubelet-client.*, front-proxy-client.*,
                                 etcd/server.*, etcd/peer.*, etcd/healthcheck-client.*,
                                 apiserver-etcd-client.*)

Pure: no SSH, no network. Time (``now``) and key generation (``keygen``) are arguments, so
tests are fast and deterministic.
"""

from __future__ import annotations

import ipaddress
import re
import secrets as _random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import constants as K
from . import versions
from .endpoints import is_dns1123_subdomain, parse_ip, split_host_port
from .errors import PKIError
from .spec import ClusterConfiguration

if TYPE_CHECKING:
    from .statestore import StateStore

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
KeyGen = Callable[[str], PrivateKey]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

CERTS_PHASE = "certs"
KEY_MODE = 0o600
CERT_MODE = 0o644
# kubeadm writes sa.pub with its key writer, hence 0600 like a private key (reference §1.3)
SA_PUB_MODE = 0o600
DIR_MODE = 0o700

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

# Go's crypto/rand.Int(MaxInt64-1)+1: serials in [1, 2^63-1) (reference §1.1)
_SERIAL_LIMIT = 2**63 - 2


# --- keys ------------------------------------------------------------------------------------
_SPARE_KEYS: dict[str, list] = {}
_SPARE_LOCK = threading.Lock()


def pregenerate_keys(algorithm: str, count: int) -> threading.Thread | None:
    """Make ``count`` keys of ``algorithm`` in a background thread, for :func:`generate_private_key`
    to hand out later: cluster-up starts it while init waits on its host, so the control-plane
    joins find their keys made (RSA-2048 is about 60 ms of CPU each). Each key is handed out
    once; with none left, keys are made as before. Only the process's memory holds them.

    :returns: the thread (None when ``count`` is 0).
    """
    algo = algorithm or K.DEFAULT_ENCRYPTION_ALGORITHM
    if count <= 0:
        return None
    if algo not in K.ENCRYPTION_ALGORITHMS:
        _new_key(algo)  # raises the PKIError that names it, here rather than in the thread

    def fill() -> None:
        for _ in range(count):
            key = _new_key(algo)
            with _SPARE_LOCK:
                _SPARE_KEYS.setdefault(algo, []).append(key)

    thread = threading.Thread(target=fill, name="kubefab-keys", daemon=True)
    thread.start()
    return thread


def generate_private_key(algorithm: str) -> PrivateKey:
    """Make a private key for a kubeadm ``encryptionAlgorithm`` (reference §1.3), or hand out one
    :func:`pregenerate_keys` made.

    :raises PKIError: for an algorithm kubeadm does not know.
    """
    algo = algorithm or K.DEFAULT_ENCRYPTION_ALGORITHM
    with _SPARE_LOCK:
        spare = _SPARE_KEYS.get(algo)
        if spare:
            return spare.pop()
    return _new_key(algo)


def _new_key(algo: str) -> PrivateKey:
    if algo.startswith("RSA-") and algo in K.ENCRYPTION_ALGORITHMS:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algo[4:]))
    if algo == "ECDSA-P256":
        return ec.generate_private_key(ec.SECP256R1())
    if algo == "ECDSA-P384":
        return ec.generate_private_key(ec.SECP384R1())
    raise PKIError(f"unknown encryptionAlgorithm {algo!r}", phase=CERTS_PHASE,
                   fix=f"use one of {', '.join(K.ENCRYPTION_ALGORITHMS)}")


def key_algorithm(key: PrivateKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    """The ``encryptionAlgorithm`` name a key corresponds to (``RSA-2048``, ``ECDSA-P256``...)."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ECDSA-P256", "secp384r1": "ECDSA-P384"}.get(key.curve.name, f"ECDSA-{key.curve.name}")
    return type(key).__name__


def encode_private_key(key: PrivateKey) -> bytes:
    """PEM as client-go's keyutil writes it: RSA as PKCS#1, ECDSA as SEC1 (reference §1.3)."""
    # TraditionalOpenSSL = "RSA PRIVATE KEY" (PKCS#1) / "EC PRIVATE KEY" (SEC1), the block types
    # keyutil.MarshalPrivateKeyToPEM emits; kubeadm-certs and every reader expect them.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def encode_public_key(key: PrivateKey) -> bytes:
    """``sa.pub``: PEM ``PUBLIC KEY`` (PKIX SubjectPublicKeyInfo)."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_private_key(data: bytes, *, what: str = "private key") -> PrivateKey:
    """Load an RSA or ECDSA key from PEM (PKCS#1, SEC1 or PKCS#8), as kubeadm's readers do.

    :raises PKIError: when the data holds no usable RSA/ECDSA key.
    """
    try:
        # OpenSSL's RSA consistency check costs ~50 ms per key and a re-run loads a dozen; it is
        # skipped because every loaded key is then matched against its certificate (or sa.pub) and
        # every signature made with a CA key is verified (build_signed)
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise PKIError(f"{what} is not a readable PEM private key ({exc.__class__.__name__})",
                       phase=CERTS_PHASE, fix=f"replace {what} with an unencrypted RSA or ECDSA PEM key, "
                       "or delete it (and its certificate) to have a new pair generated") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        # kubeadm only loads RSA or ECDSA keys (reference §1.3)
        raise PKIError(f"{what} is a {type(key).__name__}, kubeadm only accepts RSA or ECDSA keys",
                       phase=CERTS_PHASE, fix=f"delete {what} and its certificate to have a new pair generated")
    return key


def encode_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def parse_certs(data: bytes, *, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; the first one is the leaf (reference §1.3).

    :raises PKIError: when there is none or one is malformed.
    """
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PKIError(f"{what} is not a readable PEM certificate ({exc})", phase=CERTS_PHASE,
                       fix=f"replace {what}, or delete it and its key to have a new pair generated") from None
    if not certs:
        raise PKIError(f"{what} holds no certificate", phase=CERTS_PHASE,
                       fix=f"replace {what}, or delete it and its key to have a new pair generated")
    return certs


def _same_public_key(key: PrivateKey, cert: x509.Certificate) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*fmt) == cert.public_key().public_bytes(*fmt)


# --- SANs ------------------------------------------------------------------------------------
def _is_wildcard_subdomain(name: str) -> bool:
    return name.startswith("*.") and is_dns1123_subdomain(name[2:])


@dataclass(frozen=True)
class AltNames:
    """Subject alternative names after kubeadm's de-duplication (reference §1.1).

    DNS names are de-duplicated and sorted; IPs de-duplicated keeping first-seen order.
    """

    dns: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()

    @classmethod
    def build(cls, dns: Iterable[str], ips: Iterable[IPAddress]) -> "AltNames":
        seen: list[IPAddress] = []
        for ip in ips:
            if ip not in seen:
                seen.append(ip)
        return cls(tuple(sorted(set(dns))), tuple(seen))

    def extension(self) -> x509.SubjectAlternativeName:
        # Go writes DNS names before IP addresses in the SAN extension
        return x509.SubjectAlternativeName([x509.DNSName(d) for d in self.dns]
                                           + [x509.IPAddress(ip) for ip in self.ips])


def _add_extra_sans(extra: Iterable[str], dns: list[str], ips: list[IPAddress], warnings: list[str],
                    field_name: str) -> None:
    """IP if it parses as one, DNS if a DNS-1123 (or wildcard) subdomain, else warn and skip."""
    for entry in extra:
        ip = parse_ip(entry)
        if ip is not None:
            ips.append(ip)
        elif is_dns1123_subdomain(entry) or _is_wildcard_subdomain(entry):
            dns.append(entry)
        else:
            # kubeadm skips such entries with a warning rather than failing (reference §1.2)
            warnings.append(f"{field_name} entry {entry!r} is neither an IP address nor a valid DNS name; skipped")




def first_service_ip(service_subnet: str, index: int = 1) -> IPAddress:
    """The ``index``-th address of the first service CIDR (1 -> 10.96.0.1, 10 -> 10.96.0.10).

    :raises PKIError: when the subnet does not parse or is too small.
    """
    first = service_subnet.split(",")[0].strip()
    try:
        net = ipaddress.ip_network(first, strict=False)
    except ValueError:
        raise PKIError(f"networking.serviceSubnet {first!r} is not a CIDR", phase=CERTS_PHASE,
                       fix="set networking.serviceSubnet to a CIDR such as 10.96.0.0/12") from None
    if net.num_addresses <= index:
        raise PKIError(f"networking.serviceSubnet {first!r} is too small", phase=CERTS_PHASE,
                       fix="use a service subnet with at least 16 addresses")
    return net.network_address + index


def _advertise_ip(advertise_address: str) -> IPAddress:
    ip = parse_ip(advertise_address)
    if ip is None:
        # kubeadm fails the step when <adv> is not an IP (reference §1.2)
        raise PKIError(f"advertise address {advertise_address!r} is not an IP address", phase=CERTS_PHASE,
                       fix="set localAPIEndpoint.advertiseAddress to this host's IP address")
    return ip


def apiserver_alt_names(cluster: ClusterConfiguration, node_name: str,
                        advertise_address: str) -> tuple[AltNames, list[str]]:
    """SANs of ``apiserver.crt`` (reference §1.2) and any warnings about skipped certSANs."""
    dom = cluster.networking.dns_domain
    dns = [node_name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{dom}"]
    ips: list[IPAddress] = [first_service_ip(cluster.networking.service_subnet), _advertise_ip(advertise_address)]
    warnings: list[str] = []
    if cluster.control_plane_endpoint:
        host, _ = split_host_port(cluster.control_plane_endpoint)
        ip = parse_ip(host)
        if ip is not None:
            ips.append(ip)
        elif host:
            dns.append(host)
    _add_extra_sans(cluster.api_server.cert_sans, dns, ips, warnings, "apiServer.certSANs")
    return AltNames.build(dns, ips), warnings


def _etcd_alt_names(extra_of: Callable[[ClusterConfiguration], tuple[str, ...]], field_name: str):
    def build(cluster: ClusterConfiguration, node_name: str, advertise_address: str) -> tuple[AltNames, list[str]]:
        dns = [node_name, "localhost"]
        # both loopbacks always, whatever the IP family (reference §1.2)
        ips: list[IPAddress] = [_advertise_ip(advertise_address), ipaddress.ip_address("127.0.0.1"),
                                ipaddress.ip_address("::1")]
        warnings: list[str] = []
        _add_extra_sans(extra_of(cluster), dns, ips, warnings, field_name)
        return AltNames.build(dns, ips), warnings

    return build


etcd_server_alt_names = _etcd_alt_names(lambda c: c.etcd_local.server_cert_sans if c.etcd_local else (),
                                        "etcd.local.serverCertSANs")
etcd_peer_alt_names = _etcd_alt_names(lambda c: c.etcd_local.peer_cert_sans if c.etcd_local else (),
                                      "etcd.local.peerCertSANs")

SANBuilder = Callable[[ClusterConfiguration, str, str], tuple[AltNames, list[str]]]


# --- the certificate list (kubeadm's certlist) ------------------------------------------------
@dataclass(frozen=True)
class CertSpec:
    """One entry of kubeadm's certificate list; ``name`` is the ``certs/<name>`` phase name."""

    name: str
    base_name: str            # relative to certificatesDir, without .crt/.key
    long_name: str            # for help text
    kind: str                 # "ca" | "leaf" | "keypair"
    ca: str | None = None     # spec name of the issuing CA (leaves)
    common_name: str = ""     # "{node}" is replaced with the node name
    organizations: tuple[str, ...] | Callable[[ClusterConfiguration], Iterable[str]] = ()
    usages: tuple[x509.ObjectIdentifier, ...] = ()
    sans: SANBuilder | None = None
    etcd: bool = False        # not created with external etcd (reference §1.1)

    def orgs(self, cluster: ClusterConfiguration) -> tuple[str, ...]:
        """The subject's O= entries (a function of the cluster where they changed between minors)."""
        return tuple(self.organizations(cluster)) if callable(self.organizations) else self.organizations

    def cn(self, node_name: str = "") -> str:
        return self.common_name.replace("{node}", node_name)

    @property
    def files(self) -> tuple[str, str]:
        """(cert, key) relative paths; for ``sa``: (sa.pub, sa.key)."""
        if self.kind == "keypair":
            return f"{self.base_name}.pub", f"{self.base_name}.key"
        return f"{self.base_name}.crt", f"{self.base_name}.key"

    def applies_to(self, cluster: ClusterConfiguration) -> bool:
        return not (self.etcd and cluster.etcd_external is not None)


def _kubelet_client_organizations(cluster: ClusterConfiguration) -> tuple[str, ...]:
    """Before 1.36 the API server reached kubelets as a member of kubeadm:cluster-admins."""
    return () if versions.kubelet_client_rbac(cluster.kubernetes_version) else (K.CLUSTER_ADMINS_GROUP,)


CERT_SPECS: tuple[CertSpec, ...] = (
    CertSpec("ca", K.CA_CERT_AND_KEY_BASENAME, "self-signed cluster CA that issues the Kubernetes component identities",
             "ca", common_name="kubernetes"),
    CertSpec("apiserver", K.APISERVER_CERT_AND_KEY_BASENAME, "serving certificate of the Kubernetes API server",
             "leaf", ca="ca", common_name=K.KUBE_APISERVER, usages=(SERVER_AUTH,), sans=apiserver_alt_names),
    CertSpec("apiserver-kubelet-client", K.APISERVER_KUBELET_CLIENT_CERT_AND_KEY_BASENAME,
             "client certificate the API server presents to kubelets", "leaf", ca="ca",
             common_name=K.APISERVER_KUBELET_CLIENT_CN, organizations=_kubelet_client_organizations,
             usages=(CLIENT_AUTH,)),
    CertSpec("front-proxy-ca", K.FRONT_PROXY_CA_CERT_AND_KEY_BASENAME,
             "self-signed CA for the front proxy (aggregation layer) identities", "ca",
             common_name="front-proxy-ca"),
    CertSpec("front-proxy-client", K.FRONT_PROXY_CLIENT_CERT_AND_KEY_BASENAME,
             "client certificate of the front proxy", "leaf", ca="front-proxy-ca",
             common_name="front-proxy-client", usages=(CLIENT_AUTH,)),
    CertSpec("etcd-ca", K.ETCD_CA_CERT_AND_KEY_BASENAME, "self-signed CA that issues the etcd identities", "ca",
             common_name="etcd-ca", etcd=True),
    CertSpec("etcd-server", K.ETCD_SERVER_CERT_AND_KEY_BASENAME, "serving certificate of etcd", "leaf",
             ca="etcd-ca", common_name="{node}", usages=(SERVER_AUTH, CLIENT_AUTH), sans=etcd_server_alt_names,
             etcd=True),
    CertSpec("etcd-peer", K.ETCD_PEER_CERT_AND_KEY_BASENAME, "certificate etcd members use between each other",
             "leaf", ca="etcd-ca", common_name="{node}", usages=(SERVER_AUTH, CLIENT_AUTH),
             sans=etcd_peer_alt_names, etcd=True),
    CertSpec("etcd-healthcheck-client", K.ETCD_HEALTHCHECK_CLIENT_CERT_AND_KEY_BASENAME,
             "client certificate for etcd health checks", "leaf", ca="etcd-ca",
             common_name="kube-etcd-healthcheck-client", usages=(CLIENT_AUTH,), etcd=True),
    CertSpec("apiserver-etcd-client", K.APISERVER_ETCD_CLIENT_CERT_AND_KEY_BASENAME,
             "client certificate the API server uses to reach etcd", "leaf", ca="etcd-ca",
             common_name="kube-apiserver-etcd-client", usages=(CLIENT_AUTH,), etcd=True),
    CertSpec("sa", K.SERVICE_ACCOUNT_KEY_BASENAME, "key pair that signs service account tokens", "keypair"),
)
SPECS_BY_NAME: dict[str, CertSpec] = {s.name: s for s in CERT_SPECS}
CA_SPECS = tuple(s for s in CERT_SPECS if s.kind == "ca")
LEAF_SPECS = tuple(s for s in CERT_SPECS if s.kind == "leaf")


def spec(name: str) -> CertSpec:
    return SPECS_BY_NAME[name]


# --- building certificates --------------------------------------------------------------------
def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    # X.509 times carry whole seconds
    return now.astimezone(timezone.utc).replace(microsecond=0)


_PRINTABLE = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")


def _attr(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute:
    # Go's encoding/asn1 writes a PrintableString when every character allows it, else UTF8String;
    # matching it keeps subjects byte-identical to kubeadm's (Go chains issuer to subject by bytes)
    if _PRINTABLE.match(value):
        try:
            from cryptography.x509.name import _ASN1Type

            return x509.NameAttribute(oid, value, _type=_ASN1Type.PrintableString)
        except ImportError:  # pragma: no cover - older/newer cryptography without the enum
            pass
    return x509.NameAttribute(oid, value)


def _name(cn: str, organizations: Iterable[str]) -> x509.Name:
    # Go's pkix.Name puts O before CN, and every O value in one multi-valued RDN (a DER SET, so
    # sorted): "O=a+O=b,CN=x" as kubeadm's `kubeconfig user --org a --org b` makes it
    orgs = list(dict.fromkeys(organizations))  # a set cannot hold one value twice
    rdns = [x509.RelativeDistinguishedName([_attr(NameOID.ORGANIZATION_NAME, o) for o in orgs])] if orgs else []
    return x509.Name(rdns + [x509.RelativeDistinguishedName([_attr(NameOID.COMMON_NAME, cn)])])


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    # Go's default choice: SHA-384 for P-384, SHA-256 for RSA and P-256 (reference §1.1)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _serial() -> int:
    return _random.randbelow(_SERIAL_LIMIT) + 1


@dataclass(frozen=True)
class CertKeyPair:
    """A certificate (first of ``cert_pem``, which may hold a chain) and its key (None in
    external-CA mode)."""

    cert: x509.Certificate
    cert_pem: bytes
    key: PrivateKey | None = None
    key_pem: bytes | None = None

    @classmethod
    def from_objects(cls, cert: x509.Certificate, key: PrivateKey | None) -> "CertKeyPair":
        return cls(cert, encode_cert(cert), key, encode_private_key(key) if key is not None else None)


def build_ca(cn: str, *, algorithm: str, now: datetime, validity: timedelta,
             keygen: KeyGen | None = None) -> CertKeyPair:
    """A self-signed CA as kubeadm makes it (reference §1.1, §1.4).

    KeyUsage digitalSignature+keyEncipherment+keyCertSign, CA=true without pathlen, SKID (Go adds
    it to CAs), no AKID (self-signed), NotBefore = now - 5 min, NotAfter = now + validity.
    """
    key = (keygen or generate_private_key)(algorithm)
    start = _utc(now)
    name = _name(cn, ())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(start - K.CERTIFICATE_BACKDATE)
        .not_valid_after(start + validity)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # kubeadm's CA carries its CN as a DNS SAN too (reference §1.1)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    )
    return CertKeyPair.from_objects(builder.sign(key, _hash_for(key)), key)


def build_signed(ca: CertKeyPair, *, cn: str, organizations: Iterable[str] = (),
                 usages: Iterable[x509.ObjectIdentifier], alt_names: AltNames | None = None,
                 algorithm: str, not_before: datetime, not_after: datetime,
                 keygen: KeyGen | None = None) -> CertKeyPair:
    """A leaf signed by ``ca`` as kubeadm's NewSignedCert makes it (reference §1.1).

    KeyUsage digitalSignature+keyEncipherment (also for ECDSA), CA=false, AKID = the CA's SKID,
    no SKID, SANs only when there are any.
    """
    if ca.key is None:
        raise PKIError(f"cannot sign {cn!r}: the CA {ca.cert.subject.rfc4514_string()} has no private key",
                       phase=CERTS_PHASE, fix="provide the CA key, or provide the signed certificate yourself "
                       "(external-CA mode)")
    key = (keygen or generate_private_key)(algorithm)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, organizations)).issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(_utc(not_before))
        .not_valid_after(_utc(not_after))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    try:
        skid = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(skid),
                                        critical=False)
    except x509.ExtensionNotFound:
        pass  # Go sets AKID only when the issuer has an SKID
    if alt_names is not None and (alt_names.dns or alt_names.ips):
        builder = builder.add_extension(alt_names.extension(), critical=False)
    cert = builder.sign(ca.key, _hash_for(ca.key))
    if not signed_by(cert, ca.cert):
        raise PKIError(f"the key of CA {ca.cert.subject.rfc4514_string()} produced an invalid signature",
                       phase=CERTS_PHASE, fix="the CA key file is damaged: restore it from a backup")
    return CertKeyPair.from_objects(cert, key)


def build_client_cert(ca: CertKeyPair, cn: str, organizations: Iterable[str] = (), *,
                      cluster: ClusterConfiguration, now: datetime,
                      keygen: KeyGen | None = None) -> CertKeyPair:
    """A kubeconfig client certificate: clientAuth, NotBefore inherited from the CA (kubeadm's
    kubeconfig phase sets no NotBefore), NotAfter = now + certificateValidityPeriod."""
    return build_signed(ca, cn=cn, organizations=organizations, usages=(CLIENT_AUTH,),
                        algorithm=cluster.encryption_algorithm, not_before=ca.cert.not_valid_before_utc,
                        not_after=_utc(now) + cluster.certificate_validity_period, keygen=keygen)


def build_leaf(spec_: CertSpec, ca: CertKeyPair, cluster: ClusterConfiguration, *, node_name: str,
               advertise_address: str, now: datetime, keygen: KeyGen | None = None) -> tuple[CertKeyPair, list[str]]:
    """One leaf of the certificate list for a node; returns the pair and SAN warnings."""
    alt, warnings = (spec_.sans(cluster, node_name, advertise_address) if spec_.sans else (None, []))
    start = _utc(now)
    pair = build_signed(ca, cn=spec_.cn(node_name), organizations=spec_.orgs(cluster), usages=spec_.usages,
                        alt_names=alt, algorithm=cluster.encryption_algorithm,
                        not_before=start - K.CERTIFICATE_BACKDATE,
                        not_after=start + cluster.certificate_validity_period, keygen=keygen)
    return pair, warnings


# --- checks -----------------------------------------------------------------------------------
def is_ca_cert(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """True when ``ca`` issued ``cert`` (name chaining and signature)."""
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def verify_chain(certs: list[x509.Certificate], ca: x509.Certificate) -> bool:
    """The leaf (first) chains through any intermediates in the bundle to ``ca``."""
    current = certs[0]
    rest = list(certs[1:])
    for _ in range(len(certs)):
        if signed_by(current, ca):
            return True
        parent = next((c for c in rest if signed_by(current, c)), None)
        if parent is None:
            return False
        rest.remove(parent)
        current = parent
    return signed_by(current, ca)


def cert_alt_names(cert: x509.Certificate) -> AltNames:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return AltNames()
    return AltNames(tuple(san.get_values_for_type(x509.DNSName)), tuple(san.get_values_for_type(x509.IPAddress)))


def _dns_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, tail = name.partition(".")
        return bool(head) and tail == pattern[2:]
    return False


def missing_sans(cert: x509.Certificate, expected: AltNames) -> list[str]:
    """Expected SANs the certificate does not cover (hostname verification, as kubeadm does)."""
    have = cert_alt_names(cert)
    missing = [d for d in expected.dns if not any(_dns_matches(p, d) for p in have.dns)]
    missing += [str(ip) for ip in expected.ips if ip not in have.ips]
    return missing


def _validity_warning(what: str, cert: x509.Certificate, now: datetime) -> str | None:
    t = _utc(now)
    if t < cert.not_valid_before_utc:
        return f"{what} is not valid yet (NotBefore {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ})"
    if t > cert.not_valid_after_utc:
        return f"{what} has expired (NotAfter {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
    return None


# --- files ------------------------------------------------------------------------------------
def _delete_fix(*paths: Path) -> str:
    return ("delete " + " and ".join(str(p) for p in paths)
            + " and re-run to have a new pair generated (every host using it must then get the new files)")


# --- the cluster's CAs and service-account key ------------------------------------------------
@dataclass
class ClusterPKI:
    """The shared part of the PKI: the three CAs and the service-account key pair.

    ``created``/``reused`` name the certificate-list entries (``ca``, ``sa``...) for progress lines.
    """

    cas: dict[str, CertKeyPair]
    sa_key_pem: bytes
    sa_pub_pem: bytes
    encryption_algorithm: str = K.DEFAULT_ENCRYPTION_ALGORITHM
    created: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)   # CAs present without a key

    @property
    def ca(self) -> CertKeyPair:
        return self.cas["ca"]

    @property
    def ca_cert_pem(self) -> bytes:
        return self.ca.cert_pem

    @property
    def front_proxy_ca(self) -> CertKeyPair:
        return self.cas["front-proxy-ca"]

    @property
    def etcd_ca(self) -> CertKeyPair | None:
        return self.cas.get("etcd-ca")

    @property
    def external_ca(self) -> bool:
        """kubeadm's UsingExternalCA: ca.crt without ca.key (KCM then gets empty signing flags)."""
        return self.ca.key is None

    def shared_files(self) -> dict[str, bytes]:
        """Relative path under certificatesDir -> bytes of every file kubeadm-certs carries.

        Keys absent in external-CA mode are left out (the Secret then holds an empty value).
        """
        out: dict[str, bytes] = {}
        for s in CA_SPECS:
            pair = self.cas.get(s.name)
            if pair is None:
                continue
            crt, key = s.files
            out[crt] = pair.cert_pem
            if pair.key_pem is not None:
                out[key] = pair.key_pem
        out["sa.pub"] = self.sa_pub_pem
        out["sa.key"] = self.sa_key_pem
        return out


def _load_ca(spec_: CertSpec, cert_data: bytes | None, key_data: bytes | None, *, where: str,
             now: datetime, warnings: list[str]) -> CertKeyPair | None:
    """Load one CA from bytes; None when neither file exists (reference §1.5)."""
    crt_name, key_name = (f"{where}/{f}" for f in spec_.files)
    if cert_data is None:
        if key_data is not None:
            raise PKIError(f"{key_name} exists but {crt_name} does not", phase=f"certs/{spec_.name}",
                           fix=f"restore {crt_name}, or delete {key_name} to have a new CA generated "
                           "(every node must then be re-issued)")
        return None
    cert = parse_certs(cert_data, what=crt_name)[0]
    if not is_ca_cert(cert):
        raise PKIError(f"{crt_name} is not a CA certificate", phase=f"certs/{spec_.name}",
                       fix=f"replace {crt_name} with a CA certificate (basicConstraints CA:TRUE)")
    w = _validity_warning(crt_name, cert, now)
    if w:
        warnings.append(w)
    key = None
    if key_data is not None:
        key = parse_private_key(key_data, what=key_name)
        if not _same_public_key(key, cert):
            raise PKIError(f"{key_name} does not belong to {crt_name}", phase=f"certs/{spec_.name}",
                           fix=f"put the matching key in {key_name}, or remove both to generate a new CA")
    return CertKeyPair(cert, cert_data, key, key_data)


def load_signing_ca(state_pki_dir: Path | str, *, now: datetime, name: str = "ca") -> tuple[CertKeyPair, list[str]]:
    """A CA of the state dir, with its key, to sign a new leaf (``kubeconfig user``); writes nothing.

    :returns: the pair and any validity warnings (kubeadm only warns about an expired CA here).
    :raises PKIError: when the CA is missing, unreadable or has no key (external-CA mode).
    """
    root = Path(state_pki_dir)
    s = spec(name)
    from .statestore import read_file

    warnings: list[str] = []
    pair = _load_ca(s, read_file(root / s.files[0]), read_file(root / s.files[1]), where=str(root), now=now,
                    warnings=warnings)
    if pair is None:
        raise PKIError(f"the cluster CA {root / s.files[0]} does not exist yet", phase=f"certs/{name}",
                       fix="run `fab -H <host> init` first, or pass --state-dir")
    if pair.key is None:
        raise PKIError(f"{root / s.files[1]} is missing: kubefab cannot sign a certificate with this CA "
                       "(external-CA mode)", phase=f"certs/{name}",
                       fix="sign the client certificate with your CA, or put the CA key in the state dir")
    return pair, warnings


def _load_sa(key_data: bytes | None, pub_data: bytes | None, *, where: str) -> tuple[bytes, bytes] | None:
    if key_data is None:
        return None
    key = parse_private_key(key_data, what=f"{where}/sa.key")
    derived = encode_public_key(key)
    if pub_data is None:
        return key_data, derived
    try:
        pub = serialization.load_pem_public_key(pub_data)
        same = encode_public_key_obj(pub) == derived
    except (ValueError, TypeError):
        same = False
    if not same:
        # kubeadm trusts sa.pub blindly; a mismatch would make tokens from other hosts fail
        raise PKIError(f"{where}/sa.pub does not match {where}/sa.key", phase="certs/sa",
                       fix=f"delete {where}/sa.pub and re-run: it is derived from sa.key")
    return key_data, pub_data


def encode_public_key_obj(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def ensure_cluster_pki(state_pki_dir: Path | str, cluster: ClusterConfiguration, *, now: datetime,
                       keygen: KeyGen | None = None, store: "StateStore | None" = None) -> ClusterPKI:
    """Load or create the CAs and the sa pair in ``<state>/pki`` (reference §1.5).

    A CA is reused when its cert loads (and its key, if present). A CA cert without key is
    external-CA mode for that CA: nothing is generated under it here, and the leaves must be
    provided (checked by :func:`ensure_node_pki`). A new CA is written only if neither file exists.

    :param store: where files are read and written (default: the disk, at once); a
        :class:`~tasks.core.statestore.PendingStore` keeps new files in memory (dry-run).
    :raises PKIError: for unusable files, with the file and what to do.
    """
    root = Path(state_pki_dir)
    with _lock_for(root):
        return _ensure_cluster_pki(root, cluster, now=now, keygen=keygen, store=store or _disk())


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    """One lock per state dir: hosts planned in parallel threads must not mint two different CAs."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path.resolve()), threading.Lock())


def _disk():
    from .statestore import DISK

    return DISK


def _ensure_cluster_pki(root: Path, cluster: ClusterConfiguration, *, now: datetime,
                        keygen: KeyGen | None, store) -> ClusterPKI:
    result = ClusterPKI(cas={}, sa_key_pem=b"", sa_pub_pem=b"", encryption_algorithm=cluster.encryption_algorithm)
    # every existing file is checked before anything is written: a bad one fails the run with
    # the state dir as it was, not with the CAs before it freshly generated
    specs = [s for s in CA_SPECS if s.applies_to(cluster)]
    existing = {s.name: _load_ca(s, store.read(root / s.files[0]), store.read(root / s.files[1]), where=str(root),
                                 now=now, warnings=result.warnings) for s in specs}
    sa = spec("sa")
    pub_path, sa_key_path = (root / f for f in sa.files)
    loaded = _load_sa(store.read(sa_key_path), store.read(pub_path), where=str(root))
    for s in specs:
        crt_path, key_path = (root / f for f in s.files)
        pair = existing[s.name]
        if pair is None:
            pair = build_ca(s.cn(), algorithm=cluster.encryption_algorithm, now=now,
                            validity=cluster.ca_certificate_validity_period, keygen=keygen)
            # kubeadm writes the key before the certificate
            store.write(key_path, pair.key_pem, KEY_MODE, what="private key")
            store.write(crt_path, pair.cert_pem, CERT_MODE, what="certificate")
            result.created.append(s.name)
        else:
            result.reused.append(s.name)
            if pair.key is None:
                result.external.append(s.name)
        result.cas[s.name] = pair
    if loaded is None:
        key = (keygen or generate_private_key)(cluster.encryption_algorithm)
        loaded = (encode_private_key(key), encode_public_key(key))
        store.write(sa_key_path, loaded[0], KEY_MODE, what="private key")
        store.write(pub_path, loaded[1], SA_PUB_MODE, what="public key")
        result.created.append("sa")
    else:
        if store.read(pub_path) is None:
            store.write(pub_path, loaded[1], SA_PUB_MODE, what="public key")
        result.reused.append("sa")
    result.sa_key_pem, result.sa_pub_pem = loaded
    return result


def load_cluster_pki_from_files(files: dict[str, bytes], *, encryption_algorithm: str = K.DEFAULT_ENCRYPTION_ALGORITHM,
                                now: datetime | None = None) -> ClusterPKI:
    """The shared PKI from ``{relative path: bytes}``, e.g. decrypted kubeadm-certs (reference §8.4).

    Empty values count as absent (kubeadm stores missing files as empty values).

    :raises PKIError: when ``ca.crt``/``front-proxy-ca.crt``/``sa.key`` are missing or unusable.
    """
    present = {k: v for k, v in files.items() if v}
    result = ClusterPKI(cas={}, sa_key_pem=b"", sa_pub_pem=b"", encryption_algorithm=encryption_algorithm)
    at = now or datetime.now(timezone.utc)
    for s in CA_SPECS:
        crt, key = s.files
        pair = _load_ca(s, present.get(crt), present.get(key), where="kubeadm-certs", now=at,
                        warnings=result.warnings)
        if pair is None:
            if s.etcd:
                continue  # external etcd: no etcd CA is shared
            raise PKIError(f"{crt} is missing from the downloaded certificates", phase="download-certs",
                           fix="re-run upload-certs on the first control plane (fab -H <init host> init "
                           "--only upload-certs --upload-certs) and join again")
        result.cas[s.name] = pair
        result.reused.append(s.name)
        if pair.key is None:
            result.external.append(s.name)
    loaded = _load_sa(present.get("sa.key"), present.get("sa.pub"), where="kubeadm-certs")
    if loaded is None:
        raise PKIError("sa.key is missing from the downloaded certificates", phase="download-certs",
                       fix="re-run upload-certs on the first control plane and join again")
    result.sa_key_pem, result.sa_pub_pem = loaded
    result.reused.append("sa")
    return result


# --- per-node leaves --------------------------------------------------------------------------
@dataclass
class NodePKI:
    """A node's leaf certificates (``leaves`` keyed by certificate-list name)."""

    node_name: str
    leaves: dict[str, CertKeyPair]
    created: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lacking_sans: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, SANs), strict_sans=False


def _check_existing_leaf(s: CertSpec, ca: CertKeyPair, crt_path: Path, key_path: Path,
                         cert_data: bytes | None, key_data: bytes | None, expected: AltNames | None,
                         now: datetime, warnings: list[str], *, node_name: str = "",
                         lacking: list[tuple[str, list[str]]] | None = None) -> CertKeyPair:
    """kubeadm's reuse rule for a leaf of which at least one file exists (reference §1.5)."""
    phase = f"certs/{s.name}"
    if key_data is None:
        raise PKIError(f"{crt_path} exists but its key {key_path} does not", phase=phase,
                       fix=_delete_fix(crt_path))
    if cert_data is None:
        raise PKIError(f"{key_path} exists but its certificate {crt_path} does not", phase=phase,
                       fix=_delete_fix(key_path))
    key = parse_private_key(key_data, what=str(key_path))
    chain = parse_certs(cert_data, what=str(crt_path))
    leaf = chain[0]
    if not _same_public_key(key, leaf):
        raise PKIError(f"{key_path} does not belong to {crt_path}", phase=phase,
                       fix=_delete_fix(crt_path, key_path))
    if not verify_chain(chain, ca.cert):
        raise PKIError(f"{crt_path} is not signed by the corresponding CA "
                       f"({ca.cert.subject.rfc4514_string()})", phase=phase,
                       fix=_delete_fix(crt_path, key_path))
    w = _validity_warning(str(crt_path), leaf, now)
    if w:
        warnings.append(w)
    if expected is not None:
        missing = missing_sans(leaf, expected)
        if missing and lacking is not None:
            lacking.append((s.name, missing))
        elif missing:
            raise PKIError(f"{crt_path} does not cover the expected SAN(s) {', '.join(missing)}",
                           phase=phase, details=[f"expected DNS: {', '.join(expected.dns)}",
                                                 f"expected IP: {', '.join(map(str, expected.ips))}"],
                           fix=renew_fix(node_name, s.name))
    return CertKeyPair(leaf, cert_data, key, key_data)


def renew_fix(node_name: str, name: str) -> str:
    """The command that re-issues one certificate with every SAN the config requires."""
    return (f"run `fab -H {node_name or '<host>'} certs.renew {name}`: it re-issues the certificate (same key) "
            "with every SAN the config requires and restarts what uses it")


def ensure_node_pki(cluster_pki: ClusterPKI, node_dir: Path | str, cluster: ClusterConfiguration, *,
                    node_name: str, advertise_address: str, now: datetime,
                    keygen: KeyGen | None = None, store: "StateStore | None" = None,
                    strict_sans: bool = True) -> NodePKI:
    """Load or create a control-plane node's leaves under ``<node_dir>/pki`` (reference §1.5).

    Existing pairs are reused byte for byte when the key loads, the chain verifies to the CA and
    every expected SAN is covered; otherwise a :class:`PKIError` names the file and the fix
    (``strict_sans=False``: a SAN the config requires and the certificate lacks is listed in
    :attr:`NodePKI.lacking_sans` instead; check-expiration and certs.renew read such a PKI). Under a
    CA without key (external-CA mode) every leaf must already exist; nothing is generated.
    """
    root = Path(node_dir) / "pki"
    store = store or _disk()
    result = NodePKI(node_name=node_name, leaves={})
    # every existing pair is checked (and every missing one known to be makeable) before
    # anything is written: a bad file fails the run with the state dir as it was
    todo: list[tuple[CertSpec, CertKeyPair, Path, Path, CertKeyPair | None, list[str]]] = []
    for s in LEAF_SPECS:
        if not s.applies_to(cluster):
            continue
        ca = cluster_pki.cas.get(s.ca or "")
        if ca is None:
            raise PKIError(f"CA {s.ca!r} needed for {s.name} is not loaded", phase=f"certs/{s.name}",
                           fix="run the certs phase for the CAs first")
        crt_path, key_path = (root / f for f in s.files)
        cert_data, key_data = store.read(crt_path), store.read(key_path)
        expected, sans_warnings = (s.sans(cluster, node_name, advertise_address) if s.sans else (None, []))
        found = None
        if cert_data is None and key_data is None:
            if ca.key is None:
                raise PKIError(f"external CA mode: {crt_path} and {key_path} must be provided "
                               f"(the {s.ca} key is not available to sign them)", phase=f"certs/{s.name}",
                               fix=f"create the {s.long_name} with your CA and put it there, or put the "
                               "CA key in the state dir")
        else:
            found = _check_existing_leaf(s, ca, crt_path, key_path, cert_data, key_data, expected, now,
                                         result.warnings, node_name=node_name,
                                         lacking=None if strict_sans else result.lacking_sans)
        todo.append((s, ca, crt_path, key_path, found, sans_warnings))
    for s, ca, crt_path, key_path, found, sans_warnings in todo:
        if found is None:
            pair, _ = build_leaf(s, ca, cluster, node_name=node_name, advertise_address=advertise_address,
                                 now=now, keygen=keygen)
            store.write(key_path, pair.key_pem, KEY_MODE, what="private key")
            store.write(crt_path, pair.cert_pem, CERT_MODE, what="certificate")
            result.created.append(s.name)
            result.warnings.extend(sans_warnings)
        else:
            pair = found
            result.reused.append(s.name)
        result.leaves[s.name] = pair
    return result


def subject_of(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    """(CN, O values) of a certificate."""
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cn[0].value) if cn else ""), tuple(str(o.value) for o in orgs)


def renew_signed(old: CertKeyPair, ca: CertKeyPair, cluster: ClusterConfiguration, *, now: datetime,
                 required: AltNames | None = None, new_key: bool = False,
                 keygen: KeyGen | None = None) -> CertKeyPair:
    """kubeadm's ``certs renew`` of one certificate: the old one's subject, usages and SANs (plus
    the ``required`` ones the config asks for now), NotBefore = now - 5 min, NotAfter = now +
    certificateValidityPeriod, signed by ``ca``. The key is kept unless ``new_key``
    (kubeadm makes a new one; keeping it lets a renew be undone by putting the old certificate back).
    """
    cert = old.cert
    cn, orgs = subject_of(cert)
    try:
        usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []
    have = cert_alt_names(cert)
    alt = AltNames.build(list(have.dns) + list(required.dns if required else ()),
                         list(have.ips) + list(required.ips if required else ()))
    if old.key is None and not new_key:
        raise PKIError(f"cannot renew {cn!r}: its private key is not available", phase="certs-renew",
                       fix="put its key in the state dir, or renew it with your CA (external CA)")
    keep = old.key
    start = _utc(now)
    return build_signed(ca, cn=cn, organizations=orgs, usages=usages, alt_names=alt,
                        algorithm=cluster.encryption_algorithm if new_key else key_algorithm(keep),
                        not_before=start - K.CERTIFICATE_BACKDATE,
                        not_after=start + cluster.certificate_validity_period,
                        keygen=keygen if new_key else (lambda _algorithm: keep))


def node_files(cluster_pki: ClusterPKI, node_pki: NodePKI) -> list[tuple[str, bytes, int]]:
    """Everything a control-plane host's ``<pki>`` holds: (relative path, content, mode).

    Modes as kubeadm writes them: keys 0600, certificates 0644, ``sa.pub`` 0600.
    """
    out: list[tuple[str, bytes, int]] = []
    for s in CERT_SPECS:
        crt, key = s.files
        if s.kind == "keypair":
            out.append((key, cluster_pki.sa_key_pem, KEY_MODE))
            out.append((crt, cluster_pki.sa_pub_pem, SA_PUB_MODE))
            continue
        pair = cluster_pki.cas.get(s.name) if s.kind == "ca" else node_pki.leaves.get(s.name)
        if pair is None:
            continue
        out.append((crt, pair.cert_pem, CERT_MODE))
        if pair.key_pem is not None:
            out.append((key, pair.key_pem, KEY_MODE))
    return out


# --- expiration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CertExpiration:
    """One row of ``certs check-expiration``."""

    name: str                   # certificate-list name, or a kubeconfig file name
    not_after: datetime
    residual: timedelta
    ca: str | None              # issuing CA name, None for CAs
    external: bool              # no key to renew it with (external CA)

    @property
    def expired(self) -> bool:
        return self.residual <= timedelta(0)


def check_expiration(cluster_pki: ClusterPKI, node_pki: NodePKI | None = None, *, now: datetime,
                     extra: dict[str, x509.Certificate] | None = None) -> list[CertExpiration]:
    """Expiry data for every known certificate, CAs first as kubeadm lists them.

    :param extra: further certificates by display name (e.g. kubeconfig client certs), signed by ``ca``.
    """
    t = _utc(now)
    rows: list[CertExpiration] = []
    if node_pki is not None:
        for s in LEAF_SPECS:
            pair = node_pki.leaves.get(s.name)
            if pair is not None:
                ca = cluster_pki.cas.get(s.ca or "")
                rows.append(CertExpiration(s.name, pair.cert.not_valid_after_utc, pair.cert.not_valid_after_utc - t,
                                           s.ca, ca is None or ca.key is None))
    for name, cert in (extra or {}).items():
        rows.append(CertExpiration(name, cert.not_valid_after_utc, cert.not_valid_after_utc - t, "ca",
                                   cluster_pki.external_ca))
    cas = [CertExpiration(s.name, p.cert.not_valid_after_utc, p.cert.not_valid_after_utc - t, None, p.key is None)
           for s in CA_SPECS if (p := cluster_pki.cas.get(s.name)) is not None]
    return cas + rows
