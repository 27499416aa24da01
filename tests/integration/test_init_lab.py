"""`fab -H <host> init` on the lab: real sshd hosts, real etcd, the API stand-in, real checkers.

Needs root (the lab): under CI a lab that cannot start fails the run (tests/lab/fixtures.py).
Each scenario gets hosts of its own so the tests do not disturb each other.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

from tasks.core import bootstrap
from tests.lab.fixtures import fresh_lab, require_lab, test_lab_dir

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
PKI = "/etc/kubernetes/pki"


@pytest.fixture(scope="module")
def lab():
    require_lab()
    lab = fresh_lab(test_lab_dir("init"))
    lab.up(4)  # node1 control plane (init), node2-4 spare hosts for the failure cases
    yield lab
    lab.down()


def fab(lab, *args: str, stdin: bytes | None = None, timeout: float = 300):
    """Run the real `fab` in the lab's switch namespace (where the hosts are reachable)."""
    r = lab.sw([sys.executable, "-m", "fabric", "-r", str(ROOT), *args], input=stdin, timeout=timeout)
    r.out, r.err = r.stdout.decode(), r.stderr.decode()
    return r


def host_sh(lab, host: str, script: str) -> str:
    r = lab.exec(host, ["sh", "-c", script])
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def no_secrets(text: str) -> None:
    assert "PRIVATE KEY" not in text
    assert "Traceback" not in text


def make_inventory(lab, tmp: Path, *, hosts: dict | None = None, ssh: dict | None = None,
                   init_extra: dict | None = None) -> Path:
    """A copy of the lab inventory (and kubeadm config) with changes."""
    inv = yaml.safe_load(Path(lab.inventory).read_text())
    base = Path(lab.inventory).parent
    for key in ("identity", "known_hosts", "ssh_config"):
        inv["ssh"][key] = str((base / inv["ssh"][key]).resolve())
    docs = list(yaml.safe_load_all((base / inv["cluster"]["config"]).read_text()))
    for doc in docs:
        if doc.get("kind") == "InitConfiguration":
            doc.pop("localAPIEndpoint", None)   # from the inventory host
            # the host name comes from the inventory; the lab's preflight skip (cgroup v1) stays
            doc["nodeRegistration"] = {k: v for k, v in doc.get("nodeRegistration", {}).items() if k != "name"}
            doc.update(init_extra or {})
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "kubeadm.yaml").write_text(yaml.safe_dump_all(docs))
    inv["cluster"]["config"] = "kubeadm.yaml"
    if hosts is not None:
        inv["hosts"] = hosts
    for key, value in (ssh or {}).items():
        if value is None:
            inv["ssh"].pop(key, None)
        else:
            inv["ssh"][key] = value
    path = tmp / "inventory.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


def address(lab, name: str) -> str:
    return next(h["address"] for h in lab.status()["hosts"] if h["name"] == name)


@pytest.fixture(scope="module")
def initialized(lab, tmp_path_factory):
    """node1 initialised once by `fab -H node1 init --upload-certs` (module-wide)."""
    tmp = tmp_path_factory.mktemp("init")
    inv = make_inventory(lab, tmp, hosts={"node1": {"address": address(lab, "node1"), "roles": ["control-plane"]}})
    state = tmp / "state"
    r = fab(lab, "-H", "node1", "init", "--upload-certs", "--inventory", str(inv), "--state-dir", str(state))
    assert r.returncode == 0, r.out + r.err
    return {"inv": inv, "state": state, "result": r, "admin": state / "nodes" / "node1" / "admin.conf"}


def kubectl(lab, admin: Path, *args: str) -> str:
    r = lab.sw(["kubectl", "--kubeconfig", str(admin), *args], timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def kget(lab, admin: Path, *args: str) -> dict:
    return json.loads(kubectl(lab, admin, "get", *args, "-o", "json"))


def test_init_prints_the_certificate_key_and_join_commands(initialized):
    r = initialized["result"]
    lines = r.out.splitlines()
    i = lines.index("[upload-certs] Using certificate key:")
    assert re.fullmatch(r"[0-9a-f]{64}", lines[i + 1])
    assert "kubeadm join" in r.out and "--discovery-token-ca-cert-hash sha256:" in r.out
    assert "--control-plane --certificate-key " + lines[i + 1] in r.out
    no_secrets(r.out + r.err)
    # the summary: time and SSH round trips per phase
    assert re.search(r"HOST\s+PHASE\s+TIME\s+SSH", r.err)


def test_file_layout_and_modes(lab, initialized):
    listing = host_sh(lab, "node1", "cd / && stat -c '%a %n' etc/kubernetes/*.conf etc/kubernetes/manifests/*.yaml "
                                    "etc/kubernetes/pki/*.crt etc/kubernetes/pki/*.key etc/kubernetes/pki/sa.* "
                                    "etc/kubernetes/pki/etcd/* var/lib/kubelet/config.yaml "
                                    "var/lib/kubelet/kubeadm-flags.env var/lib/etcd etc/kubernetes/manifests")
    modes = {line.split()[1]: line.split()[0] for line in listing.splitlines()}
    for conf in ("admin", "super-admin", "kubelet", "controller-manager", "scheduler"):
        assert modes[f"etc/kubernetes/{conf}.conf"] == "600"
    for m in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert modes[f"etc/kubernetes/manifests/{m}.yaml"] == "600"
    for name, mode in modes.items():
        if name.endswith(".key"):
            assert mode == "600", name
        elif name.endswith(".crt"):
            assert mode == "644", name
    assert modes["etc/kubernetes/pki/sa.pub"] == "600"
    assert modes["var/lib/etcd"] == "700"
    assert modes["var/lib/kubelet/config.yaml"] == "644"


def test_real_etcd_is_healthy_with_kubefabs_certs(lab, initialized):
    r = lab.exec("node1", ["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={PKI}/etcd/ca.crt",
                           f"--cert={PKI}/etcd/healthcheck-client.crt", f"--key={PKI}/etcd/healthcheck-client.key",
                           "endpoint", "health"], input=None)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0 and "is healthy" in out, out


def test_kubectl_readyz_through_admin_conf(lab, initialized):
    assert kubectl(lab, initialized["admin"], "get", "--raw", "/readyz").strip() == "ok"


def test_cluster_objects(lab, initialized):
    admin = initialized["admin"]
    cm = kget(lab, admin, "configmap", "-n", "kube-system", "kubeadm-config")
    cfg = yaml.safe_load(cm["data"]["ClusterConfiguration"])
    assert cfg["apiVersion"] == "kubeadm.k8s.io/v1beta4" and cfg["kind"] == "ClusterConfiguration"
    kubelet = kget(lab, admin, "configmap", "-n", "kube-system", "kubelet-config")
    assert "kubeadm.kubernetes.io/component-config.hash" in kubelet["metadata"]["annotations"]
    for kind, ns, name in [("role", "kube-system", "kubeadm:nodes-kubeadm-config"),
                           ("rolebinding", "kube-system", "kubeadm:kubelet-config"),
                           ("role", "kube-system", "kubeadm:kubeadm-certs"),
                           ("clusterrolebinding", "", "kubeadm:kubelet-bootstrap"),
                           ("clusterrole", "", "kubeadm:get-nodes"),
                           ("clusterrolebinding", "", "kubeadm:node-autoapprove-bootstrap"),
                           ("clusterrolebinding", "", "kubeadm:node-autoapprove-certificate-rotation"),
                           ("clusterrolebinding", "", "kubeadm:cluster-admins"),
                           ("role", "kube-public", "kubeadm:bootstrap-signer-clusterinfo"),
                           ("deployment", "kube-system", "coredns"), ("service", "kube-system", "kube-dns"),
                           ("daemonset", "kube-system", "kube-proxy"), ("configmap", "kube-system", "kube-proxy")]:
        args = [kind, name] + (["-n", ns] if ns else [])
        assert kget(lab, admin, *args)["metadata"]["name"] == name
    node = kget(lab, admin, "node", "node1")
    assert "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
    assert "node.kubernetes.io/exclude-from-external-load-balancers" in node["metadata"]["labels"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in node["spec"]["taints"]


def test_cluster_info_is_signed_for_the_token(lab, initialized):
    join = yaml.safe_load((initialized["state"] / "join.yaml").read_text())
    token = join["tokens"][0]
    token_id, secret = token.split(".")
    deadline = time.monotonic() + 30
    while True:  # the controller manager signs it asynchronously
        ci = kget(lab, initialized["admin"], "configmap", "-n", "kube-public", "cluster-info")
        if f"jws-kubeconfig-{token_id}" in ci["data"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    jws = ci["data"][f"jws-kubeconfig-{token_id}"]
    assert bootstrap.verify_detached_jws(jws, ci["data"]["kubeconfig"], token_id, secret)
    sec = kget(lab, initialized["admin"], "secret", "-n", "kube-system", f"bootstrap-token-{token_id}")
    assert sec["type"] == "bootstrap.kubernetes.io/token"


def test_kubeadm_certs_decrypts_to_the_hosts_keys(lab, initialized):
    r = initialized["result"]
    lines = r.out.splitlines()
    key = lines[lines.index("[upload-certs] Using certificate key:") + 1]
    secret = kget(lab, initialized["admin"], "secret", "-n", "kube-system", "kubeadm-certs")
    files = bootstrap.decrypt_kubeadm_certs(secret, key)
    ca_key = lab.exec("node1", ["cat", f"{PKI}/ca.key"]).stdout
    assert files["ca.key"] == ca_key
    assert files["etcd/ca.crt"] == lab.exec("node1", ["cat", f"{PKI}/etcd/ca.crt"]).stdout


def _host_snapshot(lab) -> dict[str, str]:
    out = host_sh(lab, "node1", "find /etc/kubernetes /var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env "
                                "/etc/systemd/system/kubelet.service.d -type f -exec stat -c '%Y %a %n' {} + "
                                "-exec sha256sum {} +")
    return dict(sorted((line.rsplit(" ", 1)[-1] + ":" + str(i), line) for i, line in enumerate(out.splitlines())))


def _resource_versions(lab, admin: Path) -> dict[str, str]:
    rvs = {}
    for kind, ns in [("configmaps", "kube-system"), ("secrets", "kube-system"), ("configmaps", "kube-public"),
                     ("clusterrolebindings", ""), ("roles", "kube-system"), ("rolebindings", "kube-system"),
                     ("deployments", "kube-system"), ("daemonsets", "kube-system"), ("services", "kube-system")]:
        items = kget(lab, admin, kind, *(["-n", ns] if ns else []))["items"]
        for it in items:
            if kind == "configmaps" and it["metadata"]["name"] == "cluster-info":
                continue  # the controller manager re-signs it; kubefab does not touch it
            # a Deployment's or DaemonSet's status (its controller's) changes its resourceVersion
            # while CoreDNS and kube-proxy start: their spec's generation says whether it was written
            field = "generation" if kind in ("deployments", "daemonsets") else "resourceVersion"
            rvs[f"{kind}/{ns}/{it['metadata']['name']}"] = it["metadata"][field]
    return rvs


def test_second_run_changes_nothing(lab, initialized):
    before_files = _host_snapshot(lab)
    before_rv = _resource_versions(lab, initialized["admin"])
    r = fab(lab, "-H", "node1", "init", "--upload-certs", "--inventory", str(initialized["inv"]),
            "--state-dir", str(initialized["state"]))
    assert r.returncode == 0, r.out + r.err
    assert re.search(r": 0 changed, \d+ unchanged", r.err), r.err
    assert _host_snapshot(lab) == before_files
    assert _resource_versions(lab, initialized["admin"]) == before_rv
    # every file was already in place (facts): nothing uploaded, no round trip for the batch
    batch = re.search(r"^node1\s+certs, kubeconfig, etcd, control-plane, kubelet-start\s+\S+\s+(\d+)\s", r.err, re.M)
    assert batch and batch.group(1) == "0", r.err
    total = sum(int(m) for m in re.findall(r"^node1\s+.*?\s+\d+\.\d+s\s+(\d+)\s", r.err, re.M))
    assert total <= 2, r.err  # the host lock with the facts, the host-side waits, and nothing else


def test_rerun_starts_a_stopped_kubelet(lab, initialized):
    """Files unchanged, but the kubelet was stopped: a re-run starts it (kubeadm always does)."""
    assert lab.exec("node1", ["systemctl", "stop", "kubelet"]).returncode == 0
    r = fab(lab, "-H", "node1", "init", "--upload-certs", "--inventory", str(initialized["inv"]),
            "--state-dir", str(initialized["state"]))
    assert r.returncode == 0, r.out + r.err
    assert lab.exec("node1", ["systemctl", "is-active", "kubelet"]).stdout.decode().strip() == "active"
    assert kubectl(lab, initialized["admin"], "get", "--raw", "/readyz").strip() == "ok"


def test_dry_run_shows_unchanged_with_reasons(lab, initialized):
    r = fab(lab, "-H", "node1", "init", "--dry-run", "--inventory", str(initialized["inv"]),
            "--state-dir", str(initialized["state"]))
    assert r.returncode == 0, r.out + r.err
    assert "unchanged: write /etc/kubernetes/pki/ca.crt" in r.out and "same sha256 and mode" in r.out
    assert "create:" not in r.out and "update:" not in r.out
    no_secrets(r.out + r.err)


# --- failures ------------------------------------------------------------------------------------
def test_unreachable_host_is_named_within_the_connect_timeout(lab, tmp_path):
    gone = address(lab, "node1").rsplit(".", 1)[0] + ".250"
    inv = make_inventory(lab, tmp_path, hosts={"ghost": {"address": gone, "roles": ["control-plane"]}})
    t0 = time.monotonic()
    r = fab(lab, "-H", "ghost", "init", "--inventory", str(inv), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1
    assert time.monotonic() - t0 < 30
    assert "ghost" in r.err and gone in r.err
    no_secrets(r.out + r.err)


def test_unknown_host_key_is_refused(lab, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inv = make_inventory(lab, tmp_path, hosts={"node2": {"address": address(lab, "node2"), "roles": ["control-plane"]}},
                         ssh={"known_hosts": str(empty), "ssh_config": None})
    r = fab(lab, "-H", "node2", "init", "--inventory", str(inv), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1
    assert "host key" in r.err.lower() and "node2" in r.err
    no_secrets(r.out + r.err)
    assert lab.exec("node2", ["test", "-e", "/etc/kubernetes/pki/ca.crt"]).returncode != 0


def test_preflight_lists_every_failure_and_writes_nothing(lab, tmp_path):
    listener = ("import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                "s.bind(('0.0.0.0',6443));s.listen();time.sleep(600)")
    lab.exec("node3", ["sh", "-c", f"setsid python3 -c \"{listener}\" </dev/null >/dev/null 2>&1 &"])
    lab.exec("node3", ["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"])
    time.sleep(0.5)
    # without the lab's skip of SystemVerification, which fails on a cgroup v1 machine as kubeadm's does
    inv = make_inventory(lab, tmp_path, hosts={"node3": {"address": address(lab, "node3"), "roles": ["control-plane"]}},
                         init_extra={"nodeRegistration": {}})
    r = fab(lab, "-H", "node3", "init", "--inventory", str(inv), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1
    assert "[ERROR Port-6443]" in r.err and "[ERROR FileContent--proc-sys-net-ipv4-ip_forward]" in r.err
    cgroup_v1 = Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    assert ("[ERROR SystemVerification]" in r.err) is cgroup_v1
    assert "--ignore-preflight-errors=" in r.err
    no_secrets(r.out + r.err)
    assert host_sh(lab, "node3", "ls -A /etc/kubernetes").strip() == ""
    lab.exec("node3", ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward; pkill -f 'bind..0.0.0.0.,6443' || true"])


def test_wrong_sudo_password(lab, tmp_path):
    if not shutil.which("sudo"):
        pytest.fail("sudo is not installed: run scripts/ensure-apt.sh (it installs sudo)")
    setup = ("id kfadmin >/dev/null 2>&1 || useradd -m -s /bin/sh kfadmin; echo 'kfadmin:right-pass' | chpasswd; "
             "mkdir -p /home/kfadmin/.ssh; cp /root/.ssh/authorized_keys /home/kfadmin/.ssh/; "
             "chown -R kfadmin /home/kfadmin/.ssh; echo 'kfadmin ALL=(ALL) ALL' > /etc/sudoers.d/kfadmin; "
             "chmod 0440 /etc/sudoers.d/kfadmin")
    host_sh(lab, "node4", setup)
    inv = make_inventory(lab, tmp_path, hosts={"node4": {"address": address(lab, "node4"), "roles": ["control-plane"],
                                                         "user": "kfadmin"}})
    r = fab(lab, "-H", "node4", "init", "--prompt-for-sudo-password", "--inventory", str(inv),
            "--state-dir", str(tmp_path / "s"), stdin=b"wrong-pass\n")
    assert r.returncode == 1
    assert "sudo" in r.err.lower() and "node4" in r.err
    assert "wrong-pass" not in r.out + r.err
    no_secrets(r.out + r.err)


def test_api_that_never_becomes_ready_times_out_with_evidence(lab, tmp_path):
    # etcd refuses an unknown flag, so the API server never becomes ready
    inv = make_inventory(lab, tmp_path, hosts={"node2": {"address": address(lab, "node2"), "roles": ["control-plane"]}},
                         init_extra={"timeouts": {"controlPlaneComponentHealthCheck": "15s"}})
    cfg = tmp_path / "kubeadm.yaml"
    docs = list(yaml.safe_load_all(cfg.read_text()))
    for doc in docs:
        if doc.get("kind") == "ClusterConfiguration":
            doc.setdefault("etcd", {}).setdefault("local", {})["extraArgs"] = [{"name": "no-such-flag", "value": "1"}]
    cfg.write_text(yaml.safe_dump_all(docs))
    t0 = time.monotonic()
    r = fab(lab, "-H", "node2", "init", "--inventory", str(inv), "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1
    assert time.monotonic() - t0 < 120
    assert "wait-control-plane" in r.err and "15s" in r.err
    assert "etcd" in r.err  # the tail of the etcd log is shown
    no_secrets(r.out + r.err)


def test_token_create_list_delete(lab, initialized):
    common = ["--inventory", str(initialized["inv"]), "--state-dir", str(initialized["state"])]
    r = fab(lab, "token.create", "--ttl", "2h", "--description", "lab test", *common)
    assert r.returncode == 0, r.err
    token = r.out.strip()
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token)
    token_id = token.split(".")[0]
    sec = kget(lab, initialized["admin"], "secret", "-n", "kube-system", f"bootstrap-token-{token_id}")
    assert sec["type"] == "bootstrap.kubernetes.io/token"
    listed = fab(lab, "token.list", *common)
    assert listed.returncode == 0 and f"{token_id}.<redacted>" in listed.out and "lab test" in listed.out
    assert token.split(".")[1] not in listed.out + listed.err
    assert fab(lab, "token.list", "--show-secrets", *common).out.count(token) == 1
    r = fab(lab, "token.delete", "--token", token_id, *common)
    assert r.returncode == 0, r.err
    assert token_id not in fab(lab, "token.list", *common).out
    r = fab(lab, "token.delete", "--token", token_id, *common)
    assert r.returncode == 1 and "not found" in r.err and "Traceback" not in r.err


def test_machine_readable_output_version_and_the_operator_kubeconfig(lab, initialized, tmp_path):
    """Issue 16 on the real cluster: -o json documents, fab version, fab kubeconfig.admin."""
    common = ["--inventory", str(initialized["inv"]), "--state-dir", str(initialized["state"])]
    r = fab(lab, "-H", "node1", "init", "--upload-certs", "-o", "json", *common)
    assert r.returncode == 0, r.out + r.err
    doc = json.loads(r.out)  # stdout is the document alone; the join commands went to stderr
    assert doc["kind"] == "RunSummary" and doc["result"] == "ok" and doc["dryRun"] is False
    assert doc["hosts"][0]["host"] == "node1" and doc["hosts"][0]["changed"] == 0
    assert "kubeadm join" in r.err
    no_secrets(r.out + r.err)
    listed = json.loads(fab(lab, "token.list", "-o", "json", *common).out)
    assert listed["kind"] == "BootstrapTokenList" and all(i["token"].endswith(".<redacted>") for i in listed["items"])
    r = fab(lab, "-H", "node1", "version", "-o", "json", *common)
    assert r.returncode == 0, r.err
    version = json.loads(r.out)
    assert version["cluster"]["serverVersion"].startswith("v1.") and version["cluster"]["nodes"][0]["name"] == "node1"
    kc = tmp_path / "admin.kubeconfig"
    r = fab(lab, "kubeconfig.admin", "--output-file", str(kc), *common)
    assert r.returncode == 0, r.err
    assert r.out.strip() == f"kubectl --kubeconfig {kc} get nodes" and (kc.stat().st_mode & 0o777) == 0o600
    assert "node1" in kubectl(lab, kc, "get", "nodes")
