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
    assert [p.phase for p in plans] == ["preflight", "remove-etcd-member", "cleanup-node"]
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
    plans = build_plans(RESET, worker_ctx(tmp_path))
    assert plans[1].steps == [] and "no local etcd" in plans[1].notes[0]


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
    ([], [], ["preflight", "remove-etcd-member", "cleanup-node"]),
    (["cleanup-node"], [], ["cleanup-node"]),
    ([], ["remove-etcd-member"], ["preflight", "cleanup-node"]),
])
def test_select(only, skip, expected):
    assert [s.path for s in RESET.select(only, skip)] == expected


def test_unknown_phase_and_help(tmp_path):
    with pytest.raises(ConfigError, match="invalid phase name"):
        RESET.select(["cleanup"])
    assert "remove-etcd-member" in RESET.help_text()
    assert '"kind": "remove"' in plans_to_json(build_plans(RESET, worker_ctx(tmp_path)))
