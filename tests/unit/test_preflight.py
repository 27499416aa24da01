"""Preflight checks as pure functions of facts (kubeadm's names, warnings vs errors, ignores)."""

from __future__ import annotations

import types

import pytest

from tasks.core.errors import PreflightError
from tasks.phases import preflight
from tasks.phases.preflight import Finding


# --- preflight's proxy warnings (kubeadm's HTTPProxy / HTTPProxyCIDR) ---------------------------------


def _proxy_ctx(env: dict[str, str]):
    return types.SimpleNamespace(proxy_env=env)


@pytest.mark.parametrize("host,no_proxy,covered", [
    ("10.0.0.5", "10.0.0.0/8", True),
    ("10.0.0.5", "192.168.0.0/16,.example.com", False),
    ("10.0.0.5", "*", True),
    ("cp.example.com", ".example.com", True),
    ("cp.example.com", "example.com", True),
    ("cp.example.org", "example.com", False),
    ("10.96.0.1", "10.96.0.0/12", True),
])
def test_no_proxy_matching(host, no_proxy, covered):
    assert preflight._no_proxy_covers(host, no_proxy) is covered


def test_proxy_warnings_name_what_is_proxied():
    found = preflight.proxy_checks(_proxy_ctx({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.96.0.0/12"}),
                                   ["10.0.0.5"], ["10.96.0.0/12", "10.244.0.0/16"])
    assert [(f.name, f.error) for f in found] == [("HTTPProxy", False), ("HTTPProxyCIDR", False)]
    assert "10.244.0.0/16" in found[1].message and "https://10.0.0.5" in found[0].message
    assert preflight.proxy_checks(_proxy_ctx({}), ["10.0.0.5"], ["10.96.0.0/12"]) == []



def _eval_ctx(ignore=frozenset(), node_ignores=()):
    return types.SimpleNamespace(
        host_name="m1", options=types.SimpleNamespace(ignore_preflight_errors=ignore),
        node_registration=types.SimpleNamespace(ignore_preflight_errors=node_ignores))


FINDINGS = [Finding("Port-6443", "Port 6443 is in use by pid 812 (etcd)", True),
            Finding("Swap", "swap is on", False),
            Finding("FileAvailable--etc-kubernetes-manifests-etcd.yaml", "exists", True)]


def test_every_error_is_reported_together_with_the_ignore_hint():
    with pytest.raises(PreflightError) as exc:
        preflight.evaluate(_eval_ctx(), FINDINGS)
    text = exc.value.render()
    assert "[ERROR Port-6443]" in text and "[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]" in text
    assert "--ignore-preflight-errors=Port-6443,FileAvailable--etc-kubernetes-manifests-etcd.yaml" in text
    assert "[preflight] m1:" in text


@pytest.mark.parametrize("ignore,node_ignores", [
    (frozenset({"port-6443", "fileavailable--etc-kubernetes-manifests-etcd.yaml"}), ()),
    (frozenset({"all"}), ()),
    (frozenset({"port-6443"}), ("FileAvailable--etc-kubernetes-manifests-etcd.yaml",)),
])
def test_ignored_errors_become_warnings(ignore, node_ignores):
    plan = preflight.evaluate(_eval_ctx(ignore, node_ignores), FINDINGS)
    assert "[WARNING Port-6443]: Port 6443 is in use by pid 812 (etcd)" in plan.notes
    assert any(n.startswith("[WARNING Swap]") for n in plan.notes)


def test_check_names_follow_kubeadm():
    assert preflight.check_name_for_path("FileAvailable", "/etc/kubernetes/manifests/kube-apiserver.yaml") == \
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml"
    assert preflight.check_name_for_path("DirAvailable", "/var/lib/etcd") == "DirAvailable--var-lib-etcd"


# --- cgroup v1 (kubeadm's SystemVerification since the kubelet refuses v1 from 1.35) -------------------


def _node_ctx(minor: int, *, cgroup_version, kubelet_version: str):
    facts = types.SimpleNamespace(uid=0, cri_sockets=None, binaries={"kubelet": "/usr/bin/kubelet"},
                                  kubelet_version=kubelet_version, cgroup_version=cgroup_version,
                                  paths={}, listening_ports={})
    return types.SimpleNamespace(
        facts=facts, host_name="w1", pki_dir="/etc/kubernetes/pki",
        node_registration=types.SimpleNamespace(cri_socket="unix:///run/containerd/containerd.sock",
                                                ignore_preflight_errors=()),
        version=types.SimpleNamespace(minor=minor, preflight_binaries=()),
        options=types.SimpleNamespace(ignore_preflight_errors=frozenset()))


@pytest.mark.parametrize("minor,kubelet,cgroup,expected", [
    (36, "Kubernetes v1.36.3", 1, True),    # error: this kubelet refuses v1
    (36, "Kubernetes v1.34.4", 1, False),   # an older kubelet still runs on v1: a warning
    (35, "", 1, True),                       # no kubelet yet: the cluster's version decides
    (34, "", 1, False),
    (36, "Kubernetes v1.36.3", 2, None),    # cgroup v2: nothing to say
    (36, "Kubernetes v1.36.3", None, None),  # no /sys/fs/cgroup visible: nothing to say
])
def test_cgroup_v1_is_system_verification(monkeypatch, minor, kubelet, cgroup, expected):
    monkeypatch.setattr(preflight, "same_cluster", lambda ctx: False)
    found = [f for f in preflight.node_checks(_node_ctx(minor, cgroup_version=cgroup, kubelet_version=kubelet),
                                              worker=True) if f.name == "SystemVerification"]
    assert [f.error for f in found] == ([] if expected is None else [expected])
    if found:
        assert "failCgroupV1: false" in found[0].message
        assert "--ignore-preflight-errors=SystemVerification" in found[0].message


def test_cgroup_v1_error_can_be_skipped_like_kubeadm(monkeypatch):
    monkeypatch.setattr(preflight, "same_cluster", lambda ctx: False)
    ctx = _node_ctx(36, cgroup_version=1, kubelet_version="Kubernetes v1.36.3")
    found = preflight.node_checks(ctx, worker=True)
    with pytest.raises(PreflightError, match="SystemVerification"):
        preflight.evaluate(ctx, found)
    ctx.options.ignore_preflight_errors = frozenset({"systemverification"})
    assert any(n.startswith("[WARNING SystemVerification]") for n in preflight.evaluate(ctx, found).notes)
