"""kubeadm judges kubefab on the real lab, in both directions.

- **kubeadm joins kubefab**: `fab -H node1 init --upload-certs` makes the cluster; on hosts
  kubefab never touched, the real `kubeadm join` runs the join commands kubefab printed, as a
  control plane (kubeadm downloads kubefab's kubeadm-certs, decrypts them with the certificate
  key, adds its etcd member as a learner and promotes it) and as a worker.
- **kubeadm reads kubefab**: on kubefab's control plane, `kubeadm token list`, `kubeadm certs
  check-expiration` (the same certificates and dates as `fab certs.check-expiration`),
  `kubeadm upgrade plan`; then `kubeadm reset -f` takes kubefab's control plane out (its etcd
  member goes).
- **kubefab joins kubeadm**: `kubeadm init --upload-certs` makes a second cluster; `fab
  join-control-plane` and `fab join` join it with the token, CA hash and certificate key kubeadm
  printed; kubeadm then checks and resets the nodes kubefab made.

Hosts are prepared for kubeadm as an operator prepares them: the release's kubeadm on PATH and
the kubelet drop-in the kubeadm package installs (the lab provides the kubelet, its unit and
containerd). Preflight errors that come only from the lab are ignored by name: LAB_PREFLIGHT.

Needs root (the lab) and the kubeadm binary ``make lab-k8s`` builds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.integration.test_cluster_lab import etcd_members, inventory, ready_nodes, wait_until
from tests.integration.test_init_lab import address, fab, kget, no_secrets
from tests.lab import images
from tests.lab.fixtures import fresh_lab, require_lab, test_lab_dir

pytestmark = [pytest.mark.lab, pytest.mark.kubeadm]

MINOR = 36
# Preflight errors kubeadm reports on the lab's hosts only because of the lab, and why
LAB_PREFLIGHT = {
    "SystemVerification": "the machine runs cgroup v1; the kubelet is told failCgroupV1: false",
}
IGNORE = "--ignore-preflight-errors=" + ",".join(LAB_PREFLIGHT)

# What the kubeadm package adds to the kubelet's unit: where kubeadm's files are, and the
# flags file that kubeadm init/join write. (The lab's kubelet package provides the unit itself.)
KUBEADM_DROPIN = """\
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""


@pytest.fixture(scope="module")
def lab():
    require_lab()
    lab = fresh_lab(test_lab_dir("kubeadm"))
    # node1-2 behind the load balancer (cluster A), node3 its worker; node4-6 cluster B
    lab.up(6, lb=True, control_planes=2)
    yield lab
    lab.down()


def install_kubeadm(lab, host: str) -> None:
    """What installing the kubeadm package does to a host (the kubelet is already there)."""
    kubeadm = images.kubeadm(MINOR)
    assert kubeadm.exists(), f"{kubeadm} is not built: run 'make lab-k8s'"
    lab.exec(host, ["ln", "-sf", str(kubeadm), "/usr/bin/kubeadm"], check=True)
    lab.put(host, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", KUBEADM_DROPIN)
    lab.exec(host, ["systemctl", "enable", "kubelet"], check=True)


def load_control_plane_images(lab, host: str) -> None:
    """A worker-role lab host gets the control-plane images too (as an operator preloads them)."""
    lab.exec(host, ["ctr", "-n", "k8s.io", "images", "import", "--digests", str(lab.images["control-plane"])],
             check=True, timeout=600)


def kubeadm(lab, host: str, *args: str, timeout: float = 600):
    """Run the real kubeadm on a lab host; the result with text out/err."""
    r = lab.exec(host, ["kubeadm", *args], timeout=timeout)
    r.out, r.err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    return r


def ok(r) -> str:
    assert r.returncode == 0, (r.out[-4000:] + "\n" + r.err[-6000:])
    return r.out


def join_material(text: str) -> dict:
    """The token, CA pin and certificate key of the join commands a tool printed."""
    found = {"token": re.search(r"--token (\S+)", text),
             "hash": re.search(r"--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})", text),
             "key": re.search(r"--certificate-key ([0-9a-f]{64})", text),
             "endpoint": re.search(r"kubeadm join (\S+:\d+)", text)}
    assert all(found.values()), f"no complete join command in:\n{text[-3000:]}"
    return {k: m.group(1) for k, m in found.items()}


def expiration_table(text: str) -> dict[str, str]:
    """``name -> expiry`` rows of a check-expiration table (kubeadm's or kubefab's)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\s*([a-z0-9./-]+(?:\.conf)?)\s+([A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2} UTC)\s", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


# --- cluster A: kubefab's, joined and read by kubeadm --------------------------------------------


@pytest.fixture(scope="module")
def kubefab_cluster(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubefab-cluster")
    inv = inventory(lab, tmp, {"node1": ["control-plane"]})
    state = tmp / "state"
    r = fab(lab, "-H", "node1", "init", "--upload-certs", "--inventory", str(inv), "--state-dir", str(state))
    assert r.returncode == 0, r.out[-3000:] + r.err[-3000:]
    return {"inv": inv, "state": state, "init": r, "join": join_material(r.out),
            "admin": state / "nodes" / "node1" / "admin.conf"}


@pytest.fixture(scope="module")
def kubeadm_joined(lab, kubefab_cluster):
    """node2 joins as a control plane and node3 as a worker, by kubeadm, with kubefab's commands."""
    j = kubefab_cluster["join"]
    common = [j["endpoint"], "--token", j["token"], "--discovery-token-ca-cert-hash", j["hash"], IGNORE]
    for host in ("node2", "node3"):
        install_kubeadm(lab, host)
    cp = kubeadm(lab, "node2", "join", *common, "--control-plane", "--certificate-key", j["key"],
                 "--apiserver-advertise-address", address(lab, "node2"))
    ok(cp)
    worker = kubeadm(lab, "node3", "join", *common)
    ok(worker)
    return {"control-plane": cp, "worker": worker}


def test_kubeadm_join_control_plane_into_a_kubefab_cluster(lab, kubefab_cluster, kubeadm_joined):
    out = kubeadm_joined["control-plane"].out
    assert "This node has joined the cluster and a new control plane instance was created" in out
    members = etcd_members(lab, "node1")
    assert sorted(m["name"] for m in members) == ["node1", "node2"]
    assert not any(m.get("isLearner") for m in members)  # promoted
    # kubeadm took the CAs from kubefab's kubeadm-certs: node2's CA is node1's
    ca = {h: lab.exec(h, ["cat", "/etc/kubernetes/pki/ca.crt"], check=True).stdout for h in ("node1", "node2")}
    assert ca["node1"] == ca["node2"]


def test_kubeadm_join_worker_into_a_kubefab_cluster(lab, kubefab_cluster, kubeadm_joined):
    assert "This node has joined the cluster" in kubeadm_joined["worker"].out
    admin = kubefab_cluster["admin"]
    wait_until(lambda: ready_nodes(lab, admin) >= {"node1", "node2", "node3"}, "node1-3 Ready", timeout=240)
    nodes = {n["metadata"]["name"]: n for n in kget(lab, admin, "nodes")["items"]}
    assert "node-role.kubernetes.io/control-plane" in nodes["node2"]["metadata"]["labels"]
    assert "node-role.kubernetes.io/control-plane" not in nodes["node3"]["metadata"]["labels"]


def test_kubeadm_reads_a_kubefab_cluster(lab, kubefab_cluster, kubeadm_joined):
    install_kubeadm(lab, "node1")
    token_id = kubefab_cluster["join"]["token"].split(".")[0]
    tokens = ok(kubeadm(lab, "node1", "token", "list"))
    assert token_id in tokens and "authentication,signing" in tokens
    # the same certificates and dates as kubefab's own report
    theirs = expiration_table(ok(kubeadm(lab, "node1", "certs", "check-expiration")))
    r = fab(lab, "-H", "node1", "certs.check-expiration", "--inventory", str(kubefab_cluster["inv"]),
            "--state-dir", str(kubefab_cluster["state"]))
    assert r.returncode == 0, r.out + r.err
    ours = expiration_table(r.out + r.err)
    assert len(theirs) >= 10, theirs
    assert {k: v for k, v in ours.items() if k in theirs} == theirs, (theirs, ours)
    # kubeadm reads kubefab's kubeadm-config, checks the cluster's health and plans without error
    # (the version argument keeps it from asking the internet for the newest release; the lab
    # builds no newer release, so the plan is "up to date")
    version = images.KUBEADM_VERSIONS[MINOR]
    plan = ok(kubeadm(lab, "node1", "upgrade", "plan", version, IGNORE))
    assert 'Reading configuration from the "kubeadm-config" ConfigMap' in plan
    assert f"Cluster version: {version.lstrip('v')}" in plan and f"Target version: {version}" in plan
    # kubeadm upgrade diff renders the static Pod manifests from the cluster's kubeadm-config, as
    # kubeadm would for this node, and compares them with the files kubefab wrote: no difference
    diff = ok(kubeadm(lab, "node1", "upgrade", "diff", version))
    changed = [ln for ln in diff.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert changed == [], diff


def test_kubeadm_reset_removes_kubefab_control_plane_from_etcd(lab, kubefab_cluster, kubeadm_joined):
    r = kubeadm(lab, "node1", "reset", "-f")
    ok(r)
    members = etcd_members(lab, "node2")
    assert [m["name"] for m in members] == ["node2"]
    # (not /var/lib/etcd: kubeadm empties it in remove-etcd-member while the kubelet still runs,
    # and a kubelet that restarts etcd before cleanup-node stops it leaves a new empty member there)
    gone = lab.exec("node1", ["find", "/etc/kubernetes/manifests", "-mindepth", "1"])
    assert gone.stdout.strip() == b"", gone.stdout
    # the kubeadm-made nodes are done with: free the machine for cluster B
    for host in ("node2", "node3"):
        ok(kubeadm(lab, host, "reset", "-f"))


# --- cluster B: kubeadm's, joined by kubefab -----------------------------------------------------


@pytest.fixture(scope="module")
def kubeadm_cluster(lab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubeadm-cluster")
    for host in ("node4", "node5"):
        load_control_plane_images(lab, host)
    for host in ("node4", "node5", "node6"):
        install_kubeadm(lab, host)
    endpoint = f"{address(lab, 'node4')}:6443"
    docs = [d for d in yaml.safe_load_all(Path(lab.dir / "kubeadm.yaml").read_text()) if d]
    for doc in docs:
        if doc["kind"] == "InitConfiguration":
            doc["localAPIEndpoint"] = {"advertiseAddress": address(lab, "node4"), "bindPort": 6443}
            doc["nodeRegistration"]["name"] = "node4"
        if doc["kind"] == "ClusterConfiguration":
            doc["controlPlaneEndpoint"] = endpoint
    docs = [d for d in docs if d["kind"] != "JoinConfiguration"]
    lab.put("node4", "/root/kubeadm.yaml", yaml.safe_dump_all(docs))
    init = kubeadm(lab, "node4", "init", "--config", "/root/kubeadm.yaml", "--upload-certs")
    ok(init)
    inv = inventory(lab, tmp, {"node5": ["control-plane"], "node6": ["worker"]}, endpoint=endpoint)
    return {"init": init, "join": join_material(init.out), "inv": inv, "state": tmp / "state",
            "admin_on_node4": "/etc/kubernetes/admin.conf"}


def kubectl_on(lab, host: str, *args: str) -> dict:
    r = lab.exec(host, [str(images.Binaries(images.KUBEADM_VERSIONS[MINOR]).k8s / "kubectl"),
                        "--kubeconfig", "/etc/kubernetes/admin.conf", *args, "-o", "json"], timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_kubefab_joins_a_kubeadm_cluster(lab, kubeadm_cluster):
    j = kubeadm_cluster["join"]
    flags = ["--inventory", str(kubeadm_cluster["inv"]), "--state-dir", str(kubeadm_cluster["state"]),
             "--endpoint", j["endpoint"], "--token", j["token"], "--discovery-token-ca-cert-hash", j["hash"]]
    cp = fab(lab, "-H", "node5", "join-control-plane", *flags, "--certificate-key", j["key"], timeout=600)
    assert cp.returncode == 0, cp.out[-3000:] + cp.err[-4000:]
    worker = fab(lab, "-H", "node6", "join", *flags, timeout=600)
    assert worker.returncode == 0, worker.out[-3000:] + worker.err[-4000:]
    no_secrets(cp.out + cp.err + worker.out + worker.err)
    members = etcd_members(lab, "node4")
    assert sorted(m["name"] for m in members) == ["node4", "node5"]
    assert not any(m.get("isLearner") for m in members)

    def ready() -> set[str]:
        nodes = kubectl_on(lab, "node4", "get", "nodes")["items"]
        return {n["metadata"]["name"] for n in nodes
                if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}

    wait_until(lambda: ready() >= {"node4", "node5", "node6"}, "node4-6 Ready", timeout=240)
    # kubefab put kubeadm's CAs on node5 (from kubeadm-certs), not CAs of its own
    ca = {h: lab.exec(h, ["cat", "/etc/kubernetes/pki/ca.crt"], check=True).stdout for h in ("node4", "node5")}
    assert ca["node4"] == ca["node5"]


def test_kubeadm_checks_and_resets_the_nodes_kubefab_made(lab, kubeadm_cluster):
    # kubeadm finds every certificate and kubeconfig it expects on kubefab's control plane
    r = kubeadm(lab, "node5", "certs", "check-expiration", "-o", "yaml")
    report = yaml.safe_load(ok(r)[r.out.index("apiVersion:"):])
    certs = {c["name"]: c for c in report["certificates"] + report["certificateAuthorities"]}
    assert {"admin.conf", "apiserver", "apiserver-kubelet-client", "etcd-server", "etcd-peer",
            "front-proxy-client", "scheduler.conf", "controller-manager.conf", "ca",
            "etcd-ca", "front-proxy-ca"} <= set(certs), sorted(certs)
    # super-admin.conf exists on the init node only: kubeadm's own joined control planes lack it too
    problems = [n for n, c in certs.items() if (c["missing"] and n != "super-admin.conf") or c["externallyManaged"]]
    assert not problems, certs
    for host in ("node6", "node5"):  # worker first, then the control plane (its etcd member goes)
        ok(kubeadm(lab, host, "reset", "-f"))
    assert [m["name"] for m in etcd_members(lab, "node4")] == ["node4"]
    for host in ("node5", "node6"):
        left = lab.exec(host, ["find", "/etc/kubernetes/manifests", "/etc/kubernetes/pki", "-mindepth", "1"])
        assert left.stdout.strip() == b"", left.stdout
