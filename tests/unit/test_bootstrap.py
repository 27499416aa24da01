"""Bootstrap primitives (kubeadm-reference.md §6-§8), each checked against an independent
computation and, where kubernetes/kubernetes publishes them, kubeadm's own test vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import shutil
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone

import kubernetes_validate
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tasks.core import bootstrap as bs
from tasks.core import pki
from tasks.core.errors import ConfigError, PKIError
from tasks.core.secrets import Secret
from tasks.core.spec import BootstrapToken

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
TOKEN = "abcdef.0123456789abcdef"

# --- kubeadm's published vectors (facts, used as data) ----------------------------------------
# cluster-bootstrap token/jws/jws_test.go
JWS_CONTENT = "Hello from the other side. I must have called a thousand times."
JWS_ID, JWS_SECRET = "joshua", "my voice is my passcode"
JWS_VECTORS = [
    (JWS_CONTENT, JWS_SECRET,
     "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"),
    ("", JWS_SECRET, "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk"),
    (JWS_CONTENT, "", "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..UfkqvDGiIFxrMnFseDj9LYJOLNrvjW8aHhF71mvvAs8"),
]

# kubeadm util/pubkeypin/pubkeypin_test.go: a self-signed cert and its expected pin
PIN_CERT = """-----BEGIN CERTIFICATE-----
MIIDRDCCAiygAwIBAgIJAJgVaCXvC6HkMA0GCSqGSIb3DQEBBQUAMB8xHTAbBgNV
BAMTFGt1YmVhZG0ta2V5cGlucy10ZXN0MCAXDTE3MDcwNTE3NDMxMFoYDzIxMTcw
NjExMTc0MzEwWjAfMR0wGwYDVQQDExRrdWJlYWRtLWtleXBpbnMtdGVzdDCCASIw
DQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAK0ba8mHU9UtYlzM1Own2Fk/XGjR
J4uJQvSeGLtz1hID1IA0dLwruvgLCPadXEOw/f/IWIWcmT+ZmvIHZKa/woq2iHi5
+HLhXs7aG4tjKGLYhag1hLjBI7icqV7ovkjdGAt9pWkxEzhIYClFMXDjKpMSynu+
YX6nZ9tic1cOkHmx2yiZdMkuriRQnpTOa7bb03OC1VfGl7gHlOAIYaj4539WCOr8
+ACTUMJUFEHcRZ2o8a/v6F9GMK+7SC8SJUI+GuroXqlMAdhEv4lX5Co52enYaClN
+D9FJLRpBv2YfiCQdJRaiTvCBSxEFz6BN+PtP5l2Hs703ZWEkOqCByM6HV8CAwEA
AaOBgDB+MB0GA1UdDgQWBBRQgUX8MhK2rWBWQiPHWcKzoWDH5DBPBgNVHSMESDBG
gBRQgUX8MhK2rWBWQiPHWcKzoWDH5KEjpCEwHzEdMBsGA1UEAxMUa3ViZWFkbS1r
ZXlwaW5zLXRlc3SCCQCYFWgl7wuh5DAMBgNVHRMEBTADAQH/MA0GCSqGSIb3DQEB
BQUAA4IBAQCaAUif7Pfx3X0F08cxhx8/Hdx4jcJw6MCq6iq6rsXM32ge43t8OHKC
pJW08dk58a3O1YQSMMvD6GJDAiAfXzfwcwY6j258b1ZlI9Ag0VokvhMl/XfdCsdh
AWImnL1t4hvU5jLaImUUMlYxMcSfHBGAm7WJIZ2LdEfg6YWfZh+WGbg1W7uxLxk6
y4h5rWdNnzBHWAGf7zJ0oEDV6W6RSwNXtC0JNnLaeIUm/6xdSddJlQPwUv8YH4jX
c1vuFqTnJBPcb7W//R/GI2Paicm1cmns9NLnPR35exHxFTy+D1yxmGokpoPMdife
aH+sfuxT8xeTPb3kjzF9eJTlnEquUDLM
-----END CERTIFICATE-----
""".encode()
PIN_EXPECTED = "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3"

# AES-256-GCM known answer (GCM specification test case 15: 96-bit IV, no AAD)
GCM_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
GCM_IV = bytes.fromhex("cafebabefacedbaddecaf888")
GCM_PLAIN = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
GCM_CIPHER_TAG = bytes.fromhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                               "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
                               "b094dac5d93471bdec1a502270e3cc6c")


def fixed_bytes(data: bytes):
    """A ``rand_bytes`` that replays ``data`` (cycling) whatever length is asked."""
    it = itertools.cycle(data)
    return lambda n: bytes(next(it) for _ in range(n))


def decode_data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


# --- tokens -----------------------------------------------------------------------------------
def test_generated_tokens_have_kubeadms_format():
    seen = set()
    for _ in range(300):
        token = bs.generate_token()
        assert isinstance(token, Secret) and "abcdef" not in str(token)
        assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token.reveal())
        seen.add(token.reveal())
    assert len(seen) == 300


def test_token_chars_use_rejection_sampling():
    # 252..255 are rejected (252 = 7*36); the rest map by modulo 36
    stream = fixed_bytes(bytes([252, 253, 254, 255, 0, 35, 36, 251, 71, 72]))
    assert bs.random_token_chars(6, stream) == "0z0zz0"


def test_token_chars_are_uniform():
    import random

    # a seeded byte source keeps the test deterministic while exercising the byte->char mapping
    n = 5000
    counts = Counter(bs.random_token_chars(36 * n, random.Random(1234).randbytes))
    assert set(counts) == set("0123456789abcdefghijklmnopqrstuvwxyz")
    # chi-square, 35 degrees of freedom: uniform stays under 80 (99.99th percentile ~73) while a
    # plain "byte % 36" (no rejection) lands near 350 with this many samples
    chi2 = sum((c - n) ** 2 / n for c in counts.values())
    assert chi2 < 80, counts


@pytest.mark.parametrize("bad", ["abcdef0123456789abcdef", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdef",
                                 "abcdef.0123456789abcde", "abcdef.0123456789abcdef0", ""])
def test_parse_token_refuses_bad_format_without_echoing(bad):
    with pytest.raises(ConfigError) as err:
        bs.parse_token(Secret(bad) if bad else bad)
    if len(bad) > 6:
        assert bad not in str(err.value)


def test_parse_token():
    token_id, secret = bs.parse_token(Secret(TOKEN))
    assert token_id == "abcdef" and secret.reveal() == "0123456789abcdef" and "0123" not in str(secret)


def test_token_secret_manifest_defaults():
    secret = bs.token_secret_manifest(BootstrapToken(token=Secret(TOKEN)), now=NOW)
    assert secret["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert decode_data(secret) == {
        "token-id": "abcdef",
        "token-secret": "0123456789abcdef",
        "expiration": "2026-01-03T03:04:05Z",
        "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    }
    assert kubernetes_validate.validate(secret, "1.32", strict=True) is not None


def test_token_secret_manifest_options():
    tok = BootstrapToken(token=Secret(TOKEN), description="for workers", ttl=None,
                         expires=datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))),
                         usages=("authentication",), groups=("system:bootstrappers:extra", "system:bootstrappers:b"))
    data = decode_data(bs.token_secret_manifest(tok, now=NOW))
    assert data["expiration"] == "2030-05-06T05:08:09Z"  # converted to UTC
    assert data["description"] == "for workers"
    assert "usage-bootstrap-signing" not in data and data["usage-bootstrap-authentication"] == "true"
    assert data["auth-extra-groups"] == "system:bootstrappers:extra,system:bootstrappers:b"
    never = decode_data(bs.token_secret_manifest(BootstrapToken(token=Secret(TOKEN), ttl=timedelta(0)), now=NOW))
    assert "expiration" not in never and "description" not in never


def test_token_secret_manifest_validates_groups_and_usages():
    with pytest.raises(ConfigError) as err:
        bs.token_secret_manifest(BootstrapToken(token=Secret(TOKEN), usages=("signing", "bogus"),
                                                groups=("system:nodes",)), now=NOW)
    assert any("bogus" in d for d in err.value.details) and any("system:nodes" in d for d in err.value.details)


def test_token_round_trip_through_secret():
    tok = BootstrapToken(token=Secret(TOKEN), description="d")
    back = bs.token_from_secret(bs.token_secret_manifest(tok, now=NOW))
    assert back.token == tok.token and back.description == "d" and back.groups == tok.groups
    assert set(back.usages) == {"signing", "authentication"}
    assert back.expires == NOW + timedelta(hours=24)


def test_certificate_key_owner_token():
    owner = bs.certificate_key_owner_token(now=NOW)
    secret = bs.token_secret_manifest(owner, now=NOW)
    data = decode_data(secret)
    # no usages and no groups: it can neither authenticate nor sign (reference §8.3)
    assert set(data) == {"token-id", "token-secret", "description", "expiration"}
    assert data["description"] == "Proxy for managing TTL for the kubeadm-certs secret"
    assert data["expiration"] == "2026-01-02T05:04:05Z"
    assert secret["metadata"]["name"] == f"bootstrap-token-{owner.token_id}"


# --- CA pin -----------------------------------------------------------------------------------
def test_ca_pin_kubeadm_vector():
    assert bs.ca_pin(PIN_CERT) == PIN_EXPECTED


def test_ca_pin_matches_openssl_pipeline(tmp_path, key_cache):
    assert shutil.which("openssl"), "openssl is required"
    for algo in ("RSA-2048", "ECDSA-P256"):
        ca = pki.build_ca("kubernetes", algorithm=algo, now=NOW, validity=timedelta(days=1), keygen=key_cache)
        crt = tmp_path / f"{algo}.crt"
        crt.write_bytes(ca.cert_pem)
        pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(crt)], capture_output=True,
                             check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                             check=True).stdout
        assert bs.ca_pin(ca.cert_pem) == "sha256:" + hashlib.sha256(der).hexdigest()


def test_parse_ca_pin():
    assert bs.parse_ca_pin(PIN_EXPECTED.upper()) == PIN_EXPECTED
    assert bs.parse_ca_pin("  " + PIN_EXPECTED + " ") == PIN_EXPECTED
    for bad in ["xyz", "sha256:0011223344", PIN_EXPECTED + PIN_EXPECTED[7:], "md5:" + PIN_EXPECTED[7:],
                PIN_EXPECTED[7:], "sha256:" + "zz" * 32]:
        with pytest.raises(ConfigError):
            bs.parse_ca_pin(bad)


def test_pin_matches_any_cert_in_bundle(key_cache):
    other = pki.build_ca("other", algorithm="ECDSA-P256", now=NOW, validity=timedelta(days=1), keygen=key_cache)
    assert bs.pin_matches(PIN_CERT, [PIN_EXPECTED])
    assert not bs.pin_matches(other.cert_pem, [PIN_EXPECTED])
    assert bs.pin_matches(other.cert_pem + PIN_CERT, [bs.ca_pin(other.cert_pem)])
    assert bs.pin_matches(other.cert_pem + PIN_CERT, ["sha256:" + "00" * 32, PIN_EXPECTED])


# --- JWS --------------------------------------------------------------------------------------
@pytest.mark.parametrize("content,secret,expected", JWS_VECTORS)
def test_jws_kubeadm_vectors(content, secret, expected):
    assert bs.compute_detached_jws(content, JWS_ID, secret) == expected
    assert bs.verify_detached_jws(expected, content, JWS_ID, secret)
    assert not bs.verify_detached_jws(expected + "foo", content, JWS_ID, secret)


def test_jws_recomputed_independently_over_cluster_info(key_cache):
    from tasks.core import kubeconfig as kc

    ca = pki.build_ca("kubernetes", algorithm="ECDSA-P256", now=NOW, validity=timedelta(days=1), keygen=key_cache)
    content = kc.cluster_info_kubeconfig("https://10.0.0.11:6443", ca.cert_pem)
    token_id, secret = bs.parse_token(bs.generate_token())
    jws = bs.compute_detached_jws(content, token_id, secret)

    def b64url(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).decode().rstrip("=")

    header = b64url(('{"alg":"HS256","kid":"%s"}' % token_id).encode())
    signing_input = header + "." + b64url(content.encode())
    sig = hmac.new(secret.reveal().encode(), signing_input.encode(), hashlib.sha256).digest()
    assert jws == f"{header}..{b64url(sig)}"
    head = jws.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))) == {"alg": "HS256", "kid": token_id}
    assert not bs.verify_detached_jws(jws, content + " ", token_id, secret)
    assert not bs.verify_detached_jws(jws, content, token_id, "0123456789abcdef")


# --- certificate key and AES-GCM --------------------------------------------------------------
def test_certificate_key():
    key = bs.generate_certificate_key()
    assert isinstance(key, Secret) and re.fullmatch(r"[0-9a-f]{64}", key.reveal())
    assert len(bs.parse_certificate_key(key)) == 32
    assert bs.parse_certificate_key(key.reveal().upper()) == bytes.fromhex(key.reveal())
    for bad in ["", "00" * 31, "00" * 33, "zz" * 32]:
        with pytest.raises(ConfigError):
            bs.parse_certificate_key(Secret(bad))


def test_encrypt_layout_matches_gcm_known_answer():
    blob = bs.encrypt(GCM_PLAIN, GCM_KEY, rand_bytes=fixed_bytes(GCM_IV))
    assert blob == GCM_IV + GCM_CIPHER_TAG  # nonce || ciphertext || tag
    assert bs.decrypt(GCM_IV + GCM_CIPHER_TAG, GCM_KEY) == GCM_PLAIN


def test_encrypt_round_trip_and_independent_decrypt():
    key = bytes.fromhex(bs.generate_certificate_key().reveal())
    data = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit."
    blob = bs.encrypt(data, key)
    assert len(blob) == 12 + len(data) + 16
    assert bs.decrypt(blob, key) == data
    assert AESGCM(key).decrypt(blob[:12], blob[12:], None) == data
    assert bs.encrypt(data, key) != blob  # fresh nonce each time


@pytest.mark.parametrize("case", ["wrong key", "no key", "truncated", "tampered"])
def test_decrypt_refusals_are_pkierrors(case):
    key = bytes(range(32))
    blob = bs.encrypt(b"secret pem", key)
    args = {
        "wrong key": (blob, bytes(32)),
        "no key": (blob, b""),
        "truncated": (blob[:20], key),
        "tampered": (blob[:-1] + bytes([blob[-1] ^ 1]), key),
    }[case]
    with pytest.raises(PKIError) as err:
        bs.decrypt(*args, what="ca.key")
    assert "InvalidTag" not in str(err.value) and err.value.fix
    # the raw InvalidTag is not chained into what a --debug traceback would show
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


# --- kubeadm-certs ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory, key_cache):
    from tasks.core.spec import ClusterConfiguration

    cluster = ClusterConfiguration(kubernetes_version="v1.36.0", encryption_algorithm="ECDSA-P256")
    cp = pki.ensure_cluster_pki(tmp_path_factory.mktemp("certs") / "pki", cluster, now=NOW, keygen=key_cache)
    return cp.shared_files()


def test_kubeadm_certs_secret_shape_and_round_trip(shared):
    key = bs.generate_certificate_key()
    secret = bs.kubeadm_certs_secret(shared, key, owner_name="bootstrap-token-abc123", owner_uid="u-1")
    assert secret["metadata"]["name"] == "kubeadm-certs" and secret["metadata"]["namespace"] == "kube-system"
    assert "type" not in secret  # kubeadm sets none; the API server defaults Opaque
    assert secret["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Secret", "name": "bootstrap-token-abc123", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True}]
    assert sorted(secret["data"]) == sorted(["ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key",
                                             "sa.pub", "sa.key", "etcd-ca.crt", "etcd-ca.key"])
    raw_key = bytes.fromhex(key.reveal())
    for name, value in secret["data"].items():
        blob = base64.b64decode(value)
        rel = "etcd/" + name[5:] if name.startswith("etcd-") else name
        assert AESGCM(raw_key).decrypt(blob[:12], blob[12:], None) == shared[rel]  # independent decrypt
        assert shared[rel] not in blob
    assert bs.decrypt_kubeadm_certs(secret, key) == shared
    loaded = pki.load_cluster_pki_from_files(bs.decrypt_kubeadm_certs(secret, key), now=NOW)
    assert loaded.shared_files() == shared
    assert kubernetes_validate.validate(secret, "1.32", strict=True) is not None


def test_kubeadm_certs_wrong_key_is_refused(shared):
    secret = bs.kubeadm_certs_secret(shared, bs.generate_certificate_key(), owner_name="o", owner_uid="u")
    with pytest.raises(PKIError, match="certificate key does not match") as err:
        bs.decrypt_kubeadm_certs(secret, bs.generate_certificate_key())
    assert "InvalidTag" not in str(err.value)


def test_kubeadm_certs_missing_file_gives_empty_value_and_is_skipped(shared):
    key = bs.generate_certificate_key()
    files = {k: v for k, v in shared.items() if k != "ca.key"}  # external-CA mode
    secret = bs.kubeadm_certs_secret(files, key, owner_name="o", owner_uid="u")
    assert secret["data"]["ca.key"] == ""
    out = bs.decrypt_kubeadm_certs(secret, key)
    assert "ca.key" not in out and out["ca.crt"] == shared["ca.crt"]


def test_kubeadm_certs_missing_entry_is_an_error(shared):
    key = bs.generate_certificate_key()
    secret = bs.kubeadm_certs_secret(shared, key, owner_name="o", owner_uid="u")
    del secret["data"]["sa.key"]
    with pytest.raises(PKIError, match="no 'sa.key' entry"):
        bs.decrypt_kubeadm_certs(secret, key)


def test_kubeadm_certs_external_etcd(shared):
    key = bs.generate_certificate_key()
    base = {k: v for k, v in shared.items() if not k.startswith("etcd/")}
    ext = {"external-etcd-ca.crt": b"CA", "external-etcd.crt": b"CRT", "external-etcd.key": b""}
    secret = bs.kubeadm_certs_secret(base, key, owner_name="o", owner_uid="u", external_etcd=True,
                                     external_etcd_files=ext)
    assert sorted(secret["data"]) == sorted(["ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key",
                                             "sa.pub", "sa.key", "external-etcd-ca.crt", "external-etcd.crt",
                                             "external-etcd.key"])
    assert secret["data"]["external-etcd.key"] == ""
    out = bs.decrypt_kubeadm_certs(secret, key, external_etcd=True)
    assert out["external-etcd-ca.crt"] == b"CA" and out["external-etcd.crt"] == b"CRT"
    assert "external-etcd.key" not in out


def test_downloaded_file_modes(shared):
    modes = {rel: bs.downloaded_file_mode(data) for rel, data in shared.items()}
    assert modes == {"ca.crt": 0o644, "ca.key": 0o600, "front-proxy-ca.crt": 0o644, "front-proxy-ca.key": 0o600,
                     "etcd/ca.crt": 0o644, "etcd/ca.key": 0o600, "sa.key": 0o600, "sa.pub": 0o644}
