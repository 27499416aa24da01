"""The lab kubelet's API side (the real kubelet cannot run here): TLS bootstrap, Node, mirror pods.

Pure checks first (no root), then ``lab`` tests against a real TLS etcd, the kube-apiserver
stand-in and the controller-manager stand-in: a kubelet holding only a bootstrap kubeconfig
ends with a client certificate that ``openssl verify`` accepts, a kubelet.conf the real
``kubectl`` can use, a Ready Node and mirror pods kubeadm can discover etcd through; without
kubeadm's auto-approve binding nothing is approved.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import re
import secrets
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
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
    token_secret,
    wait_for,
)
from tests.integration.standin_fixtures import *  # noqa: F401,F403 (fixtures)
from tests.integration.standin_fixtures import ApiServerProcess, LabPki
from tests.lab.kubelet_api import (
    ApiSide,
    build_kubelet_kubeconfig,
    mirror_pod_name,
    parse_taints,
    static_pod_hash,
)
from tests.lab.standins.clientkit import KubeClient

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
ETCD_ANNOTATION = "kubeadm.kubernetes.io/etcd.advertise-client-urls"


def etcd_manifest(url: str = "https://127.0.0.1:2379", flag: str = "--snapshot-count=10000") -> dict[str, Any]:
    """An etcd static pod as kubeadm writes it (reference §3.1), trimmed to what matters here."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd", "namespace": "kube-system",
                     "labels": {"component": "etcd", "tier": "control-plane"},
                     "annotations": {ETCD_ANNOTATION: url}},
        "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                 "containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.6.4-0",
                                 "command": ["etcd", "--advertise-client-urls=" + url, flag]}]},
    }


class Recorder(logging.Handler):
    """Collects log records so a test can see what the API side reported."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def recording_logger(name: str) -> tuple[logging.Logger, Recorder]:
    log = logging.getLogger(f"test.kubelet.{name}")
    rec = Recorder()
    log.addHandler(rec)
    log.setLevel(logging.DEBUG)
    return log, rec


def bootstrap_kubeconfig(path: Path, server: str, ca_pem: bytes, token: str) -> str:
    """bootstrap-kubelet.conf as kubeadm join writes it (reference §2, §7.2)."""
    doc = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "kubernetes", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": [{"name": "tls-bootstrap-token-user@kubernetes",
                      "context": {"cluster": "kubernetes", "user": "tls-bootstrap-token-user"}}],
        "current-context": "tls-bootstrap-token-user@kubernetes",
        "users": [{"name": "tls-bootstrap-token-user", "user": {"token": token}}],
    }
    path.write_text(yaml.safe_dump(doc))
    os.chmod(path, 0o600)
    return str(path)


def drive(api: ApiSide, pods: list[dict[str, Any]], until: Any, what: str, timeout: float = 15.0,
          kcm: StandinProcess | None = None) -> Any:
    """Call sync() like the lab kubelet's loop (fast) until ``until()`` is truthy."""
    def step() -> Any:
        api.sync(pods)
        return until()
    return wait_for(step, what, timeout=timeout, interval=0.2, proc=kcm)


# ---------------------------------------------------------------------------- pure
@pytest.mark.parametrize("value, taints", [
    ("", []),
    ("a=b:NoSchedule", [{"key": "a", "value": "b", "effect": "NoSchedule"}]),
    ("node-role.kubernetes.io/infra:NoExecute,x=:PreferNoSchedule",
     [{"key": "node-role.kubernetes.io/infra", "effect": "NoExecute"},
      {"key": "x", "value": "", "effect": "PreferNoSchedule"}]),
])
def test_register_with_taints_format(value: str, taints: list[dict[str, str]]) -> None:
    assert parse_taints(value) == taints


@pytest.mark.parametrize("bad", ["a=b", "a=b:Sometimes", ":NoSchedule"])
def test_register_with_taints_rejects_bad_entries(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid taint"):
        parse_taints(bad)


def test_kubelet_conf_shape() -> None:
    doc = build_kubelet_kubeconfig("https://10.0.0.1:6443", b"CA", None, False, "/var/lib/kubelet/pki/kubelet-client-current.pem")
    assert doc["current-context"] == "default-context"
    assert doc["contexts"] == [{"name": "default-context", "context": {
        "cluster": "default-cluster", "namespace": "default", "user": "default-auth"}}]
    assert doc["clusters"][0] == {"name": "default-cluster", "cluster": {
        "server": "https://10.0.0.1:6443", "certificate-authority-data": base64.b64encode(b"CA").decode()}}
    assert doc["users"][0]["user"] == {"client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                                       "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem"}


def test_mirror_identity_follows_the_manifest() -> None:
    m = etcd_manifest()
    assert mirror_pod_name(m, "cp1") == "etcd-cp1"
    assert static_pod_hash(m, "cp1") == static_pod_hash(json.loads(json.dumps(m)), "cp1")
    assert static_pod_hash(m, "cp1") != static_pod_hash(etcd_manifest(flag="--snapshot-count=1"), "cp1")
    assert re.fullmatch(r"[0-9a-f]{32}", static_pod_hash(m, "cp1"))


def test_sync_never_raises_and_reports_once(tmp_path: Path) -> None:
    log, rec = recording_logger("unreachable")
    boot = bootstrap_kubeconfig(tmp_path / "bootstrap-kubelet.conf", "https://127.0.0.1:1", b"", "abcdef.0123456789abcdef")
    api = ApiSide(node_name="n1", kubeconfig=str(tmp_path / "kubelet.conf"), bootstrap_kubeconfig=boot,
                  cert_dir=str(tmp_path / "pki"), kubelet_config={}, log=log)
    for _ in range(3):
        api.sync([etcd_manifest()])
    errors = [m for m in rec.messages if "ConnectionRefusedError" in m]
    assert len(errors) == 1, rec.messages
    assert "abcdef.0123456789abcdef" not in "\n".join(rec.messages), "the token must never be logged"
    assert not (tmp_path / "kubelet.conf").exists()
    # Standalone: neither kubeconfig nor bootstrap kubeconfig is an informational state.
    log2, rec2 = recording_logger("standalone")
    ApiSide(node_name="n1", kubeconfig=str(tmp_path / "none.conf"), bootstrap_kubeconfig=None,
            cert_dir=str(tmp_path / "pki2"), kubelet_config={}, log=log2).sync([])
    assert any("standalone" in m for m in rec2.messages)


# ---------------------------------------------------------------------------- lab
@pytest.fixture(scope="module")
def kubeadm_rbac(standin_admin: KubeClient) -> None:
    ensure_kubeadm_csr_rbac(standin_admin)


def _new_bootstrap(admin: KubeClient, pki: LabPki, url: str, tmp: Path, groups: str) -> tuple[str, str]:
    token_id, token_value = new_token()
    admin.create("/api/v1/namespaces/kube-system/secrets", token_secret(
        token_id, token_value, expires=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), groups=groups))
    conf = bootstrap_kubeconfig(tmp / "bootstrap-kubelet.conf", url, Path(pki.path("ca.crt")).read_bytes(),
                                f"{token_id}.{token_value}")
    return conf, token_id


def _node(admin: KubeClient, name: str) -> dict[str, Any] | None:
    return admin.get(f"/api/v1/nodes/{name}")


def _ready(node: dict[str, Any] | None) -> bool:
    return bool(node) and any(c["type"] == "Ready" and c["status"] == "True"
                              for c in (node.get("status") or {}).get("conditions") or [])


@pytest.mark.lab
def test_tls_bootstrap_node_and_mirror_pods(
        standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
        standin_apiserver: ApiServerProcess, kubeadm_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFAB_LAB_NODE_STATUS_SECONDS", "0.3")
    node_name = f"lab-node-{secrets.token_hex(3)}"
    boot, token_id = _new_bootstrap(standin_admin, standin_pki, standin_apiserver.url, tmp_path, BOOTSTRAP_GROUP)
    kubelet_conf = tmp_path / "kubelet.conf"
    cert_dir = tmp_path / "pki"
    log, rec = recording_logger(node_name)
    api = ApiSide(node_name=node_name, kubeconfig=str(kubelet_conf), bootstrap_kubeconfig=boot,
                  cert_dir=str(cert_dir), kubelet_config={"rotateCertificates": True}, log=log,
                  flags={"register-with-taints": "lab.kubefab.io/dedicated=infra:NoSchedule"})
    pods = [{"manifest": etcd_manifest(), "running": True, "pid": 4242, "restarts": 0, "started_at": time.time()}]
    drive(api, pods, lambda: _ready(_node(standin_admin, node_name)), "bootstrapped, registered Ready node",
          kcm=standin_kcm)

    # --- the client certificate: files, modes, symlink, chain (openssl), identity
    current = cert_dir / "kubelet-client-current.pem"
    assert current.is_symlink()
    target = Path(os.readlink(current))
    assert target.is_absolute() and re.fullmatch(r"kubelet-client-\d{4}(-\d\d){5}\.pem", target.name)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    pem = target.read_bytes()
    assert b"BEGIN CERTIFICATE" in pem and b"PRIVATE KEY" in pem
    assert not (cert_dir / "kubelet-client.key.tmp").exists(), "the pending bootstrap key is cleaned up"
    cert = x509.load_pem_x509_certificates(pem)[0]
    (tmp_path / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    verify = subprocess.run(["openssl", "verify", "-CAfile", standin_pki.path("ca.crt"), "-purpose", "sslclient",
                             str(tmp_path / "client.crt")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert cert.subject.rfc4514_string() == f"CN=system:node:{node_name},O=system:nodes"
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])

    # --- kubelet.conf: the kubelet's shape, mode 0600, and it works with the real kubectl
    assert stat.S_IMODE(kubelet_conf.stat().st_mode) == 0o600
    conf = yaml.safe_load(kubelet_conf.read_text())
    assert conf["current-context"] == "default-context"
    assert conf["users"][0] == {"name": "default-auth", "user": {"client-certificate": str(current),
                                                                 "client-key": str(current)}}
    assert base64.b64decode(conf["clusters"][0]["cluster"]["certificate-authority-data"]) == \
        Path(standin_pki.path("ca.crt")).read_bytes()
    got = subprocess.run(["kubectl", "--kubeconfig", str(kubelet_conf), "get", "node", node_name, "-o", "json"],
                         capture_output=True, text=True, timeout=30)
    assert got.returncode == 0, got.stderr
    node = json.loads(got.stdout)

    # --- the Node as the kubelet registers it
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node_name and labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"]
    assert node["spec"]["taints"] == [{"key": "lab.kubefab.io/dedicated", "value": "infra", "effect": "NoSchedule"}]
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    csr_users = {c["spec"]["username"] for c in standin_admin.list(CSR_PATH)
                 if c["spec"].get("username") == f"system:bootstrap:{token_id}"}
    assert csr_users == {f"system:bootstrap:{token_id}"}, "the CSR was posted with the bootstrap token"

    # --- heartbeat kept fresh
    def heartbeat() -> str:
        ready = [c for c in _node(standin_admin, node_name)["status"]["conditions"] if c["type"] == "Ready"]
        return ready[0]["lastHeartbeatTime"]
    first = heartbeat()
    drive(api, pods, lambda: heartbeat() != first, "a newer Ready heartbeat", timeout=5)
    lease = standin_admin.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node_name}")
    assert lease["spec"]["holderIdentity"] == node_name and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

    # --- the mirror pod, discoverable the way kubeadm finds etcd endpoints (reference §9.4)
    mirror_path = f"/api/v1/namespaces/kube-system/pods/etcd-{node_name}"
    mirror = wait_for(lambda: standin_admin.get(mirror_path), "etcd mirror pod")
    meta = mirror["metadata"]
    assert meta["labels"] == {"component": "etcd", "tier": "control-plane"}
    annotations = meta["annotations"]
    assert annotations[ETCD_ANNOTATION] == "https://127.0.0.1:2379"
    assert annotations["kubernetes.io/config.source"] == "file"
    assert annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"] == \
        static_pod_hash(etcd_manifest(), node_name)
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                        "uid": node["metadata"]["uid"]}]
    assert mirror["spec"]["nodeName"] == node_name
    assert mirror["status"]["phase"] == "Running"
    listed = standin_admin.list("/api/v1/namespaces/kube-system/pods",
                                labelSelector="component=etcd,tier=control-plane")
    assert any(p["metadata"]["name"] == f"etcd-{node_name}" and ETCD_ANNOTATION in p["metadata"]["annotations"]
               for p in listed)

    # --- process down -> not Running; manifest changed -> recreated; manifest gone -> deleted
    pods[0]["running"] = False
    pods[0]["restarts"] = 1
    drive(api, pods, lambda: standin_admin.get(mirror_path)["status"]["phase"] == "Pending", "pod not running")
    old_uid = standin_admin.get(mirror_path)["metadata"]["uid"]
    pods[0] = {"manifest": etcd_manifest(flag="--snapshot-count=5000"), "running": True, "restarts": 0}
    drive(api, pods, lambda: (p := standin_admin.get(mirror_path)) and p["metadata"]["uid"] != old_uid,
          "mirror pod recreated for the changed manifest")
    assert standin_admin.get(mirror_path)["status"]["phase"] == "Running"

    # --- a restarted kubelet (new instance) keeps its credentials and Node
    node_uid = _node(standin_admin, node_name)["metadata"]["uid"]
    api2 = ApiSide(node_name=node_name, kubeconfig=str(kubelet_conf), bootstrap_kubeconfig=boot,
                   cert_dir=str(cert_dir), kubelet_config={"rotateCertificates": True}, log=log)
    api2.sync(pods)
    assert os.readlink(current) == str(target), "no new bootstrap for a valid kubelet.conf"
    assert _node(standin_admin, node_name)["metadata"]["uid"] == node_uid
    drive(api2, [], lambda: standin_admin.get(mirror_path) is None, "mirror pod deleted with its manifest")

    # Node deleted by an operator: the garbage collector takes what it owned (its Lease), and the
    # kubelet registers the Node again (a new uid).
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node_name}"
    standin_admin.delete(f"/api/v1/nodes/{node_name}")
    drive(api2, [], lambda: (n := _node(standin_admin, node_name)) and n["metadata"]["uid"] != node_uid and _ready(n),
          "node registered again", kcm=standin_kcm)
    new_uid = _node(standin_admin, node_name)["metadata"]["uid"]
    drive(api2, [], lambda: (standin_admin.get(lease_path) or {}).get("metadata", {}).get(
        "ownerReferences", [{}])[0].get("uid") == new_uid, "a Lease owned by the new Node", kcm=standin_kcm)
    assert not [m for m in rec.messages if "Error" in m or "error" in m.lower()], rec.messages


@pytest.mark.lab
def test_client_certificate_rotation_uses_selfnodeclient(
        standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
        standin_apiserver: ApiServerProcess, kubeadm_rbac: None, tmp_path: Path) -> None:
    node_name = f"lab-rot-{secrets.token_hex(3)}"
    cert_dir = tmp_path / "pki"
    cert_dir.mkdir()
    # A node certificate at 90 % of its life: the kubelet must renew it with its own identity.
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    old = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                    x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")]))
           .issuer_name(standin_pki.ca_cert.subject).public_key(key.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(now - dt.timedelta(minutes=90)).not_valid_after(now + dt.timedelta(minutes=10))
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
           .sign(standin_pki.ca_key, hashes.SHA256()))
    old_file = cert_dir / "kubelet-client-2000-01-01-00-00-00.pem"
    old_file.write_bytes(old.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    os.chmod(old_file, 0o600)
    os.symlink(old_file, cert_dir / "kubelet-client-current.pem")
    kubelet_conf = tmp_path / "kubelet.conf"
    kubelet_conf.write_text(yaml.safe_dump(build_kubelet_kubeconfig(
        standin_apiserver.url, Path(standin_pki.path("ca.crt")).read_bytes(), None, False,
        str(cert_dir / "kubelet-client-current.pem"))))
    os.chmod(kubelet_conf, 0o600)
    log, rec = recording_logger(node_name)
    api = ApiSide(node_name=node_name, kubeconfig=str(kubelet_conf), bootstrap_kubeconfig=None,
                  cert_dir=str(cert_dir), kubelet_config={"rotateCertificates": True}, log=log)
    drive(api, [], lambda: os.readlink(cert_dir / "kubelet-client-current.pem") != str(old_file),
          "rotated client certificate", kcm=standin_kcm)
    new = x509.load_pem_x509_certificates((cert_dir / "kubelet-client-current.pem").read_bytes())[0]
    assert new.subject == old.subject and new.not_valid_after_utc > old.not_valid_after_utc
    approvals = [c for c in standin_admin.list(CSR_PATH) if c["spec"].get("username") == f"system:node:{node_name}"]
    assert approvals and approvals[0]["status"]["conditions"][0]["reason"] == "AutoApproved"
    # The renewed identity still works, through the same kubelet.conf.
    api.sync([])
    assert _ready(_node(standin_admin, node_name))


@pytest.mark.lab
def test_no_autoapprove_binding_no_certificate(
        standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
        standin_apiserver: ApiServerProcess, kubeadm_rbac: None, tmp_path: Path) -> None:
    group = "system:bootstrappers:lab:unapproved"
    # May post CSRs (node-bootstrapper) but holds no nodeclient auto-approval.
    bind_group(standin_admin, "lab:unapproved-bootstrap", "system:node-bootstrapper", group)
    boot, token_id = _new_bootstrap(standin_admin, standin_pki, standin_apiserver.url, tmp_path, group)
    node_name = f"lab-unapproved-{secrets.token_hex(3)}"
    log, rec = recording_logger(node_name)
    api = ApiSide(node_name=node_name, kubeconfig=str(tmp_path / "kubelet.conf"), bootstrap_kubeconfig=boot,
                  cert_dir=str(tmp_path / "pki"), kubelet_config={}, log=log)

    def posted() -> list[dict[str, Any]]:
        return [c for c in standin_admin.list(CSR_PATH) if c["spec"].get("username") == f"system:bootstrap:{token_id}"]

    csrs = drive(api, [], posted, "the CSR posted with the unapproved token")
    deadline = time.monotonic() + 1.5  # several controller-manager passes
    while time.monotonic() < deadline:
        api.sync([])
        time.sleep(0.2)
    csr = standin_admin.get(f"{CSR_PATH}/{csrs[0]['metadata']['name']}")
    assert not (csr.get("status") or {}).get("conditions"), "must stay pending"
    assert not (csr.get("status") or {}).get("certificate")
    assert not (tmp_path / "kubelet.conf").exists()
    assert _node(standin_admin, node_name) is None
    assert any("waiting for approval" in m for m in rec.messages)
    kcm_log = standin_kcm.log_text()
    assert f"recognized csr {csrs[0]['metadata']['name']!r} as ['nodeclient'] but subject access review was not approved" \
        in kcm_log


def test_flags_come_from_the_kubelet_command_line_when_not_given(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr("sys.argv", ["kubelet", "--config=/var/lib/kubelet/config.yaml",
                                     "--register-with-taints=a=b:NoSchedule", "--node-ip", "10.1.2.3"])
    api = ApiSide(node_name="n1", kubeconfig=str(tmp_path / "k.conf"), bootstrap_kubeconfig=None,
                  cert_dir=str(tmp_path), kubelet_config={}, log=logging.getLogger("t"))
    assert api.flags == {"register-with-taints": "a=b:NoSchedule", "node-ip": "10.1.2.3"}
    explicit = ApiSide(node_name="n1", kubeconfig=str(tmp_path / "k.conf"), bootstrap_kubeconfig=None,
                       cert_dir=str(tmp_path), kubelet_config={}, log=logging.getLogger("t"), flags={})
    assert explicit.flags == {}


@pytest.mark.lab
def test_mirror_pods_from_lab_kubelet_reports(standin_admin: KubeClient, standin_pki: LabPki,
                                              standin_apiserver: ApiServerProcess, tmp_path: Path) -> None:
    """The lab kubelet reports each static pod as its Pod document with a ``status`` carrying
    running/pid/restarts and the config hash it computed; the mirror pod takes that identity."""
    node_name = f"lab-report-{secrets.token_hex(3)}"
    crt, key = standin_pki.client_cert(f"system:node:{node_name}", ["system:nodes"])
    conf = tmp_path / "kubelet.conf"
    conf.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": standin_apiserver.url,
                                               "certificate-authority": standin_pki.path("ca.crt")}}],
        "users": [{"name": "u", "user": {"client-certificate": crt, "client-key": key}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    api = ApiSide(node_name=node_name, kubeconfig=str(conf), bootstrap_kubeconfig=None,
                  cert_dir=str(tmp_path / "pki"), kubelet_config={}, log=logging.getLogger("t"), flags={})
    report = etcd_manifest()
    report["metadata"]["uid"] = "0b7d0c6e-1111-2222-3333-444455556666"
    report["metadata"]["annotations"]["kubernetes.io/config.hash"] = "0b7d0c6e111122223333444455556666"
    report["status"] = {"phase": "Running", "running": True, "pid": 99, "restarts": 0,
                        "containerStatuses": [], "manifestPath": "/etc/kubernetes/manifests/etcd.yaml"}
    path = f"/api/v1/namespaces/kube-system/pods/etcd-{node_name}"
    drive(api, [report], lambda: (p := standin_admin.get(path)) and p["status"].get("phase") == "Running",
          "mirror pod from a lab kubelet report")
    mirror = standin_admin.get(path)
    assert mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"] == "0b7d0c6e111122223333444455556666"
    assert mirror["metadata"]["uid"] != report["metadata"]["uid"], "the server gives the mirror pod its own uid"
    report["status"] = {"phase": "Failed", "running": False, "pid": None, "restarts": 3}
    drive(api, [report], lambda: standin_admin.get(path)["status"]["phase"] == "Failed", "failed static pod")
    restarts = [c["restartCount"] for c in standin_admin.get(path)["status"]["containerStatuses"]]
    assert restarts == [3]

    # The four control-plane manifests kubefab renders mirror as they are (server validation).
    from dataclasses import replace as dc_replace

    from tasks.core import manifests
    from tasks.core.spec import ClusterConfiguration
    from tasks.core.versions import for_version

    cluster = dc_replace(ClusterConfiguration(kubernetes_version=for_version("v1.36").default_patch))
    rendered = [yaml.safe_load(text) for text in
                manifests.render_static_pods(cluster, node_name=node_name, advertise_address="127.0.0.1").values()]
    reports = [{"manifest": pod, "running": True, "restarts": 0} for pod in rendered]
    names = {f"{pod['metadata']['name']}-{node_name}" for pod in rendered}
    assert len(names) == 4

    def mirrored() -> bool:
        pods = standin_admin.list("/api/v1/namespaces/kube-system/pods",
                                  fieldSelector=f"spec.nodeName={node_name}")
        return {p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"} == names

    drive(api, reports, mirrored, "mirror pods of kubefab's rendered manifests")
    drive(api, [], lambda: standin_admin.get(path) is None and not standin_admin.list(
        "/api/v1/namespaces/kube-system/pods", fieldSelector=f"spec.nodeName={node_name}"), "mirror pods removed")


@pytest.mark.lab
def test_init_node_kubeconfig_certificate_is_stored_then_renewed(
        standin_kcm: StandinProcess, standin_admin: KubeClient, standin_pki: LabPki,
        standin_apiserver: ApiServerProcess, kubeadm_rbac: None, tmp_path: Path) -> None:
    """kubeadm init writes kubelet.conf with an embedded client certificate and no bootstrap
    kubeconfig; the kubelet stores it as kubelet-client-current.pem (kubelet-finalize looks for
    that file) and renews it at once through a selfnodeclient CSR."""
    node_name = f"lab-init-{secrets.token_hex(3)}"
    conf = standin_pki.kubeconfig(standin_apiserver.url, f"system:node:{node_name}", ["system:nodes"],
                                  path=tmp_path / "kubelet.conf")
    embedded = x509.load_pem_x509_certificate(base64.b64decode(
        yaml.safe_load(Path(conf).read_text())["users"][0]["user"]["client-certificate-data"]))
    cert_dir = tmp_path / "pki"
    api = ApiSide(node_name=node_name, kubeconfig=conf, bootstrap_kubeconfig=str(tmp_path / "absent.conf"),
                  cert_dir=str(cert_dir), kubelet_config={"rotateCertificates": True},
                  log=logging.getLogger("t"), flags={})
    current = cert_dir / "kubelet-client-current.pem"
    api.sync([])
    first = x509.load_pem_x509_certificates(current.read_bytes())[0]
    assert first.serial_number == embedded.serial_number, "the kubeconfig's certificate is stored first"
    assert _ready(_node(standin_admin, node_name))

    def renewed() -> bool:
        return x509.load_pem_x509_certificates(current.read_bytes())[0].serial_number != embedded.serial_number

    drive(api, [], renewed, "renewed client certificate", kcm=standin_kcm)
    new = x509.load_pem_x509_certificates(current.read_bytes())[0]
    assert new.subject.rfc4514_string() == f"CN=system:node:{node_name},O=system:nodes"
    assert stat.S_IMODE(Path(os.readlink(current)).stat().st_mode) == 0o600
    # kubeadm's kubelet-finalize then points kubelet.conf at the pem: it keeps working.
    doc = yaml.safe_load(Path(conf).read_text())
    doc["users"][0]["user"] = {"client-certificate": str(current), "client-key": str(current)}
    Path(conf).write_text(yaml.safe_dump(doc))
    got = subprocess.run(["kubectl", "--kubeconfig", conf, "get", "node", node_name, "-o", "name"],
                         capture_output=True, text=True, timeout=30)
    assert got.returncode == 0 and got.stdout.strip() == f"node/{node_name}", got.stderr
    api.sync([])
    assert _ready(_node(standin_admin, node_name))


def test_loaded_kubeconfig_never_shows_its_credentials(tmp_path: Path) -> None:
    from tests.lab.standins.clientkit import load_kubeconfig

    conf = bootstrap_kubeconfig(tmp_path / "b.conf", "https://127.0.0.1:6443", b"", "abcdef.0123456789abcdef")
    loaded = load_kubeconfig(conf)
    assert loaded.token == "abcdef.0123456789abcdef"
    assert "0123456789abcdef" not in repr(loaded) and "0123456789abcdef" not in str(loaded)
