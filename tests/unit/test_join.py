"""Offline plan tests of the join and join-control-plane workflows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tasks.core import pki
from tasks.core.errors import ConfigError, KubefabError, PKIError
from tasks.core.plan import Command, FileRemove, FileWrite, Wait, plans_to_json
from tasks.core.secrets import Secret
from tasks.core.spec import (APIEndpoint, ClusterConfiguration, Discovery, JoinConfiguration, JoinControlPlane,
                             KubeadmConfig, NodeRegistration, Taint)
from tasks.core.state import ClusterState
from tasks.phases.context import RunContext
from tasks.phases.join import JOIN, JOIN_CONTROL_PLANE, join_data
from tasks.phases.joindata import EtcdMember, JoinData
from tasks.runner import build_plans

TOKEN = "abcdef.0123456789abcdef"
CP_SKIP = ("control-plane-join/mark-control-plane", "wait-control-plane")  # need tasks.core.config (apiphases)


def cluster(version="v1.36.0", cpe="lb.example:6443"):
    return ClusterConfiguration(kubernetes_version=version, control_plane_endpoint=cpe, cluster_name="prod",
                                encryption_algorithm="ECDSA-P256")


def worker_config(version="v1.36.0", taints=None):
    node = NodeRegistration(name="w1", taints=taints)
    join = JoinConfiguration(node_registration=node, discovery=Discovery(token=Secret(TOKEN),
                                                                         api_server_endpoint="10.0.0.1:6443"))
    return KubeadmConfig(cluster=cluster(version), join=join)


def cp_config(version="v1.36.0", cpe="lb.example:6443"):
    node = NodeRegistration(name="m2")
    join = JoinConfiguration(node_registration=node,
                             control_plane=JoinControlPlane(APIEndpoint("10.0.0.2")))
    return KubeadmConfig(cluster=cluster(version, cpe), join=join)


@pytest.fixture(scope="module")
def operator_pki(tmp_path_factory, key_cache):
    """A state dir holding the cluster's PKI (as after fab init)."""
    from datetime import datetime, timezone

    root = tmp_path_factory.mktemp("state")
    state = ClusterState(root).ensure()
    shared = pki.ensure_cluster_pki(state.pki_dir, cluster(), now=datetime.now(timezone.utc), keygen=key_cache)
    return state, shared


def members():
    return (EtcdMember(1, "m1", ("https://10.0.0.1:2380",), ("https://10.0.0.1:2379",)),)


def jd_for(ca_pem, **kw):
    base = dict(server="https://lb.example:6443", ca_pem=ca_pem, tls_bootstrap_token=Secret(TOKEN),
                cluster_name="prod", cluster_configuration="controlPlaneEndpoint: lb.example:6443\n",
                kubelet_config=b"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
                               b"staticPodPath: /etc/kubernetes/manifests\n",
                etcd_members=members(), etcd_endpoints=("https://10.0.0.1:2379",))
    base.update(kw)
    return JoinData(**base)


def steps(plans, kind=None):
    out = [s for p in plans for s in p.steps]
    return [s for s in out if kind is None or isinstance(s, kind)]


def by_path(plans):
    return {s.path: s for s in steps(plans, FileWrite)}


# --- worker ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1.33.0", "v1.36.0"])
def test_worker_join_plan(tmp_path, operator_pki, version):
    state, shared = operator_pki
    ctx = RunContext(worker_config(version), "w1", ClusterState(tmp_path / "empty"),
                     join_data=jd_for(shared.ca_cert_pem))
    plans = build_plans(JOIN, ctx)
    files = by_path(plans)
    assert files["/etc/kubernetes/pki/ca.crt"].mode == 0o644
    assert files["/etc/kubernetes/pki/ca.crt"].data() == shared.ca_cert_pem
    boot = files["/etc/kubernetes/bootstrap-kubelet.conf"]
    assert boot.mode == 0o600 and boot.secret
    text = boot.data().decode()
    assert TOKEN in text and "server: https://lb.example:6443" in text and "name: prod" in text
    config = files["/var/lib/kubelet/config.yaml"].data().decode()
    assert "staticPodPath: /etc/kubernetes/manifests" in config
    assert ("containerRuntimeEndpoint" in config) == (version == "v1.36.0")  # 1.34+ instance-config patch
    # no control-plane files on a worker
    assert not [p for p in files if p.endswith((".key", "admin.conf")) or "manifests/" in p]
    waits = steps(plans, Wait)
    assert [w.check for w in waits] == ["kubelet-healthz", "kubelet-tls-bootstrap"]
    assert waits[1].target == "/etc/kubernetes/kubelet.conf"
    removes = steps(plans, FileRemove)
    assert [r.path for r in removes] == ["/etc/kubernetes/bootstrap-kubelet.conf"]
    skipped = [p.phase for p in plans if any("skipped" in n for n in p.notes)]
    assert "control-plane-prepare/certs" in skipped and "control-plane-join/etcd" in skipped
    dumped = plans_to_json(plans)
    assert "0123456789abcdef" not in dumped


def test_worker_taints_go_to_kubelet_flags(tmp_path, operator_pki):
    _, shared = operator_pki
    cfg = worker_config(taints=(Taint("dedicated", "NoSchedule", "gpu"),))
    ctx = RunContext(cfg, "w1", ClusterState(tmp_path), join_data=jd_for(shared.ca_cert_pem))
    env = by_path(build_plans(JOIN, ctx, only=["kubelet-start"]))["/var/lib/kubelet/kubeadm-flags.env"]
    assert "--register-with-taints=dedicated=gpu:NoSchedule" in env.data().decode()


def test_worker_join_from_state_dir(operator_pki):
    state, shared = operator_pki
    state.remember(token=Secret(TOKEN))
    cfg = worker_config()
    cfg = replace(cfg, join=replace(cfg.join, discovery=Discovery()))
    ctx = RunContext(cfg, "w1", state)
    jd = join_data(ctx)
    assert jd.source == "state" and jd.ca_pem == shared.ca_cert_pem and jd.tls_bootstrap_token.reveal() == TOKEN
    files = by_path(build_plans(JOIN, ctx))
    assert "/etc/kubernetes/bootstrap-kubelet.conf" in files


def test_join_without_material_is_clear(tmp_path):
    ctx = RunContext(worker_config(), "w1", ClusterState(tmp_path))
    with pytest.raises(KubefabError, match="nothing is known") as exc:
        build_plans(JOIN, ctx)
    assert exc.value.host == "w1" and exc.value.phase == "kubelet-start" and "--token" in exc.value.fix


def test_join_preflight_with_facts(tmp_path, operator_pki):
    from types import SimpleNamespace

    _, shared = operator_pki
    facts = SimpleNamespace(uid=0, cri_sockets=["/var/run/containerd/containerd.sock"], binaries={
        "mount": True, "nsenter": True, "touch": True, "cp": True, "kubelet": True}, kubelet_version="v1.36.0",
        listening_ports={}, ip_forward="1", paths={"/etc/kubernetes/kubelet.conf": {"exists": True},
                                                   "/etc/kubernetes/pki/ca.crt": {"exists": True, "sha256": "00"}})
    ctx = RunContext(worker_config(), "w1", ClusterState(tmp_path), facts=facts, join_data=jd_for(shared.ca_cert_pem))
    with pytest.raises(KubefabError) as exc:
        build_plans(JOIN, ctx, only=["preflight"])
    text = "\n".join(exc.value.details)
    assert "FileAvailable--etc-kubernetes-kubelet.conf" in text
    assert "FileAvailable--etc-kubernetes-pki-ca.crt" in text  # worker only


# --- control plane --------------------------------------------------------------------------------
def test_control_plane_join_plan(operator_pki):
    state, shared = operator_pki
    ctx = RunContext(cp_config(), "m2", state, join_data=jd_for(shared.ca_cert_pem))
    plans = build_plans(JOIN_CONTROL_PLANE, ctx, skip=CP_SKIP)
    files = by_path(plans)
    pki_dir = "/etc/kubernetes/pki/"
    # downloaded/shared files with kubeadm's download modes (sa.pub 0644 on joined nodes)
    assert files[pki_dir + "sa.pub"].mode == 0o644
    assert files[pki_dir + "ca.key"].mode == 0o600 and files[pki_dir + "ca.key"].secret
    assert files[pki_dir + "ca.crt"].data() == shared.ca_cert_pem
    # this node's leaves
    for leaf in ("apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd/server", "etcd/peer",
                 "etcd/healthcheck-client", "apiserver-etcd-client"):
        assert files[pki_dir + leaf + ".crt"].mode == 0o644
        assert files[pki_dir + leaf + ".key"].mode == 0o600
    # three kubeconfigs only
    confs = sorted(p for p in files if p.startswith("/etc/kubernetes/") and p.endswith(".conf"))
    assert confs == ["/etc/kubernetes/admin.conf", "/etc/kubernetes/bootstrap-kubelet.conf",
                     "/etc/kubernetes/controller-manager.conf", "/etc/kubernetes/scheduler.conf"]
    # ControlPlaneKubeletLocalMode: the kubelet bootstraps against the local API server
    assert "server: https://10.0.0.2:6443" in files["/etc/kubernetes/bootstrap-kubelet.conf"].data().decode()
    for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        assert files[f"/etc/kubernetes/manifests/{c}.yaml"].mode == 0o600
    etcd = files["/etc/kubernetes/manifests/etcd.yaml"].data().decode()
    assert "--initial-cluster-state=existing" in etcd
    assert "--initial-cluster=m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380" in etcd
    # no ca.crt write in kubelet-start on a control plane (download-certs did it)
    assert [s.path for s in steps(plans, FileWrite)].count(pki_dir + "ca.crt") == 1
    # order: check-etcd, member add, manifest, health, promote, TLS bootstrap
    etcd_plan = next(p for p in plans if p.phase == "control-plane-join/etcd")
    kinds = [type(s).__name__ for s in etcd_plan.steps]
    assert kinds == ["Command", "Command", "FileWrite", "Wait", "Command"]
    add, promote = etcd_plan.steps[1], etcd_plan.steps[4]
    assert "member add m2 --peer-urls=https://10.0.0.2:2380 --learner" in add.argv[2]
    assert "--endpoints=https://10.0.0.1:2379" in add.argv[2]
    assert "etcd/healthcheck-client.crt" in add.argv[2]
    assert "member promote" in promote.argv[2] and "https://10.0.0.2:2379" in promote.argv[2]
    check = next(p for p in plans if p.phase == "check-etcd").steps[0]
    assert isinstance(check, Command) and "member list" in check.argv[2] and "endpoint health" in check.argv[2]
    wait_boot = next(p for p in plans if p.phase == "control-plane-join/kubelet-wait-bootstrap")
    assert [type(s).__name__ for s in wait_boot.steps] == ["Wait", "FileRemove"]
    dumped = plans_to_json(plans)
    assert "0123456789abcdef" not in dumped and "PRIVATE KEY" not in dumped


def test_control_plane_join_mark_and_wait(operator_pki):
    state, shared = operator_pki
    ctx = RunContext(cp_config(), "m2", state, join_data=jd_for(shared.ca_cert_pem))
    plans = build_plans(JOIN_CONTROL_PLANE, ctx, only=["control-plane-join/mark-control-plane",
                                                         "wait-control-plane"])
    node = plans[0].steps[0].obj
    assert node["metadata"]["name"] == "m2"
    assert node["spec"]["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert [w.check for w in plans[1].steps][0] == "kubelet-healthz"


def test_control_plane_join_from_kubeadm_certs(tmp_path, operator_pki):
    _, shared = operator_pki
    state = ClusterState(tmp_path / "fresh")  # the operator holds no PKI
    ctx = RunContext(cp_config(), "m2", state, join_data=jd_for(shared.ca_cert_pem, shared_certs=shared.shared_files()))
    plans = build_plans(JOIN_CONTROL_PLANE, ctx, skip=CP_SKIP)
    files = by_path(plans)
    assert files["/etc/kubernetes/pki/ca.key"].data() == shared.ca.key_pem
    leaf = pki.parse_certs(files["/etc/kubernetes/pki/apiserver.crt"].data())[0]
    assert pki.signed_by(leaf, shared.ca.cert)
    assert not (state.pki_dir / "ca.crt").exists()  # never a new CA in the state dir on a join


def test_control_plane_join_without_pki_fails_clearly(tmp_path, operator_pki):
    _, shared = operator_pki
    ctx = RunContext(cp_config(), "m2", ClusterState(tmp_path), join_data=jd_for(shared.ca_cert_pem))
    with pytest.raises(PKIError) as exc:
        build_plans(JOIN_CONTROL_PLANE, ctx, skip=CP_SKIP)
    assert exc.value.host == "m2" and "--certificate-key" in exc.value.fix
    assert not (tmp_path / "pki" / "ca.crt").exists()


def test_control_plane_join_needs_stable_endpoint(operator_pki):
    state, shared = operator_pki
    ctx = RunContext(cp_config(cpe=""), "m2", state,
                     join_data=jd_for(shared.ca_cert_pem, cluster_configuration="clusterName: prod\n"))
    with pytest.raises(ConfigError, match="controlPlaneEndpoint") as exc:
        build_plans(JOIN_CONTROL_PLANE, ctx)
    assert exc.value.phase == "preflight" and exc.value.fix


def test_control_plane_join_needs_etcd_members(operator_pki):
    state, shared = operator_pki
    ctx = RunContext(cp_config(), "m2", state, join_data=jd_for(shared.ca_cert_pem, etcd_members=None))
    with pytest.raises(KubefabError, match="etcd members are unknown"):
        build_plans(JOIN_CONTROL_PLANE, ctx, only=["control-plane-join/etcd"])


def test_state_ca_must_match_discovered_ca(operator_pki, key_cache):
    from datetime import datetime, timezone

    state, _ = operator_pki
    other = pki.build_ca("kubernetes", algorithm="ECDSA-P256", now=datetime.now(timezone.utc),
                         validity=pki.K.DEFAULT_CA_CERT_VALIDITY, keygen=key_cache)
    ctx = RunContext(cp_config(), "m2", state, join_data=jd_for(other.cert_pem))
    with pytest.raises(PKIError, match="not the CA"):
        build_plans(JOIN_CONTROL_PLANE, ctx, only=["control-plane-prepare/download-certs"])


# --- the table ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("only,skip,expected", [
    (["control-plane-prepare"], [], ["control-plane-prepare/download-certs", "control-plane-prepare/certs",
                                     "control-plane-prepare/kubeconfig", "control-plane-prepare/control-plane"]),
    (["control-plane-prepare/all"], ["control-plane-prepare/certs"],
     ["control-plane-prepare/download-certs", "control-plane-prepare/kubeconfig",
      "control-plane-prepare/control-plane"]),
    (["control-plane-join"], [], ["control-plane-join/etcd", "control-plane-join/kubelet-wait-bootstrap",
                                  "control-plane-join/mark-control-plane"]),
    ([], ["preflight", "control-plane-prepare", "control-plane-join", "check-etcd", "wait-control-plane"],
     ["kubelet-start"]),
])
def test_select(only, skip, expected):
    assert [s.path for s in JOIN.select(only, skip)] == expected


def test_unknown_phase_and_help():
    with pytest.raises(ConfigError, match="invalid phase name"):
        JOIN.select(["certs"])
    text = JOIN_CONTROL_PLANE.help_text()
    for name in ("preflight", "control-plane-prepare", "/download-certs", "kubelet-start", "control-plane-join",
                 "/etcd", "/mark-control-plane"):
        assert name in text
    assert "check-etcd" not in text  # hidden, as in kubeadm


def test_wait_file_script(tmp_path):
    import subprocess

    from tasks.phases.join import wait_file_script

    target = tmp_path / "kubelet.conf"
    res = subprocess.run(["sh", "-c", wait_file_script(str(target), 0)], capture_output=True, text=True)
    assert res.returncode == 1 and "not written" in res.stdout
    target.write_text("apiVersion: v1\n")
    res = subprocess.run(["sh", "-c", wait_file_script(str(target), 5)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok"


# --- --patches ---------------------------------------------------------------------------------------
def _patch_dir(root):
    root.mkdir()
    (root / "kubeletconfiguration+merge.yaml").write_text("maxPods: 42\ncontainerRuntimeEndpoint: ignored\n")
    (root / "etcd+json.yaml").write_text("- op: add\n  path: /metadata/labels/joined\n  value: 'yes'\n")
    (root / "kube-scheduler.yaml").write_text("spec:\n  containers:\n  - name: kube-scheduler\n    env:\n"
                                              "    - name: X\n      value: '1'\n")
    return str(root)


def test_worker_join_patches_the_kubelet_config_before_the_instance_config(tmp_path, operator_pki):
    from tasks.phases.context import Options

    _, shared = operator_pki
    ctx = RunContext(worker_config(), "w1", ClusterState(tmp_path / "empty"), join_data=jd_for(shared.ca_cert_pem),
                     options=Options(patches=_patch_dir(tmp_path / "p")))
    plans = build_plans(JOIN, ctx)
    config = by_path(plans)["/var/lib/kubelet/config.yaml"].data().decode()
    assert "maxPods: 42" in config
    # the instance configuration (the node's CRI socket) comes after the user's patches, as in kubeadm
    assert "containerRuntimeEndpoint: unix:///var/run/containerd/containerd.sock" in config
    start = next(p for p in plans if p.phase == "kubelet-start")
    assert any("to target \"kubeletconfiguration\"" in n for n in start.notes)


def test_control_plane_join_patches_its_static_pods_from_the_config(tmp_path, operator_pki):
    state, shared = operator_pki
    cfg = cp_config()
    cfg = replace(cfg, join=replace(cfg.join, patches_directory=_patch_dir(tmp_path / "p")))
    ctx = RunContext(cfg, "m2", state, join_data=jd_for(shared.ca_cert_pem))
    plans = build_plans(JOIN_CONTROL_PLANE, ctx, skip=CP_SKIP)
    files = by_path(plans)
    import yaml

    etcd = yaml.safe_load(files["/etc/kubernetes/manifests/etcd.yaml"].data())
    assert etcd["metadata"]["labels"]["joined"] == "yes"
    assert "name: X" in files["/etc/kubernetes/manifests/kube-scheduler.yaml"].data().decode()
    assert "name: X" not in files["/etc/kubernetes/manifests/kube-apiserver.yaml"].data().decode()
