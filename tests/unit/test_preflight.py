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
