"""The kube-controller-manager and kube-scheduler stand-ins (binaries these machines cannot run).

Pure checks of their rules first (no root needed), then ``lab`` tests against a real TLS etcd
and the kube-apiserver stand-in: cluster-info signing verified independently with ``hmac``,
token cleaning, owner-reference garbage collection, CSR approval decided by RBAC, signing
checked with ``openssl verify``, and the health endpoints kubeadm probes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.controller_fixtures import *  # noqa: F401,F403 (fixtures)
from tests.integration.controller_fixtures import (
    BOOTSTRAP_GROUP,
    StandinProcess,
    bind_group,
    ensure_kubeadm_csr_rbac,
    new_token,
    start_standin,
    token_secret,
    wait_for,
)
from tests.integration.standin_fixtures import *  # noqa: F401,F403 (fixtures)
from tests.integration.standin_fixtures import ApiServerProcess, LabPki, free_port
from tests.lab.standins import controller_manager as kcm
from tests.lab.standins.clientkit import FlagError, KubeClient, parse_flags
from tests.lab.standins.scheduler import KNOWN_FLAGS as SCHEDULER_FLAGS

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


# ---------------------------------------------------------------------------- helpers
def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jws(value: str, content: str, token_id: str, token_secret_value: str) -> None:
    """Check a detached JWS independently of the stand-in (reference §7.3)."""
    header_b64, payload, sig_b64 = value.split(".")
    assert payload == "", "the payload must be detached"
    assert unb64url(header_b64) == json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode()
    content_b64 = base64.urlsafe_b64encode(content.encode()).rstrip(b"=").decode()
    expected = hmac.new(token_secret_value.encode(), f"{header_b64}.{content_b64}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(unb64url(sig_b64), expected)
    # go-jose pads the 16-byte secret with zeros to 32 bytes: HMAC gives the same signature.
    padded = hmac.new(token_secret_value.encode().ljust(32, b"\0"), f"{header_b64}.{content_b64}".encode(),
                      hashlib.sha256).digest()
    assert padded == expected


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    """cluster-info's kubeconfig shape (reference §5.3)."""
    return (
        "apiVersion: v1\nclusters:\n- cluster:\n"
        f"    certificate-authority-data: {base64.b64encode(ca_pem).decode()}\n"
        f"    server: {server}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\n"
        "preferences: {}\nusers: null\n"
    )


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: Any, cn: str, orgs: list[str], dns: list[str] = ()) -> bytes:  # type: ignore[assignment]
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr_object(name: str, pem: bytes, usages: list[str] | None = None,
               signer: str = kcm.KUBELET_CLIENT_SIGNER) -> dict[str, Any]:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                     "usages": usages or ["digital signature", "client auth"]}}


# ---------------------------------------------------------------------------- pure rules
def test_detached_jws_matches_an_independent_hmac() -> None:
    content = cluster_info_kubeconfig("https://10.0.0.1:6443", b"-----BEGIN CERTIFICATE-----\nAA==\n")
    value = kcm.compute_detached_jws(content, "abcdef", "0123456789abcdef")
    verify_jws(value, content, "abcdef", "0123456789abcdef")
    assert kcm.compute_detached_jws(content + " ", "abcdef", "0123456789abcdef") != value


@pytest.mark.parametrize("argv, problem", [
    (["--kubeconfig=/x", "--bogus=1"], "unknown flag: --bogus"),
    (["--kubeconfig"], "flag needs an argument: --kubeconfig"),
    (["kube-controller-manager"], "unexpected argument"),
    (["--leader-elect=maybe"], "not a boolean"),
])
def test_flag_parser_refuses_what_the_real_binary_refuses(argv: list[str], problem: str) -> None:
    with pytest.raises(FlagError, match=problem):
        parse_flags(argv, kcm.KNOWN_FLAGS, "kube-controller-manager")


def test_flag_parser_accepts_kubeadm_forms() -> None:
    flags = parse_flags(["--leader-elect", "--bind-address", "127.0.0.1", "--controllers=*,bootstrapsigner"],
                        kcm.KNOWN_FLAGS, "kube-controller-manager")
    assert flags == {"leader-elect": "true", "bind-address": "127.0.0.1", "controllers": "*,bootstrapsigner"}
    assert parse_flags(["--authorization-kubeconfig=/a", "--leader-elect=true"], SCHEDULER_FLAGS, "s")


@pytest.mark.parametrize("spec, name, enabled", [
    (["*"], "csrsigning", True),
    (["*"], "bootstrapsigner", False),  # off by default: why kubeadm names it
    (["*", "bootstrapsigner", "tokencleaner"], "tokencleaner", True),
    (["*", "-garbagecollector"], "garbagecollector", False),
    (["bootstrap-signer-controller"], "bootstrapsigner", True),
    (["csrapproving"], "csrsigning", False),
])
def test_controllers_flag(spec: list[str], name: str, enabled: bool) -> None:
    assert kcm.controller_enabled(spec, name) is enabled


def test_unknown_controller_and_missing_files_stop_the_start(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("{}")
    with pytest.raises(FlagError, match="not in the list of known controllers"):
        kcm.options_from_flags({"kubeconfig": str(conf), "controllers": "*,nosuch"})
    with pytest.raises(FlagError, match="no such file"):
        kcm.options_from_flags({"kubeconfig": str(conf), "cluster-signing-cert-file": str(tmp_path / "ca.crt"),
                                "cluster-signing-key-file": str(tmp_path / "ca.key")})
    with pytest.raises(FlagError, match="set together"):
        kcm.options_from_flags({"kubeconfig": str(conf), "cluster-signing-cert-file": str(conf)})


@pytest.mark.parametrize("cn, orgs, dns, usages, problem", [
    ("system:node:n1", ["system:nodes"], [], ["digital signature", "client auth"], None),
    ("system:node:n1", ["system:nodes"], [], ["digital signature", "key encipherment", "client auth"], None),
    ("system:node:n1", ["system:masters"], [], ["digital signature", "client auth"], "organization"),
    ("system:node:n1", ["system:nodes", "x"], [], ["digital signature", "client auth"], "organization"),
    ("n1", ["system:nodes"], [], ["digital signature", "client auth"], "common name"),
    ("system:node:n1", ["system:nodes"], ["n1"], ["digital signature", "client auth"], "DNS"),
    ("system:node:n1", ["system:nodes"], [], ["digital signature", "server auth"], "usages"),
    ("system:node:n1", ["system:nodes"], [], ["client auth"], "usages"),
])
def test_kubelet_client_csr_rules(ec_key: Any, cn: str, orgs: list[str], dns: list[str], usages: list[str],
                                  problem: str | None) -> None:
    req = x509.load_pem_x509_csr(make_csr(ec_key, cn, orgs, dns))
    found = kcm.kubelet_client_csr_problem(req, usages)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_rbac_evaluation_follows_rbac_matching() -> None:
    role = {"metadata": {"name": "r"}, "rules": [{"verbs": ["create"], "apiGroups": ["certificates.k8s.io"],
                                                  "resources": ["certificatesigningrequests/nodeclient"]}]}
    binding = {"roleRef": {"kind": "ClusterRole", "name": "r"},
               "subjects": [{"kind": "Group", "name": BOOTSTRAP_GROUP}]}
    args = ("create", "certificates.k8s.io", "certificatesigningrequests")
    assert kcm.rbac_allows([role], [binding], "system:bootstrap:abcdef", [BOOTSTRAP_GROUP], *args, "nodeclient")
    assert not kcm.rbac_allows([role], [binding], "system:bootstrap:abcdef", ["system:bootstrappers"],
                               *args, "nodeclient")
    assert not kcm.rbac_allows([role], [binding], "u", [BOOTSTRAP_GROUP], *args, "selfnodeclient")
    star = {"metadata": {"name": "r"}, "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/nodeclient"]}]}
    assert kcm.rbac_allows([star], [binding], "u", [BOOTSTRAP_GROUP], *args, "nodeclient")
    assert kcm.rbac_allows([], [], "u", ["system:masters"], *args, "nodeclient")


def test_signing_policy(standin_free_ca: tuple[x509.Certificate, Any], ec_key: Any) -> None:
    ca_cert, ca_key = standin_free_ca
    req = x509.load_pem_x509_csr(make_csr(ec_key, "system:node:n1", ["system:nodes"]))
    now = dt.datetime.now(dt.timezone.utc)
    cert = x509.load_pem_x509_certificate(
        kcm.sign_csr(req, ["digital signature", "client auth"], ca_cert, ca_key, dt.timedelta(hours=8760), now))
    assert cert.subject == req.subject and cert.issuer == ca_cert.subject
    assert cert.not_valid_before_utc == (now - dt.timedelta(minutes=5)).replace(microsecond=0)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=8760)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment and not ku.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    short = x509.load_pem_x509_certificate(
        kcm.sign_csr(req, ["digital signature", "client auth"], ca_cert, ca_key, dt.timedelta(minutes=10), now))
    assert short.not_valid_after_utc == (now + dt.timedelta(minutes=10)).replace(microsecond=0)
    with pytest.raises(ValueError, match="unrecognized usage"):
        kcm.sign_csr(req, ["client auth", "bogus"], ca_cert, ca_key, dt.timedelta(hours=1), now)


@pytest.mark.parametrize("value, seconds", [("8760h0m0s", 8760 * 3600), ("90m", 5400), ("1h30m", 5400), (None, 8760 * 3600)])
def test_signing_duration(value: str | None, seconds: int) -> None:
    assert kcm.signing_duration(value).total_seconds() == seconds


@pytest.fixture(scope="session")
def standin_free_ca() -> tuple[x509.Certificate, Any]:
    """A throwaway ECDSA CA for pure signing tests (no root, no files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


# ---------------------------------------------------------------------------- lab: the processes
@pytest.mark.lab
def test_controller_manager_serves_healthz_with_a_self_signed_cert(standin_kcm: StandinProcess,
                                                                   standin_pki: LabPki) -> None:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{standin_kcm.port}/healthz", context=insecure, timeout=2) as r:
        assert r.read() == b"ok"
    # Not signed by the cluster CA, as the real component's generated serving cert is not.
    strict = ssl.create_default_context(cafile=standin_pki.path("ca.crt"))
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{standin_kcm.port}/healthz", context=strict, timeout=2)


def test_bad_flags_exit_1_like_the_real_binary() -> None:
    for module in ("controller_manager", "scheduler"):
        done = subprocess.run([sys.executable, "-m", f"tests.lab.standins.{module}", "--kubeconfig=/nonexistent",
                               "--no-such-flag=1"], capture_output=True, text=True, timeout=20,
                              cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 1
        assert "unknown flag: --no-such-flag" in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.lab
def test_scheduler_serves_livez_readyz_healthz(standin_pki: LabPki, standin_apiserver: ApiServerProcess,
                                               standin_tmp: Path) -> None:
    kubeconfig = standin_pki.kubeconfig(standin_apiserver.url, "system:kube-scheduler",
                                        path=standin_tmp / "scheduler.conf")
    port = free_port()
    flags = [f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
             "--bind-address=127.0.0.1", f"--kubeconfig={kubeconfig}", "--leader-elect=true",
             f"--secure-port={port}"]
    sched = start_standin("scheduler", flags, standin_tmp, port)
    try:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE

        def get(path: str) -> tuple[int, bytes]:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=insecure, timeout=2) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        wait_for(lambda: get("/readyz") == (200, b"ok"), "scheduler /readyz", proc=sched)
        assert get("/livez") == (200, b"ok")
        assert get("/healthz") == (200, b"ok")
        assert get("/metrics")[0] == 404
    finally:
        assert sched.stop() == 0


@pytest.mark.lab
def test_bootstrap_signer_signs_resigns_and_unsigns_cluster_info(
        standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
        standin_apiserver: ApiServerProcess) -> None:
    ca_pem = Path(standin_pki.path("ca.crt")).read_bytes()
    path = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
    content = cluster_info_kubeconfig(standin_apiserver.url, ca_pem)
    if standin_admin.get(path) is None:
        standin_admin.create("/api/v1/namespaces/kube-public/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": content}})
    else:
        cm = standin_admin.get(path)
        cm["data"]["kubeconfig"] = content
        standin_admin.replace(path, cm)
    signer_id, signer_secret = new_token()
    auth_only_id, auth_only_secret = new_token()
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    secrets_path = "/api/v1/namespaces/kube-system/secrets"
    standin_admin.create(secrets_path, token_secret(signer_id, signer_secret, expires=expires))
    standin_admin.create(secrets_path, token_secret(auth_only_id, auth_only_secret, expires=expires,
                                                    usages=("authentication",)))

    def signature(token_id: str) -> str | None:
        return (standin_admin.get(path) or {}).get("data", {}).get(f"jws-kubeconfig-{token_id}")

    value = wait_for(lambda: signature(signer_id), "jws-kubeconfig for the signing token", proc=standin_kcm)
    verify_jws(value, content, signer_id, signer_secret)
    assert signature(auth_only_id) is None, "a token without usage-bootstrap-signing must not sign"

    # A rewrite of data.kubeconfig makes the signer re-sign (reference §5.3).
    cm = standin_admin.get(path)
    new_content = content.replace("preferences: {}", "preferences: {}\n")
    cm["data"]["kubeconfig"] = new_content
    standin_admin.replace(path, cm)
    resigned = wait_for(lambda: (v := signature(signer_id)) != value and v, "re-signed cluster-info", proc=standin_kcm)
    verify_jws(resigned, new_content, signer_id, signer_secret)

    standin_admin.delete(f"{secrets_path}/bootstrap-token-{signer_id}")
    wait_for(lambda: signature(signer_id) is None, "jws key removed with its token", proc=standin_kcm)
    assert standin_admin.get(path)["data"]["kubeconfig"] == new_content


@pytest.mark.lab
def test_token_cleaner_deletes_expired_tokens_and_their_signature(
        standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
        standin_apiserver: ApiServerProcess) -> None:
    path = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
    if standin_admin.get(path) is None:
        standin_admin.create("/api/v1/namespaces/kube-public/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": cluster_info_kubeconfig(standin_apiserver.url,
                                                           Path(standin_pki.path("ca.crt")).read_bytes())}})
    secrets_path = "/api/v1/namespaces/kube-system/secrets"
    soon_id, soon_secret = new_token()
    past_id, past_secret = new_token()
    never_id, never_secret = new_token()
    now = dt.datetime.now(dt.timezone.utc)
    standin_admin.create(secrets_path, token_secret(soon_id, soon_secret, expires=now + dt.timedelta(seconds=3)))
    standin_admin.create(secrets_path, token_secret(past_id, past_secret, expires=now - dt.timedelta(minutes=1)))
    standin_admin.create(secrets_path, token_secret(never_id, never_secret, expires=None))

    def jws(token_id: str) -> str | None:
        return standin_admin.get(path)["data"].get(f"jws-kubeconfig-{token_id}")

    wait_for(lambda: jws(soon_id), "signature of the not-yet-expired token", proc=standin_kcm)
    wait_for(lambda: standin_admin.get(f"{secrets_path}/bootstrap-token-{past_id}") is None,
             "expired token deleted", proc=standin_kcm)
    assert jws(past_id) is None
    wait_for(lambda: standin_admin.get(f"{secrets_path}/bootstrap-token-{soon_id}") is None,
             "token deleted once expired", timeout=10, proc=standin_kcm)
    wait_for(lambda: jws(soon_id) is None, "its jws key removed", proc=standin_kcm)
    # A token without expiration never expires (kubeadm omits it for ttl 0).
    assert standin_admin.get(f"{secrets_path}/bootstrap-token-{never_id}") is not None
    assert jws(never_id)
    standin_admin.delete(f"{secrets_path}/bootstrap-token-{never_id}")


@pytest.mark.lab
def test_garbage_collector_deletes_kubeadm_certs_with_its_token(
        standin_kcm: StandinProcess, standin_admin: KubeClient) -> None:
    secrets_path = "/api/v1/namespaces/kube-system/secrets"
    cms_path = "/api/v1/namespaces/kube-system/configmaps"
    token_id, token_value = new_token()
    # kubeadm's short-lived owner token: no usages, no groups, expires soon (reference §8.3).
    owner = standin_admin.create(secrets_path, token_secret(
        token_id, token_value, expires=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2), usages=(),
        groups=None, description="Proxy for managing TTL for the kubeadm-certs secret"))
    ref = {"apiVersion": "v1", "kind": "Secret", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    suffix = token_id
    certs = standin_admin.create(secrets_path, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": f"kubeadm-certs-{suffix}", "namespace": "kube-system", "ownerReferences": [ref]},
        "data": {"ca.crt": b64("encrypted")}})
    owned_cm = standin_admin.create(cms_path, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"owned-{suffix}", "namespace": "kube-system", "ownerReferences": [ref]},
        "data": {"k": "v"}})
    # Two owners, one of which stays: the dependent must stay too.
    keeper = standin_admin.create(cms_path, {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": f"keeper-{suffix}", "namespace": "kube-system"}})
    keeper_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": keeper["metadata"]["name"],
                  "uid": keeper["metadata"]["uid"]}
    shared = standin_admin.create(secrets_path, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"shared-{suffix}", "namespace": "kube-system", "ownerReferences": [ref, keeper_ref]}})
    # A stale uid means the owner is gone even though an object of that name exists.
    stale = standin_admin.create(secrets_path, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"stale-{suffix}", "namespace": "kube-system",
                     "ownerReferences": [{**keeper_ref, "uid": "00000000-0000-0000-0000-000000000000"}]}})

    def gone(path: str) -> bool:
        return standin_admin.get(path) is None

    time.sleep(1.0)  # several controller passes while the owner still exists
    assert not gone(f"{secrets_path}/{certs['metadata']['name']}")
    wait_for(lambda: gone(f"{secrets_path}/bootstrap-token-{token_id}"), "owner token cleaned", proc=standin_kcm)
    wait_for(lambda: gone(f"{secrets_path}/{certs['metadata']['name']}"), "kubeadm-certs collected", proc=standin_kcm)
    wait_for(lambda: gone(f"{cms_path}/{owned_cm['metadata']['name']}"), "owned ConfigMap collected",
             proc=standin_kcm)
    wait_for(lambda: gone(f"{secrets_path}/{stale['metadata']['name']}"), "stale-uid dependent collected",
             proc=standin_kcm)
    assert not gone(f"{secrets_path}/{shared['metadata']['name']}"), "one owner alive: must stay"
    standin_admin.delete(f"{secrets_path}/{shared['metadata']['name']}")
    standin_admin.delete(f"{cms_path}/{keeper['metadata']['name']}")


@pytest.mark.lab
def test_root_ca_configmap_published(standin_kcm: StandinProcess, standin_admin: KubeClient,
                                     standin_pki: LabPki) -> None:
    ca = Path(standin_pki.path("ca.crt")).read_text()
    got = wait_for(lambda: standin_admin.get("/api/v1/namespaces/kube-public/configmaps/kube-root-ca.crt"),
                   "kube-root-ca.crt in kube-public", proc=standin_kcm)
    assert got["data"]["ca.crt"] == ca


@pytest.fixture(scope="module")
def kubeadm_csr_rbac(standin_admin: KubeClient) -> None:
    ensure_kubeadm_csr_rbac(standin_admin)


def _token_client(admin: KubeClient, pki: LabPki, url: str, groups: str) -> tuple[KubeClient, str]:
    token_id, token_value = new_token()
    admin.create("/api/v1/namespaces/kube-system/secrets", token_secret(
        token_id, token_value, expires=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), groups=groups))
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    return KubeClient(url, ctx, token=f"{token_id}.{token_value}"), token_id


def _csr_state(admin: KubeClient, name: str) -> tuple[bool, bool]:
    csr = admin.get(f"{CSR_PATH}/{name}") or {}
    approved = kcm.condition_true(csr, "Approved")
    return approved, bool((csr.get("status") or {}).get("certificate"))


@pytest.mark.lab
def test_csr_approval_follows_rbac(standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
                                   standin_apiserver: ApiServerProcess, kubeadm_csr_rbac: None,
                                   ec_key: Any, tmp_path: Path) -> None:
    url = standin_apiserver.url
    good, _ = _token_client(standin_admin, standin_pki, url, BOOTSTRAP_GROUP)
    other_group = "system:bootstrappers:lab:no-autoapprove"
    bind_group(standin_admin, "lab:other-bootstrap", "system:node-bootstrapper", other_group)
    other, _ = _token_client(standin_admin, standin_pki, url, other_group)
    suffix = secrets.token_hex(3)
    pem = make_csr(ec_key, f"system:node:n-{suffix}", ["system:nodes"])
    good.create(CSR_PATH, csr_object(f"good-{suffix}", pem))
    other.create(CSR_PATH, csr_object(f"other-{suffix}", pem))
    # Right requester, wrong request: O=system:masters is never auto-approved.
    good.create(CSR_PATH, csr_object(f"masters-{suffix}", make_csr(ec_key, f"system:node:n-{suffix}",
                                                                   ["system:masters"])))
    # Renewal by a node for itself (selfnodeclient) and for another node (refused).
    node_crt, node_key = standin_pki.client_cert(f"system:node:self-{suffix}", ["system:nodes"])
    node_ctx = ssl.create_default_context(cafile=standin_pki.path("ca.crt"))
    node_ctx.load_cert_chain(node_crt, node_key)
    node = KubeClient(url, node_ctx)
    node.create(CSR_PATH, csr_object(f"self-{suffix}", make_csr(ec_key, f"system:node:self-{suffix}",
                                                                ["system:nodes"])))
    node.create(CSR_PATH, csr_object(f"notself-{suffix}", make_csr(ec_key, f"system:node:victim-{suffix}",
                                                                   ["system:nodes"])))

    wait_for(lambda: _csr_state(standin_admin, f"good-{suffix}") == (True, True), "bootstrap CSR issued",
             proc=standin_kcm)
    wait_for(lambda: _csr_state(standin_admin, f"self-{suffix}") == (True, True), "self renewal CSR issued",
             proc=standin_kcm)
    time.sleep(1.0)  # five more controller passes
    for name in (f"other-{suffix}", f"masters-{suffix}", f"notself-{suffix}"):
        assert _csr_state(standin_admin, name) == (False, False), f"{name} must not be approved"

    good_csr = standin_admin.get(f"{CSR_PATH}/good-{suffix}")
    approved = [c for c in good_csr["status"]["conditions"] if c["type"] == "Approved"]
    assert approved and approved[0]["reason"] == "AutoApproved" and approved[0]["status"] == "True"
    cert_pem = base64.b64decode(good_csr["status"]["certificate"])
    cert_file = tmp_path / "issued.crt"
    cert_file.write_bytes(cert_pem)
    done = subprocess.run(["openssl", "verify", "-CAfile", standin_pki.path("ca.crt"), "-purpose", "sslclient",
                           str(cert_file)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.rfc4514_string() == f"CN=system:node:n-{suffix},O=system:nodes"
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life == dt.timedelta(hours=8760), "--cluster-signing-duration default is one year"
    for name in ("good", "other", "masters", "self", "notself"):
        standin_admin.delete(f"{CSR_PATH}/{name}-{suffix}")


@pytest.mark.parametrize("minor", [33, 34, 35, 36])
def test_stand_ins_accept_the_flags_kubefab_renders(minor: int) -> None:
    """The static pods kubefab writes start these stand-ins: every flag must be understood."""
    from dataclasses import replace

    import yaml

    from tasks.core import manifests
    from tasks.core.spec import ClusterConfiguration, Networking
    from tasks.core.versions import for_version
    from tests.lab.standins import scheduler

    cluster = replace(ClusterConfiguration(kubernetes_version=for_version(f"v1.{minor}").default_patch),
                      networking=Networking(pod_subnet="10.244.0.0/16"))
    pods = {name: yaml.safe_load(text) for name, text in
            manifests.render_static_pods(cluster, node_name="m1", advertise_address="10.0.0.11").items()}
    kcm_cmd = pods["kube-controller-manager"]["spec"]["containers"][0]["command"]
    assert kcm_cmd[0] == "kube-controller-manager"
    flags = parse_flags(kcm_cmd[1:], kcm.KNOWN_FLAGS, "kube-controller-manager")
    controllers = flags["controllers"].split(",")
    for name in ("bootstrapsigner", "tokencleaner", "csrapproving", "csrsigning", "garbagecollector"):
        assert kcm.controller_enabled(controllers, name), name
    assert flags["cluster-signing-cert-file"].endswith("/ca.crt")
    sched_cmd = pods["kube-scheduler"]["spec"]["containers"][0]["command"]
    assert sched_cmd[0] == "kube-scheduler"
    parse_flags(sched_cmd[1:], scheduler.KNOWN_FLAGS, "kube-scheduler")


@pytest.mark.parametrize("seconds, expected", [(None, 8760 * 3600), (600, 600), (60, 600), (10**9, 8760 * 3600)])
def test_expiration_seconds_honoured_within_bounds(seconds: int | None, expected: int) -> None:
    csr = {"spec": {} if seconds is None else {"expirationSeconds": seconds}}
    assert kcm.requested_duration(csr, dt.timedelta(hours=8760)).total_seconds() == expected


class _NoSarServer:
    """A strict stand-in for an API server without SubjectAccessReviews: it answers exactly the
    requests the fallback needs and fails the test on any other."""

    def __init__(self, roles: list[dict[str, Any]], bindings: list[dict[str, Any]]) -> None:
        self.roles, self.bindings, self.seen = roles, bindings, []

    def request(self, method: str, path: str, body: Any = None, **_: Any) -> tuple[int, Any]:
        self.seen.append((method, path))
        if (method, path) == ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"):
            return 404, {"kind": "Status", "reason": "NotFound", "message": "the server could not find it"}
        raise AssertionError(f"unexpected request {method} {path}")

    def list(self, path: str, **_: str) -> list[dict[str, Any]]:
        self.seen.append(("LIST", path))
        if path.endswith("/clusterroles"):
            return self.roles
        if path.endswith("/clusterrolebindings"):
            return self.bindings
        raise AssertionError(f"unexpected list {path}")


def test_approver_evaluates_rbac_itself_without_subjectaccessreviews() -> None:
    role = {"metadata": {"name": "nodeclient"}, "rules": [{"verbs": ["create"], "apiGroups": ["certificates.k8s.io"],
                                                           "resources": ["certificatesigningrequests/nodeclient"]}]}
    binding = {"roleRef": {"kind": "ClusterRole", "name": "nodeclient"},
               "subjects": [{"kind": "Group", "name": BOOTSTRAP_GROUP}]}
    server = _NoSarServer([role], [binding])
    messages: list[str] = []
    log = type("L", (), {"info": lambda self, m, *a: messages.append(m % a if a else m),
                         "error": lambda self, m, *a: messages.append(m % a if a else m)})()
    creds = kcm.Credentials(server, None, False, log)  # type: ignore[arg-type]
    manager = kcm.ControllerManager(creds, kcm.Options(kubeconfig="x", controllers=["csrapproving"]), log)
    allowed = {"spec": {"username": "system:bootstrap:abcdef", "groups": [BOOTSTRAP_GROUP, "system:bootstrappers"]}}
    denied = {"spec": {"username": "system:bootstrap:zzzzzz", "groups": ["system:bootstrappers"]}}
    assert manager._authorized(allowed, "nodeclient") is True
    assert manager._authorized(denied, "nodeclient") is False
    assert manager._authorized(allowed, "selfnodeclient") is False
    # Asked once, then remembered: no SubjectAccessReview on later decisions.
    assert server.seen.count(("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")) == 1
    assert any("evaluating the stored RBAC objects" in m for m in messages)


@pytest.mark.lab
def test_node_lifecycle_marks_silent_nodes_unknown_and_untaints_returning_ones(
        standin_kcm: StandinProcess, standin_admin: KubeClient) -> None:
    name = f"silent-{secrets.token_hex(3)}"
    path = f"/api/v1/nodes/{name}"
    standin_admin.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})

    def post_ready(heartbeat: dt.datetime) -> None:
        node = standin_admin.get(path)
        when = heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ")
        node["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                          "message": "kubelet is posting ready status",
                                          "lastHeartbeatTime": when, "lastTransitionTime": when}]}
        standin_admin.replace(path + "/status", node)

    def unreachable(node: dict[str, Any]) -> set[str]:
        return {t["effect"] for t in (node.get("spec") or {}).get("taints") or []
                if t["key"] == "node.kubernetes.io/unreachable"}

    post_ready(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    node = wait_for(lambda: (n := standin_admin.get(path)) and unreachable(n) == {"NoSchedule", "NoExecute"} and n,
                    "unreachable taints on a silent node", proc=standin_kcm)
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    post_ready(dt.datetime.now(dt.timezone.utc))
    wait_for(lambda: not unreachable(standin_admin.get(path)), "taints removed once the kubelet is back",
             proc=standin_kcm)
    time.sleep(0.6)
    ready = [c for c in standin_admin.get(path)["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True", "a fresh heartbeat is left alone"
    standin_admin.delete(path)


@pytest.mark.lab
def test_kubefab_objects_work_with_the_controllers(standin_kcm: StandinProcess, standin_admin: KubeClient,
                                                   standin_pki: LabPki, standin_apiserver: ApiServerProcess) -> None:
    """Interop: tokens, cluster-info and kubeadm-certs as kubefab builds them; kubefab's own
    discovery check accepts the stand-in's signature, and kubeadm-certs goes with its owner."""
    from tasks.core import bootstrap
    from tasks.core.kubeconfig import cluster_info_kubeconfig as kubefab_cluster_info
    from tasks.core.spec import BootstrapToken

    now = dt.datetime.now(dt.timezone.utc)
    token = BootstrapToken(token=bootstrap.generate_token())
    standin_admin.create("/api/v1/namespaces/kube-system/secrets", bootstrap.token_secret_manifest(token, now=now))
    content = kubefab_cluster_info(standin_apiserver.url, Path(standin_pki.path("ca.crt")).read_bytes())
    path = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
    cm = standin_admin.get(path)
    if cm is None:
        standin_admin.create("/api/v1/namespaces/kube-public/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "kube-public"}, "data": {"kubeconfig": content}})
    else:
        cm["data"]["kubeconfig"] = content
        standin_admin.replace(path, cm)
    token_id, token_value = bootstrap.parse_token(token.token)
    value = wait_for(lambda: standin_admin.get(path)["data"].get(f"jws-kubeconfig-{token_id}"),
                     "signature for kubefab's token", proc=standin_kcm)
    assert bootstrap.verify_detached_jws(value, content, token_id, token_value)

    # kubeadm-certs owned by the 2-hour owner token: expire the owner, both go.
    owner_token = bootstrap.certificate_key_owner_token()
    owner_manifest = bootstrap.token_secret_manifest(owner_token, now=now - dt.timedelta(hours=2, seconds=-2))
    owner = standin_admin.create("/api/v1/namespaces/kube-system/secrets", owner_manifest)
    certs = bootstrap.kubeadm_certs_secret({"ca.crt": b"pem"}, bootstrap.generate_certificate_key(),
                                           owner_name=owner["metadata"]["name"], owner_uid=owner["metadata"]["uid"])
    certs["metadata"]["name"] = f"kubeadm-certs-{owner_token.token_id}"  # beside other tests' objects
    standin_admin.create("/api/v1/namespaces/kube-system/secrets", certs)
    wait_for(lambda: standin_admin.get(f"/api/v1/namespaces/kube-system/secrets/{certs['metadata']['name']}") is None,
             "kubefab's kubeadm-certs collected after its owner token expired", proc=standin_kcm)
    standin_admin.delete(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token_id}")
