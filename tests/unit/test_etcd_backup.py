"""etcd.snapshot and etcd.restore: names, the backup archive, its checks and the restore plans."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from tasks.core.errors import ConfigError, KubefabError, PreflightError
from tasks.core.plan import FileWrite, Message, Wait
from tasks.core.spec import (APIEndpoint, ClusterConfiguration, InitConfiguration, JoinConfiguration,
                             JoinControlPlane, KubeadmConfig, NodeRegistration)
from tasks.core.state import ClusterState
from tasks.phases import etcd as E
from tasks.phases.context import Options, RunContext
from tasks.runner import build_plans

NOW = datetime(2026, 12, 6, 9, 16, 54, tzinfo=timezone.utc)
CLUSTER = ClusterConfiguration(kubernetes_version="v1.36.0", control_plane_endpoint="lb:6443")


def snapshot_bytes(size: int = 4096, *, good: bool = True) -> bytes:
    """A stand-in for an etcd snapshot: bolt's magic at byte 16, etcd's sha256 appended."""
    db = bytearray(size)
    db[16:20] = bytes.fromhex("edda0ced")
    digest = hashlib.sha256(bytes(db)).digest()
    if not good:
        db[100] ^= 1
    return bytes(db) + digest


# --- names and pruning ---------------------------------------------------------------------------
def test_backup_name_sorts_by_time():
    assert E.backup_name("prod", NOW) == "prod-etcd-20261206T091654Z.tar.gz"


def test_prune_keeps_the_newest_of_this_cluster_only():
    names = ["prod-etcd-20261204T000000Z.tar.gz", "prod-etcd-20261206T000000Z.tar.gz",
             "prod-etcd-20261205T000000Z.tar.gz", "dev-etcd-20261201T000000Z.tar.gz", "notes.txt",
             "prod-etcd-latest.tar.gz"]
    assert E.backups_to_prune(names, "prod", 2) == ["prod-etcd-20261204T000000Z.tar.gz"]
    assert E.backups_to_prune(names, "prod", 3) == []
    with pytest.raises(ConfigError, match="keep at least one"):
        E.backups_to_prune(names, "prod", 0)


@pytest.mark.parametrize("output,expected", [
    ("", "STATE/backups/prod-etcd-20261206T091654Z.tar.gz"),
    ("DIR/", "DIR/prod-etcd-20261206T091654Z.tar.gz"),
    ("DIR", "DIR/prod-etcd-20261206T091654Z.tar.gz"),          # an existing directory
    ("DIR/mine.tar.gz", "DIR/mine.tar.gz"),
])
def test_output_path(tmp_path, output, expected):
    (tmp_path / "DIR").mkdir()
    out = output.replace("DIR", str(tmp_path / "DIR"))
    got = E.output_path(out, tmp_path / "STATE" / "backups", "prod", NOW)
    assert str(got) == expected.replace("DIR", str(tmp_path / "DIR")).replace("STATE", str(tmp_path / "STATE"))


# --- the snapshot file and the archive --------------------------------------------------------------
def test_etcd_integrity_hash():
    assert E.snapshot_hash_ok(snapshot_bytes()) is True
    assert E.snapshot_hash_ok(snapshot_bytes(good=False)) is False
    assert E.snapshot_hash_ok(bytes(4096)) is None  # a db copied from a data dir: no hash


def test_parse_snapshot_output():
    status = [{"Endpoint": "https://10.0.0.1:2379", "Status": {
        "header": {"cluster_id": 14841639068965178418, "member_id": 10276657743932975437, "revision": 1234},
        "version": "3.6.8", "dbSize": 4096}}]
    text = f"sha256={'a' * 64}\nsize=4128\nstatus={json.dumps(status)}\n"
    got = E.parse_snapshot_output(text)
    assert (got.sha256, got.size, got.revision, got.etcd_version) == ("a" * 64, 4128, 1234, "3.6.8")
    assert got.cluster_id == format(14841639068965178418, "x")
    with pytest.raises(KubefabError, match="checksum and size were not reported"):
        E.parse_snapshot_output("size=1\n")


def test_snapshot_script_checks_health_then_saves_and_hashes():
    script = E.snapshot_script("/etc/kubernetes/pki", "https://10.0.0.1:2379", "/etc/kubernetes/tmp/s.db")
    assert script.index("endpoint health") < script.index("snapshot save") < script.index("sha256sum")
    assert "umask 077" in script and "healthcheck-client.key" in script and "--endpoints=https://10.0.0.1:2379" in script


def meta_for(snapshot: bytes, **extra) -> dict:
    return {"format": 1, "cluster": "prod", "created": NOW.isoformat(), "sha256": hashlib.sha256(snapshot).hexdigest(),
            "ca_pin": "sha256:" + "1" * 64, **extra}


def test_archive_round_trip_with_pki(tmp_path):
    snap = snapshot_bytes()
    path = tmp_path / "b.tar.gz"
    path.write_bytes(E.build_backup(snap, meta_for(snap), {"ca.crt": b"CERT", "etcd/ca.key": b"KEY"}))
    backup = E.read_backup(path)
    assert backup.kind == "kubefab" and backup.snapshot == snap and backup.pki == {"ca.crt": b"CERT",
                                                                                   "etcd/ca.key": b"KEY"}
    with tarfile.open(path) as tar:
        assert {m.name: m.mode for m in tar.getmembers()} == {
            "kubefab-backup.json": 0o600, "snapshot.db": 0o600, "pki/ca.crt": 0o600, "pki/etcd/ca.key": 0o600}


def test_archive_checksum_mismatch(tmp_path):
    snap = snapshot_bytes()
    path = tmp_path / "b.tar.gz"
    path.write_bytes(E.build_backup(snapshot_bytes(8192), meta_for(snap), {}))
    with pytest.raises(ConfigError, match="checksum mismatch"):
        E.read_backup(path)


def test_damaged_snapshot_in_archive(tmp_path):
    bad = snapshot_bytes(good=False)
    path = tmp_path / "b.tar.gz"
    path.write_bytes(E.build_backup(bad, meta_for(bad), {}))
    with pytest.raises(ConfigError, match="integrity hash"):
        E.read_backup(path)


@pytest.mark.parametrize("content,message", [
    (None, "not found"),
    (b"hello, not a backup", "neither a kubefab backup nor an etcd snapshot"),
    (b"\x1f\x8b\x08garbage", "not a readable backup archive"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "x"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as exc:
        E.read_backup(path)
    assert exc.value.fix


def test_archive_without_record(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("other")
        tar.addfile(info, io.BytesIO(b""))
    (tmp_path / "x.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(ConfigError, match="not a kubefab backup"):
        E.read_backup(tmp_path / "x.tar.gz")


def test_bare_etcd_snapshot(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(snapshot_bytes())
    backup = E.read_backup(path)
    assert backup.kind == "etcd" and backup.has_hash
    warnings = E.check_same_cluster(backup, "sha256:" + "1" * 64, state_root=tmp_path)
    assert any("cannot tell which cluster" in w for w in warnings)
    path.write_bytes(snapshot_bytes(good=False))
    with pytest.raises(ConfigError, match="integrity hash"):
        E.read_backup(path)


def test_backup_of_another_cluster_is_refused(tmp_path):
    snap = snapshot_bytes()
    path = tmp_path / "b.tar.gz"
    path.write_bytes(E.build_backup(snap, meta_for(snap), {}))
    backup = E.read_backup(path)
    assert E.check_same_cluster(backup, "sha256:" + "1" * 64, state_root=tmp_path) == []
    with pytest.raises(ConfigError, match="another cluster"):
        E.check_same_cluster(backup, "sha256:" + "2" * 64, state_root=tmp_path)


# --- restore plans -------------------------------------------------------------------------------
MEMBERS = (("m1", "https://10.0.0.1:2380"), ("m2", "https://10.0.0.2:2380"), ("m3", "https://10.0.0.3:2380"))


def restore_ctx(tmp_path, *, facts=None, join=True, snap=None):
    data = E.RestoreData("20261206T091654Z", snap or snapshot_bytes(), MEMBERS)
    if join:
        cfg = KubeadmConfig(cluster=CLUSTER, join=JoinConfiguration(
            NodeRegistration("m2"), control_plane=JoinControlPlane(APIEndpoint("10.0.0.2"))))
        name = "m2"
    else:
        cfg = KubeadmConfig(cluster=CLUSTER, init=InitConfiguration(NodeRegistration("m1"), APIEndpoint("10.0.0.1")))
        name = "m1"
    return RunContext(cfg, name, ClusterState(tmp_path), facts=facts, etcd_restore=data)


def test_restore_plans_in_stage_order(tmp_path):
    plans = build_plans(E.RESTORE, restore_ctx(tmp_path), only=[p for st in E.STAGES for p in st])
    assert [p.phase for p in plans] == ["preflight", "stage", "stop-control-plane", "swap-data",
                                        "start-control-plane", "wait-etcd"]
    stage = plans[1].steps
    rdir = "/var/lib/etcd/kubefab-restore-20261206T091654Z"
    assert isinstance(stage[0], FileWrite) and stage[0].path == f"{rdir}/snapshot.db" and stage[0].mode == 0o600
    assert stage[0].dir_mode == 0o700
    check = stage[1].argv[2]
    assert "sha256sum -c" in check and E.RestoreData("x", snapshot_bytes()).sha256 in check
    for flag in ("--name=m2", "--initial-advertise-peer-urls=https://10\\.0\\.0\\.2:2380", "--data-dir=/var/lib/etcd"):
        assert flag in check, flag
    restore = stage[2].argv[2]
    assert restore.startswith(f"rm -rf {rdir}/new && etcdutl snapshot restore {rdir}/snapshot.db --name m2")
    assert ("--initial-cluster m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380"
            in restore)
    assert "--initial-advertise-peer-urls https://10.0.0.2:2380" in restore
    assert f"--data-dir {rdir}/new --bump-revision 1000000000 --mark-compacted" in restore
    assert "--skip-hash-check" not in restore
    stop = plans[2].steps[0].argv[2]
    stash = "/etc/kubernetes/tmp/kubefab-etcd-restore-20261206T091654Z"
    assert f"mv -f \"$f\" {stash}/" in stop and "/proc/[0-9]*/comm" in stop
    for port in (2379, 2380, 6443, 10257, 10259):
        assert f"{port:04X}" in stop
    swap = plans[3].steps[0].argv[2]
    assert f"mv /var/lib/etcd/member {rdir}/old-member" in swap and f"mv {rdir}/new/member /var/lib/etcd/member" in swap
    start = plans[4].steps[0].argv[2]
    assert "mv -f \"$f\" /etc/kubernetes/manifests/" in start and f"rmdir {stash}" in start
    wait = plans[5].steps
    assert isinstance(wait[0], Wait) and wait[0].target == "http://127.0.0.1:2381/health"
    assert isinstance(wait[1], Message) and "old-member" in str(wait[1].text)
    # nothing of a restore is in the normal selection's hidden rollback
    assert "rollback-data" not in E.RESTORE.help_text()


def test_bare_snapshot_without_hash_is_restored_with_skip_hash_check(tmp_path):
    ctx = restore_ctx(tmp_path)
    from dataclasses import replace

    ctx = replace(ctx, etcd_restore=replace(ctx.etcd_restore, skip_hash_check=True))
    plans = build_plans(E.RESTORE, ctx, only=["stage"])
    assert "--skip-hash-check" in plans[0].steps[2].argv[2]


def test_rollback_puts_the_old_data_back(tmp_path):
    plans = build_plans(E.RESTORE, restore_ctx(tmp_path), only=["rollback-data"])
    script = plans[0].steps[0].argv[2]
    rdir = "/var/lib/etcd/kubefab-restore-20261206T091654Z"
    assert f"mv {rdir}/old-member /var/lib/etcd/member" in script and f"rm -rf {rdir}" in script
    assert "no-old-member" in script


def facts(**kw):
    paths = {"/etc/kubernetes/manifests/etcd.yaml": {"exists": True}, "/var/lib/etcd/member": {"exists": True}}
    return SimpleNamespace(uid=kw.get("uid", 0), binaries=kw.get("binaries", {"etcdutl": "/usr/local/bin/etcdutl"}),
                           paths={**paths, **kw.get("paths", {})})


def test_preflight_needs_root_etcdutl_and_the_manifest(tmp_path):
    plans = build_plans(E.RESTORE, restore_ctx(tmp_path, facts=facts()), only=["preflight"])
    assert plans[0].steps == []
    bad = facts(uid=1000, binaries={}, paths={"/etc/kubernetes/manifests/etcd.yaml": {"exists": False}})
    with pytest.raises(PreflightError) as exc:
        build_plans(E.RESTORE, restore_ctx(tmp_path, facts=bad), only=["preflight"])
    text = exc.value.render()
    assert "root" in text and "etcdutl is not installed" in text and "etcd.yaml does not exist" in text
    wiped = facts(paths={"/var/lib/etcd/member": {"exists": False}})
    plans = build_plans(E.RESTORE, restore_ctx(tmp_path, facts=wiped), only=["preflight"])
    assert "nothing to keep" in plans[0].notes[0]


def test_first_control_plane_uses_its_init_config(tmp_path):
    plans = build_plans(E.RESTORE, restore_ctx(tmp_path, join=False), only=["stage"])
    assert "--name m1 " in plans[0].steps[2].argv[2]


def test_member_list_after_restore():
    good = [{"ID": 1, "name": n, "peerURLs": [u], "clientURLs": ["x"]} for n, u in MEMBERS]
    assert E.member_list_matches(good, MEMBERS) == []
    bad = good[:2] + [{"ID": 9, "name": "old", "peerURLs": ["https://10.0.0.9:2380"], "isLearner": True}]
    problems = E.member_list_matches(bad, MEMBERS)
    assert "member m3 is missing" in problems and "unexpected member old" in problems


def test_restore_without_a_snapshot_is_a_bug_message(tmp_path):
    cfg = KubeadmConfig(cluster=CLUSTER, init=InitConfiguration(NodeRegistration("m1"), APIEndpoint("10.0.0.1")))
    with pytest.raises(KubefabError, match="no snapshot"):
        build_plans(E.RESTORE, RunContext(cfg, "m1", ClusterState(tmp_path)), only=["stage"])


# --- the commands, with the host pipeline and the hosts faked --------------------------------------
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inv():
    from tasks.core import inventory

    return inventory.load_inventory(ROOT / "inventory" / "hosts.yaml")


def fake_pipeline(monkeypatch, fail_at: tuple[str, str] | None = None):
    """Record (host, phases) of every pipeline run; fail ``(host, first phase)`` once."""
    from tasks import etcdbackup
    from tasks.pipeline import HostResult

    calls: list[tuple[str, tuple[str, ...]]] = []

    def run_workflow(host, run, *, connect, options):
        ctx = run.prepare()
        assert ctx.etcd_restore is not None and ctx.host_name == host.name
        calls.append((host.name, run.only))
        if fail_at == (host.name, run.only[0]):
            raise KubefabError("simulated failure", host=host.name, phase=run.only[-1])
        return HostResult(host.name, "control-plane", phases=len(run.only))

    monkeypatch.setattr(etcdbackup, "run_workflow", run_workflow)
    monkeypatch.setattr(etcdbackup, "_check_cluster", lambda *a, **k: calls.append(("cluster", ("check",))))
    return calls


def bare_snapshot(tmp_path):
    admin = tmp_path / "state" / "nodes" / "master1" / "admin.conf"
    admin.parent.mkdir(parents=True, exist_ok=True)
    admin.write_text("apiVersion: v1\nkind: Config\n")
    path = tmp_path / "s.db"
    path.write_bytes(snapshot_bytes())
    return str(path)


def stages_run(calls) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(phases for _, phases in calls))


def test_restore_runs_each_stage_on_every_control_plane_then_checks(tmp_path, inv, monkeypatch):
    from tasks import etcdbackup

    calls = fake_pipeline(monkeypatch)
    etcdbackup.restore(inv, ClusterState(tmp_path / "state"), bare_snapshot(tmp_path), [], yes=True)
    cps = [h.name for h in inv.control_planes]
    assert stages_run(calls) == [*E.STAGES, ("check",)]
    for stage in E.STAGES:
        assert sorted(h for h, p in calls if p == stage) == sorted(cps)


@pytest.mark.parametrize("failed,undo", [
    ("stage", [("rollback-data",)]),
    ("stop-control-plane", [("rollback-data",), ("start-control-plane",)]),
    ("swap-data", [("rollback-data",), ("start-control-plane",)]),
])
def test_a_stage_that_fails_before_the_start_is_undone_everywhere(tmp_path, inv, monkeypatch, failed, undo):
    from tasks import etcdbackup

    cps = [h.name for h in inv.control_planes]
    calls = fake_pipeline(monkeypatch, fail_at=(cps[-1], failed if failed != "stage" else "preflight"))
    with pytest.raises(KubefabError, match="1 of 3 host"):
        etcdbackup.restore(inv, ClusterState(tmp_path / "state"), bare_snapshot(tmp_path), [], yes=True)
    ran = stages_run(calls)
    first = failed if failed != "stage" else "preflight"
    upto = list(E.STAGES[: [s[0] for s in E.STAGES].index(first) + 1])
    assert ran == [*upto, *undo]
    for stage in undo:
        assert sorted(h for h, p in calls if p == stage) == sorted(cps)


def test_restore_asks_and_refuses_without_yes(tmp_path, inv, monkeypatch):
    import io as _io

    from tasks import etcdbackup

    calls = fake_pipeline(monkeypatch)
    monkeypatch.setattr("sys.stdin", _io.StringIO("n\n"))
    with pytest.raises(KubefabError, match="not confirmed"):
        etcdbackup.restore(inv, ClusterState(tmp_path / "state"), bare_snapshot(tmp_path), [])
    assert calls == []
    with pytest.raises(ConfigError, match="-H is not used"):
        etcdbackup.restore(inv, ClusterState(tmp_path / "state"), bare_snapshot(tmp_path), ["master1"], yes=True)
    with pytest.raises(ConfigError, match="no admin.conf for master1"):
        etcdbackup.restore(inv, ClusterState(tmp_path / "other"), bare_snapshot(tmp_path), [], yes=True)


class FakeHost:
    def __init__(self, stdout: str, data: bytes, code: int = 0):
        self.stdout, self.data, self.code, self.calls = stdout, data, code, []

    def run(self, command, *, check=True, timeout=None):
        from tasks.remote.transport import RunResult

        text = command if isinstance(command, str) else " ".join(command)
        self.calls.append(text)
        if text.startswith("rm -f"):
            return RunResult(text, 0, "", "", 0.0)
        return RunResult(text, self.code, self.stdout, "", 0.0)

    def get(self, path):
        self.calls.append(f"get {path}")
        return self.data

    def close(self):
        self.calls.append("close")


def taken_output(data: bytes) -> str:
    return f"sha256={hashlib.sha256(data).hexdigest()}\nsize={len(data)}\nstatus=[]\n"


def test_snapshot_copy_is_verified_and_the_host_file_removed(tmp_path, inv):
    from tasks import etcdbackup

    data = snapshot_bytes()
    host = inv.control_planes[0]
    ctx = etcdbackup._context(inv, host, ClusterState(tmp_path), Options())
    fake = FakeHost(taken_output(data), data)
    taken, got, _ = etcdbackup._snapshot_from(host, ctx, lambda h: fake)
    assert got == data and taken.size == len(data)
    assert fake.calls[1].startswith("get /etc/kubernetes/tmp/kubefab-snapshot-") and fake.calls[2].startswith("rm -f")
    assert fake.calls[-1] == "close"
    # a copy that differs from the host's file: an error, and still removed on the host
    fake = FakeHost(taken_output(data), data[:-1] + b"x")
    with pytest.raises(KubefabError, match="checksum mismatch"):
        etcdbackup._snapshot_from(host, ctx, lambda h: fake)
    assert any(c.startswith("rm -f") for c in fake.calls)
    # an unhealthy member: the next one is tried
    fake = FakeHost("unhealthy=1\n", b"", code=3)
    assert etcdbackup._snapshot_from(host, ctx, lambda h: fake) is None


def test_snapshot_dry_run_connects_to_nothing_and_writes_nothing(tmp_path, inv, capsys):
    from tasks import etcdbackup

    state = ClusterState(tmp_path / "state")
    (state.pki_dir / "etcd").mkdir(parents=True)
    (state.pki_dir / "ca.crt").write_bytes(b"CERT")
    (state.pki_dir / "etcd" / "ca.key").write_bytes(b"KEY")
    out = tmp_path / "out"
    out.mkdir()
    old = out / "example-etcd-20200101T000000Z.tar.gz"
    old.write_bytes(b"old")
    assert etcdbackup.snapshot(inv, state, [], output_file=f"{out}/", keep=1, dry_run=True) is None
    captured = capsys.readouterr()
    assert "first healthy member of: master1" in captured.out and "2 files of" in captured.out
    assert f"would remove {old}" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [old.name]
    with pytest.raises(KubefabError, match="no cluster PKI"):
        etcdbackup.snapshot(inv, ClusterState(tmp_path / "empty"), [], dry_run=True)
    with pytest.raises(ConfigError, match="are workers|is a worker"):
        etcdbackup.snapshot(inv, state, ["worker1"], dry_run=True)


def test_no_state_ca_only_warns(tmp_path):
    snap = snapshot_bytes()
    path = tmp_path / "b.tar.gz"
    path.write_bytes(E.build_backup(snap, meta_for(snap), {}))
    warnings = E.check_same_cluster(E.read_backup(path), None, state_root=tmp_path)
    assert any("holds no CA" in w for w in warnings)
