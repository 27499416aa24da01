"""kubeadm's kubeconfig files (kubeadm-reference.md §2, §5.3): structure, identities, servers,
reuse, and the bytes client-go would write. Checked with the real kubectl and openssl."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tasks.core import kubeconfig as kc
from tasks.core import pki
from tasks.core.errors import PKIError
from tasks.core.secrets import Secret
from tasks.core.spec import ClusterConfiguration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "kubeconfig"
KUBECTL = shutil.which("kubectl")
OPENSSL = shutil.which("openssl")
NODE = "cp-1"
CPE_URL = "https://lb.example.com:6443"
LOCAL_URL = "https://10.0.0.11:6443"
TOKEN = "abcdef.0123456789abcdef"


def cluster_config(**kw) -> ClusterConfiguration:
    return ClusterConfiguration(kubernetes_version="v1.36.0", control_plane_endpoint="lb.example.com:6443", **kw)


def kubectl_view(path: Path) -> dict:
    """Parse a kubeconfig with the real kubectl (fails, never skips, when kubectl is missing)."""
    assert KUBECTL, "kubectl is required for these tests (expected at /usr/bin/kubectl)"
    res = subprocess.run([KUBECTL, "--kubeconfig", str(path), "config", "view", "--raw", "-o", "json"],
                         capture_output=True, text=True, env={**os.environ, "HOME": str(path.parent)})
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def openssl_verify(ca: Path, cert: Path, now) -> subprocess.CompletedProcess:
    assert OPENSSL, "openssl is required for these tests"
    return subprocess.run([OPENSSL, "verify", "-attime", str(int(now.timestamp())), "-purpose", "sslclient",
                           "-CAfile", str(ca), str(cert)], capture_output=True, text=True)


def ensure(tmp_path: Path, cluster, now, keygen, *, init=True, is_control_plane=True, node=NODE):
    cp = pki.ensure_cluster_pki(tmp_path / "pki", cluster, now=now, keygen=keygen)
    return cp, kc.ensure_node_kubeconfigs(cp, tmp_path / "nodes" / node, cluster, node_name=node,
                                          control_plane_url=CPE_URL, local_url=LOCAL_URL,
                                          is_control_plane=is_control_plane, init=init, now=now, keygen=keygen)


def redact(text: str) -> str:
    """Golden form: base64 blobs and tokens replaced, layout untouched."""
    text = re.sub(r"(certificate-authority-data|client-certificate-data|client-key-data): \S+",
                  lambda m: f"{m.group(1)}: <{m.group(1)}>", text)
    return re.sub(r"(token): \S+", r"\1: <token>", text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("KUBEFAB_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text))
    assert redact(text) == path.read_text(), f"{name} differs from its golden file"


EXPECTED = {
    # file: (user = CN, O, server)
    "admin.conf": ("kubernetes-admin", ["kubeadm:cluster-admins"], CPE_URL),
    "super-admin.conf": ("kubernetes-super-admin", ["system:masters"], CPE_URL),
    # ControlPlaneKubeletLocalMode is on for every supported minor (1.33+): local endpoint
    "kubelet.conf": (f"system:node:{NODE}", ["system:nodes"], LOCAL_URL),
    "controller-manager.conf": ("system:kube-controller-manager", [], LOCAL_URL),
    "scheduler.conf": ("system:kube-scheduler", [], LOCAL_URL),
}


@pytest.fixture(scope="module")
def init_node(tmp_path_factory, key_cache):
    from datetime import datetime, timezone

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    root = tmp_path_factory.mktemp("kc")
    cp, files = ensure(root, cluster_config(), now, key_cache)
    return root, now, cp, files


@pytest.mark.parametrize("file", list(EXPECTED))
def test_kubeconfig_identity_server_and_kubectl(init_node, file):
    root, now, cp, files = init_node
    user, orgs, server = EXPECTED[file]
    path = root / "nodes" / NODE / file
    assert path.read_bytes() == files[file]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    view = kubectl_view(path)
    context = f"{user}@kubernetes"
    assert view["current-context"] == context
    assert [c["name"] for c in view["clusters"]] == ["kubernetes"]
    assert view["clusters"][0]["cluster"]["server"] == server
    assert base64.b64decode(view["clusters"][0]["cluster"]["certificate-authority-data"]) == cp.ca_cert_pem
    assert view["contexts"] == [{"name": context, "context": {"cluster": "kubernetes", "user": user}}]
    assert [u["name"] for u in view["users"]] == [user]
    cert_pem = base64.b64decode(view["users"][0]["user"]["client-certificate-data"])
    key_pem = base64.b64decode(view["users"][0]["user"]["client-key-data"])
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == orgs
    # client certs inherit the CA's NotBefore; NotAfter = start + certificateValidityPeriod
    assert cert.not_valid_before_utc == cp.ca.cert.not_valid_before_utc
    assert cert.not_valid_after_utc == now + timedelta(hours=8760)
    assert kc.client_certificate(files[file]) == cert
    (root / f"{file}.crt").write_bytes(cert_pem)
    res = openssl_verify(root / "pki" / "ca.crt", root / f"{file}.crt", now)
    assert res.returncode == 0, res.stdout + res.stderr


def test_goldens(init_node):
    _, _, cp, files = init_node
    for name, data in files.items():
        check_golden(name, data.decode())
    check_golden("kubelet.conf.rotated", kc.rotate_kubelet_kubeconfig(files["kubelet.conf"]).decode())
    check_golden("bootstrap-kubelet.conf",
                 kc.bootstrap_kubeconfig(CPE_URL, cp.ca_cert_pem, Secret(TOKEN)).decode())
    check_golden("cluster-info.kubeconfig", kc.cluster_info_kubeconfig(CPE_URL, cp.ca_cert_pem))


def test_admin_conf_bytes_match_client_go_layout(init_node):
    _, _, cp, files = init_node
    ca = base64.b64encode(cp.ca_cert_pem).decode()
    lines = files["admin.conf"].decode().splitlines()
    assert lines[:12] == [
        "apiVersion: v1",
        "clusters:",
        "- cluster:",
        f"    certificate-authority-data: {ca}",
        f"    server: {CPE_URL}",
        "  name: kubernetes",
        "contexts:",
        "- context:",
        "    cluster: kubernetes",
        "    user: kubernetes-admin",
        "  name: kubernetes-admin@kubernetes",
        "current-context: kubernetes-admin@kubernetes",
    ]
    # client-go 1.34+ leaves out the empty preferences (omitzero); 1.33 wrote "preferences: {}"
    assert lines[12:15] == ["kind: Config", "users:", "- name: kubernetes-admin"]
    assert lines[15] == "  user:" and lines[16].startswith("    client-certificate-data: LS0t")
    assert lines[17].startswith("    client-key-data: LS0t") and len(lines) == 18


def test_cluster_info_is_exactly_client_go_output():
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    expected = ("apiVersion: v1\n"
                "clusters:\n"
                "- cluster:\n"
                f"    certificate-authority-data: {base64.b64encode(ca).decode()}\n"
                "    server: https://[fd00::1]:6443\n"
                "  name: \"\"\n"
                "contexts: null\n"
                "current-context: \"\"\n"
                "kind: Config\n"
                "users: null\n")
    assert kc.cluster_info_kubeconfig("https://[fd00::1]:6443", ca) == expected
    # kubeadm 1.33's client-go still wrote the empty preferences
    with_prefs = expected.replace("kind: Config\n", "kind: Config\npreferences: {}\n")
    assert kc.cluster_info_kubeconfig("https://[fd00::1]:6443", ca, preferences=True) == with_prefs


def test_cluster_info_parses_with_kubectl(tmp_path, init_node):
    _, _, cp, _ = init_node
    path = tmp_path / "cluster-info"
    path.write_text(kc.cluster_info_kubeconfig(CPE_URL, cp.ca_cert_pem))
    view = kubectl_view(path)
    assert view["clusters"][0]["name"] == "" and view["clusters"][0]["cluster"]["server"] == CPE_URL


def test_bootstrap_kubeconfig(tmp_path, init_node):
    _, _, cp, _ = init_node
    data = kc.bootstrap_kubeconfig(CPE_URL, cp.ca_cert_pem, Secret(TOKEN), cluster_name="lab")
    path = tmp_path / "bootstrap-kubelet.conf"
    path.write_bytes(data)
    view = kubectl_view(path)
    assert view["users"] == [{"name": "tls-bootstrap-token-user", "user": {"token": TOKEN}}]
    assert view["current-context"] == "tls-bootstrap-token-user@lab"
    # a token that YAML would read as a number is quoted the way go-yaml quotes it
    numeric = kc.bootstrap_kubeconfig(CPE_URL, cp.ca_cert_pem, Secret("123456.1234567890123456")).decode()
    assert '    token: "123456.1234567890123456"\n' in numeric
    assert yaml.safe_load(numeric)["users"][0]["user"]["token"] == "123456.1234567890123456"


def test_rotate_kubelet_kubeconfig(tmp_path, init_node):
    _, _, _, files = init_node
    rotated = kc.rotate_kubelet_kubeconfig(files["kubelet.conf"])
    path = tmp_path / "kubelet.conf"
    path.write_bytes(rotated)
    view = kubectl_view(path)
    assert view["users"][0]["user"] == {"client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                                        "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem"}
    before, after = yaml.safe_load(files["kubelet.conf"]), yaml.safe_load(rotated)
    assert before["clusters"] == after["clusters"] and before["contexts"] == after["contexts"]
    assert kc.rotate_kubelet_kubeconfig(rotated) == rotated  # idempotent


@pytest.mark.parametrize("init,is_cp,expected", [
    (True, True, ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"]),
    (False, True, ["admin.conf", "controller-manager.conf", "scheduler.conf"]),
    (False, False, []),
])
def test_which_files_per_node_kind(tmp_path, key_cache, fixed_now, init, is_cp, expected):
    _, files = ensure(tmp_path, cluster_config(), fixed_now, key_cache, init=init, is_control_plane=is_cp)
    assert list(files) == expected
    assert sorted(p.name for p in (tmp_path / "nodes" / NODE).glob("*.conf")) == sorted(expected)


def test_kubelet_conf_server_on_worker_is_control_plane_endpoint():
    spec = kc.SPECS_BY_NAME["kubelet"]
    c = cluster_config()
    assert kc.server_for(spec, c, control_plane_url=CPE_URL, local_url=LOCAL_URL, is_control_plane=False) == CPE_URL
    assert kc.server_for(spec, c, control_plane_url=CPE_URL, local_url=LOCAL_URL, is_control_plane=True) == LOCAL_URL


def test_rerun_reuses_every_byte(tmp_path, key_cache, fixed_now):
    _, first = ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    calls = key_cache.calls
    _, second = ensure(tmp_path, cluster_config(), fixed_now + timedelta(hours=1), key_cache)
    assert dict(first) == dict(second)
    assert key_cache.calls == calls and second.created == [] and len(second.reused) == 5


def test_kubeconfig_for_another_ca_is_refused(tmp_path, key_cache, fixed_now):
    ensure(tmp_path / "a", cluster_config(), fixed_now, key_cache)
    ensure(tmp_path / "b", cluster_config(), fixed_now, key_cache)
    shutil.copy(tmp_path / "b" / "nodes" / NODE / "admin.conf", tmp_path / "a" / "nodes" / NODE / "admin.conf")
    with pytest.raises(PKIError, match="admin.conf exists but was made for a different cluster CA") as err:
        ensure(tmp_path / "a", cluster_config(), fixed_now, key_cache)
    assert "delete" in err.value.fix


def test_different_server_only_warns(tmp_path, key_cache, fixed_now):
    _, first = ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    cp = pki.ensure_cluster_pki(tmp_path / "pki", cluster_config(), now=fixed_now, keygen=key_cache)
    again = kc.ensure_node_kubeconfigs(cp, tmp_path / "nodes" / NODE, cluster_config(), node_name=NODE,
                                       control_plane_url="https://other:6443", local_url=LOCAL_URL,
                                       is_control_plane=True, init=True, now=fixed_now, keygen=key_cache)
    assert again["admin.conf"] == first["admin.conf"]
    assert any("admin.conf" in w and "https://other:6443" in w for w in again.warnings)


def test_external_ca_needs_provided_kubeconfigs(tmp_path, key_cache, fixed_now):
    ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    (tmp_path / "pki" / "ca.key").unlink()
    _, files = ensure(tmp_path, cluster_config(), fixed_now, key_cache)  # all present: reused
    assert files.reused == ["admin", "super-admin", "kubelet", "controller-manager", "scheduler"]
    (tmp_path / "nodes" / NODE / "scheduler.conf").unlink()
    with pytest.raises(PKIError, match="external CA mode: .*scheduler.conf must be provided") as err:
        ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    assert err.value.phase == "kubeconfig/scheduler"


def test_broken_kubeconfig_is_an_error(tmp_path, key_cache, fixed_now):
    ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    (tmp_path / "nodes" / NODE / "admin.conf").write_text("current-context: nowhere\nkind: Config\n")
    with pytest.raises(PKIError, match="current-context 'nowhere' does not resolve"):
        ensure(tmp_path, cluster_config(), fixed_now, key_cache)


def test_ecdsa_client_key(tmp_path, key_cache, fixed_now):
    c = cluster_config(encryption_algorithm="ECDSA-P256")
    _, files = ensure(tmp_path, c, fixed_now, key_cache)
    user = yaml.safe_load(files["admin.conf"])["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]).startswith(b"-----BEGIN EC PRIVATE KEY-----")


# --- Go's TLS stack (kubectl) against an openssl server using our apiserver certificate --------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 5.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the TLS server exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def tls_apiserver(tmp_path, key_cache):
    """An ``openssl s_server`` serving our apiserver.crt and demanding a client cert from our CA."""
    from datetime import datetime, timezone

    assert OPENSSL, "openssl is required for these tests"
    now = datetime.now(timezone.utc)  # the peers check validity against the real clock
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    cluster = cluster_config()
    cp = pki.ensure_cluster_pki(tmp_path / "pki", cluster, now=now, keygen=key_cache)
    pki.ensure_node_pki(cp, tmp_path / "nodes" / NODE, cluster, node_name=NODE, advertise_address="127.0.0.1",
                        now=now, keygen=key_cache)
    files = kc.ensure_node_kubeconfigs(cp, tmp_path / "nodes" / NODE, cluster, node_name=NODE,
                                       control_plane_url=url, local_url=url, is_control_plane=True, init=True,
                                       now=now, keygen=key_cache)
    node_pki = tmp_path / "nodes" / NODE / "pki"
    log = open(tmp_path / "s_server.log", "w")
    proc = subprocess.Popen([OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(node_pki / "apiserver.crt"),
                             "-key", str(node_pki / "apiserver.key"), "-CAfile", str(tmp_path / "pki" / "ca.crt"),
                             "-Verify", "1", "-www"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield tmp_path, port, files
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        log.close()


def _kubectl_get(kubeconfig: Path) -> subprocess.CompletedProcess:
    assert KUBECTL, "kubectl is required for these tests (expected at /usr/bin/kubectl)"
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "--request-timeout=5s", "get", "--raw", "/"],
                          capture_output=True, text=True, env={**os.environ, "HOME": str(kubeconfig.parent)})


@pytest.mark.parametrize("file,cn", [("admin.conf", "kubernetes-admin"), ("super-admin.conf", "kubernetes-super-admin"),
                                     ("kubelet.conf", f"system:node:{NODE}")])
def test_kubectl_handshake_with_our_certs(tls_apiserver, file, cn):
    """Go verifies apiserver.crt (chain + IP SAN) and presents the embedded client cert, which
    openssl verifies against ca.crt (-Verify 1 refuses a handshake without one)."""
    root, _, _ = tls_apiserver
    res = _kubectl_get(root / "nodes" / NODE / file)
    assert res.returncode == 0, res.stderr
    assert "Verify return code: 0 (ok)" in res.stdout
    assert f"CN={cn}" in res.stdout.replace(" = ", "=")


def test_kubectl_refuses_a_name_not_in_the_sans(tls_apiserver):
    root, port, files = tls_apiserver
    cfg = yaml.safe_load(files["admin.conf"])
    cfg["clusters"][0]["cluster"]["server"] = f"https://localhost:{port}"  # not a SAN of apiserver.crt
    path = root / "localhost.conf"
    path.write_bytes(kc.render_kubeconfig(cfg))
    res = _kubectl_get(path)
    assert res.returncode != 0 and "x509" in res.stderr and "localhost" in res.stderr


def test_client_go_reserializes_our_bytes_identically(tmp_path, init_node):
    """``kubectl config view --raw`` writes the loaded Config back through client-go's serializer:
    identical bytes prove our YAML is what client-go (and so kubeadm) writes."""
    _, _, cp, files = init_node
    samples = dict(files)
    samples["kubelet.conf.rotated"] = kc.rotate_kubelet_kubeconfig(files["kubelet.conf"])
    samples["bootstrap-kubelet.conf"] = kc.bootstrap_kubeconfig(CPE_URL, cp.ca_cert_pem, Secret(TOKEN))
    samples["numeric-token.conf"] = kc.bootstrap_kubeconfig("https://[fd00::1]:6443", cp.ca_cert_pem,
                                                            Secret("123456.1234567890123456"), cluster_name="lab")
    samples["cluster-info"] = kc.cluster_info_kubeconfig(CPE_URL, cp.ca_cert_pem).encode()
    assert KUBECTL, "kubectl is required for these tests (expected at /usr/bin/kubectl)"
    from concurrent.futures import ThreadPoolExecutor

    def view(name: str) -> subprocess.CompletedProcess:
        path = tmp_path / name
        path.write_bytes(samples[name])
        return subprocess.run([KUBECTL, "--kubeconfig", str(path), "config", "view", "--raw"], capture_output=True,
                              env={**os.environ, "HOME": str(tmp_path)})

    with ThreadPoolExecutor(len(samples)) as pool:
        results = dict(zip(samples, pool.map(view, samples)))
    for name, res in results.items():
        assert res.returncode == 0, res.stderr
        assert res.stdout == samples[name], f"{name}: client-go writes it differently"


def test_a_bad_kubeconfig_fails_before_the_missing_ones_are_written(tmp_path, key_cache, fixed_now):
    """Issue 15: a failed run leaves the state dir as it was."""
    ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    node = tmp_path / "nodes" / NODE
    (node / "admin.conf").unlink()                                     # would be made again...
    (node / "scheduler.conf").write_text("apiVersion: v1\nclusters:\n- cluster: {")  # ...but this is cut short
    before = {p.name: p.read_bytes() for p in node.iterdir() if p.is_file()}
    with pytest.raises(PKIError, match="scheduler.conf is not valid YAML"):
        ensure(tmp_path, cluster_config(), fixed_now, key_cache)
    assert {p.name: p.read_bytes() for p in node.iterdir() if p.is_file()} == before
