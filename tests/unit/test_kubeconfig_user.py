"""`fab kubeconfig.user`: kubeadm's ``kubeconfig user`` from the state dir's CA."""

from __future__ import annotations

import base64

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.test_cli import fab
from tests.unit.test_offline_init import seed_state, tree_digest


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    path = tmp_path_factory.mktemp("kcuser") / "state"
    seed_state(path)
    return path


def _cert(doc: dict) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))


def test_prints_a_kubeconfig_signed_by_the_cluster_ca(state):
    r = fab("kubeconfig.user", "--client-name", "alice", "--org", "dev,qa", "--org", "ops",
            "--validity-period", "24h", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["current-context"] == "alice@example"
    assert doc["clusters"][0]["cluster"]["server"] == "https://192.0.2.10:6443"  # controlPlaneEndpoint
    ca = x509.load_pem_x509_certificate((state / "pki" / "ca.crt").read_bytes())
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) == \
        (state / "pki" / "ca.crt").read_bytes()
    cert = _cert(doc)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    # one multi-valued RDN, as Go writes it (a DER SET: sorted by encoding)
    assert sorted(a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)) == ["dev", "ops", "qa"]
    assert len(cert.subject.rdns) == 2
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert cert.not_valid_before_utc == ca.not_valid_before_utc  # kubeadm: inherited from the CA
    assert life.total_seconds() > 24 * 3600
    assert "private key" not in r.stderr


def test_output_file_is_0600_and_never_overwritten(state, tmp_path):
    target = tmp_path / "bob.conf"
    r = fab("kubeconfig.user", "--client-name", "bob", "--output-file", str(target), "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert target.stat().st_mode & 0o777 == 0o600
    assert _cert(yaml.safe_load(target.read_text())).subject.rfc4514_string() == "CN=bob"
    before = target.read_bytes()
    again = fab("kubeconfig.user", "--client-name", "bob", "--output-file", str(target), "--state-dir", str(state))
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr
    assert target.read_bytes() == before


def test_dry_run_writes_nothing_and_redacts_the_key(state, tmp_path):
    target = tmp_path / "carol.conf"
    before = tree_digest(state)
    r = fab("kubeconfig.user", "--client-name", "carol", "--output-file", str(target), "--dry-run",
            "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert not target.exists() and tree_digest(state) == before
    doc = yaml.safe_load(r.stdout)
    assert doc["users"][0]["user"]["client-key-data"] == "<redacted private key>"
    assert "Would write" in r.stderr and str(target) in r.stderr


def test_token_instead_of_a_certificate(state):
    r = fab("kubeconfig.user", "--client-name", "robot", "--token", "abcdef.0123456789abcdef",
            "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["users"] == [{"name": "robot", "user": {"token": "abcdef.0123456789abcdef"}}]


@pytest.mark.parametrize("args,message", [
    ((), "--client-name is required"),
    (("--client-name", "x", "--validity-period", "1y"), "--validity-period"),
    (("--client-name", "x", "--validity-period", "-1h"), "not positive"),
    (("--client-name", "x", "--output-file", "/nonexistent-dir/x.conf"), "does not exist"),
    (("--client-name", "x", "--state-dir", "/nonexistent-state"), "does not exist yet"),
])
def test_bad_input_is_one_clear_error(state, args, message):
    if "--state-dir" not in args:
        args = (*args, "--state-dir", str(state))
    r = fab("kubeconfig.user", *args)
    assert r.returncode == 1, r.stdout
    assert message in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr


def test_external_ca_is_refused(tmp_path, state):
    import shutil

    copy = tmp_path / "state"
    shutil.copytree(state, copy)
    (copy / "pki" / "ca.key").unlink()
    r = fab("kubeconfig.user", "--client-name", "x", "--state-dir", str(copy))
    assert r.returncode == 1 and "external-CA" in r.stderr
