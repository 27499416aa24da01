"""`fab cluster-up`, joins and reset on the lab: an HA cluster of real sshd hosts and real etcd.

Lab: node1-3 control planes, node4-6 workers, node7-8 spare hosts, and the haproxy load
balancer in front of the control planes (controlPlaneEndpoint). Needs root (the lab); under CI a
lab that cannot start fails the run.

The lab and its cluster are shared with ``test_day2_lab``, which runs right after this module
(``LAB_ORDER``) on the cluster this one leaves whole: one lab and one cluster-up for both. The lab
goes down after the last test of the two (``RELEASE_AFTER``, see ``tests/conftest.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tasks.core import bootstrap
from tests.integration.test_init_lab import ROOT, address, kget, kubectl, no_secrets
from tests.lab.fixtures import fresh_lab, require_lab, test_lab_dir

pytestmark = pytest.mark.lab

PKI = "/etc/kubernetes/pki"
CONTROL_PLANES = ("node1", "node2", "node3")
WORKERS = ("node4", "node5", "node6")


LAB_ORDER = 60  # test_day2_lab (61) works on this module's cluster next (tests/conftest.py)
HA_HOSTS = 8
# the lab, the operator's home and the cluster, made once for this module and test_day2_lab
_HA: dict = {"lab": None, "home": None, "cluster": None, "down": False}


def release_ha() -> None:
    """Take the shared lab down (once): after the last test that uses it, or at the session's end."""
    if _HA["lab"] is not None and not _HA["down"]:
        _HA["down"] = True
        _HA["lab"].down()


RELEASE_AFTER = release_ha


@pytest.fixture(scope="module")
def lab(request):
    if _HA["lab"] is None:
        require_lab()
        lab = fresh_lab(test_lab_dir("cluster"))
        request.config.add_cleanup(release_ha)
        lab.up(HA_HOSTS, lb=True, control_planes=3)
        _HA["lab"] = lab
    assert not _HA["down"], "the shared lab is down already (its modules run back to back: LAB_ORDER)"
    return _HA["lab"]


# Every fab run of this module runs with HOME (and the XDG dirs) in a temp dir and through
# tests/integration/fab_write_audit.py, which records every file the process writes: the secrets
# scan at the end reads all their output and those files.
OPERATOR: dict = {"home": None, "runs": []}


@pytest.fixture(scope="module")
def operator_home(tmp_path_factory):
    if _HA["home"] is None:
        _HA["home"] = tmp_path_factory.mktemp("operator") / "home"
        _HA["home"].mkdir()
        OPERATOR["runs"] = []
    OPERATOR["home"] = _HA["home"]
    return OPERATOR


def fab_argv(*args: str) -> list[str]:
    home = OPERATOR["home"]
    assert home is not None, "the operator_home fixture is needed"
    audit = home.parent / f"audit-{len(OPERATOR['runs'])}-{time.monotonic_ns()}.json"
    env = [f"HOME={home}", f"XDG_CACHE_HOME={home}/.cache", f"XDG_CONFIG_HOME={home}/.config",
           f"KUBEFAB_AUDIT_FILE={audit}", f"PYTHONPATH={ROOT}"]
    # the default log file (tests/conftest.py points KUBEFAB_LOG_FILE elsewhere for other tests)
    return ["env", "-u", "KUBEFAB_LOG_FILE", *env, sys.executable, "-m", "tests.integration.fab_write_audit", "-r",
            str(ROOT), *args]


def _audit_of(argv: list[str]) -> Path:
    return Path(next(a for a in argv if a.startswith("KUBEFAB_AUDIT_FILE=")).split("=", 1)[1])


def fab(lab, *args: str, stdin: bytes | None = None, timeout: float = 300):
    """test_init_lab's fab (the real `fab` in the lab's switch namespace), audited (see OPERATOR)."""
    argv = fab_argv(*args)
    r = lab.sw(argv, input=stdin, timeout=timeout)
    r.out, r.err = r.stdout.decode(), r.stderr.decode()
    OPERATOR["runs"].append({"args": list(args), "out": r.out, "err": r.err, "code": r.returncode,
                             "audit": Path(_audit_of(argv))})
    return r


def fab_start(lab, *args: str) -> subprocess.Popen:
    """The same, started in the background (finish it with fab_finish)."""
    argv = fab_argv(*args)
    proc = subprocess.Popen(lab.sw_argv(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.kubefab = (list(args), Path(_audit_of(argv)))
    return proc


def fab_finish(proc: subprocess.Popen, timeout: float = 600):
    out, err = proc.communicate(timeout=timeout)
    proc.out, proc.err = out.decode(), err.decode()
    args, audit = proc.kubefab
    OPERATOR["runs"].append({"args": args, "out": proc.out, "err": proc.err, "code": proc.returncode,
                             "audit": audit})
    return proc


def inventory(lab, tmp: Path, hosts: dict, *, join_timeout: str = "", endpoint: str = "") -> Path:
    """The lab inventory restricted to ``hosts`` (name -> roles), config beside it; ``endpoint``
    replaces the controlPlaneEndpoint (a cluster that is not behind the lab's load balancer)."""
    inv = yaml.safe_load(Path(lab.inventory).read_text())
    base = Path(lab.inventory).parent
    for key in ("identity", "known_hosts", "ssh_config"):
        inv["ssh"][key] = str((base / inv["ssh"][key]).resolve())
    docs = [d for d in yaml.safe_load_all((base / inv["cluster"]["config"]).read_text()) if d]
    for doc in docs:
        if doc.get("kind") == "InitConfiguration":
            doc.pop("localAPIEndpoint", None)
            # the host name comes from the inventory; the lab's preflight skip (cgroup v1) stays
            doc["nodeRegistration"] = {k: v for k, v in doc.get("nodeRegistration", {}).items() if k != "name"}
        if endpoint and doc.get("kind") == "ClusterConfiguration":
            doc["controlPlaneEndpoint"] = endpoint
    if join_timeout:
        join = next(d for d in docs if d.get("kind") == "JoinConfiguration")
        join["timeouts"] = {"discovery": join_timeout}
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "kubeadm.yaml").write_text(yaml.safe_dump_all(docs))
    inv["cluster"]["config"] = "kubeadm.yaml"
    if endpoint:
        inv["cluster"]["controlPlaneEndpoint"] = endpoint
    inv["hosts"] = {name: {"address": address(lab, name), "roles": roles} for name, roles in hosts.items()}
    path = tmp / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


def etcd_members(lab, host: str = "node1") -> list[dict]:
    r = lab.exec(host, ["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={PKI}/etcd/ca.crt",
                        f"--cert={PKI}/etcd/healthcheck-client.crt", f"--key={PKI}/etcd/healthcheck-client.key",
                        "member", "list", "-w", "json"])
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)["members"]


def ready_nodes(lab, admin: Path) -> set[str]:
    nodes = kget(lab, admin, "nodes")["items"]
    return {n["metadata"]["name"] for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}


@pytest.fixture(scope="module")
def cluster(lab, tmp_path_factory, operator_home):
    if _HA["cluster"] is None:
        tmp = tmp_path_factory.mktemp("cluster")
        hosts = {**{n: ["control-plane"] for n in CONTROL_PLANES}, **{n: ["worker"] for n in WORKERS}}
        inv = inventory(lab, tmp, hosts)
        state = tmp / "state"
        r = fab(lab, "cluster-up", "--inventory", str(inv), "--state-dir", str(state), timeout=900)
        assert r.returncode == 0, r.out[-3000:] + r.err[-6000:]
        _HA["cluster"] = {"tmp": tmp, "inv": inv, "state": state, "result": r, "hosts": hosts,
                          "admin": state / "nodes" / "node1" / "admin.conf",
                          "common": ["--inventory", str(inv), "--state-dir", str(state)]}
    return _HA["cluster"]


def test_etcd_has_three_started_voting_members(lab, cluster):
    members = etcd_members(lab)
    assert sorted(m["name"] for m in members) == list(CONTROL_PLANES)
    assert not any(m.get("isLearner") for m in members)
    assert all(m.get("clientURLs") for m in members)  # started


def test_six_nodes_ready_through_the_load_balancer(lab, cluster):
    server = yaml.safe_load(cluster["admin"].read_text())["clusters"][0]["cluster"]["server"]
    assert lab.status()["lb"]["address"] in server
    assert ready_nodes(lab, cluster["admin"]) == set(CONTROL_PLANES + WORKERS)
    nodes = {n["metadata"]["name"]: n for n in kget(lab, cluster["admin"], "nodes")["items"]}
    for cp in CONTROL_PLANES:
        assert "node-role.kubernetes.io/control-plane" in nodes[cp]["metadata"]["labels"]


WORKLOAD = "kubefab-e2e"
BUSYBOX = "kubefab.local/lab/busybox:1.35.0"  # preloaded by the lab (tests/lab/images.py)


def wait_until(check, what: str, timeout: float = 180.0, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def workload(lab, cluster):
    """A pod on the worker node4, run by the real kubelet in containerd, through the API server."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": WORKLOAD, "namespace": "default"},
           "spec": {"nodeName": "node4", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                                    "command": ["sh", "-c", "echo hello from kubefab; exec sleep 3600"]}]}}
    r = lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), "apply", "-f", "-"],
               input=json.dumps(pod).encode(), timeout=60)
    assert r.returncode == 0, r.stderr.decode()

    def running():
        p = kget(lab, cluster["admin"], "pod", "-n", "default", WORKLOAD)
        return p if p["status"].get("phase") == "Running" else None

    yield wait_until(running, f"pod {WORKLOAD} Running on node4")
    # test_day2_lab drains node4 next: a pod without a controller would stop it
    lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), "delete", "pod", "-n", "default", WORKLOAD,
            "--timeout=90s"], timeout=120)  # gone, not only terminating (a drain plan counts those too)


def test_a_workload_pod_runs_on_a_worker(workload):
    assert workload["spec"]["nodeName"] == "node4"
    assert workload["status"]["podIP"].startswith("10.244.")


def test_kubectl_logs_and_exec_reach_the_kubelet(lab, cluster, workload):
    # Both go API server -> kubelet :10250 with apiserver-kubelet-client, to the kubelet's serving cert.
    assert "hello from kubefab" in kubectl(lab, cluster["admin"], "logs", "-n", "default", WORKLOAD)
    assert kubectl(lab, cluster["admin"], "exec", "-n", "default", WORKLOAD, "--", "hostname").strip() == WORKLOAD


def test_the_pod_resolves_the_kubernetes_service_through_coredns(lab, cluster, workload):
    # The pod's resolver is the kube-dns Service (kube-proxy), answered by CoreDNS on another node (CNI).
    def resolves():
        r = lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), "exec", "-n", "default", WORKLOAD, "--",
                    "nslookup", "kubernetes.default.svc.cluster.local"], timeout=60)
        return r.stdout.decode() if r.returncode == 0 and "10.96.0.1" in r.stdout.decode() else None

    assert "10.96.0.1" in wait_until(resolves, "kubernetes.default.svc.cluster.local resolving to 10.96.0.1")


def test_pods_reach_each_other_across_nodes_and_the_kubernetes_service(lab, cluster, workload):
    """The pod network between hosts (CNI bridge + the lab's routes) and a Service's virtual IP
    (kube-proxy's rules), each asked directly, not through the resolver."""
    def coredns_elsewhere():
        pods = kget(lab, cluster["admin"], "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
        return next((p for p in pods if p["spec"].get("nodeName") != "node4" and p["status"].get("podIP")
                     and all(c.get("ready") for c in p["status"].get("containerStatuses", []))), None)

    coredns = wait_until(coredns_elsewhere, "a ready CoreDNS pod on a node other than node4")

    def exec_ok(*argv):
        r = lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), "exec", "-n", "default", WORKLOAD, "--",
                    *argv], timeout=60)
        return r.stdout.decode() if r.returncode == 0 else None

    def http_get(address: str, port: int, path: str):
        # busybox nc (busybox's static wget -O- crashes writing to a pipe in the lab's image)
        return exec_ok("sh", "-c", f'printf "GET {path} HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {address} {port}')

    # CoreDNS's readiness endpoint, pod IP to pod IP from node4 to another host
    ready = wait_until(lambda: http_get(coredns["status"]["podIP"], 8181, "/ready"),
                       f"CoreDNS on {coredns['spec']['nodeName']} answering node4's pod")
    assert ready.startswith("HTTP/1.0 200 OK") and ready.rstrip().endswith("OK"), ready
    # the kubernetes Service's ClusterIP, DNAT-ed by kube-proxy to an API server, which answers
    # plain HTTP on its TLS port with its own error
    answer = wait_until(lambda: http_get("10.96.0.1", 443, "/"), "an answer from 10.96.0.1:443")
    assert "Client sent an HTTP request to an HTTPS server" in answer, answer


def test_every_control_plane_is_ready_verbose(lab, cluster):
    for cp in CONTROL_PLANES:
        r = lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), "--server", f"https://{address(lab, cp)}:6443",
                    "get", "--raw", "/readyz?verbose"], timeout=60)
        out = r.stdout.decode()
        assert r.returncode == 0 and out.rstrip().endswith("readyz check passed"), (cp, out[-500:])
        assert "[-]" not in out, (cp, [line for line in out.splitlines() if line.startswith("[-]")])


def test_every_pod_is_running(lab, cluster, workload):
    def all_running():
        pods = kget(lab, cluster["admin"], "pods", "-A")["items"]
        bad = [(p["metadata"]["namespace"], p["metadata"]["name"], p["status"].get("phase")) for p in pods
               if p["status"].get("phase") != "Running"
               or not all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        return "ok" if not bad else None

    wait_until(all_running, "every pod Running and ready")
    pods = kget(lab, cluster["admin"], "pods", "-n", "kube-system")["items"]
    names = {p["metadata"]["name"] for p in pods}
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        for cp in CONTROL_PLANES:  # the real kubelet's mirror pods of kubefab's static pods
            assert f"{component}-{cp}" in names, (component, cp)
    assert sum(p["metadata"]["name"].startswith("kube-proxy-") for p in pods) == len(CONTROL_PLANES + WORKERS)
    assert sum(p["metadata"]["name"].startswith("coredns-") for p in pods) == 2


def test_summary_and_certificate_key(lab, cluster):
    r = cluster["result"]
    assert re.search(r"HOST\s+ROLE\s+PHASES\s+CHANGED\s+TIME\s+RESULT", r.err)
    for host in CONTROL_PLANES + WORKERS:
        assert re.search(rf"^{host}\s+.*\sok$", r.err, re.M), host
    lines = r.out.splitlines()
    key = lines[lines.index("[upload-certs] Using certificate key:") + 1]
    secret = kget(lab, cluster["admin"], "secret", "-n", "kube-system", "kubeadm-certs")
    files = bootstrap.decrypt_kubeadm_certs(secret, key)
    for rel in ("ca.key", "front-proxy-ca.key", "etcd/ca.key", "sa.key"):
        assert files[rel] == lab.exec("node1", ["cat", f"{PKI}/{rel}"]).stdout, rel
    no_secrets(r.out + r.err)


def test_join_order_control_planes_one_at_a_time(cluster):
    err = cluster["result"].err
    # node3's join starts only after node2's has finished
    assert err.index("node2 joined as control-plane") < err.index("[node3] [preflight] discovery")


def test_every_host_has_kubeadms_files(lab, cluster):
    worker_files = ["/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml",
                    "/var/lib/kubelet/kubeadm-flags.env", "/var/lib/kubelet/pki/kubelet-client-current.pem"]
    cp_files = worker_files + [f"{PKI}/{f}" for f in ("ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt",
                                                      "etcd/ca.crt", "apiserver.crt", "etcd/server.crt",
                                                      "etcd/peer.crt")] + [
        f"/etc/kubernetes/{c}.conf" for c in ("admin", "controller-manager", "scheduler")] + [
        f"/etc/kubernetes/manifests/{m}.yaml" for m in ("etcd", "kube-apiserver", "kube-controller-manager",
                                                         "kube-scheduler")]
    for host in CONTROL_PLANES + WORKERS:
        wanted = cp_files if host in CONTROL_PLANES else worker_files
        r = lab.exec(host, ["sh", "-c", "for f in " + " ".join(wanted) + "; do test -s $f || echo missing $f; done; "
                                        "test -e /etc/kubernetes/bootstrap-kubelet.conf && echo left bootstrap; true"])
        assert r.stdout.decode().strip() == "", (host, r.stdout.decode())


def state_tree(state: Path) -> dict[str, str]:
    return {str(p.relative_to(state)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(state.rglob("*")) if p.is_file()}


def hold_host_lock(lab, host: str, record: dict) -> subprocess.Popen:
    """Another run's holder of /run/kubefab.lock on ``host`` (the script kubefab sends): held
    until its input is closed."""
    from tasks.locks import HELD_MARK, host_lock_script

    p = subprocess.Popen(lab.exec_argv(host, ["sh", "-c", host_lock_script(json.dumps(record))]),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline().decode().strip() == HELD_MARK
    return p


def test_rerun_is_a_no_op_and_a_second_run_at_once_fails_naming_it(lab, cluster):
    """A converged re-run changes nothing. Issue 15: a second cluster-up started while it runs
    fails at once naming it (user@machine, pid, command, since), the first one succeeds, and the
    state dir is as it was (no lock file, no temp file). node1's host lock is held by a run of
    this machine whose process is gone: the re-run takes it over, saying so."""
    from tasks.locks import Holder

    common = ["--inventory", str(cluster["inv"]), "--state-dir", str(cluster["state"])]
    before = state_tree(cluster["state"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = hold_host_lock(lab, "node1", {**json.loads(Holder.me("fab -H node1 init").to_json()), "pid": gone.pid})
    try:
        first = fab_start(lab, "cluster-up", "--skip-token-print", "--skip-certificate-key-print", *common)
        lock = cluster["state"] / "kubefab.lock"
        deadline = time.monotonic() + 60
        while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the first run never took the cluster lock"
        t0 = time.monotonic()
        second = fab(lab, "cluster-up", *common, timeout=120)
        second_seconds = time.monotonic() - t0
        r = fab_finish(first)
        assert stale.wait(10) is not None  # the stale holder was ended on the host
    finally:
        if stale.poll() is None:
            stale.kill()
    assert r.returncode == 0, r.err[-4000:]
    rows = re.findall(r"^(node\d)\s+(\S+(?: \(init\))?)\s+(\d+)\s+(\d+)\s+\S+\s+ok$", r.err, re.M)
    assert len(rows) == 6 and all(changed == "0" for *_, changed in rows), r.err[-3000:]
    assert "[node1] [lock] taking over /run/kubefab.lock from a run of this machine that is gone" in r.err
    assert f"(pid {gone.pid}, `fab -H node1 init`)" in r.err
    assert second.returncode == 1 and second_seconds < 30, second.err[-3000:]
    assert f"is locked by root@{os.uname().nodename} (pid {first.pid}, `fab cluster-up`) since " in second.err, \
        second.err[-2000:]
    assert "fix: wait for that run to finish" in second.err and "Traceback" not in second.err
    assert "Connecting to" not in second.err  # refused before any host was touched
    assert state_tree(cluster["state"]) == before
    # --skip-token-print / --skip-certificate-key-print: the join commands without either
    assert "--token <redacted" in r.out and "--certificate-key <certificate key>" in r.out, r.out[-2000:]
    assert "Using certificate key" not in r.out
    assert lab.exec("node1", ["sh", "-c", "flock -n /run/kubefab.lock true"]).returncode == 0  # released


def test_a_host_locked_by_a_run_of_another_machine_is_refused(lab, cluster):
    """Another machine's run holds node1's /run/kubefab.lock: it is named, never taken over, and
    nothing is done."""
    common = ["--inventory", str(cluster["inv"]), "--state-dir", str(cluster["state"])]
    other = hold_host_lock(lab, "node1", {"user": "ops", "machine": "bastion", "pid": 4242,
                                          "command": "fab -H node1 init", "since": "2026-12-06T09:00:00Z",
                                          "bootID": "another-boot"})
    try:
        before = state_tree(cluster["state"])
        r = fab(lab, "-H", "node1", "init", "--upload-certs", *common)
        assert r.returncode == 1
        assert ("[lock] node1: /run/kubefab.lock is held by ops@bastion (pid 4242, `fab -H node1 init`) "
                "since 2026-12-06T09:00:00Z") in r.err, r.err[-2000:]
        assert "sshd drops its session" in r.err and "Traceback" not in r.err
        assert state_tree(cluster["state"]) == before
        assert other.poll() is None
    finally:
        other.stdin.close()
        other.wait(10)


# --- failures: clear errors, nothing written ---------------------------------------------------------
def _join_state(cluster, tmp: Path) -> Path:
    """A state dir with the token only (no PKI): the certificate key is then the only way in."""
    st = tmp / "joinstate"
    st.mkdir(parents=True, exist_ok=True)
    (st / "join.yaml").write_text((cluster["state"] / "join.yaml").read_text())
    return st


def test_wrong_certificate_key_writes_nothing(lab, cluster, tmp_path):
    inv = inventory(lab, tmp_path, {**cluster["hosts"], "node7": ["control-plane"]})
    r = fab(lab, "-H", "node7", "join-control-plane", "--inventory", str(inv),
            "--state-dir", str(_join_state(cluster, tmp_path)), "--certificate-key", "0" * 64,
            "--discovery-token-ca-cert-hash", bootstrap.ca_pin((cluster["state"] / "pki" / "ca.crt").read_bytes()))
    assert r.returncode == 1
    assert "node7" in r.err and "certificate key" in r.err.lower()
    no_secrets(r.out + r.err)
    assert lab.exec("node7", ["sh", "-c", "ls -A /etc/kubernetes"]).stdout.decode().strip() == ""


def test_unknown_token_is_a_clear_error(lab, cluster, tmp_path):
    inv = inventory(lab, tmp_path, {**cluster["hosts"], "node8": ["worker"]}, join_timeout="8s")
    t0 = time.monotonic()
    r = fab(lab, "-H", "node8", "join", "--inventory", str(inv), "--state-dir", str(tmp_path / "empty"),
            "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash",
            bootstrap.ca_pin((cluster["state"] / "pki" / "ca.crt").read_bytes()))
    assert r.returncode == 1 and time.monotonic() - t0 < 60
    assert "node8" in r.err and "token" in r.err.lower()
    assert "0123456789abcdef" not in r.out + r.err
    assert lab.exec("node8", ["sh", "-c", "ls -A /etc/kubernetes"]).stdout.decode().strip() == ""


def test_operator_kubeconfig_and_a_failed_join_as_a_document(lab, cluster, tmp_path):
    """Issue 16: cluster-up writes the operator's kubeconfig and says how to use it; a failed join
    with -o json is a RunSummary naming the host and its own fix, and discovery said early what
    it was waiting for."""
    kc = cluster["state"] / "admin.conf"
    assert f"try: kubectl --kubeconfig {kc} get nodes" in cluster["result"].err
    assert (kc.stat().st_mode & 0o777) == 0o600
    assert ready_nodes(lab, kc) == set(CONTROL_PLANES + WORKERS)
    inv = inventory(lab, tmp_path, {**cluster["hosts"], "node8": ["worker"]}, join_timeout="8s")
    r = fab(lab, "-H", "node8", "join", "-o", "json", "--inventory", str(inv), "--state-dir", str(tmp_path / "empty"),
            "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash",
            bootstrap.ca_pin((cluster["state"] / "pki" / "ca.crt").read_bytes()))
    assert r.returncode == 1
    doc = json.loads(r.out)
    assert doc["kind"] == "RunSummary" and doc["result"] == "failed"
    (host,) = doc["hosts"]
    assert host["host"] == "node8" and host["result"] == "failed" and "token.create" in host["fix"]
    assert "cluster-info has no jws-kubeconfig-abcdef signature; retrying" in r.err
    assert "fix: the token is unknown or expired" in r.err and "fix the cause" not in r.err
    assert "0123456789abcdef" not in r.out + r.err


def test_expired_token_is_a_clear_error(lab, cluster, tmp_path):
    common = ["--inventory", str(cluster["inv"]), "--state-dir", str(cluster["state"])]
    r = fab(lab, "token.create", "--ttl", "2s", *common)
    assert r.returncode == 0, r.err[-3000:]
    token = r.out.strip().splitlines()[-1]
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token), r.out
    time.sleep(4)  # past its expiration: the signer drops its signature, the API refuses it
    inv = inventory(lab, tmp_path, {**cluster["hosts"], "node8": ["worker"]}, join_timeout="8s")
    r = fab(lab, "-H", "node8", "join", "--inventory", str(inv), "--state-dir", str(tmp_path / "empty"),
            "--token", token, "--discovery-token-ca-cert-hash",
            bootstrap.ca_pin((cluster["state"] / "pki" / "ca.crt").read_bytes()))
    assert r.returncode == 1
    assert "node8" in r.err and "expired" in r.err.lower()
    assert token.split(".")[1] not in r.out + r.err
    assert "Traceback" not in r.err
    assert lab.exec("node8", ["sh", "-c", "ls -A /etc/kubernetes"]).stdout.decode().strip() == ""


def test_ca_pin_mismatch_is_refused(lab, cluster, tmp_path):
    inv = inventory(lab, tmp_path, {**cluster["hosts"], "node8": ["worker"]}, join_timeout="8s")
    r = fab(lab, "-H", "node8", "join", "--inventory", str(inv), "--state-dir", str(cluster["state"]),
            "--discovery-token-ca-cert-hash", "sha256:" + "ab" * 32)
    assert r.returncode == 1
    assert "node8" in r.err and ("pin" in r.err.lower() or "hash" in r.err.lower())
    no_secrets(r.out + r.err)
    assert lab.exec("node8", ["sh", "-c", "ls -A /etc/kubernetes"]).stdout.decode().strip() == ""


# --- reset and join again -----------------------------------------------------------------------------
def test_a_dead_worker_is_named_and_joined_once_it_is_back(lab, cluster, tmp_path):
    inv = inventory(lab, tmp_path, {**cluster["hosts"], "node7": ["worker"]})
    common = ["--inventory", str(inv), "--state-dir", str(cluster["state"])]
    everyone = set(CONTROL_PLANES + WORKERS)
    wait_until(lambda: everyone <= ready_nodes(lab, cluster["admin"]), "every member Ready")
    lab.stop_host("node7")
    r = fab(lab, "cluster-up", *common, timeout=600)
    assert r.returncode == 1
    assert re.search(r"^node7\s+worker\s+.*FAILED$", r.err, re.M), r.err[-3000:]
    assert "node7" in r.err.splitlines()[-3] + r.err.splitlines()[-2] + r.err.splitlines()[-1]
    assert "Traceback" not in r.err
    for host in CONTROL_PLANES + WORKERS:
        assert re.search(rf"^{host}\s+\S+.*\s0\s+\S+\s+ok$", r.err, re.M), host  # untouched, 0 changed
    lab.up(8, lb=True, control_planes=3)  # node7 is back (a fresh host)
    r = fab(lab, "cluster-up", "-o", "json", "--skip-token-print", "--skip-certificate-key-print", *common,
            timeout=600)
    assert r.returncode == 0, r.err[-3000:]
    rows = {h["host"]: h for h in json.loads(r.out)["hosts"]}
    assert rows["node7"]["changed"] > 0 and all(rows[h]["changed"] == 0 for h in CONTROL_PLANES + WORKERS), rows
    assert "node7" in ready_nodes(lab, cluster["admin"])
    # issue 17's round trips: a fresh worker in 4 (lock + facts, upload, apply + start, one wait),
    # a converged host in 2 (lock + facts, one check)
    assert rows["node7"]["roundTrips"] <= 4, rows["node7"]
    assert all(rows[h]["roundTrips"] <= 2 for h in CONTROL_PLANES + WORKERS), rows


def test_losing_a_control_plane_keeps_the_api_and_joins_working_then_it_is_removed_and_rejoins(lab, cluster,
                                                                                               tmp_path):
    """node2 dies: the API answers through the load balancer and a worker joins. Removing node3
    then would leave node1 alone of two members: refused (issue 13). The dead node2 is removed from
    the cluster's side (--unreachable: its member and Node, from another control plane); it comes
    back as a fresh host and joins again, leaving the cluster whole for test_day2_lab."""
    common = cluster["common"]
    lab.stop_host("node2")
    try:
        deadline = time.monotonic() + 30
        while True:  # haproxy notices the dead backend
            r = lab.sw(["kubectl", "--kubeconfig", str(cluster["admin"]), "get", "--raw", "/readyz"], timeout=30)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.stdout.decode().strip() == "ok", r.stderr.decode()
        inv = inventory(lab, tmp_path, {**cluster["hosts"], "node8": ["worker"]})
        r = fab(lab, "-H", "node8", "join", "--inventory", str(inv), "--state-dir", str(cluster["state"]))
        assert r.returncode == 0, r.err[-3000:]
        r = fab(lab, "-H", "node3", "reset", *common, stdin=b"y\n")
        assert r.returncode == 1
        assert "quorum" in r.err and "--force" in r.err and "Traceback" not in r.err, r.err[-3000:]
        assert lab.exec("node3", ["test", "-s", "/etc/kubernetes/manifests/etcd.yaml"]).returncode == 0
        r = fab(lab, "-H", "node2", "reset", "--unreachable", "--force", *common)
        assert r.returncode == 0, r.err[-4000:]
        assert "unreachable" in r.err
        assert sorted(m["name"] for m in etcd_members(lab)) == ["node1", "node3"]
        assert "node2" not in {n["metadata"]["name"] for n in kget(lab, cluster["admin"], "nodes")["items"]}
    finally:
        lab.up(HA_HOSTS, lb=True, control_planes=3)  # node2 comes back as a fresh host
    r = fab(lab, "-H", "node2", "join-control-plane", *common, timeout=600)
    assert r.returncode == 0, r.err[-4000:]
    assert sorted(m["name"] for m in etcd_members(lab)) == list(CONTROL_PLANES)


# --- issue 15: no secret in any output or any file written outside the state dir ------------------------
def _secrets_of(states: list[Path], extra_tokens: set[str]) -> dict[str, str]:
    """Every secret value to look for -> what it is: bootstrap tokens (and their secret halves),
    the certificate key, and each private key (its PEM body and its kubeconfig client-key-data)."""
    found: dict[str, str] = {}
    tokens = set(extra_tokens)
    for st in states:
        join = st / "join.yaml"
        if join.exists():
            data = yaml.safe_load(join.read_text()) or {}
            tokens |= set(data.get("tokens") or [])
            if data.get("certificate_key"):
                found[data["certificate_key"]] = "certificate key"
        for f in (p for p in st.rglob("*") if p.is_file()):
            raw = f.read_bytes()
            if b"PRIVATE KEY-----" in raw:
                body = "".join(raw.decode().splitlines()[1:-1])
                found[body[:48]] = f"private key {f.relative_to(st)}"
            if f.suffix == ".conf" or f.name.endswith(".conf"):
                for user in (yaml.safe_load(raw) or {}).get("users") or []:
                    value = (user.get("user") or {}).get("client-key-data")
                    if value:
                        found[value[:48]] = f"client-key-data of {f.relative_to(st)}"
    for t in tokens:
        found[t.split(".")[1]] = f"bootstrap token {t.split('.')[0]}"
    return found


def _hits(text: str, secrets: dict[str, str]) -> list[str]:
    hits = [what for value, what in secrets.items() if value in text]
    if "PRIVATE KEY" in text or "client-key-data: LS0t" in text:
        hits.append("a PEM private key / client-key-data")
    return hits


def _allowed_removed(run: dict) -> str:
    """stdout without what kubefab prints on purpose, as kubeadm does: init's and cluster-up's
    join commands and certificate key (unless --skip-*-print), token.create's token."""
    args, out = run["args"], run["out"]
    if "token.create" in args:
        return ""
    if "--dry-run" in args or not ({"init", "cluster-up"} & set(args)):
        return out
    lines, keep, skip_next = out.splitlines(), [], False
    for line in lines:
        if skip_next:
            skip_next = False
            continue
        if line == "[upload-certs] Using certificate key:":
            skip_next = True
            continue
        if "kubeadm join " in line or "--certificate-key " in line:
            continue
        keep.append(line)
    return "\n".join(keep)


def test_no_secret_in_any_output_or_file_outside_the_state_dir(lab, cluster, tmp_path):
    """Issue 15: every fab run of this module (cluster-up, its re-runs, joins and failed joins,
    token.create) and the ones here (token.list, token.create --print-join-command, dry-runs) are
    scanned: stdout, stderr and every file the process wrote outside its state dir (the log file,
    temp files, even removed ones) hold no bootstrap token, certificate key or private key, except
    the join commands printed on purpose."""
    common = ["--inventory", str(cluster["inv"]), "--state-dir", str(cluster["state"])]
    # at once (none of them takes a lock): the three cost about one run's time
    started = [fab_start(lab, "token.list", *common), fab_start(lab, "token.create", "--print-join-command", *common),
               fab_start(lab, "-H", "node1", "init", "--upload-certs", "--dry-run", *common)]
    listed, created, dry = (fab_finish(p, timeout=300) for p in started)
    assert listed.returncode == 0 and ".<redacted>" in listed.out, listed.err[-2000:]
    assert created.returncode == 0 and "kubeadm join " in created.out, created.err[-2000:]
    assert dry.returncode == 0, dry.err[-2000:]

    runs = OPERATOR["runs"]
    states = {Path(a[a.index("--state-dir") + 1]) for a in (run["args"] for run in runs) if "--state-dir" in a}
    printed = {m for run in runs if "token.create" in run["args"]
               for m in re.findall(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b", run["out"])}
    secrets = _secrets_of(sorted(s for s in states if s.exists()), printed)
    assert any(w == "certificate key" for w in secrets.values()) and any(w.startswith("bootstrap token")
                                                                           for w in secrets.values())
    assert sum(w.startswith("private key") for w in secrets.values()) >= 10
    # the scanner finds what is printed on purpose (a scan that cannot fail proves nothing)
    first = runs[0]
    assert first["args"][0] == "cluster-up" and _hits(first["out"], secrets), "cluster-up printed no join command"
    problems, files_seen, on_disk = [], set(), {}
    for run in runs:
        name = " ".join(run["args"][:3])
        for where, text in (("stdout", _allowed_removed(run)), ("stderr", run["err"])):
            problems += [f"{name}: {where}: {h}" for h in _hits(text, secrets)]
        state = Path(run["args"][run["args"].index("--state-dir") + 1]) if "--state-dir" in run["args"] else None
        audit = run["audit"]
        assert audit.exists(), f"{name}: no audit record"
        for entry in json.loads(audit.read_text()):
            path = Path(entry["path"])
            if state is not None and (path == state or state in path.parents):
                continue
            files_seen.add(entry["path"] + (" (removed)" if entry["removed"] else ""))
            if entry["removed"]:  # a temp file: as it was just before it was removed
                text = base64.b64decode(entry["content"]).decode("utf-8", "replace")
                problems += [f"{name}: file {path} (removed after use): {h}" for h in _hits(text, secrets)]
            else:
                on_disk.setdefault(path, name)
    for path, name in on_disk.items():  # the others once, as they are now (the log file holds every run)
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            problems += [f"{name}: file {path}: {h}" for h in _hits(text, secrets)]
    log = OPERATOR["home"] / ".cache" / "kubefab" / "kubefab.log"
    assert any(f.startswith(str(log)) for f in files_seen), sorted(files_seen)[:20]
    assert "cluster-up" in log.read_text()
    assert not problems, "\n".join(sorted(set(problems))) + "\nfiles written outside the state dirs:\n" + \
        "\n".join(sorted(files_seen))
