"""Day 2 on the lab's real components: removing nodes with `fab reset` and renewing certificates
(issue 13, items 1 and 2).

On the HA cluster of ``test_cluster_lab`` (node1-3 control planes, node4-6 workers, the haproxy
load balancer in front of the control planes), which runs just before this module and leaves the
cluster whole: one lab and one cluster-up for both. The tests run in order and leave the cluster
whole for the next one. Needs root (the lab).
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from tests.integration.test_cluster_lab import (BUSYBOX, cluster, etcd_members, lab,  # noqa: F401 - fixtures
                                                operator_home, ready_nodes, release_ha, wait_until)
from tests.integration.test_init_lab import fab, kget, no_secrets

pytestmark = pytest.mark.lab

LAB_ORDER = 61  # right after test_cluster_lab, on its cluster (tests/conftest.py)
RELEASE_AFTER = release_ha
CONTROL_PLANES = ("node1", "node2", "node3")
WORKERS = ("node4", "node5")  # the workers these tests use (node6 is a worker too)


def k(lab, cluster, *args: str, stdin: bytes | None = None, check: bool = True):
    r = lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), *args], input=stdin, timeout=60)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


def node_names(lab, cluster) -> set[str]:
    return {n["metadata"]["name"] for n in kget(lab, cluster["admin"], "nodes")["items"]}


def apply(lab, cluster, *objs: dict) -> None:
    k(lab, cluster, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
      .encode())


def pods_on(lab, cluster, node: str) -> list[dict]:
    return kget(lab, cluster["admin"], "pods", "-A", "--field-selector", f"spec.nodeName={node}")["items"]


def deployment(name: str, node: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           # not the unschedulable taint: a cordoned node gets no new pod
                                           "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                                            "operator": "Exists"}],
                                           "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                                               {"weight": 100, "preference": {"matchExpressions": [
                                                   {"key": "kubernetes.io/hostname", "operator": "In",
                                                    "values": [node]}]}}]}},
                                           "containers": [{"name": "main", "image": BUSYBOX,
                                                           "imagePullPolicy": "Never",
                                                           "command": ["sleep", "3600"]}]}}}}


def bare_pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                                     "command": ["sleep", "3600"]}]}}


def running_on(lab, cluster, node: str, prefix: str) -> bool:
    return any(p["metadata"]["name"].startswith(prefix) and p["status"].get("phase") == "Running"
               for p in pods_on(lab, cluster, node))


def test_dry_run_lists_the_drain_and_changes_nothing(lab, cluster):
    r = fab(lab, "-H", "node4", "reset", "--dry-run", *cluster["common"])
    assert r.returncode == 0, r.err[-3000:]
    assert "[node4] [drain]" in r.out and "cordon Node node4" in r.out and "delete Node node4" in r.out
    assert re.search(r"skip kube-system/kube-proxy-\w+: managed by DaemonSet kube-proxy", r.out), r.out
    node = kget(lab, cluster["admin"], "node", "node4")
    assert not node["spec"].get("unschedulable")
    assert lab.exec("node4", ["test", "-s", "/etc/kubernetes/kubelet.conf"]).returncode == 0
    no_secrets(r.out + r.err)


def test_a_pod_without_controller_is_refused_before_anything_is_done(lab, cluster):
    apply(lab, cluster, bare_pod("lonely", "node5"))
    wait_until(lambda: running_on(lab, cluster, "node5", "lonely"), "pod lonely Running on node5")
    r = fab(lab, "-H", "node5", "reset", *cluster["common"], stdin=b"y\n")
    assert r.returncode == 1
    assert "default/lonely" in r.err and "--force" in r.err and "Traceback" not in r.err
    assert not kget(lab, cluster["admin"], "node", "node5")["spec"].get("unschedulable")  # not even cordoned
    assert lab.exec("node5", ["test", "-s", "/etc/kubernetes/kubelet.conf"]).returncode == 0
    k(lab, cluster, "delete", "pod", "lonely", "--wait=false")


def test_remove_a_worker_respecting_a_pod_disruption_budget_then_rejoin(lab, cluster):
    apply(lab, cluster, deployment("web", "node5"),
          {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    wait_until(lambda: running_on(lab, cluster, "node5", "web-"), "web Running on node5")
    # the budget allows no disruption: the drain gives up after --timeout, the host is untouched
    t0 = time.monotonic()
    r = fab(lab, "-H", "node5", "reset", "--force", "--timeout", "8s", *cluster["common"])
    assert r.returncode == 1 and time.monotonic() - t0 < 120
    assert "timed out" in r.err and "default/web-" in r.err, r.err[-3000:]
    assert lab.exec("node5", ["test", "-s", "/etc/kubernetes/kubelet.conf"]).returncode == 0
    assert "node5" in node_names(lab, cluster)
    # with room for a second replica the budget allows the eviction
    k(lab, cluster, "scale", "deployment", "web", "--replicas", "2")
    wait_until(lambda: len([p for p in kget(lab, cluster["admin"], "pods", "-l", "app=web")["items"]
                            if p["status"].get("phase") == "Running"]) == 2, "2 web replicas Running")
    t0 = time.monotonic()
    r = fab(lab, "-H", "node5", "reset", "--force", "--timeout", "2m", *cluster["common"])
    took = time.monotonic() - t0
    assert r.returncode == 0, r.err[-4000:]
    assert re.search(r"\[node5\] \[drain\] evicting pod default/web-", r.err), r.err[-3000:]
    assert "node5" not in node_names(lab, cluster)
    assert lab.exec("node5", ["test", "-e", "/etc/kubernetes/kubelet.conf"]).returncode != 0
    assert not [p for p in kget(lab, cluster["admin"], "pods", "-A")["items"]
                if p["spec"].get("nodeName") == "node5" and p["metadata"]["namespace"] == "default"]
    print(f"remove worker: {took:.1f}s")
    # right after, the same host joins again
    r = fab(lab, "-H", "node5", "join", *cluster["common"])
    assert r.returncode == 0, r.err[-3000:]
    wait_until(lambda: "node5" in ready_nodes(lab, cluster["admin"]), "node5 Ready again", timeout=120)
    k(lab, cluster, "delete", "deployment,pdb", "web")


def test_remove_the_first_control_plane_then_cluster_up_joins_it_back_and_converges(lab, cluster):
    """node1 is the control plane init made. Removed, it is not initialised again by cluster-up
    (a second, one-member etcd behind the same endpoint): it joins as the others did, and the
    next cluster-up leaves it alone."""
    t0 = time.monotonic()
    r = fab(lab, "-H", "node1", "reset", "--force", *cluster["common"])
    took = time.monotonic() - t0
    assert r.returncode == 0, r.err[-4000:]
    assert sorted(m["name"] for m in etcd_members(lab, "node2")) == ["node2", "node3"]
    assert "node1" not in node_names(lab, cluster)
    print(f"remove control plane: {took:.1f}s")
    r = fab(lab, "cluster-up", *cluster["common"], timeout=600)
    assert r.returncode == 0, r.err[-4000:]
    assert "[node1] not a Node of the existing cluster" in r.err and "init on node1" not in r.err, r.err[-3000:]
    members = etcd_members(lab, "node2")
    assert sorted(m["name"] for m in members) == list(CONTROL_PLANES) and not any(m.get("isLearner") for m in members)
    assert len({m["ID"] for m in etcd_members(lab, "node1")}) == 3  # node1's etcd is of the same cluster
    r = fab(lab, "cluster-up", *cluster["common"], timeout=600)
    assert r.returncode == 0, r.err[-4000:]
    rows = re.findall(r"^(node\d)\s+\S+(?: \(init\))?\s+\d+\s+(\d+)\s+\S+\s+ok$", r.err, re.M)
    assert len(rows) == len(cluster["hosts"]) and all(changed == "0" for _, changed in rows), r.err[-3000:]
    assert "init on node1" not in r.err


# --- certs.renew (issue 13, item 2) -----------------------------------------------------------------------
def host_cert(lab, host: str, path: str):
    from cryptography import x509

    r = lab.exec(host, ["cat", path])
    assert r.returncode == 0, r.stderr.decode()
    return x509.load_pem_x509_certificate(r.stdout)


def served_cert(lab, address: str, port: int = 6443):
    from cryptography import x509

    r = lab.sw(["python3", "-c", f"import ssl; print(ssl.get_server_certificate(({address!r}, {port})))"])
    assert r.returncode == 0, r.stderr.decode()
    return x509.load_pem_x509_certificate(r.stdout)


class Reader(threading.Thread):
    """Reads through the load balancer in a loop (a fresh kubectl each time) and counts failures."""

    def __init__(self, lab, admin):
        super().__init__(daemon=True)
        self.lab, self.admin, self.stop, self.ok, self.failed = lab, admin, threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            r = self.lab.sw(["kubectl", "--kubeconfig", str(self.admin), "--request-timeout", "20s", "get", "--raw",
                             "/api/v1/namespaces/kube-system/configmaps/kubeadm-config"], timeout=60)
            if r.returncode == 0:
                self.ok += 1
            else:
                self.failed.append(r.stderr.decode()[-300:])


def test_certs_renew_dry_run_changes_nothing(lab, cluster):
    from tests.unit.test_offline_init import tree_digest

    wait_until(lambda: set(CONTROL_PLANES + WORKERS) <= ready_nodes(lab, cluster["admin"]), "every node Ready")
    before = tree_digest(cluster["state"])
    on_host = lab.exec("node1", ["sha256sum", "/etc/kubernetes/pki/apiserver.crt"]).stdout
    r = fab(lab, "certs.renew", "all", "--dry-run", *cluster["common"])
    assert r.returncode == 0, r.err[-3000:]
    assert "[node2] [restart]" in r.out and "update: write /etc/kubernetes/pki/apiserver.crt" in r.out
    assert tree_digest(cluster["state"]) == before
    assert lab.exec("node1", ["sha256sum", "/etc/kubernetes/pki/apiserver.crt"]).stdout == on_host
    no_secrets(r.out + r.err)


def test_certs_renew_all_keeps_the_api_available_through_the_load_balancer(lab, cluster):
    before = {cp: host_cert(lab, cp, "/etc/kubernetes/pki/apiserver.crt") for cp in CONTROL_PLANES}
    time.sleep(1)  # a new NotBefore, to the second
    reader = Reader(lab, cluster["admin"])
    reader.start()
    t0 = time.monotonic()
    try:
        r = fab(lab, "certs.renew", "all", *cluster["common"], timeout=900)
    finally:
        reader.stop.set()
        reader.join(90)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.err[-5000:]
    print(f"certs.renew all: {took:.1f}s, {reader.ok} reads through the load balancer, {len(reader.failed)} failed")
    # kubeadm's API server manifest sets no --shutdown-delay-duration: a request the load balancer
    # already handed to an API server that has just begun to stop is answered 503 ("apiserver is
    # shutting down"), and the load balancer cannot retry it. Once in a while one of ~1500 is.
    assert reader.ok >= 10 and len(reader.failed) <= 2, reader.failed[:3]
    assert all("shutting down" in f or "connection refused" in f or "EOF" in f for f in reader.failed), \
        reader.failed[:3]
    # one control plane at a time, each healthy before the next
    err = r.err
    assert err.index("node1: renewed") < err.index("Connecting to node2") < err.index("node2: renewed") \
        < err.index("Connecting to node3")
    for cp in CONTROL_PLANES:
        new = host_cert(lab, cp, "/etc/kubernetes/pki/apiserver.crt")
        old = before[cp]
        assert new.not_valid_after_utc > old.not_valid_after_utc and new.public_key() == old.public_key()
        assert new.subject == old.subject
        from tasks.core.pki import cert_alt_names

        assert cert_alt_names(new) == cert_alt_names(old)
        # the API server restarted and serves the renewed certificate
        from tests.integration.test_init_lab import address

        assert served_cert(lab, address(lab, cp)).serial_number == new.serial_number
        state_file = (cluster["state"] / "nodes" / cp / "pki" / "apiserver.crt").read_bytes()
        assert lab.exec(cp, ["cat", "/etc/kubernetes/pki/apiserver.crt"]).stdout == state_file
    members = etcd_members(lab)
    assert sorted(m["name"] for m in members) == list(CONTROL_PLANES)
    # check-expiration shows the new dates
    r = fab(lab, "certs.check-expiration", *cluster["common"])
    assert r.returncode == 0, r.err[-3000:]
    new_date = host_cert(lab, "node2", "/etc/kubernetes/pki/apiserver.crt").not_valid_after_utc
    section = r.out[r.out.index("[node2]"):r.out.index("[node3]")]
    assert re.search(rf"^apiserver\s+{re.escape(new_date.strftime('%b %d, %Y %H:%M UTC'))}", section, re.M), section
    # and the cluster is whole: cluster-up converges (the renewed files are the state dir's)
    r = fab(lab, "cluster-up", *cluster["common"], timeout=600)
    assert r.returncode == 0, r.err[-4000:]
    rows = re.findall(r"^(node\d)\s+\S+(?: \(init\))?\s+\d+\s+(\d+)\s+\S+\s+ok$", r.err, re.M)
    assert len(rows) == len(cluster["hosts"]) and all(changed == "0" for _, changed in rows), r.err[-3000:]


def test_a_san_required_by_the_config_is_reported_with_the_renew_command(lab, cluster, tmp_path):
    import yaml

    inv = yaml.safe_load(cluster["inv"].read_text())
    docs = [d for d in yaml.safe_load_all((cluster["tmp"] / "kubeadm.yaml").read_text()) if d]
    for doc in docs:
        if doc.get("kind") == "ClusterConfiguration":
            doc.setdefault("apiServer", {})["certSANs"] = ["api.kubefab.example"]
    (tmp_path / "kubeadm.yaml").write_text(yaml.safe_dump_all(docs))
    inv["cluster"]["config"] = str(tmp_path / "kubeadm.yaml")
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inv))
    common = ["--inventory", str(tmp_path / "inventory.yaml"), "--state-dir", str(cluster["state"])]
    r = fab(lab, "-H", "node1", "certs.check-expiration", *common)
    assert r.returncode == 0, r.err[-3000:]
    assert "apiserver lacks the SAN(s) api.kubefab.example" in r.err
    assert "`fab -H node1 certs.renew apiserver`" in r.err
    r = fab(lab, "-H", "node1", "certs.renew", "apiserver", *common, timeout=600)
    assert r.returncode == 0, r.err[-4000:]
    from tasks.core.pki import cert_alt_names

    assert "api.kubefab.example" in cert_alt_names(host_cert(lab, "node1", "/etc/kubernetes/pki/apiserver.crt")).dns
    r = fab(lab, "-H", "node1", "certs.check-expiration", *common)
    assert "lacks" not in r.err
