"""``fab upgrade.plan`` on a real v1.35 cluster, judged by the real ``kubeadm upgrade plan``.

One lab host runs Kubernetes v1.35.4 (the previous minor the lab builds), initialised by
kubefab; kubeadm v1.36.3 (installed as the kubeadm package would be) plans the upgrade to
v1.36.3 with ``-o yaml``, and kubefab's plan must list the same components, nodes, current and
target versions. Targets kubeadm refuses, kubefab refuses too.

The lab's v1.35 images carry the etcd and CoreDNS binaries kubeadm 1.36 pins (the lab builds
one of each), tagged as kubefab's 1.35 manifests name them.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration.test_init_lab import fab, make_inventory, address
from tests.integration.test_kubeadm_lab import install_kubeadm, kubeadm, ok, IGNORE
from tests.lab import images
from tests.lab.fixtures import fresh_lab, require_lab, test_lab_dir

pytestmark = [pytest.mark.lab, pytest.mark.kubeadm]

FROM, TO = images.KUBEADM_VERSIONS[35], images.KUBEADM_VERSIONS[36]  # the two releases the lab builds whole


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_lab()
    lab = fresh_lab(test_lab_dir("upgrade"))
    lab.up(1, k8s_version=FROM)
    tmp = tmp_path_factory.mktemp("upgrade")
    inv = make_inventory(lab, tmp, hosts={"node1": {"address": address(lab, "node1"), "roles": ["control-plane"]}})
    state = tmp / "state"
    r = fab(lab, "-H", "node1", "init", "--inventory", str(inv), "--state-dir", str(state))
    assert r.returncode == 0, r.out[-2000:] + r.err[-3000:]
    yield {"lab": lab, "flags": ["--inventory", str(inv), "--state-dir", str(state)]}
    lab.down()


def plan_rows(components) -> set[tuple[str, str, str, str]]:
    return {(c["name"], c.get("nodeName", ""), c["currentVersion"], c["newVersion"]) for c in components}


def test_plan_agrees_with_kubeadm(cluster):
    lab = cluster["lab"]
    r = fab(lab, "upgrade.plan", "--version", TO, "-o", "json", *cluster["flags"])
    assert r.returncode == 0, r.out + r.err
    ours = json.loads(r.out)
    install_kubeadm(lab, "node1")
    k = kubeadm(lab, "node1", "upgrade", "plan", TO, IGNORE, "-o", "yaml")
    theirs = yaml.safe_load(ok(k)[k.out.index("apiVersion:"):])
    [available] = theirs["availableUpgrades"]
    expected = {row for row in plan_rows(available["components"]) if row[0] != "kubeadm"}
    assert plan_rows(ours["components"]) == expected, (sorted(plan_rows(ours["components"])), sorted(expected))
    assert ("kube-apiserver", "node1", FROM, TO) in expected  # the comparison is about something
    assert {(c["group"], c["currentVersion"], c["manualUpgradeRequired"]) for c in ours["configVersions"]} == \
        {(c["group"], c["currentVersion"], c["manualUpgradeRequired"]) for c in theirs["configVersions"]}


def test_text_plan_reads_like_kubeadms(cluster):
    r = fab(cluster["lab"], "upgrade.plan", "--version", TO, *cluster["flags"])
    assert r.returncode == 0, r.out + r.err
    assert f"Cluster version: {FROM}" in r.out and "COMPONENT" in r.out and "kube-apiserver" in r.out
    assert "Traceback" not in r.err


@pytest.mark.parametrize("target,why", [("v1.37.2", "kubefab renders Kubernetes"), ("v1.33.13", "2 minors below")])
def test_targets_kubeadm_refuses_are_refused(cluster, target, why):
    r = fab(cluster["lab"], "upgrade.plan", "--version", target, *cluster["flags"])
    assert r.returncode == 1, r.out + r.err
    assert why in r.err and "fix:" in r.err and "Traceback" not in r.err
