"""upgrade.apply (issue 14, item 2): the target and flags, the certificates renewed per changed
component, the control-plane and kubelet plans from facts, the cordon mark, and the host-side
wait-and-rollback script run for real with a fake crictl."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from tasks.core import constants as K
from tasks.core.errors import ConfigError, PreflightError
from tasks.core.facts import HostFacts, PathFact
from tasks.core.plan import ApiObject, Command, DrainSpec, FileWrite, Plan, Wait
from tasks.phases import upgrade as phases
from tasks.phases.renew import build_renewal
from tasks.runner import build_plans
from tasks.upgrade import ClusterVersions, _max_unavailable, _renew_names, resolve_target
from tests.unit.test_renew import ctx_for, inv, seeded, state  # noqa: F401 - fixtures

TARGET = "v1.34.2"  # the example inventory's kubernetesVersion


def facts(files: dict[str, bytes] | None = None, *, kubelet: str = f"Kubernetes {TARGET}") -> HostFacts:
    paths = {p: PathFact(p, exists=True, type="file", mode=0o100600 if "manifests" in p else 0o100644, uid=0, gid=0,
                         sha256=hashlib.sha256(data).hexdigest()) for p, data in (files or {}).items()}
    return HostFacts(hostname="m", uid=0, kubelet_version=kubelet, paths=paths)


def cp_ctx(inv, state, host="master1", **data):
    """The context upgrade.apply makes: the first control plane as init renders it, others as a join."""
    first = host == inv.first_control_plane.name
    ctx = ctx_for(inv, state, host)
    if first:
        ctx = replace(ctx, config=inv.kubeadm_config(inv.host(host)))
    return replace(ctx, upgrade=phases.UpgradeData(target=TARGET, **data))


# --- the target and the flags ---------------------------------------------------------------------------
def test_target_is_the_configs_version_and_a_different_one_is_refused(inv):
    assert resolve_target(inv, "") == TARGET
    assert resolve_target(inv, TARGET.removeprefix("v")) == TARGET
    with pytest.raises(ConfigError) as err:
        resolve_target(inv, "v1.35.4")
    assert "kubernetesVersion: v1.34.2" in str(err.value) and "set kubernetesVersion: v1.35.4" in err.value.fix


@pytest.mark.parametrize("text,workers,expected", [("", 0, 1), ("", 30, 3), ("", 5, 1), ("2", 9, 2),
                                                   ("50%", 9, 4), ("100%", 3, 3)])
def test_max_unavailable(text, workers, expected):
    assert _max_unavailable(text, workers) == expected


@pytest.mark.parametrize("text", ["abc", "-1", "150%", "x%"])
def test_bad_max_unavailable_is_a_clean_error(text):
    with pytest.raises(ConfigError) as err:
        _max_unavailable(text, 10)
    assert err.value.fix


def test_certificates_of_the_components_that_change_are_renewed(inv):
    cluster = inv.kubeadm_config(inv.host("master1")).cluster
    current = ClusterVersions("v1.33.6", {"kube-apiserver": {"v1.33.6": ["m1"], TARGET: ["m2"]},
                                          "kube-controller-manager": {TARGET: ["m1", "m2"]},
                                          "kube-scheduler": {"v1.33.6": ["m1", "m2"]}},
                              {}, {"3.5.21-0": ["m1"], "3.6.4-0": ["m2"]}, "")
    m1 = _renew_names(current, "m1", TARGET, "3.6.4-0", cluster)
    assert "apiserver" in m1 and "etcd-server" in m1 and "etcd-healthcheck-client" in m1
    assert "scheduler.conf" in m1 and "controller-manager.conf" not in m1 and "admin.conf" in m1
    m2 = _renew_names(current, "m2", TARGET, "3.6.4-0", cluster)
    assert m2 == ["scheduler.conf"]  # only the scheduler changes on m2


# --- control planes ---------------------------------------------------------------------------------------
def test_a_changing_control_plane_is_backed_up_and_each_pod_waited_for_in_order(inv, state):
    ctx = cp_ctx(inv, state)
    ctx = replace(ctx, renewal=build_renewal(ctx, ["apiserver", "admin.conf"])).with_facts(facts())
    plans = {p.phase: p for p in build_plans(phases.CONTROL_PLANE, ctx)}
    backup, record = plans["backup"].steps
    assert backup.creates == f"/etc/kubernetes/tmp/kubefab-upgrade-{TARGET}"
    assert "snapshot save" in backup.argv[2] and "cp -p /etc/kubernetes/manifests/*.yaml" in backup.argv[2]
    assert ".part" in backup.argv[2]  # made beside, renamed into place: a killed run leaves no half backup
    assert "crictl" in record.argv[2] and "^kube-apiserver-master1$" in record.argv[2]
    assert [s.path for s in plans["certs"].steps] == ["/etc/kubernetes/pki/apiserver.crt"]
    etcd = plans["etcd"].steps
    # etcd's leadership goes elsewhere, the API server leaves the rotation, then etcd restarts
    assert etcd[0].description.startswith("hand etcd's leadership") and "move-leader" in etcd[0].argv[2]
    assert isinstance(etcd[1], Command) and etcd[1].description.startswith("stop kube-apiserver")
    assert isinstance(etcd[2], FileWrite) and etcd[2].path == "/etc/kubernetes/manifests/etcd.yaml"
    assert etcd[3].on_change and etcd[3].argv[4:6] == ("etcd", "etcd-master1")
    assert isinstance(etcd[-1], Wait) and etcd[-1].target == "http://127.0.0.1:2381/readyz"
    api = plans["control-plane/apiserver"].steps
    assert isinstance(api[0], FileWrite) and api[0].data().count(f"kube-apiserver:{TARGET}".encode()) == 1
    assert [s.description.split(":")[0][:20] for s in api[1:4]] == [
        "wait until the kubel", "drop the stopped API", "let a load balancer'"]
    assert api[-1].target.endswith(":6443/readyz")
    assert list(plans)[-2:] == ["control-plane/controller-manager", "control-plane/scheduler"]
    # the controller manager and the scheduler restart together: both manifests, both waited for
    cm = plans["control-plane/controller-manager"].steps
    assert [s.path for s in cm if isinstance(s, FileWrite)] == [
        "/etc/kubernetes/manifests/kube-controller-manager.yaml", "/etc/kubernetes/manifests/kube-scheduler.yaml"]
    assert [s.argv[4] for s in cm if isinstance(s, Command)] == ["kube-controller-manager", "kube-scheduler"]
    assert all(s.on_change for s in cm if isinstance(s, Command)) and cm[-1].target.endswith(":10257/healthz")
    # the scheduler's own phase: its file is in place once the controller manager's batch wrote it,
    # so the executor sends nothing and runs no restart wait again, only its health check
    from tasks.apply import HostFiles
    from tasks.remote.transport import ApplyResult, StepResult, host_steps

    files = HostFiles(None)
    written = [Plan("control-plane/controller-manager", "master1", [s for s in cm if not isinstance(s, Wait)])]
    files.record(written, ApplyResult("master1", tuple(StepResult(i, "step", "changed") for i, _ in
                                                       enumerate(host_steps(written))), 0, 0.0))
    [left], dropped = files.prune([plans["control-plane/scheduler"]])
    assert [type(s).__name__ for s in left.steps] == ["Wait"] and dropped == 2


def test_a_control_plane_already_at_the_target_changes_nothing(inv, state):
    ctx = cp_ctx(inv, state)
    wanted = {f"/etc/kubernetes/manifests/{c}.yaml": ctx.with_facts(facts()).static_pods[c]
              for c in phases.STATIC_PODS}
    ctx = ctx.with_facts(facts(wanted))
    plans = {p.phase: p for p in build_plans(phases.CONTROL_PLANE, ctx)}
    assert not plans["backup"].steps and "no backup" in plans["backup"].notes[0]
    for phase in ("etcd", "control-plane/apiserver", "control-plane/scheduler"):
        kinds = [type(s).__name__ for s in plans[phase].steps]
        assert kinds == ["FileWrite", "Wait"], (phase, kinds)  # in place (the executor sends nothing), health


# --- kubelets ---------------------------------------------------------------------------------------------
def kubelet_ctx(inv, state, host="worker1", *, binary=TARGET, running="v1.33.6", in_place=False, **data):
    """A node whose kubelet runs ``running`` with ``binary`` installed (its files in place or not)."""
    ctx = cp_ctx(inv, state, host, node_version=running, drain=DrainSpec(timeout_seconds=300, host=host), **data)
    files = {f.path: f.data() for f in phases.kubelet_files(ctx.with_facts(facts()))} if in_place else {}
    return ctx.with_facts(facts(files, kubelet=f"Kubernetes {binary}"))


def test_an_older_kubelet_binary_stops_the_node_before_its_drain_with_what_to_install(inv, state):
    with pytest.raises(PreflightError) as err:
        build_plans(phases.KUBELET, kubelet_ctx(inv, state, binary="v1.33.6"))
    assert "v1.33.6, older than v1.34.2" in str(err.value)
    assert "apt-get install kubelet=1.34.2-*" in err.value.fix and "re-run" in err.value.fix
    with pytest.raises(PreflightError, match="newer than the control plane"):
        build_plans(phases.KUBELET, kubelet_ctx(inv, state, binary="v1.35.0"))


def test_a_node_to_upgrade_is_cordoned_with_a_mark_drained_restarted_waited_for_and_uncordoned(inv, state):
    plans = {p.phase: p for p in build_plans(phases.KUBELET, kubelet_ctx(inv, state))}
    cordon, drain = plans["drain"].steps
    assert cordon.strategy == "cordon" and cordon.obj["metadata"]["annotations"] == {
        phases.CORDONED_ANNOTATION: TARGET}
    assert drain.strategy == "drain" and drain.drain.timeout_seconds == 300
    steps = plans["kubelet-config"].steps
    assert K.KUBELET_CONFIG_FILE in [s.path for s in steps if isinstance(s, FileWrite)]
    restart = [s for s in steps if isinstance(s, Command) and s.argv[:2] == ("systemctl", "restart")]
    assert restart and not restart[0].on_change  # the running kubelet is older than the binary: always
    node_ready = plans["wait"].steps[-1]
    assert node_ready.check == "node-ready" and node_ready.on == "api" and node_ready.expect == TARGET
    [uncordon] = plans["uncordon"].steps
    assert uncordon.strategy == "uncordon" and phases.CORDONED_ANNOTATION in uncordon.obj["metadata"]["annotations"]


def test_a_node_already_done_is_not_drained(inv, state):
    plans = {p.phase: p for p in build_plans(phases.KUBELET, kubelet_ctx(inv, state, running=TARGET, in_place=True))}
    assert not plans["drain"].steps and "not drained" in plans["drain"].notes[0]
    restart = [s for s in plans["kubelet-config"].steps if isinstance(s, Command)]
    assert all(s.on_change for s in restart)


@pytest.mark.parametrize("workflow,host", [("CONTROL_PLANE", "master1"), ("KUBELET", "master1"),
                                           ("KUBELET", "worker1")])
def test_every_step_runs_where_its_phase_says(inv, state, workflow, host):
    """The executor refuses a step its phase's ``where`` does not allow (after the host steps
    before it were queued): every plan of every phase must pass its check."""
    from tasks.apply import check_where
    from tasks.runner import select

    ctx = kubelet_ctx(inv, state, host)
    ctx = replace(ctx, renewal=build_renewal(ctx, ["apiserver"]) if host == "master1" else None)
    wf = getattr(phases, workflow)
    steps = select(wf, ctx)
    plans = build_plans(wf, ctx)
    assert len(steps) == len(plans)
    for step, plan in zip(steps, plans):
        check_where(plan.phase, step.where, plan.steps)


# --- the cordon mark ---------------------------------------------------------------------------------------
class FakeApi:
    def __init__(self, node):
        from tasks.api import Api

        self.node, self.patches = node, []
        self.api = Api.__new__(Api)
        self.api.request = self.request
        self.api.get = lambda obj: self.node

    def request(self, method, path, body=None, **kw):
        assert method == "PATCH"
        self.patches.append(body)
        return {}


@pytest.mark.parametrize("node,expected", [
    ({"metadata": {"name": "w1"}, "spec": {}}, "cordoned"),
    ({"metadata": {"name": "w1"}, "spec": {"unschedulable": True}}, "unchanged"),
])
def test_cordon_marks_the_node(node, expected):
    fake = FakeApi(node)
    mark = {phases.CORDONED_ANNOTATION: TARGET}
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1", "annotations": mark}}
    assert fake.api._remove_node_step(ApiObject(obj, strategy="cordon"), obj, node).action == expected
    if expected == "cordoned":
        assert fake.patches == [{"spec": {"unschedulable": True}, "metadata": {"annotations": mark}}]


def test_uncordon_only_what_the_upgrade_cordoned():
    mark = {phases.CORDONED_ANNOTATION: TARGET}
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1", "annotations": mark}}
    by_operator = {"metadata": {"name": "w1"}, "spec": {"unschedulable": True}}
    fake = FakeApi(by_operator)
    assert fake.api._remove_node_step(ApiObject(obj, strategy="uncordon"), obj, by_operator).action == "unchanged"
    ours = {"metadata": {"name": "w1", "annotations": dict(mark)}, "spec": {"unschedulable": True}}
    fake = FakeApi(ours)
    assert fake.api._remove_node_step(ApiObject(obj, strategy="uncordon"), obj, ours).action == "uncordoned"
    assert fake.patches == [{"spec": {"unschedulable": None},
                             "metadata": {"annotations": {phases.CORDONED_ANNOTATION: None}}}]


# --- the wait-and-rollback script, run for real ----------------------------------------------------------------
FAKE_CRICTL = """#!/bin/sh
# a fake crictl: "pods ... --state ready -q" prints $FAKE/ready, "ps ... -q" prints $FAKE/running
for a in "$@"; do case "$a" in pods) cmd=pods;; ps) cmd=ps;; logs) cmd=logs;; stop) cmd=stop;; esac; done
case "$cmd" in
  stop) echo "$*" >> "$FAKE/stopped";;
  pods) cat "$FAKE/ready" 2>/dev/null;;
  ps) cat "$FAKE/running" 2>/dev/null;;
  logs) echo "panic: the new flag is unknown";;
esac
"""
FAKE_CURL = '#!/bin/sh\necho "ok"\n'


@pytest.fixture
def sandbox(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("crictl", FAKE_CRICTL), ("curl", FAKE_CURL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    manifests, parked, backup = tmp_path / "manifests", tmp_path / "parked", tmp_path / "backup"
    for d in (manifests, parked, backup):
        d.mkdir()
    for name in ("kube-apiserver", "kube-controller-manager", "etcd"):
        (manifests / f"{name}.yaml").write_text("new\n")
        (backup / f"{name}.yaml").write_text("old\n")
    (tmp_path / "before").write_text("kube-apiserver aaaa\n")
    return tmp_path


def run_restarted(sandbox: Path, seconds: int = 2, port: int | None = None, settle: int = 5) -> subprocess.CompletedProcess:
    script = phases.restarted_script(str(sandbox / "before"), str(sandbox / "parked"), str(sandbox / "manifests"),
                                     settle=settle)
    env = {**os.environ, "PATH": f"{sandbox / 'bin'}:{os.environ['PATH']}", "FAKE": str(sandbox)}
    return subprocess.run(["sh", "-c", script, "restarted", "kube-apiserver", "kube-apiserver-m1", str(seconds),
                           "https://127.0.0.1:6443/readyz", "unix:///run/containerd/containerd.sock",
                           str(sandbox / "backup" / "kube-apiserver.yaml"), *([str(port)] if port else [])],
                          env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("listening", [True, False])
def test_the_old_api_server_is_stopped_once_it_stopped_listening(sandbox, listening):
    """While the old API server listens it is the kubelet's to stop; once it stopped listening
    (its requests in flight drained) and a load balancer's check has had ``settle`` seconds to
    see it gone, its container is stopped, so that its watches do not hold the new Pod back for
    the kubelet's grace period."""
    import socket

    (sandbox / "ready").write_text("aaaa\n")  # only the old Pod so far
    (sandbox / "running").write_text("c0ffee\n")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if listening:
        sock.listen()
    else:
        sock.close()
    try:
        r = run_restarted(sandbox, seconds=4, port=port, settle=1)
    finally:
        sock.close()
    assert r.returncode == 1  # no new Pod within the 2 s: rolled back
    stopped = (sandbox / "stopped").read_text().splitlines() if (sandbox / "stopped").exists() else []
    if listening:
        assert stopped == []
    else:
        assert stopped and set(stopped) == {"-r unix:///run/containerd/containerd.sock stop --timeout 0 c0ffee"}
    # not before the settle time; and without the port (every other component) never
    (sandbox / "stopped").unlink(missing_ok=True)
    run_restarted(sandbox, seconds=2, port=port, settle=5)
    run_restarted(sandbox, seconds=2, settle=0)
    assert not (sandbox / "stopped").exists()


def test_a_new_healthy_pod_is_success(sandbox):
    (sandbox / "ready").write_text("aaaa\nbbbbbbbbbbbbbbbbbbbb\n")
    (sandbox / "running").write_text("c1\n")
    r = run_restarted(sandbox)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "new Pod bbbbbbbbbbbb running and healthy" in r.stdout
    assert (sandbox / "manifests" / "kube-apiserver.yaml").read_text() == "new\n"


def test_a_parked_api_server_is_started_again_when_etcd_fails(sandbox):
    (sandbox / "before").write_text("etcd aaaa\n")
    (sandbox / "ready").write_text("aaaa\n")
    (sandbox / "parked" / "kube-apiserver.yaml").write_text("parked\n")
    (sandbox / "manifests" / "kube-apiserver.yaml").unlink()  # moved out while etcd restarts
    script = phases.restarted_script(str(sandbox / "before"), str(sandbox / "parked"), str(sandbox / "manifests"))
    env = {**os.environ, "PATH": f"{sandbox / 'bin'}:{os.environ['PATH']}", "FAKE": str(sandbox)}
    r = subprocess.run(["sh", "-c", script, "restarted", "etcd", "etcd-m1", "2", "http://127.0.0.1:2381/readyz",
                        "unix:///run/containerd/containerd.sock", str(sandbox / "backup" / "etcd.yaml")],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert (sandbox / "manifests" / "etcd.yaml").read_text() == "old\n"
    # the API server comes back with the manifest it had when it was stopped
    assert (sandbox / "manifests" / "kube-apiserver.yaml").read_text() == "parked\n"
    assert not (sandbox / "parked" / "kube-apiserver.yaml").exists()


def test_the_old_pod_alone_is_not_success_and_the_manifest_is_rolled_back(sandbox):
    (sandbox / "ready").write_text("aaaa\n")  # only the pod from before the change
    (sandbox / "running").write_text("c1\n")
    (sandbox / "manifests" / "kube-scheduler.yaml").write_text("kept\n")  # no backup of it: left alone
    r = run_restarted(sandbox)
    assert r.returncode == 1
    assert "started no new Pod" in r.stdout and "log: panic: the new flag is unknown" in r.stdout
    # the host goes back to its old version: every control-plane manifest the backup holds...
    for name in ("kube-apiserver", "kube-controller-manager"):
        assert (sandbox / "manifests" / f"{name}.yaml").read_text() == "old\n", name
        assert f"rolled back: {sandbox}/manifests/{name}.yaml" in r.stdout
    # ...but etcd's only when etcd itself failed (kubeadm's rule)
    assert (sandbox / "manifests" / "etcd.yaml").read_text() == "new\n"
    assert (sandbox / "manifests" / "kube-scheduler.yaml").read_text() == "kept\n"
    assert not list((sandbox / "manifests").glob(".*"))  # no temp file left where the kubelet looks


FAKE_ETCDCTL = """#!/bin/sh
# a fake etcdctl: this member is 11 and $FAKE/leader leads; member list in etcdctl's simple format
for a in "$@"; do case "$a" in status) cmd=status;; list) cmd=list;; move-leader) cmd=move;; esac; last=$a; done
case "$cmd" in
  status) echo "[{\\"Endpoint\\":\\"https://127.0.0.1:2379\\",\\"Status\\":{\\"header\\":{\\"cluster_id\\":7,\\"member_id\\":11,\\"revision\\":9},\\"version\\":\\"3.6.8\\",\\"leader\\":$(cat "$FAKE/leader"),\\"raftIndex\\":5}}]";;
  list) printf '%s\\n' "b, started, m1, https://10.0.0.1:2380, https://10.0.0.1:2379, false" \\
          "c, started, m3, https://10.0.0.3:2380, https://10.0.0.3:2379, true" \\
          "d, started, m2, https://10.0.0.2:2380, https://10.0.0.2:2379, false";;
  move) if [ -e "$FAKE/refuse" ]; then echo "Error: etcdserver: leader changed" >&2; exit 1; fi
        echo "$last" > "$FAKE/moved";;
esac
"""


@pytest.mark.parametrize("leader,moved,refuse", [("11", "d", False), ("12", None, False), ("11", None, True)])
def test_etcd_leadership_is_handed_to_a_voting_member_only_by_the_leader(inv, state, tmp_path, leader, moved,
                                                                         refuse):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "etcdctl").write_text(FAKE_ETCDCTL)
    (bin_dir / "etcdctl").chmod(0o755)
    (tmp_path / "leader").write_text(leader)
    if refuse:
        (tmp_path / "refuse").touch()
    script = phases.etcd_leader_away(cp_ctx(inv, state)).argv[2]
    assert "-v me=master1" in script  # the member's name is the node's: the fake's m1
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE": str(tmp_path)}
    r = subprocess.run(["sh", "-c", script.replace("-v me=master1", "-v me=m1")], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    if moved:
        # not itself (m1), not the learner (m3): m2
        assert (tmp_path / "moved").read_text().strip() == moved and "handed to member d" in r.stdout
    elif refuse:
        # etcd refused the hand-over three times: a warning, and the upgrade goes on
        assert not (tmp_path / "moved").exists()
        assert "WARNING: etcd leadership not handed over (Error: etcdserver: leader changed)" in r.stdout
    else:
        assert not (tmp_path / "moved").exists() and "does not lead" in r.stdout


def test_the_mirror_pod_wait_reads_each_static_pods_image_and_only_warns(capsys):
    """A control plane's kubelet upgrade ends once the mirror Pods show the manifests' images
    (a re-run reads the versions from them); a kubelet that is late gets a warning."""
    from tasks.session import wait_mirror_pods

    shown = {"etcd-m1": "registry.k8s.io/etcd:3.6.6-0", "kube-apiserver-m1": "registry.k8s.io/kube-apiserver:v1.36.3"}
    asked = []

    class Api:
        def request(self, method, path):
            asked.append(path)
            name = path.rsplit("/", 1)[-1]
            return {"spec": {"containers": [{"image": shown[name]}]}}

    want = {"etcd": "registry.k8s.io/etcd:3.6.8-0", "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.36.3"}
    assert wait_mirror_pods(Api(), "m1", want, 0, host="m1") is False
    assert "/api/v1/namespaces/kube-system/pods/etcd-m1" in asked
    err = capsys.readouterr().err
    assert "WARNING: the kubelet has not updated the mirror Pods" in err and "etcd: registry.k8s.io/etcd:3.6.6-0" in err
    assert "kube-apiserver" not in err.split("WARNING")[1].split("):")[0]
    shown["etcd-m1"] = "registry.k8s.io/etcd:3.6.8-0"
    assert wait_mirror_pods(Api(), "m1", want, 0, host="m1") is True
