"""Offline plan tests of the reset workflow (kubeadm reset, reference §12)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks.core.errors import ConfigError, KubefabError
from tasks.core.plan import Command, FileRemove, FileWrite, plans_to_json
from tasks.core.spec import (APIEndpoint, ClusterConfiguration, ExternalEtcd, InitConfiguration, JoinConfiguration,
                             KubeadmConfig, NodeRegistration)
from tasks.core.state import ClusterState
from tasks.phases.context import RunContext
from tasks.phases.reset import RESET
from tasks.runner import build_plans

CLUSTER = ClusterConfiguration(kubernetes_version="v1.36.0", control_plane_endpoint="lb:6443")


def cp_ctx(tmp_path, cluster=CLUSTER, facts=None):
    cfg = KubeadmConfig(cluster=cluster, init=InitConfiguration(NodeRegistration("m1"), APIEndpoint("10.0.0.1")))
    return RunContext(cfg, "m1", ClusterState(tmp_path), facts=facts)


def worker_ctx(tmp_path, facts=None):
    cfg = KubeadmConfig(cluster=CLUSTER, join=JoinConfiguration(NodeRegistration("w1")))
    return RunContext(cfg, "w1", ClusterState(tmp_path), facts=facts)


def test_control_plane_reset(tmp_path):
    plans = build_plans(RESET, cp_ctx(tmp_path))
    assert [p.phase for p in plans] == ["preflight", "drain", "remove-etcd-member", "cleanup-node", "delete-node"]
    # --keep-node (no removal read from the cluster): kubeadm reset alone
    assert plans[1].steps == [] and plans[4].steps == [] and "skipped: --keep-node" in plans[4].notes[0]
    plans = [plans[0], plans[2], plans[3]]
    etcd = plans[1].steps
    assert isinstance(etcd[0], Command) and etcd[0].ignore_failure  # kubeadm only warns
    script = etcd[0].argv[2]
    assert "member remove" in script and "https://10.0.0.1:2380" in script and "last etcd member" in script
    assert "etcd/healthcheck-client.key" in script
    # the kubelet stops the static pods (etcd first of all) before the etcd data goes
    stop_pods = etcd[1].argv[2]
    assert "/etc/kubernetes/manifests" in stop_pods and "systemctl is-active --quiet kubelet" in stop_pods
    assert etcd[1].ignore_failure and "0A" in stop_pods
    for port in (2379, 2380, 6443, 10257, 10259):
        assert f"{port:04X}" in stop_pods
    assert etcd[2] == FileRemove("/var/lib/etcd", recursive=True, reason="etcd data (contents)")
    cleanup = plans[2]
    assert cleanup.steps[0] == etcd[1]  # again, for --skip-phases remove-etcd-member (a no-op otherwise)
    assert cleanup.steps[1].argv == ("systemctl", "stop", "kubelet")
    removes = [s for s in cleanup.steps if isinstance(s, FileRemove)]
    recursive = [s.path for s in removes if s.recursive]
    assert recursive == ["/etc/kubernetes/manifests", "/var/lib/kubelet", "/etc/kubernetes/pki"]
    files = sorted(s.path for s in removes if not s.recursive)
    assert files == sorted(f"/etc/kubernetes/{n}" for n in ("admin.conf", "super-admin.conf", "kubelet.conf",
                                                              "bootstrap-kubelet.conf", "controller-manager.conf",
                                                              "scheduler.conf"))
    # unmount before deleting /var/lib/kubelet's contents
    kinds = [type(s).__name__ for s in cleanup.steps]
    assert kinds.index("FileRemove") > 1
    assert not any(isinstance(s, FileWrite) for p in plans for s in p.steps)
    assert any("iptables" in n for n in cleanup.notes) and any("/etc/cni/net.d" in n for n in cleanup.notes)


def test_worker_reset_has_no_etcd_step(tmp_path):
    plans = build_plans(RESET, worker_ctx(tmp_path), only=["remove-etcd-member"])
    assert plans[0].steps == [] and "no local etcd" in plans[0].notes[0]


def test_etcd_manifest_on_host_means_local_etcd(tmp_path):
    # configured as a worker, but the host runs an etcd static pod (kubeadm checks the manifest)
    facts = SimpleNamespace(uid=0, paths={"/etc/kubernetes/manifests/etcd.yaml": {"exists": True}})
    plans = build_plans(RESET, worker_ctx(tmp_path, facts=facts), only=["remove-etcd-member"])
    script = plans[0].steps[0].argv[2]
    assert "member remove" in script and "https://127.0.0.1:2379" in script and "$3 == p" in script
    assert plans[0].steps[2].path == "/var/lib/etcd"


def test_external_etcd_only_reminds(tmp_path):
    cluster = ClusterConfiguration(kubernetes_version="v1.36.0", etcd_local=None,
                                   etcd_external=ExternalEtcd(endpoints=("https://e:2379",)))
    plans = build_plans(RESET, cp_ctx(tmp_path, cluster), only=["remove-etcd-member"])
    assert plans[0].steps == [] and "external etcd" in plans[0].notes[0]


def test_reset_preflight_needs_root(tmp_path):
    with pytest.raises(KubefabError, match="root") as exc:
        build_plans(RESET, worker_ctx(tmp_path, facts=SimpleNamespace(uid=1000, paths={})))
    assert exc.value.host == "w1" and exc.value.phase == "preflight"


@pytest.mark.parametrize("only,skip,expected", [
    ([], [], ["preflight", "drain", "remove-etcd-member", "cleanup-node", "delete-node"]),
    (["cleanup-node"], [], ["cleanup-node"]),
    ([], ["remove-etcd-member", "drain"], ["preflight", "cleanup-node", "delete-node"]),
])
def test_select(only, skip, expected):
    assert [s.path for s in RESET.select(only, skip)] == expected


def test_unknown_phase_and_help(tmp_path):
    with pytest.raises(ConfigError, match="invalid phase name"):
        RESET.select(["cleanup"])
    assert "remove-etcd-member" in RESET.help_text()
    assert '"kind": "remove"' in plans_to_json(build_plans(RESET, worker_ctx(tmp_path)))


# --- node removal (issue 13): drain, quorum, the last control plane, a dead host -----------------------
from dataclasses import replace  # noqa: E402

from tasks.core.plan import ApiObject  # noqa: E402
from tasks.drain import classify_pods, quorum_problem  # noqa: E402
from tasks.phases.reset import Removal  # noqa: E402


def pod(name, *, owner=None, mirror=False, phase="Running", empty_dir=False, ns="default"):
    meta = {"name": name, "namespace": ns, "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": f"{name}-owner", "controller": True}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    spec = {"volumes": [{"name": "scratch", "emptyDir": {}}]} if empty_dir else {}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


PODS = [pod("etcd-m1", mirror=True, ns="kube-system"), pod("kube-proxy-x", owner="DaemonSet", ns="kube-system"),
        pod("web-1", owner="ReplicaSet"), pod("lonely"), pod("done", phase="Succeeded"),
        pod("cache-1", owner="ReplicaSet", empty_dir=True)]


def test_drain_filters_as_kubectl_drain():
    plan = classify_pods(PODS)
    assert plan.evict == ("default/web-1", "default/done")
    assert [p for p, _ in plan.skipped] == ["kube-system/etcd-m1", "kube-system/kube-proxy-x"]
    assert dict(plan.refused).keys() == {"default/lonely", "default/cache-1"}
    assert "--force" in dict(plan.refused)["default/lonely"]
    assert "--delete-emptydir-data" in dict(plan.refused)["default/cache-1"]
    forced = classify_pods(PODS, force=True, delete_emptydir_data=True)
    assert forced.evict == ("default/web-1", "default/lonely", "default/done", "default/cache-1")
    assert not forced.refused


def member(name, ip, *, learner=False):
    return {"name": name, "peerURLs": [f"https://{ip}:2380"], "clientURLs": [f"https://{ip}:2379"],
            "isLearner": learner}


THREE = [member("m1", "10.0.0.1"), member("m2", "10.0.0.2"), member("m3", "10.0.0.3")]
ALL_HEALTHY = {f"https://10.0.0.{i}:2379" for i in (1, 2, 3)}


@pytest.mark.parametrize("members,healthy,removing,problem", [
    (THREE, ALL_HEALTHY, "10.0.0.1", ""),
    (THREE, ALL_HEALTHY - {"https://10.0.0.2:2379"}, "10.0.0.1", "only 1 of them are healthy; quorum needs 2"),
    (THREE, ALL_HEALTHY - {"https://10.0.0.2:2379"}, "10.0.0.2", ""),  # the dead one goes: 2 of 2 healthy
    (THREE[:1], ALL_HEALTHY, "10.0.0.1", "last etcd member"),
    (THREE[:2] + [member("m3", "10.0.0.3", learner=True)], {"https://10.0.0.2:2379"}, "10.0.0.1", ""),
    (THREE, ALL_HEALTHY, "10.0.0.9", ""),  # not a member
])
def test_quorum(members, healthy, removing, problem):
    got = quorum_problem(members, healthy, f"https://{removing}:2380")
    assert (problem in got) if problem else got == ""


def removal_ctx(tmp_path, removal, *, facts=None, worker=False):
    ctx = worker_ctx(tmp_path, facts) if worker else cp_ctx(tmp_path, facts=facts)
    return replace(ctx, removal=removal, cluster_kubeconfig=b"admin")


HEALTHY = Removal(control_plane_nodes=("m1", "m2", "m3"), etcd_members=tuple(
    member(n, f"10.0.0.{i}") for i, n in ((1, "m1"), (2, "m2"), (3, "m3"))), healthy_urls=frozenset(ALL_HEALTHY),
    pods=(PODS[1], PODS[2]))


def test_removal_drains_resets_and_deletes_the_node(tmp_path):
    plans = {p.phase: p for p in build_plans(RESET, removal_ctx(tmp_path, HEALTHY))}
    assert [(s.strategy, s.ref()) for s in plans["drain"].steps] == [("cordon", "Node m1"), ("drain", "Node m1")]
    assert plans["drain"].steps[1].drain.timeout_seconds == 0 and "evict default/web-1" in plans["drain"].notes
    assert any("DaemonSet" in n for n in plans["drain"].notes)
    assert [(s.strategy, s.ref()) for s in plans["delete-node"].steps] == [("delete", "Node m1")]
    assert "member remove" in plans["remove-etcd-member"].steps[0].argv[2]
    assert plans["cleanup-node"].steps  # kubeadm reset on the host
    assert not any("Node object stays" in str(m.text) for m in plans["cleanup-node"].steps
                   if not isinstance(m, (Command, FileRemove)))


def test_the_last_control_plane_is_refused_even_with_force(tmp_path):
    removal = replace(HEALTHY, control_plane_nodes=("m1",), etcd_members=HEALTHY.etcd_members[:1], force=True)
    with pytest.raises(KubefabError, match="last control plane") as exc:
        build_plans(RESET, removal_ctx(tmp_path, removal))
    assert "--keep-node" in exc.value.fix and exc.value.phase == "preflight"


def test_breaking_quorum_is_refused_unless_force(tmp_path):
    sick = replace(HEALTHY, healthy_urls=frozenset({"https://10.0.0.1:2379"}))  # m2 and m3 down
    with pytest.raises(KubefabError, match="quorum") as exc:
        build_plans(RESET, removal_ctx(tmp_path, sick))
    assert "--force" in exc.value.fix
    plans = build_plans(RESET, removal_ctx(tmp_path, replace(sick, force=True)))
    assert any("--force: removing it anyway" in n for n in plans[0].notes)
    with pytest.raises(KubefabError, match="cannot check etcd"):
        build_plans(RESET, removal_ctx(tmp_path, replace(HEALTHY, etcd_members=(), etcd_error="no answer")))


def test_pods_drain_would_refuse_stop_the_plan(tmp_path):
    with pytest.raises(KubefabError, match="cannot drain node w1") as exc:
        build_plans(RESET, removal_ctx(tmp_path, replace(HEALTHY, pods=tuple(PODS)), worker=True))
    assert any("default/lonely" in d for d in exc.value.details)


def test_an_unreachable_host_is_removed_from_the_clusters_side(tmp_path):
    removal = replace(HEALTHY, unreachable=True, via="m2")
    plans = {p.phase: p for p in build_plans(RESET, removal_ctx(tmp_path, removal))}
    assert plans["drain"].steps == [] and plans["cleanup-node"].steps == []
    etcd = plans["remove-etcd-member"].steps
    assert len(etcd) == 1 and not etcd[0].ignore_failure  # nothing on the dead host; no data dir removed
    assert "https://127.0.0.1:2379" in etcd[0].argv[2] and "https://10.0.0.1:2380" in etcd[0].argv[2]
    assert [s.strategy for s in plans["delete-node"].steps] == ["delete"]
    assert "through m2" in plans["preflight"].notes[0]


def test_a_node_already_gone_has_nothing_to_drain_or_delete(tmp_path):
    plans = {p.phase: p for p in build_plans(RESET, removal_ctx(tmp_path, replace(HEALTHY, node_exists=False),
                                                                worker=True))}
    assert plans["drain"].steps == [] and plans["delete-node"].steps == []
    assert isinstance(ApiObject({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "x"}}), ApiObject)


class FakeApi:
    """Answers the drain's requests from a script, strictly: (method, path prefix) -> answers in order."""

    def __init__(self, pods, evictions, gets):
        self.pods, self.evictions, self.gets, self.calls = pods, evictions, gets, []

    def request(self, method, path, body=None, *, query=None, retry_429=True, **_):
        from tasks.api import ApiStatus

        self.calls.append((method, path))
        if method == "GET" and path == "/api/v1/pods":
            assert query == {"fieldSelector": "spec.nodeName=w1"}
            return {"items": self.pods}
        if method == "POST" and path.endswith("/eviction"):
            assert retry_429 is False and body["kind"] == "Eviction"
            answer = self.evictions.pop(0)
            if answer:
                raise ApiStatus(answer, "TooManyRequests", "Cannot evict pod as it would violate the pod's "
                                                           "disruption budget.")
            return {}
        raise AssertionError(f"unexpected request {method} {path}")

    def get(self, obj):
        self.calls.append(("GET", obj["metadata"]["name"]))
        return self.gets.pop(0)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_drain_retries_an_eviction_a_budget_refuses_then_waits_for_the_pod():
    from tasks.drain import drain

    clock = Clock()
    api = FakeApi([PODS[1], PODS[2]], evictions=[429, 429, 0], gets=[PODS[2], None])
    said = []
    result = drain(api, "w1", force=False, delete_emptydir_data=False, timeout=60, clock=clock, sleep=clock.sleep,
                   say=said.append)
    assert result.evicted == ["default/web-1"]
    assert [c for c in api.calls if c[0] == "POST"] == [("POST", "/api/v1/namespaces/default/pods/web-1/eviction")] * 3
    assert any("will retry" in s and "disruption budget" in s for s in said) and "pod default/web-1 evicted" in said
    assert not api.evictions and not api.gets


def test_drain_gives_up_at_its_timeout_naming_the_pod():
    from tasks.drain import drain

    clock = Clock()
    api = FakeApi([PODS[2]], evictions=[429] * 10, gets=[])
    with pytest.raises(KubefabError, match=r"timed out after 12s.*default/web-1.*disruption budget") as exc:
        drain(api, "w1", force=False, delete_emptydir_data=False, timeout=12, clock=clock, sleep=clock.sleep)
    assert "--timeout" in exc.value.fix and clock.t <= 12


def test_drain_refuses_pods_without_controller_before_evicting_any():
    from tasks.drain import drain

    api = FakeApi(list(PODS), evictions=[], gets=[])
    with pytest.raises(KubefabError, match="cannot drain node w1"):
        drain(api, "w1", force=False, delete_emptydir_data=False, timeout=0)
    assert [c[0] for c in api.calls] == ["GET"]


def test_the_api_of_a_removal_is_reached_through_the_control_plane_endpoint(tmp_path):
    admin = b"clusters:\n- cluster: {server: 'https://10.0.0.100:6443'}\n  name: kubernetes\n"
    assert replace(worker_ctx(tmp_path), cluster_kubeconfig=admin).api_via == ("10.0.0.100", 6443)
    assert replace(worker_ctx(tmp_path), cluster_kubeconfig=b"admin").api_via is None
