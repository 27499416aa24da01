"""`fab etcd.snapshot` and `fab etcd.restore` on the lab: 3 control planes + lb + 1 worker, real etcd
(the v1.35 cluster of ``tests/integration/previous_minor.py``, which test_upgrade_lab upgrades next).

First, the cluster runs what kubeadm 1.35 pins: etcd 3.6.6 on every member and CoreDNS v1.13.1
(the lab builds each release's own; tests/lab/images.py). Then objects written, a snapshot taken,
the objects deleted (and one made after the snapshot), the snapshot restored on every control
plane: the old objects are back, the later one is gone, etcd has its three members, every Node
is Ready and the cluster takes new writes.
"""

from __future__ import annotations

import io
import json
import re
import stat
import tarfile
import time
from pathlib import Path

import pytest

from tasks.core import versions
from tests.integration.previous_minor import CONTROL_PLANES, FROM, previous_minor_cluster  # noqa: F401 - fixture
from tests.integration.test_cluster_lab import PKI, etcd_members, ready_nodes, wait_until
from tests.integration.test_init_lab import fab, kget, kubectl, no_secrets

pytestmark = pytest.mark.lab
LAB_ORDER = 90  # on the shared v1.35 cluster, before test_upgrade_lab (tests/conftest.py)

BEFORE = ("kf-before-1", "kf-before-2", "kf-before-3")


@pytest.fixture(scope="module")
def lab(previous_minor_cluster):
    return previous_minor_cluster["lab"]


@pytest.fixture(scope="module")
def cluster(lab, previous_minor_cluster):
    """The shared v1.35 HA cluster, with three ConfigMaps written before the snapshot."""
    shared = previous_minor_cluster
    for name in BEFORE:
        kubectl(lab, shared["admin"], "create", "configmap", name, "-n", "default", f"--from-literal=value={name}")
    return {key: shared[key] for key in ("tmp", "inv", "state", "admin")}


def run(lab, cluster, *args, stdin: bytes | None = None, timeout: float = 600):
    return fab(lab, *args, "--inventory", str(cluster["inv"]), "--state-dir", str(cluster["state"]),
               stdin=stdin, timeout=timeout)


def configmaps(lab, admin: Path) -> set[str]:
    out = kubectl(lab, admin, "get", "configmaps", "-n", "default", "-o", "json")
    return {i["metadata"]["name"] for i in json.loads(out)["items"]}


def test_the_cluster_runs_the_etcd_and_coredns_its_kubeadm_pins(lab, cluster):
    """etcd and CoreDNS are the releases kubeadm 1.35 pins, not 1.36's under 1.35's tags: each
    member reports etcd 3.6.6, and both CoreDNS replicas run the v1.13.1 image, ready, whose
    binary says 1.13.1."""
    info = versions.for_version(FROM)
    for host in CONTROL_PLANES:
        r = lab.exec(host, ["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={PKI}/etcd/ca.crt",
                            f"--cert={PKI}/etcd/healthcheck-client.crt", f"--key={PKI}/etcd/healthcheck-client.key",
                            "endpoint", "status", "-w", "json"])
        assert r.returncode == 0, (host, r.stderr.decode())
        assert json.loads(r.stdout)[0]["Status"]["version"] == info.etcd_version_str, (host, r.stdout.decode())

    def coredns_ready():
        pods = kget(lab, cluster["admin"], "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
        ready = [p for p in pods if p["status"].get("phase") == "Running"
                 and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        return ready if len(ready) == 2 else None

    pods = wait_until(coredns_ready, "both CoreDNS replicas Running and ready")
    for pod in pods:
        assert pod["spec"]["containers"][0]["image"] == f"registry.k8s.io/coredns/coredns:{info.coredns_tag}"
    out = kubectl(lab, cluster["admin"], "exec", "-n", "kube-system", pods[0]["metadata"]["name"], "--",
                  "/coredns", "-version")
    assert f"CoreDNS-{info.coredns_tag.lstrip('v')}" in out, out


@pytest.fixture(scope="module")
def backup(lab, cluster):
    out = cluster["tmp"] / "backups"
    r = run(lab, cluster, "etcd.snapshot", "--output-file", f"{out}/")
    assert r.returncode == 0, r.out + r.err
    path = Path(r.out.strip().splitlines()[-1])
    return {"path": path, "result": r, "dir": out}


def test_snapshot_is_an_archive_of_the_snapshot_record_and_pki_mode_0600(cluster, backup):
    path = backup["path"]
    assert path.parent == backup["dir"] and "-etcd-" in path.name and path.name.endswith(".tar.gz")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with tarfile.open(path) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("kubefab-backup.json").read())
        snapshot = tar.extractfile("snapshot.db").read()
        assert tar.extractfile("pki/ca.key").read() == (cluster["state"] / "pki" / "ca.key").read_bytes()
    assert {"kubefab-backup.json", "snapshot.db", "pki/ca.crt", "pki/etcd/ca.key", "pki/sa.key"} <= set(names)
    assert meta["member"] in CONTROL_PLANES and meta["revision"] > 0 and meta["size"] == len(snapshot)
    assert len(snapshot) % 512 == 32  # etcd's appended sha256
    err = backup["result"].err
    assert "verified on both ends" in err and "etcd integrity hash ok" in err
    no_secrets(backup["result"].out + err)


def test_snapshot_keep_prunes_older_backups(lab, cluster, backup):
    time.sleep(1.1)  # a new name (the time, to the second)
    other = cluster["tmp"] / "keep"
    other.mkdir()
    first = run(lab, cluster, "etcd.snapshot", "--output-file", f"{other}/")
    assert first.returncode == 0, first.err
    time.sleep(1.1)
    (other / "unrelated.txt").write_text("not a backup")
    second = run(lab, cluster, "etcd.snapshot", "--output-file", f"{other}/", "--keep", "1")
    assert second.returncode == 0, second.err
    assert sorted(p.name for p in other.iterdir()) == sorted([Path(second.out.strip()).name, "unrelated.txt"])


def test_restore_refuses_bad_input_and_changes_nothing(lab, cluster, backup):
    missing = run(lab, cluster, "etcd.restore", str(cluster["tmp"] / "nope.tar.gz"), "--yes")
    assert missing.returncode == 1 and "not found" in missing.err and "Traceback" not in missing.err
    # a damaged copy: one byte of the snapshot changed inside a valid archive
    data = bytearray(Path(backup["path"]).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        members = {m.name: (m, tar.extractfile(m).read()) for m in tar.getmembers()}
    def rewrite(path: Path, change) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as out:
            for name, (info, body) in members.items():
                body = change(name, body)
                info.size = len(body)
                out.addfile(info, io.BytesIO(body))
        path.write_bytes(buf.getvalue())
    damaged = cluster["tmp"] / "damaged.tar.gz"
    rewrite(damaged, lambda n, b: b[:100] + bytes([b[100] ^ 1]) + b[101:] if n == "snapshot.db" else b)
    r = run(lab, cluster, "etcd.restore", str(damaged), "--yes")
    assert r.returncode == 1 and "checksum mismatch" in r.err, r.err
    foreign = cluster["tmp"] / "foreign.tar.gz"

    def other_ca(name, body):
        if name != "kubefab-backup.json":
            return body
        meta = json.loads(body)
        meta["ca_pin"] = "sha256:" + "0" * 64
        meta["cluster"] = "elsewhere"
        return json.dumps(meta).encode()
    rewrite(foreign, other_ca)
    r = run(lab, cluster, "etcd.restore", str(foreign), "--yes")
    assert r.returncode == 1 and "another cluster" in r.err, r.err
    # not confirmed: nothing happens
    r = run(lab, cluster, "etcd.restore", str(backup["path"]), stdin=b"n\n")
    assert r.returncode == 1 and "not confirmed" in r.err, r.err
    assert set(BEFORE) <= configmaps(lab, cluster["admin"])


def test_restore_dry_run_changes_nothing(lab, cluster, backup):
    r = run(lab, cluster, "etcd.restore", str(backup["path"]), "--dry-run")
    assert r.returncode == 0, r.out + r.err
    for host in CONTROL_PLANES:
        assert f"[{host}] [stage]" in r.out and f"[{host}] [swap-data]" in r.out
    for host in CONTROL_PLANES:
        assert lab.exec(host, ["sh", "-c", "ls /var/lib/etcd | grep -c kubefab-restore"]).stdout.strip() == b"0"
        assert lab.exec(host, ["test", "-f", "/etc/kubernetes/manifests/etcd.yaml"]).returncode == 0


def test_a_failed_stage_is_undone_on_every_control_plane(lab, cluster, backup):
    """etcdutl fails on node3 after the snapshot was staged everywhere: nothing stays behind,
    nothing was stopped, the cluster is as it was."""
    # the lab's etcdutl is a symlink into the build cache: move it aside, never write through it
    r = lab.exec("node3", ["sh", "-c", "mv /usr/local/bin/etcdutl /usr/local/bin/etcdutl.real && "
                                       "printf '#!/bin/sh\\necho etcdutl: simulated failure >&2\\nexit 1\\n' "
                                       "> /usr/local/bin/etcdutl && chmod 755 /usr/local/bin/etcdutl"])
    assert r.returncode == 0, r.stderr
    try:
        r = run(lab, cluster, "etcd.restore", str(backup["path"]), "--yes")
    finally:
        lab.exec("node3", ["mv", "-f", "/usr/local/bin/etcdutl.real", "/usr/local/bin/etcdutl"])
    assert r.returncode == 1, r.out + r.err
    assert "simulated failure" in r.err and "node3" in r.err and "nothing was restored" in r.err
    assert "[stop-control-plane]" not in r.err
    for host in CONTROL_PLANES:
        assert lab.exec(host, ["sh", "-c", "ls /var/lib/etcd | grep -c kubefab-restore"]).stdout.strip() == b"0"
        assert lab.exec(host, ["test", "-f", "/etc/kubernetes/manifests/etcd.yaml"]).returncode == 0
    assert set(BEFORE) <= configmaps(lab, cluster["admin"])


@pytest.fixture(scope="module")
def restored(lab, cluster, backup):
    admin = cluster["admin"]
    for name in BEFORE:
        kubectl(lab, admin, "delete", "configmap", name, "-n", "default")
    kubectl(lab, admin, "create", "configmap", "kf-after-snapshot", "-n", "default")
    assert not set(BEFORE) & configmaps(lab, admin)
    r = run(lab, cluster, "etcd.restore", str(backup["path"]), "--yes", timeout=900)
    assert r.returncode == 0, r.out[-3000:] + r.err[-8000:]
    return r


def test_restore_brings_the_objects_back(lab, cluster, restored):
    names = configmaps(lab, cluster["admin"])
    assert set(BEFORE) <= names
    assert "kf-after-snapshot" not in names


def test_restore_has_three_members_and_ready_nodes(lab, cluster, restored):
    members = etcd_members(lab)
    assert sorted(m["name"] for m in members) == list(CONTROL_PLANES)
    assert not any(m.get("isLearner") for m in members)
    assert ready_nodes(lab, cluster["admin"]) == set(CONTROL_PLANES) | {"node4"}
    for host in CONTROL_PLANES:  # the per-phase table: every stage ran on every control plane
        for stage in ("stage", "stop-control-plane", "swap-data", "start-control-plane", "wait-etcd"):
            assert re.search(rf"^{host}\s+{stage}\s", restored.err, re.M), (host, stage)
    assert "HOST" in restored.err and "RESULT" in restored.err
    no_secrets(restored.out + restored.err)


def test_restored_cluster_takes_writes_and_keeps_the_old_data(lab, cluster, restored):
    kubectl(lab, cluster["admin"], "create", "configmap", "kf-after-restore", "-n", "default")
    assert "kf-after-restore" in configmaps(lab, cluster["admin"])
    for host in CONTROL_PLANES:
        r = lab.exec(host, ["sh", "-c", "ls -d /var/lib/etcd/kubefab-restore-*/old-member && "
                                        "ls /etc/kubernetes/manifests"])
        assert r.returncode == 0, r.stderr
        assert b"etcd.yaml" in r.stdout and b"kube-apiserver.yaml" in r.stdout
        assert lab.exec(host, ["sh", "-c", "ls /etc/kubernetes/tmp | grep -c kubefab-etcd-restore"]
                        ).stdout.strip() == b"0"


def test_restore_after_etcd_data_is_wiped_on_every_control_plane(lab, cluster, backup, restored):
    """The disaster case: every member's data gone. The restore puts the snapshot back (no old
    data to keep where there was none) and the cluster works again."""
    for host in CONTROL_PLANES:
        r = lab.exec(host, ["sh", "-c", "rm -rf /var/lib/etcd/member /var/lib/etcd/kubefab-restore-*"])
        assert r.returncode == 0, r.stderr
    r = run(lab, cluster, "etcd.restore", str(backup["path"]), "--yes", timeout=900)
    assert r.returncode == 0, r.out[-3000:] + r.err[-8000:]
    names = configmaps(lab, cluster["admin"])
    assert set(BEFORE) <= names and "kf-after-restore" not in names
    assert sorted(m["name"] for m in etcd_members(lab)) == list(CONTROL_PLANES)
    assert ready_nodes(lab, cluster["admin"]) == set(CONTROL_PLANES) | {"node4"}
    kubectl(lab, cluster["admin"], "create", "configmap", "kf-after-wipe", "-n", "default")
