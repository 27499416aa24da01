"""Bootstrap primitives: tokens, the CA pin, the cluster-info JWS and kubeadm-certs encryption.

Every format here is checked by a peer that kubefab does not control: the API server (token
Secrets), ``kubeadm join`` (CA pin, JWS over cluster-info) and ``kubeadm join --control-plane``
(kubeadm-certs). Facts from kubeadm-reference.md §6, §7 and §8. Randomness comes through a
``rand_bytes`` argument (default ``os.urandom``) so tests can pin it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import constants as K
from .errors import ConfigError, PKIError
from .secrets import Secret
from .spec import BootstrapToken

RandBytes = Callable[[int], bytes]

# --- tokens (reference §6) --------------------------------------------------------------------
TOKEN_ID_LENGTH = 6
TOKEN_SECRET_LENGTH = 16
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
TOKEN_ID_RE = re.compile(r"^[a-z0-9]{6}$")
_TOKEN_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
# 252 = 7 * 36: bytes at or above it are rejected so every character is equally likely
_REJECT_FROM = 256 - 256 % len(_TOKEN_CHARS)
BOOTSTRAP_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
KNOWN_USAGES = ("signing", "authentication")
CERT_KEY_OWNER_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"


def random_token_chars(n: int, rand_bytes: RandBytes = os.urandom) -> str:
    """``n`` characters drawn uniformly from ``[0-9a-z]`` by rejection sampling."""
    out: list[str] = []
    while len(out) < n:
        for b in rand_bytes(max(n - len(out), 8) * 2):
            if b < _REJECT_FROM:
                out.append(_TOKEN_CHARS[b % len(_TOKEN_CHARS)])
                if len(out) == n:
                    break
    return "".join(out)


def generate_token(rand_bytes: RandBytes = os.urandom) -> Secret:
    """A fresh ``<6>.<16>`` bootstrap token."""
    return Secret(f"{random_token_chars(TOKEN_ID_LENGTH, rand_bytes)}."
                  f"{random_token_chars(TOKEN_SECRET_LENGTH, rand_bytes)}", kind="bootstrap token")


def _reveal(value: Secret | str | bytes) -> str:
    raw = value.reveal() if isinstance(value, Secret) else value
    return raw.decode() if isinstance(raw, bytes) else raw


def parse_token(token: Secret | str) -> tuple[str, Secret]:
    """Split a token into its public id and its secret part.

    :raises ConfigError: when it is not ``[a-z0-9]{6}.[a-z0-9]{16}`` (the value is never echoed).
    """
    m = TOKEN_RE.match(_reveal(token))
    if not m:
        raise ConfigError("bootstrap token has the wrong format (expected [a-z0-9]{6}.[a-z0-9]{16})",
                          fix='use a token printed by "fab -H <init host> init" or "fab token.create"')
    return m.group(1), Secret(m.group(2), kind="bootstrap token secret")


def validate_token(token: BootstrapToken) -> list[str]:
    """Every problem with a token's usages and groups (empty when valid)."""
    problems: list[str] = []
    try:
        parse_token(token.token)
    except ConfigError as exc:
        problems.append(exc.problem)
    for usage in token.usages:
        if usage not in KNOWN_USAGES:
            problems.append(f"unknown token usage {usage!r} (known: {', '.join(KNOWN_USAGES)})")
    for group in token.groups:
        if not BOOTSTRAP_GROUP_RE.match(group):
            problems.append(f"token group {group!r} must match {BOOTSTRAP_GROUP_RE.pattern}")
    return problems


def _rfc3339(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_expiration(token: BootstrapToken, *, now: datetime) -> str | None:
    """RFC 3339 UTC expiry: ``expires`` if set, else now + ttl; None when it never expires."""
    if token.expires is not None:
        return _rfc3339(token.expires)
    if token.ttl is not None and token.ttl > timedelta(0):
        return _rfc3339(now + token.ttl)
    return None


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def token_secret_manifest(token: BootstrapToken, *, now: datetime) -> dict[str, Any]:
    """``kube-system/bootstrap-token-<id>`` as kubeadm creates it (reference §6).

    Values are base64 in ``data`` (the wire form). The result holds the token: treat it as secret.

    :raises ConfigError: for a malformed token, usage or group.
    """
    problems = validate_token(token)
    if problems:
        raise ConfigError("invalid bootstrap token", details=problems,
                          fix="fix bootstrapTokens in the InitConfiguration")
    token_id, secret = parse_token(token.token)
    data: dict[str, str] = {"token-id": token_id, "token-secret": secret.reveal()}
    expiration = token_expiration(token, now=now)
    if expiration:
        data["expiration"] = expiration
    if token.description:
        data["description"] = token.description
    for usage in token.usages:
        data[f"usage-bootstrap-{usage}"] = "true"
    if token.groups:
        data["auth-extra-groups"] = ",".join(token.groups)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": K.BOOTSTRAP_TOKEN_SECRET_PREFIX + token_id, "namespace": K.KUBE_SYSTEM_NAMESPACE},
        "type": K.BOOTSTRAP_TOKEN_SECRET_TYPE,
        "data": {k: _b64(v) for k, v in sorted(data.items())},
    }


def token_from_secret(secret: Mapping[str, Any]) -> BootstrapToken:
    """The inverse of :func:`token_secret_manifest` (for ``token.list``); the secret part stays a Secret.

    :raises ConfigError: when the Secret lacks token-id/token-secret.
    """
    raw = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items() if v is not None}
    if "token-id" not in raw or "token-secret" not in raw:
        raise ConfigError(f"Secret {secret.get('metadata', {}).get('name')!r} is not a bootstrap token",
                          fix="delete it or add token-id and token-secret")
    expires = None
    if raw.get("expiration"):
        expires = datetime.strptime(raw["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    usages = tuple(k[len("usage-bootstrap-"):] for k, v in sorted(raw.items())
                   if k.startswith("usage-bootstrap-") and v == "true")
    groups = tuple(g for g in raw.get("auth-extra-groups", "").split(",") if g)
    return BootstrapToken(token=Secret(f"{raw['token-id']}.{raw['token-secret']}", kind="bootstrap token"),
                          description=raw.get("description", ""), ttl=None, expires=expires,
                          usages=usages, groups=groups)


def certificate_key_owner_token(*, now: datetime | None = None, rand_bytes: RandBytes = os.urandom) -> BootstrapToken:
    """The short-lived token whose Secret owns kubeadm-certs (reference §8.3).

    No usages and no groups: it can neither authenticate nor sign; when the token cleaner deletes
    it after 2 h, garbage collection removes kubeadm-certs with it.
    """
    del now  # expiry is computed from the ttl when the manifest is built
    return BootstrapToken(token=generate_token(rand_bytes), description=CERT_KEY_OWNER_DESCRIPTION,
                          ttl=K.CERTIFICATE_KEY_TOKEN_TTL, usages=(), groups=())


# --- CA pin (reference §7.1) ------------------------------------------------------------------
PIN_PREFIX = "sha256:"


def ca_pin(cert_pem: bytes | x509.Certificate) -> str:
    """``sha256:<hex>`` over the DER SubjectPublicKeyInfo of the (first) certificate.

    :raises PKIError: when the PEM holds no certificate.
    """
    if isinstance(cert_pem, x509.Certificate):
        cert = cert_pem
    else:
        try:
            cert = x509.load_pem_x509_certificates(cert_pem)[0]
        except (ValueError, IndexError):
            raise PKIError("cannot compute the CA pin: not a PEM certificate",
                           fix="pass the cluster CA certificate (ca.crt)") from None
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return PIN_PREFIX + hashlib.sha256(spki).hexdigest()


def parse_ca_pin(pin: str) -> str:
    """Normalize a ``--discovery-token-ca-cert-hash`` value to ``sha256:<64 lower hex>``.

    :raises ConfigError: for another hash type or a value that is not 32 bytes of hex.
    """
    text = pin.strip()
    prefix, sep, value = text.partition(":")
    if not sep or prefix.lower() != "sha256":
        raise ConfigError(f"CA cert hash {text!r} must start with \"sha256:\"",
                          fix='copy it from "fab certs.ca-hash" (format sha256:<64 hex digits>)')
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"CA cert hash {text!r} is not 64 hexadecimal digits",
                          fix='copy it from "fab certs.ca-hash" (format sha256:<64 hex digits>)')
    return PIN_PREFIX + raw.hex()


def pin_matches(ca_bundle_pem: bytes, pins: Iterable[str]) -> bool:
    """True when any certificate of the bundle matches any pin (kubeadm's CheckAny)."""
    wanted = {parse_ca_pin(p) for p in pins}
    try:
        certs = x509.load_pem_x509_certificates(ca_bundle_pem)
    except ValueError:
        return False
    return any(ca_pin(c) in wanted for c in certs)


# --- cluster-info JWS (reference §7.3) --------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compute_detached_jws(content: str | bytes, token_id: str, token_secret: Secret | str) -> str:
    """The ``jws-kubeconfig-<id>`` value: ``<b64 header>..<b64 HS256 signature>``.

    Header exactly ``{"alg":"HS256","kid":"<id>"}``; HMAC key = the token's secret part only
    (go-jose zero-pads it to 32 bytes, which leaves HMAC-SHA256 unchanged).
    """
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    payload = _b64url(content.encode() if isinstance(content, str) else content)
    key = _reveal(token_secret).encode()
    sig = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}..{_b64url(sig)}"


def verify_detached_jws(jws: str, content: str | bytes, token_id: str, token_secret: Secret | str) -> bool:
    """kubeadm's check: recompute the detached JWS and compare the strings."""
    return hmac.compare_digest(jws.encode(), compute_detached_jws(content, token_id, token_secret).encode())


# --- certificate key and kubeadm-certs (reference §8) -----------------------------------------
CERTIFICATE_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

LOCAL_ETCD_CERT_FILES = ("ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.pub", "sa.key",
                         "etcd/ca.crt", "etcd/ca.key")
BASE_CERT_FILES = LOCAL_ETCD_CERT_FILES[:6]
EXTERNAL_ETCD_KEYS = ("external-etcd-ca.crt", "external-etcd.crt", "external-etcd.key")


def generate_certificate_key(rand_bytes: RandBytes = os.urandom) -> Secret:
    """64 lower-case hex characters (32 random bytes), as ``kubeadm certs certificate-key``."""
    return Secret(rand_bytes(CERTIFICATE_KEY_BYTES).hex(), kind="certificate key")


def parse_certificate_key(key: Secret | str) -> bytes:
    """The 32 AES key bytes of a certificate key.

    :raises ConfigError: when it is not 64 hex characters (the value is never echoed).
    """
    try:
        raw = bytes.fromhex(_reveal(key).strip())
    except ValueError:
        raw = b""
    if len(raw) != CERTIFICATE_KEY_BYTES:
        raise ConfigError("the certificate key must be 64 hexadecimal characters (32 bytes)",
                          fix='pass the key printed by "fab -H <init host> init --upload-certs", or leave '
                          '--certificate-key out (init generates one and keeps it in the state dir)')
    return raw


def encrypt(data: bytes, key: bytes, *, rand_bytes: RandBytes = os.urandom) -> bytes:
    """AES-256-GCM, 12-byte random nonce, no AAD; returns ``nonce || ciphertext || tag``.

    :raises PKIError: when the key is not 32 bytes.
    """
    if len(key) != CERTIFICATE_KEY_BYTES:
        raise PKIError(f"the certificate key must be {CERTIFICATE_KEY_BYTES} bytes, got {len(key)}",
                       phase="upload-certs", fix="generate one with generate_certificate_key()")
    nonce = rand_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, data, None)


def decrypt(blob: bytes, key: bytes, *, what: str = "data") -> bytes:
    """Inverse of :func:`encrypt`.

    :raises PKIError: on a wrong key or damaged data (never a bare InvalidTag).
    """
    if len(key) != CERTIFICATE_KEY_BYTES:
        raise PKIError(f"cannot decrypt {what}: the certificate key must be {CERTIFICATE_KEY_BYTES} bytes",
                       phase="download-certs", fix="pass the 64-hex-character certificate key printed by the init")
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise PKIError(f"{what} is too short to be AES-GCM encrypted data", phase="download-certs",
                       fix="re-run upload-certs on the first control plane")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], None)
    except InvalidTag:
        raise PKIError(f"cannot decrypt {what}: the certificate key does not match the one used for "
                       "upload-certs (or the data is damaged)", phase="download-certs",
                       fix="pass the certificate key printed by the init (or re-run "
                       '"fab -H <init host> init --only upload-certs --upload-certs" and use the new key)') from None


def secret_key_for(rel_path: str) -> str:
    """kubeadm-certs data key of a file: every ``/`` becomes ``-`` (``etcd/ca.crt`` -> ``etcd-ca.crt``)."""
    return rel_path.replace("/", "-")


def kubeadm_certs_files(*, external_etcd: bool) -> tuple[str, ...]:
    """Data keys kubeadm-certs carries (reference §8.3)."""
    if external_etcd:
        return tuple(secret_key_for(f) for f in BASE_CERT_FILES) + EXTERNAL_ETCD_KEYS
    return tuple(secret_key_for(f) for f in LOCAL_ETCD_CERT_FILES)


def kubeadm_certs_secret(files: Mapping[str, bytes], certificate_key: Secret | str, *, owner_name: str,
                         owner_uid: str, external_etcd: bool = False,
                         external_etcd_files: Mapping[str, bytes] | None = None,
                         rand_bytes: RandBytes = os.urandom) -> dict[str, Any]:
    """``kube-system/kubeadm-certs``: every shared file AES-GCM encrypted (reference §8.3).

    :param files: relative pki path -> bytes (``ClusterPKI.shared_files()``); a missing file gets
        an empty value, as in kubeadm (e.g. ``ca.key`` in external-CA mode).
    :param external_etcd_files: ``external-etcd-ca.crt``/``external-etcd.crt``/``external-etcd.key``
        contents read from ``etcd.external`` paths.
    :param owner_uid: uid of the owner token Secret (``ownerReferences`` needs it).
    """
    key = parse_certificate_key(certificate_key)
    by_key = {secret_key_for(rel): content for rel, content in files.items()}
    by_key.update(external_etcd_files or {})
    data: dict[str, str] = {}
    for name in kubeadm_certs_files(external_etcd=external_etcd):
        content = by_key.get(name)
        data[name] = _b64(encrypt(content, key, rand_bytes=rand_bytes)) if content else ""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": K.KUBEADM_CERTS_SECRET,
            "namespace": K.KUBE_SYSTEM_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Secret", "name": owner_name, "uid": owner_uid,
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "data": data,
    }


def _data_to_rel_path(name: str) -> str:
    if name in EXTERNAL_ETCD_KEYS:
        return name  # written back to the configured etcd.external paths, not under <pki>
    return "etcd/" + name[len("etcd-"):] if name.startswith("etcd-") else name


def decrypt_kubeadm_certs(secret: Mapping[str, Any], certificate_key: Secret | str, *,
                          external_etcd: bool = False) -> dict[str, bytes]:
    """Decrypt kubeadm-certs into ``{relative pki path: bytes}`` (reference §8.4).

    Every expected key must be present; empty values are skipped. Nothing is returned unless every
    value decrypts. External etcd entries keep their data key name as path.

    :raises PKIError: for a missing key, bad base64 or a wrong certificate key.
    """
    key = parse_certificate_key(certificate_key)
    data = secret.get("data") or {}
    out: dict[str, bytes] = {}
    for name in kubeadm_certs_files(external_etcd=external_etcd):
        if name not in data:
            raise PKIError(f"kubeadm-certs has no {name!r} entry", phase="download-certs",
                           fix='re-run "fab -H <init host> init --only upload-certs --upload-certs" and join again')
        value = data[name]
        if not value:
            continue
        raw = value if isinstance(value, bytes) else value.encode()
        try:
            blob = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise PKIError(f"kubeadm-certs entry {name!r} is not base64", phase="download-certs",
                           fix='re-run "fab -H <init host> init --only upload-certs --upload-certs"') from None
        out[_data_to_rel_path(name)] = decrypt(blob, key, what=f"kubeadm-certs entry {name!r}")
    return out


def downloaded_file_mode(content: bytes) -> int:
    """Mode kubeadm gives a downloaded file: 0600 for PEM private keys, else 0644 (reference §8.4)."""
    return 0o600 if b"PRIVATE KEY-----" in content else 0o644
