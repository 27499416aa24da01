"""``fab upgrade.plan``: the pure planner (kubeadm's version policy and rows) and the API reader.

The lab test (tests/integration/test_upgrade_lab.py) compares the plan with the real
``kubeadm upgrade plan -o yaml`` on a running v1.35 cluster.
"""

from __future__ import annotations

import pytest

from tasks import upgrade
from tasks.core import versions
from tasks.core.errors import ConfigError


def cluster(version="v1.35.4", *, kubelets=None, etcd=True) -> upgrade.ClusterVersions:
    nodes = ["cp1", "cp2"]
    return upgrade.ClusterVersions(
        cluster_version=version,
        components={c: {version: list(nodes)} for c in upgrade.CONTROL_PLANE_COMPONENTS},
        kubelets=kubelets if kubelets is not None else {version: ["cp1", "cp2", "w1"]},
        etcd={"3.6.6-0": list(nodes)} if etcd else {},
        dns="v1.13.1",
        config_versions={"kubelet.config.k8s.io": "v1beta1", "kubeproxy.config.k8s.io": "v1alpha1"})


def rows(plan, name):
    return [(c.current_version, c.new_version, c.node_name) for c in plan.components if c.name == name]


def test_one_minor_up_lists_every_component_per_node():
    p = upgrade.compute(cluster(), "v1.36.3")
    assert not p.errors and not p.warnings
    assert rows(p, "kube-apiserver") == [("v1.35.4", "v1.36.3", "cp1"), ("v1.35.4", "v1.36.3", "cp2")]
    assert rows(p, "kubelet") == [("v1.35.4", "v1.36.3", n) for n in ("cp1", "cp2", "w1")]
    assert rows(p, "kube-proxy") == [("1.35.4", "v1.36.3", "")]  # as kubeadm prints it
    # etcd and CoreDNS go to the tags kubefab renders for the target minor
    assert rows(p, "etcd") == [("3.6.6-0", versions.TABLE[36].etcd_tag, "cp1"), ("3.6.6-0", "3.6.8-0", "cp2")]
    assert rows(p, "CoreDNS") == [("v1.13.1", versions.TABLE[36].coredns_tag, "")]
    assert all(not c["manualUpgradeRequired"] for c in p.config_versions)


def test_order_is_kubeadms():
    names = [c.name for c in upgrade.compute(cluster(), "v1.36.3").components]
    first = {n: names.index(n) for n in dict.fromkeys(names)}
    assert list(first) == ["kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
                           "CoreDNS", "etcd"]


def test_external_etcd_has_no_etcd_rows():
    assert rows(upgrade.compute(cluster(etcd=False), "v1.36.3"), "etcd") == []


@pytest.mark.parametrize("target,why", [
    ("v1.37.2", "2 minors above"),          # skips a minor (and kubefab renders no 1.37)
    ("v1.33.13", "2 minors below"),
])
def test_kubeadms_policy_refuses(target, why):
    p = upgrade.compute(cluster(), target)
    assert any(why in e for e in p.errors), p.errors


def test_a_minor_kubefab_does_not_render_is_refused():
    p = upgrade.compute(cluster("v1.36.3"), "v1.37.2")
    assert any("kubefab renders Kubernetes" in e and "upgrade kubefab first" in e for e in p.errors), p.errors


def test_patch_upgrade_and_one_minor_down_are_allowed():
    assert not upgrade.compute(cluster("v1.36.1"), "v1.36.3").errors
    assert not upgrade.compute(cluster("v1.36.3"), "v1.35.4").errors


def test_kubelets_more_than_three_minors_behind_are_a_warning():
    p = upgrade.compute(cluster("v1.35.4", kubelets={"v1.35.4": ["cp1"], "v1.32.9": ["old"]}), "v1.36.3")
    assert not p.errors
    assert p.warnings and "v1.32.9 (old)" in p.warnings[0]


def test_a_config_of_another_version_needs_a_manual_upgrade():
    c = cluster()
    c.config_versions["kubeproxy.config.k8s.io"] = "v1alpha2"
    p = upgrade.compute(c, "v1.36.3")
    assert [x["group"] for x in p.config_versions if x["manualUpgradeRequired"]] == ["kubeproxy.config.k8s.io"]


@pytest.mark.parametrize("bad", ["", "1.36", "v1.36", "latest", "v1.36.3-rc.0", "v1.36.x"])
def test_a_target_that_is_no_release_is_a_clean_error(bad):
    with pytest.raises(ConfigError) as err:
        upgrade.parse_target(bad)
    assert "--version" in err.value.render() and "fix:" in err.value.render()


def test_text_and_data_forms():
    p = upgrade.compute(cluster(), "v1.36.3")
    text = upgrade.render_text(p)
    assert "COMPONENT" in text and "kube-apiserver" in text and "Kubelets, to upgrade" in text
    data = p.to_data()
    assert data["kind"] == "UpgradePlan" and data["target"] == "v1.36.3"
    assert {"name": "kube-proxy", "currentVersion": "1.35.4", "newVersion": "v1.36.3"} in data["components"]


class FakeApi:
    """Only the calls read_cluster makes; anything else fails."""

    def __init__(self, objects):
        self.objects = objects

    def request(self, method, path, query=None):
        assert method == "GET"
        key = (path, tuple(sorted((query or {}).items())))
        assert key in self.objects, f"unexpected request {key}"
        return self.objects[key]

    def get(self, obj):
        return self.objects.get((obj["kind"], obj["metadata"]["name"]))


def pod(component, node, image):
    return {"metadata": {"labels": {"component": component, "tier": "control-plane"}},
            "spec": {"nodeName": node, "containers": [{"image": image}]}}


def test_read_cluster_takes_versions_from_images_nodes_and_configmaps():
    api = FakeApi({
        ("/version", ()): {"gitVersion": "v1.35.4"},
        ("/api/v1/namespaces/kube-system/pods", (("labelSelector", "tier=control-plane"),)): {"items": [
            pod("kube-apiserver", "cp1", "registry.k8s.io/kube-apiserver:v1.35.4"),
            pod("kube-controller-manager", "cp1", "registry.example.com:5000/k8s/kube-controller-manager:v1.35.4"),
            pod("kube-scheduler", "cp1", "registry.k8s.io/kube-scheduler:v1.35.4"),
            pod("etcd", "cp1", "registry.k8s.io/etcd:3.6.6-0")]},
        ("/api/v1/nodes", ()): {"items": [
            {"metadata": {"name": "cp1"}, "status": {"nodeInfo": {"kubeletVersion": "v1.35.4"}}},
            {"metadata": {"name": "w1"}, "status": {"nodeInfo": {"kubeletVersion": "v1.34.4"}}}]},
        ("Deployment", "coredns"): {"spec": {"template": {"spec": {"containers": [
            {"image": "registry.k8s.io/coredns/coredns:v1.13.1"}]}}}},
        ("ConfigMap", "kube-proxy"): {"data": {"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"}},
        ("ConfigMap", "kubelet-config"): {"data": {"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\n"}},
    })
    c = upgrade.read_cluster(api)
    assert c.cluster_version == "v1.35.4"
    assert c.components["kube-controller-manager"] == {"v1.35.4": ["cp1"]}  # a registry port is no tag
    assert c.kubelets == {"v1.35.4": ["cp1"], "v1.34.4": ["w1"]}
    assert c.etcd == {"3.6.6-0": ["cp1"]} and c.dns == "v1.13.1"
    assert c.config_versions == {"kubeproxy.config.k8s.io": "v1alpha1", "kubelet.config.k8s.io": "v1beta1"}
