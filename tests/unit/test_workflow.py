"""kubeadm's phase-selection rules, as a table (runner_test.go's cases, in our words)."""

from __future__ import annotations

import pytest

from tasks.core.errors import ConfigError
from tasks.core.plan import Plan
from tasks.phases.workflow import Phase, Workflow


def leaf(name: str) -> Phase:
    return Phase(name, f"help for {name}", run=lambda ctx, n=name: Plan(n))


WF = Workflow("demo", (
    leaf("preflight"),
    Phase("certs", "certs", phases=(leaf("ca"), leaf("apiserver"), leaf("etcd-ca"))),
    Phase("addon", "addons", aliases=("addons",), phases=(leaf("coredns"), leaf("kube-proxy"))),
    leaf("show"),
))


@pytest.mark.parametrize("only,skip,expected", [
    ((), (), ["preflight", "certs/ca", "certs/apiserver", "certs/etcd-ca", "addon/coredns", "addon/kube-proxy", "show"]),
    (("certs",), (), ["certs/ca", "certs/apiserver", "certs/etcd-ca"]),
    (("certs/all",), (), ["certs/ca", "certs/apiserver", "certs/etcd-ca"]),
    (("certs/apiserver",), (), ["certs/apiserver"]),
    ((), ("certs",), ["preflight", "addon/coredns", "addon/kube-proxy", "show"]),
    (("certs",), ("certs/ca",), ["certs/apiserver", "certs/etcd-ca"]),   # skip beats only
    (("certs/ca",), ("certs",), []),                                        # parent skip covers child
    ((), ("addons/kube-proxy",), ["preflight", "certs/ca", "certs/apiserver", "certs/etcd-ca", "addon/coredns", "show"]),
    (("addons",), (), ["addon/coredns", "addon/kube-proxy"]),
    (("ADDON/CoreDNS",), (), ["addon/coredns"]),                           # case-insensitive
    (("preflight", "show"), (), ["preflight", "show"]),
])
def test_select(only, skip, expected):
    assert [s.path for s in WF.select(only, skip)] == expected


def test_prefix_is_not_a_match():
    # "cert" must not select "certs": kubeadm matches whole path segments
    with pytest.raises(ConfigError) as exc:
        WF.select(["cert"])
    assert "'cert'" in exc.value.problem


def test_unknown_names_are_all_reported_with_the_valid_ones():
    with pytest.raises(ConfigError) as exc:
        WF.select(["nope"], ["certs/nothing"])
    text = exc.value.render()
    assert "'nope'" in text and "'certs/nothing'" in text
    assert "certs/apiserver" in text and "addon/kube-proxy" in text


def test_help_lists_the_tree_in_order():
    text = WF.help_text()
    lines = text.splitlines()
    assert lines[0].startswith("The demo workflow executes the following phases")
    order = [ln.split()[0] for ln in lines[2:-1]]
    assert order == ["preflight", "certs", "/ca", "/apiserver", "/etcd-ca", "addon", "/coredns", "/kube-proxy", "show"]


def test_phase_needs_run_or_children():
    with pytest.raises(ValueError):
        Phase("broken", "neither")


def test_init_workflow_has_kubeadms_phases_in_order():
    from tasks.phases.init import INIT

    tops = [p.name for p in INIT.phases]
    assert tops == ["preflight", "certs", "kubeconfig", "etcd", "control-plane", "kubelet-start",
                    "wait-control-plane", "upload-config", "upload-certs", "mark-control-plane",
                    "bootstrap-token", "kubelet-finalize", "addon", "show-join-command"]
    paths = INIT.paths()
    for p in ["certs/ca", "certs/apiserver", "certs/apiserver-kubelet-client", "certs/front-proxy-ca",
              "certs/front-proxy-client", "certs/etcd-ca", "certs/etcd-server", "certs/etcd-peer",
              "certs/etcd-healthcheck-client", "certs/apiserver-etcd-client", "certs/sa",
              "kubeconfig/admin", "kubeconfig/super-admin", "kubeconfig/kubelet",
              "kubeconfig/controller-manager", "kubeconfig/scheduler", "etcd/local",
              "control-plane/apiserver", "control-plane/controller-manager", "control-plane/scheduler",
              "upload-config/kubeadm", "upload-config/kubelet", "kubelet-finalize/enable-client-cert-rotation",
              "addon/coredns", "addon/kube-proxy"]:
        assert p in paths, p
    assert [s.path for s in INIT.select(["addons/coredns"])] == ["addon/coredns"]

