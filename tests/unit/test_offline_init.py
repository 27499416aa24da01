"""`fab -H <host> init --dry-run --offline --output-dir DIR`: the whole plan, no connection.

A dry-run writes nothing to the state dir: the PKI, kubeconfigs and join material it would
create are made in memory and listed (redacted). The fixture seeds the state dir the way an
init would (through the same store the pipeline commits), so the plan is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_cli import ROOT, fab


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``: sha256 (files) and mode (both)."""
    out = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file():
            out[rel] = f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mode & 0o7777:o}"
        else:
            out[rel] = f"dir {p.stat().st_mode & 0o7777:o}"
    return out


def seed_state(state: Path, host: str = "master1", inventory_path: Path | None = None) -> None:
    """What `fab -H master1 init --upload-certs` leaves in the state dir, without a host."""
    from tasks.core import inventory
    from tasks.core.state import ClusterState
    from tasks.core.statestore import PendingStore
    from tasks.phases.context import Options, RunContext
    from tasks.phases.kubeconfig import node_kubeconfigs

    inv = inventory.load_inventory(inventory_path or ROOT / "inventory" / "hosts.yaml")
    cluster_state = ClusterState(state)
    store = PendingStore(cluster_state)
    ctx = RunContext(config=inv.kubeadm_config(inv.host(host)), host_name=host, state=cluster_state,
                     options=Options(upload_certs=True), store=store)
    ctx.node_pki, node_kubeconfigs(ctx), ctx.bootstrap_tokens, ctx.certificate_key
    store.commit()


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offline")
    out, state = tmp / "out", tmp / "state"
    seed_state(state)
    before = tree_digest(state)
    args = ("-H", "master1", "init", "--dry-run", "--offline", "--upload-certs", "--output-dir", str(out),
            "--state-dir", str(state))
    first = fab(*args)
    assert first.returncode == 0, first.stderr
    snapshot = {p: p.read_bytes() for p in (out / "master1").rglob("*") if p.is_file()}
    second = fab(*args)
    assert second.returncode == 0, second.stderr
    return {"out": out, "state": state, "first": first, "second": second, "snapshot": snapshot,
            "before": before, "after": tree_digest(state)}


def test_dry_run_leaves_a_seeded_state_dir_as_it_was(offline):
    assert offline["before"] and offline["after"] == offline["before"]
    assert "would create" not in offline["first"].stdout  # everything it needs is there


def test_dry_run_on_a_fresh_state_dir_writes_nothing_and_says_what_it_would_create(tmp_path):
    state = tmp_path / "state"
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--upload-certs", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert not state.exists()
    assert f"[master1] [state-dir] would create in {state} (dry-run: nothing written):" in r.stdout
    for line in ("pki/ca.key (mode 0600, private key", "pki/ca.crt (mode 0644, certificate",
                 "nodes/master1/admin.conf (mode 0600, kubeconfig", "join.yaml: bootstrap token <redacted",
                 "join.yaml: certificate key <redacted"):
        assert line in r.stdout, line
    assert "PRIVATE KEY" not in r.stdout + r.stderr
    # a state dir that exists but is partial stays byte for byte too
    state.mkdir()
    (state / "join.yaml").write_text("tokens: []\n")
    before = tree_digest(state)
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert tree_digest(state) == before


def test_files_and_modes(offline):
    root = offline["out"] / "master1"
    modes = {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()}
    assert modes["etc/kubernetes/pki/ca.key"] == 0o600 and modes["etc/kubernetes/pki/ca.crt"] == 0o644
    assert modes["etc/kubernetes/pki/sa.pub"] == 0o600
    for conf in ("admin", "super-admin", "kubelet", "controller-manager", "scheduler"):
        assert modes[f"etc/kubernetes/{conf}.conf"] == 0o600
    for m in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert modes[f"etc/kubernetes/manifests/{m}.yaml"] == 0o600
    for f in ("config.yaml", "kubeadm-flags.env", "instance-config.yaml"):
        assert f"var/lib/kubelet/{f}" in modes
    assert "etc/systemd/system/kubelet.service.d/10-kubeadm.conf" in modes


def test_plan_json_matches_the_files_and_holds_no_secret(offline):
    text = (offline["out"] / "plan.json").read_text()
    assert "PRIVATE KEY" not in text and "client-key-data" not in text
    steps = json.loads(text)["hosts"]["master1"]
    files = [s for s in steps if s["kind"] == "file"]
    assert len(files) >= 30
    for s in files:
        data = (offline["out"] / "master1" / s["path"].lstrip("/")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == s["sha256"], s["path"]
        assert int(s["mode"], 8) == (offline["out"] / "master1" / s["path"].lstrip("/")).stat().st_mode & 0o777
    kinds = {s["kind"] for s in steps}
    assert {"file", "command", "api", "wait"} <= kinds
    api = {(s["objectKind"], s["name"]) for s in steps if s["kind"] == "api"}
    assert ("Secret", "kubeadm-certs") in api and ("ConfigMap", "kubeadm-config") in api
    phases = [s["phase"] for s in steps]
    assert phases.index("certs/ca") < phases.index("kubeconfig/admin") < phases.index("etcd/local")


def test_printed_plan_is_redacted(offline):
    for r in (offline["first"], offline["second"]):
        text = r.stdout + r.stderr
        assert "PRIVATE KEY" not in text and "Traceback" not in text
        assert "[certs/ca]" in text and "write /etc/kubernetes/pki/ca.key (mode 0600" in text


def test_second_run_reuses_everything(offline):
    root = offline["out"] / "master1"
    again = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert again == offline["snapshot"]


def test_ca_hash_matches_openssl(offline):
    ca = offline["state"] / "pki" / "ca.crt"
    der = subprocess.run(f"openssl x509 -in {ca} -pubkey -noout | openssl pkey -pubin -outform DER",
                         shell=True, capture_output=True, check=True).stdout
    want = "sha256:" + hashlib.sha256(der).hexdigest()
    r = fab("certs.ca-hash", "--state-dir", str(offline["state"]))
    assert r.returncode == 0 and r.stdout.strip() == want
    r = fab("certs.ca-hash", "--cert", str(ca))
    assert r.returncode == 0 and r.stdout.strip() == want


def test_check_expiration_lists_leaves_kubeconfigs_and_cas(offline):
    r = fab("certs.check-expiration", "--state-dir", str(offline["state"]))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "[master1]"
    rows = {ln.split()[0]: ln for ln in lines[2:] if ln and not ln.startswith(("CERTIFICATE", "["))}
    for name in ("apiserver", "etcd-peer", "front-proxy-client", "admin.conf", "scheduler.conf", "ca", "etcd-ca"):
        assert name in rows, name
    import re
    assert re.search(r"\s36[45]d\s+ca\s+no$", rows["apiserver"])
    assert re.search(r"\s10y\s+no$", rows["ca"]) or re.search(r"\s9y\s+no$", rows["ca"])
    assert "master2" in r.stderr  # no certificates for hosts not set up from this machine


def test_check_expiration_as_json(offline):
    import json

    r = fab("certs.check-expiration", "-o", "json", "--state-dir", str(offline["state"]))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["apiVersion"] == "kubefab.dev/v1alpha1" and doc["kind"] == "CertificateExpirationList"
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["master2"]["found"] is False and hosts["master1"]["found"] is True
    certs = {c["name"]: c for c in hosts["master1"]["certificates"]}
    cas = {c["name"]: c for c in hosts["master1"]["certificateAuthorities"]}
    assert certs["apiserver"]["certificateAuthority"] == "ca" and certs["apiserver"]["expired"] is False
    assert certs["apiserver"]["residualTime"] in ("364d", "365d") and certs["apiserver"]["residualTimeSeconds"] > 0
    assert "admin.conf" in certs and "certificateAuthority" not in cas["ca"]
    assert certs["apiserver"]["expirationDate"].endswith("Z")
    assert "[master1]" in r.stderr  # the tables are on stderr


def test_init_reads_the_init_configuration_of_a_file_that_also_joins(tmp_path):
    """Found by the fuzzer (issue 15): a file with both an Init and a Join document made init plan a
    joining etcd member and fail after writing the PKI; kubeadm init ignores the JoinConfiguration."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    inventory = tmp_path / "hosts.yaml"
    # its patches.directory names a directory of the node; patches are read on this machine (an
    # empty one here: a missing directory is an error, as for kubeadm)
    (tmp_path / "patches").mkdir()
    config = tmp_path / "kubeadm.yaml"
    config.write_text((root / "tests" / "fixtures" / "config" / "v1beta4-full.yaml").read_text().replace(
        "directory: /etc/kubernetes/patches", f"directory: {tmp_path / 'patches'}"))
    inventory.write_text((root / "inventory" / "hosts.yaml").read_text().replace("config: kubeadm.yaml",
                                                                                f"config: {config}"))
    out = tmp_path / "out"
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--inventory", str(inventory),
            "--state-dir", str(tmp_path / "state"), "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    etcd = (out / "master1" / "etc" / "kubernetes" / "manifests" / "etcd.yaml").read_text()
    assert "--initial-cluster-state=existing" not in etcd
