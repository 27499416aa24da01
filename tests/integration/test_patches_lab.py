"""`fab -H <host> init --patches DIR` on the lab's real components (issue 13, item 4).

The patched static Pods run as the real kube-apiserver and etcd, the real kubelet reads the
patched config.yaml, and a re-run with the same patches converges (0 changed).
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from tests.integration.test_init_lab import address, fab, host_sh, kget, make_inventory
from tests.lab.fixtures import fresh_lab, require_lab, test_lab_dir

pytestmark = pytest.mark.lab

PATCHES = {
    "kube-apiserver.yaml": "spec:\n  containers:\n  - name: kube-apiserver\n    env:\n    - name: GOGC\n"
                           "      value: \"50\"\n    resources:\n      requests:\n        cpu: 300m\n",
    "kube-apiserver1+json.yaml": "- op: add\n  path: /spec/containers/0/command/-\n  value: --max-requests-inflight=500\n",
    "etcd+json.json": '[{"op": "add", "path": "/metadata/labels/patched", "value": "by-json"}]\n',
    "kubeletconfiguration+merge.yaml": "maxPods: 42\n",
}


@pytest.fixture(scope="module")
def lab():
    require_lab()
    lab = fresh_lab(test_lab_dir("patches"))
    lab.up(1)
    yield lab
    lab.down()


@pytest.fixture(scope="module")
def patched(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("patches")
    for name, text in PATCHES.items():
        (tmp / "p").mkdir(exist_ok=True)
        (tmp / "p" / name).write_text(text)
    inv = make_inventory(lab, tmp, hosts={"node1": {"address": address(lab, "node1"), "roles": ["control-plane"]}})
    state = tmp / "state"
    args = ("-H", "node1", "init", "--patches", str(tmp / "p"), "--inventory", str(inv), "--state-dir", str(state))
    r = fab(lab, *args)
    assert r.returncode == 0, r.out + r.err
    return {"args": args, "admin": state / "nodes" / "node1" / "admin.conf", "result": r}


def mirror_pod(lab, admin, name: str, timeout: float = 90) -> dict:
    """The kubelet's mirror Pod of a static Pod (it appears a little after the Node registers)."""
    deadline = time.monotonic() + timeout
    while True:
        r = lab.sw(["kubectl", "--kubeconfig", str(admin), "-n", "kube-system", "get", "pod", name, "-o", "json"],
                   timeout=60)
        if r.returncode == 0:
            return json.loads(r.stdout)
        assert time.monotonic() < deadline, r.stderr.decode()
        time.sleep(2)


def test_the_real_components_run_the_patched_manifests(lab, patched):
    pod = mirror_pod(lab, patched["admin"], "kube-apiserver-node1")
    c = pod["spec"]["containers"][0]
    assert {"name": "GOGC", "value": "50"} in c["env"]
    assert c["resources"]["requests"]["cpu"] == "300m"
    assert c["command"][-1] == "--max-requests-inflight=500"
    etcd = mirror_pod(lab, patched["admin"], "etcd-node1")
    assert etcd["metadata"]["labels"]["patched"] == "by-json"
    assert 'Applied patch of type "application/json-patch+json" to target "etcd"' in patched["result"].out + \
        patched["result"].err


def test_the_kubelet_reads_the_patched_config(lab, patched):
    config = yaml.safe_load(host_sh(lab, "node1", "cat /var/lib/kubelet/config.yaml"))
    assert config["maxPods"] == 42
    node = kget(lab, patched["admin"], "node", "node1")
    assert node["status"]["capacity"]["pods"] == "42"


def test_a_rerun_with_the_same_patches_converges(lab, patched):
    r = fab(lab, *patched["args"])
    assert r.returncode == 0, r.out + r.err
    assert re.search(r": 0 changed, \d+ unchanged", r.err), r.err
