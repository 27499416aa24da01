"""The systemctl stand-in, the lab kubelet and the crictl stand-in on lab hosts (issue 5).

- systemctl starts, reports and stops the lab kubelet through kubeadm's drop-in;
- with kubeadm-style etcd manifests and certificates on three hosts, the lab
  kubelets run a 3-member TLS etcd cluster that the real etcdctl finds healthy
  (with the healthcheck-client certificate); removing a manifest stops that
  member, changing one restarts it;
- as with a real kubelet, the pods outlive the kubelet: a restarted kubelet adopts
  them (same pid, no interruption) and syncs them as before, a pod that died while
  it was down is started again, and only crictl (``rmp --all --force``, as kubeadm
  reset removes containers through the CRI) removes them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tasks.core.manifests import render_kubelet_dropin
from tests.lab.fixtures import lab  # noqa: F401
from tests.lab.hosts import Lab

pytestmark = pytest.mark.lab

PKI = "/etc/kubernetes/pki"
MANIFESTS = "/etc/kubernetes/manifests"
CRI = "unix:///var/run/containerd/containerd.sock"  # kubeadm's default criSocket
# What kubefab's reset runs once the kubelet is stopped; tests clean up the same way.
RMP_ALL = f"crictl --runtime-endpoint {CRI} rmp --all --force"

# The drop-in kubefab's kubelet-start writes (kubeadm's 10-kubeadm.conf).
DROPIN = render_kubelet_dropin().decode()
FLAGS_ENV = 'KUBELET_KUBEADM_ARGS="--node-ip={ip} --hostname-override={name}"\n'
KUBELET_CONFIG = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
    "staticPodPath": MANIFESTS, "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
    "authentication": {"x509": {"clientCAFile": f"{PKI}/ca.crt"}},
}


def wait_for(what: str, check: Callable[[], object], timeout: float = 30.0, every: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def install_kubelet(lab: Lab, host: str, address: str) -> None:
    """What kubefab's kubelet-start leaves on a host: config, flags, drop-in."""
    lab.put(host, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", DROPIN)
    lab.put(host, "/var/lib/kubelet/kubeadm-flags.env", FLAGS_ENV.format(ip=address, name=host))
    lab.put(host, "/var/lib/kubelet/config.yaml", yaml.safe_dump(KUBELET_CONFIG))
    lab.exec(host, ["mkdir", "-p", MANIFESTS], check=True)


def addresses(lab: Lab) -> dict[str, str]:
    return {h["name"]: h["address"] for h in lab.status()["hosts"]}


def crictl(lab: Lab, host: str, args: str) -> subprocess.CompletedProcess:
    return lab.ssh(host, f"crictl --runtime-endpoint {CRI} {args}")


def table_rows(out: bytes) -> list[dict[str, str]]:
    """Rows of a crictl table, cut at the header's column starts."""
    header, *lines = out.decode().splitlines()
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for start, _ in starts[1:]] + [None]
    return [{name: line[start:end].strip() for (start, name), end in zip(starts, ends)} for line in lines]


def kubelet_log(lab: Lab, host: str) -> str:
    return lab.exec(host, ["cat", "/var/log/kubefab-lab/kubelet.service.log"]).stdout.decode()


def changed(get: Callable[[], str], *old: str) -> Callable[[], str | None]:
    """For wait_for: the value of ``get()`` once it is neither empty nor one of ``old``."""
    def check() -> str | None:
        value = get()
        return value if value not in ("", *old) else None
    return check


def kubelet_pid(lab: Lab, host: str) -> str:
    return lab.exec(host, ["systemctl", "show", "-p", "MainPID", "--value", "kubelet"]).stdout.decode().strip()


def test_systemctl_runs_the_lab_kubelet_through_the_kubeadm_dropin(lab: Lab) -> None:
    host = "node4"
    install_kubelet(lab, host, addresses(lab)[host])
    ssh = lambda cmd: lab.ssh(host, cmd)  # noqa: E731
    assert ssh("systemctl is-enabled kubelet").stdout == b"disabled\n"
    assert ssh("systemctl enable kubelet").returncode == 0
    assert ssh("systemctl is-enabled kubelet").stdout == b"enabled\n"
    inactive = ssh("systemctl is-active kubelet")
    assert (inactive.returncode, inactive.stdout) == (3, b"inactive\n")
    assert ssh("systemctl daemon-reload && systemctl start kubelet").returncode == 0
    try:
        active = ssh("systemctl is-active kubelet")
        assert (active.returncode, active.stdout) == (0, b"active\n")
        wait_for("kubelet /healthz", lambda: ssh("curl -sf http://127.0.0.1:10248/healthz").stdout == b"ok")
        status = ssh("systemctl status kubelet").stdout.decode()
        assert "Drop-In: /etc/systemd/system/kubelet.service.d" in status and "10-kubeadm.conf" in status
        main_pid = ssh("systemctl show -p MainPID --value kubelet").stdout.decode().strip()
        argv = ssh(f"tr '\\0' ' ' < /proc/{main_pid}/cmdline").stdout.decode()
        # $VAR words expanded and split as systemd does, flags file included.
        for flag in ("--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml",
                     f"--hostname-override={host}", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf"):
            assert f" {flag} " in f" {argv} ", argv
        assert ssh("kubelet --version").stdout == b"Kubernetes v1.36.0\n"
        # Restart=always: the kubelet comes back when it dies.
        ssh(f"kill -9 {main_pid}")
        new_pid = wait_for("kubelet restarted by Restart=always", lambda: (
            lambda p: p if p not in ("", "0", main_pid) else None)(
            ssh("systemctl show -p MainPID --value kubelet").stdout.decode().strip()), timeout=15)
        assert new_pid != main_pid
    finally:
        stopped = ssh("systemctl stop kubelet")
    assert stopped.returncode == 0
    after = ssh("systemctl is-active kubelet")
    assert (after.returncode, after.stdout) == (3, b"inactive\n")
    assert ssh("curl -sf http://127.0.0.1:10248/healthz").returncode != 0
    assert ssh("pgrep -f tests.lab.kubelet").returncode == 1
    unknown = ssh("systemctl is-enabled no-such-unit")
    assert (unknown.returncode, unknown.stdout) == (4, b"not-found\n")
    assert ssh("systemctl start no-such-unit").returncode == 5


# ---------------------------------------------------------------------------- etcd PKI
class EtcdPki:
    """kubeadm-style etcd certificates (reference section 1), ECDSA P-256 for speed."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
        self.ca = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self.now).not_valid_after(self.now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, True, False, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("etcd-ca")]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )

    def leaf(self, cn: str, usages: list, sans: list | None = None) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now).not_valid_after(self.now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
        )
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.ca_key, hashes.SHA256())
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))

    def ca_pem(self) -> bytes:
        return self.ca.public_bytes(serialization.Encoding.PEM)

    def node_files(self, node: str, address: str) -> dict[str, tuple[bytes, int]]:
        # etcd/server and etcd/peer: CN=<node>, DNS <node>+localhost, IP <adv>, 127.0.0.1, ::1.
        sans = [x509.DNSName(node), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(address)),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
        both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        files = {f"{PKI}/etcd/ca.crt": (self.ca_pem(), 0o644)}
        for base in ("server", "peer"):
            crt, key = self.leaf(node, both, sans)
            files[f"{PKI}/etcd/{base}.crt"] = (crt, 0o644)
            files[f"{PKI}/etcd/{base}.key"] = (key, 0o600)
        return files


def etcd_manifest(node: str, address: str, cluster: str, extra: tuple[str, ...] = ()) -> str:
    """The etcd static pod kubeadm 1.36 renders (reference section 3), etcd-3.6 flags included."""
    command = [
        "etcd", f"--advertise-client-urls=https://{address}:2379", f"--cert-file={PKI}/etcd/server.crt",
        "--client-cert-auth=true", "--data-dir=/var/lib/etcd", "--feature-gates=InitialCorruptCheck=true",
        f"--initial-advertise-peer-urls=https://{address}:2380", f"--initial-cluster={cluster}",
        f"--key-file={PKI}/etcd/server.key",
        f"--listen-client-urls=https://127.0.0.1:2379,https://{address}:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381", f"--listen-peer-urls=https://{address}:2380",
        f"--name={node}", f"--peer-cert-file={PKI}/etcd/peer.crt", "--peer-client-cert-auth=true",
        f"--peer-key-file={PKI}/etcd/peer.key", f"--peer-trusted-ca-file={PKI}/etcd/ca.crt",
        "--snapshot-count=10000", f"--trusted-ca-file={PKI}/etcd/ca.crt", "--watch-progress-notify-interval=5s",
        *extra,
    ]
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd", "namespace": "kube-system",
                     "labels": {"component": "etcd", "tier": "control-plane"},
                     "annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls": f"https://{address}:2379"}},
        "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                 "containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.6.5-0",
                                 "imagePullPolicy": "IfNotPresent", "command": command,
                                 "volumeMounts": [{"name": "etcd-data", "mountPath": "/var/lib/etcd"},
                                                  {"name": "etcd-certs", "mountPath": f"{PKI}/etcd"}]}],
                 "volumes": [{"name": "etcd-data", "hostPath": {"path": "/var/lib/etcd", "type": "DirectoryOrCreate"}},
                             {"name": "etcd-certs", "hostPath": {"path": f"{PKI}/etcd", "type": "DirectoryOrCreate"}}]},
    }
    return yaml.safe_dump(pod, sort_keys=False)


NODES = ("node1", "node2", "node3")


@pytest.fixture(scope="module")
def etcd_cluster(lab: Lab) -> Iterator[dict]:
    """Three control-plane hosts whose lab kubelets run etcd from kubeadm-style manifests."""
    addr = addresses(lab)
    pki = EtcdPki()
    cluster = ",".join(f"{n}=https://{addr[n]}:2380" for n in NODES)
    client_dir = Path(tempfile.mkdtemp(prefix="kubefab-lab-etcd-"))
    crt, key = pki.leaf("kube-etcd-healthcheck-client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    (client_dir / "ca.crt").write_bytes(pki.ca_pem())
    (client_dir / "healthcheck-client.crt").write_bytes(crt)
    (client_dir / "healthcheck-client.key").write_bytes(key)
    (client_dir / "healthcheck-client.key").chmod(0o600)
    for n in NODES:
        for path, (data, mode) in pki.node_files(n, addr[n]).items():
            lab.put(n, path, data, mode)
        install_kubelet(lab, n, addr[n])
        lab.put(n, f"{MANIFESTS}/etcd.yaml", etcd_manifest(n, addr[n], cluster), 0o600)
    for n in NODES:
        assert lab.ssh(n, "systemctl start kubelet").returncode == 0
    ctx = {"addr": addr, "cluster": cluster, "client": client_dir}
    try:
        yield ctx
    finally:
        for n in NODES:
            lab.ssh(n, f"systemctl stop kubelet; {RMP_ALL}; rm -rf {MANIFESTS}/* /var/lib/etcd/* {PKI}")
        shutil.rmtree(client_dir, ignore_errors=True)
        for n in NODES:
            wait_for(f"no etcd left on {n}", lambda n=n: etcd_pid(lab, n) == "", timeout=10)


def etcdctl(lab: Lab, ctx: dict, *args: str, endpoints: tuple[str, ...] = NODES):
    c = ctx["client"]
    eps = ",".join(f"https://{ctx['addr'][n]}:2379" for n in endpoints)
    return lab.sw(["etcdctl", f"--endpoints={eps}", f"--cacert={c}/ca.crt", f"--cert={c}/healthcheck-client.crt",
                   f"--key={c}/healthcheck-client.key", "--dial-timeout=2s", "--command-timeout=3s", *args],
                  timeout=30)


def healthy(lab: Lab, ctx: dict, nodes: tuple[str, ...] = NODES) -> bool:
    out = etcdctl(lab, ctx, "endpoint", "health", endpoints=nodes)
    text = (out.stdout + out.stderr).decode()
    return out.returncode == 0 and text.count("is healthy") == len(nodes)


def etcd_pid(lab: Lab, node: str) -> str:
    return lab.exec(node, ["pgrep", "-x", "etcd"]).stdout.decode().strip()


def test_lab_kubelets_run_a_three_member_tls_etcd(lab: Lab, etcd_cluster: dict) -> None:
    wait_for("a healthy 3-member etcd", lambda: healthy(lab, etcd_cluster), timeout=45, every=0.5)
    members = etcdctl(lab, etcd_cluster, "member", "list").stdout.decode()
    assert sorted(re.findall(r", started, (node\d), ", members)) == list(NODES)
    # The shim rewrote kubeadm 1.34+ etcd-3.6 flags for Debian's etcd 3.4, and said so.
    argv = lab.exec("node1", ["sh", "-c", "tr '\\0' ' ' < /proc/$(pgrep -x etcd)/cmdline"]).stdout.decode()
    assert "--experimental-initial-corrupt-check=true" in argv and "--feature-gates" not in argv
    assert "--experimental-watch-progress-notify-interval=5s" in argv
    logs = lab.exec("node1", ["cat", "/var/log/kubefab-lab/kubelet.service.log"]).stdout.decode()
    assert "lab shim for etcd" in logs
    pod_logs = lab.exec("node1", ["sh", "-c", "ls -d /var/log/pods/kube-system_etcd_*/etcd/0.log"])
    assert pod_logs.returncode == 0, "no per-pod log"


def test_changing_a_manifest_restarts_and_removing_one_stops_the_member(lab: Lab, etcd_cluster: dict) -> None:
    wait_for("a healthy 3-member etcd", lambda: healthy(lab, etcd_cluster), timeout=45, every=0.5)
    addr = etcd_cluster["addr"]
    before = etcd_pid(lab, "node2")
    assert before
    lab.put("node2", f"{MANIFESTS}/etcd.yaml",
            etcd_manifest("node2", addr["node2"], etcd_cluster["cluster"], extra=("--heartbeat-interval=100",)), 0o600)
    wait_for("etcd on node2 restarted", lambda: etcd_pid(lab, "node2") not in ("", before), timeout=20)
    argv = lab.exec("node2", ["sh", "-c", "tr '\\0' ' ' < /proc/$(pgrep -x etcd)/cmdline"]).stdout.decode()
    assert "--heartbeat-interval=100" in argv
    wait_for("etcd healthy after the restart", lambda: healthy(lab, etcd_cluster), timeout=30, every=0.5)

    lab.exec("node3", ["rm", f"{MANIFESTS}/etcd.yaml"], check=True)
    wait_for("etcd on node3 stopped", lambda: etcd_pid(lab, "node3") == "", timeout=20)
    assert not healthy(lab, etcd_cluster, nodes=("node3",))
    wait_for("the other two members still serve",
             lambda: healthy(lab, etcd_cluster, nodes=("node1", "node2")), timeout=15, every=0.5)
    put = etcdctl(lab, etcd_cluster, "put", "kubefab-lab", "quorum", endpoints=("node1", "node2"))
    assert put.returncode == 0, put.stderr


def test_a_dead_static_pod_is_restarted(lab: Lab, etcd_cluster: dict) -> None:
    wait_for("etcd on node1", lambda: etcd_pid(lab, "node1"), timeout=30)
    before = etcd_pid(lab, "node1")
    lab.exec("node1", ["kill", "-9", before], check=True)
    wait_for("etcd on node1 restarted after it died",
             lambda: etcd_pid(lab, "node1") not in ("", before), timeout=20)


def test_a_restarted_kubelet_keeps_its_pods_running_and_adopts_them(lab: Lab, etcd_cluster: dict) -> None:
    """`systemctl restart kubelet` does not touch the containers: etcd keeps its pid and keeps
    serving throughout; the new kubelet adopts it, then still restarts it when its manifest
    changes and stops it when its manifest is removed."""
    node, addr = "node1", etcd_cluster["addr"]
    wait_for("etcd on node1 serving", lambda: healthy(lab, etcd_cluster, nodes=(node,)), timeout=30, every=0.5)
    before, old_kubelet = etcd_pid(lab, node), kubelet_pid(lab, node)
    done: list[subprocess.CompletedProcess] = []
    restart = threading.Thread(target=lambda: done.append(lab.ssh(node, "systemctl restart kubelet")))
    restart.start()
    probes = []
    while restart.is_alive() or len(probes) < 3:  # no blink: same process, answering, all along
        probes.append((etcd_pid(lab, node), healthy(lab, etcd_cluster, nodes=(node,))))
    restart.join()
    assert done[0].returncode == 0, done[0].stderr
    assert probes == [(before, True)] * len(probes), probes
    assert kubelet_pid(lab, node) not in ("", "0", old_kubelet)
    wait_for("the new kubelet adopted etcd", lambda: f"adopted running pid {before}" in kubelet_log(lab, node))
    wait_for("the new kubelet's /healthz",
             lambda: lab.ssh(node, "curl -sf http://127.0.0.1:10248/healthz").stdout == b"ok", timeout=15)
    time.sleep(1.2)  # past the first syncs after adoption: the new kubelet leaves the adopted pod alone
    assert etcd_pid(lab, node) == before and healthy(lab, etcd_cluster, nodes=(node,))
    rows = table_rows(crictl(lab, node, "ps").stdout)
    assert [(r["NAME"], r["STATE"], r["POD"]) for r in rows] == [("etcd", "Running", "etcd-node1")]

    # The adopted pod's manifest changes: restarted with the new command line.
    lab.put(node, f"{MANIFESTS}/etcd.yaml",
            etcd_manifest(node, addr[node], etcd_cluster["cluster"], extra=("--election-timeout=1500",)), 0o600)
    wait_for("etcd on node1 restarted", lambda: etcd_pid(lab, node) not in ("", before), timeout=20)
    changed = etcd_pid(lab, node)
    argv = lab.exec(node, ["sh", "-c", "tr '\\0' ' ' < /proc/$(pgrep -x etcd)/cmdline"]).stdout.decode()
    assert "--election-timeout=1500" in argv
    # Adopted once more, then its manifest is removed: stopped, and gone from crictl's list.
    assert lab.ssh(node, "systemctl restart kubelet").returncode == 0
    wait_for("the new kubelet adopted etcd again", lambda: f"adopted running pid {changed}" in kubelet_log(lab, node))
    assert etcd_pid(lab, node) == changed
    lab.exec(node, ["rm", f"{MANIFESTS}/etcd.yaml"], check=True)
    wait_for("etcd on node1 stopped", lambda: etcd_pid(lab, node) == "", timeout=20)
    wait_for("crictl lists no pod", lambda: crictl(lab, node, "pods -q").stdout == b"", timeout=5)


def test_a_pod_that_died_while_the_kubelet_was_down_is_started_again(lab: Lab, etcd_cluster: dict) -> None:
    node = "node2"
    before = wait_for("etcd on node2", lambda: etcd_pid(lab, node), timeout=30)
    assert lab.ssh(node, "systemctl stop kubelet").returncode == 0
    assert etcd_pid(lab, node) == before, "a stopped kubelet leaves its pods running"
    lab.exec(node, ["kill", "-9", before], check=True)
    wait_for("etcd on node2 gone", lambda: etcd_pid(lab, node) == "", timeout=10)
    (exited,) = table_rows(crictl(lab, node, "ps -a").stdout)
    assert (exited["NAME"], exited["STATE"]) == ("etcd", "Exited")
    assert lab.ssh(node, "systemctl start kubelet").returncode == 0
    started = wait_for("etcd on node2 started again", changed(lambda: etcd_pid(lab, node), before), timeout=20)
    rows = table_rows(crictl(lab, node, "ps").stdout)
    assert [(r["NAME"], r["STATE"], r["ATTEMPT"]) for r in rows] == [
        ("etcd", "Running", str(int(exited["ATTEMPT"]) + 1))]
    assert rows[0]["CONTAINER"] != exited["CONTAINER"]  # a new container
    # An adopted container that dies is restarted too (the usual back-off).
    assert lab.ssh(node, "systemctl restart kubelet").returncode == 0
    wait_for("etcd adopted", lambda: f"adopted running pid {started}" in kubelet_log(lab, node))
    lab.exec(node, ["kill", "-9", str(started)], check=True)
    wait_for("the adopted etcd restarted after it died",
             lambda: etcd_pid(lab, node) not in ("", started), timeout=20)
    assert "container etcd exited with -1" in kubelet_log(lab, node)  # no exit status for an adopted process


def put_scheduler_pod(lab: Lab, host: str) -> str:
    """kube-scheduler's kubeconfig and static pod manifest; returns the kubeconfig path."""
    conf = "/etc/kubernetes/scheduler.conf"
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "default",
                  "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443",
                                                            "insecure-skip-tls-verify": True}}],
                  "users": [{"name": "scheduler", "user": {"token": "not-a-real-token"}}],
                  "contexts": [{"name": "default", "context": {"cluster": "lab", "user": "scheduler"}}]}
    lab.put(host, conf, yaml.safe_dump(kubeconfig), 0o600)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "kube-scheduler", "namespace": "kube-system",
                        "labels": {"component": "kube-scheduler", "tier": "control-plane"}},
           "spec": {"hostNetwork": True, "containers": [{
               "name": "kube-scheduler", "image": "registry.k8s.io/kube-scheduler:v1.36.0",
               "command": ["kube-scheduler", f"--authentication-kubeconfig={conf}",
                           f"--authorization-kubeconfig={conf}", "--bind-address=127.0.0.1",
                           f"--kubeconfig={conf}", "--leader-elect=true"]}]}}
    lab.put(host, f"{MANIFESTS}/kube-scheduler.yaml", yaml.safe_dump(pod), 0o600)
    return conf


def scheduler_live(lab: Lab, host: str) -> bool:
    return lab.ssh(host, "curl -sk https://127.0.0.1:10259/livez").stdout == b"ok"


def test_lab_kubelet_runs_a_control_plane_standin_from_its_manifest(lab: Lab) -> None:
    """kube-scheduler's manifest -> `<python> -m tests.lab.standins.scheduler <its flags>` on the host."""
    host = "node4"
    install_kubelet(lab, host, addresses(lab)[host])
    conf = put_scheduler_pod(lab, host)
    try:
        assert lab.ssh(host, "systemctl start kubelet").returncode == 0
        wait_for("the scheduler stand-in's /livez", lambda: scheduler_live(lab, host), timeout=30)
        argv = lab.exec(host, ["sh", "-c", "tr '\\0' ' ' < /proc/$(pgrep -f 'standins[.]scheduler')/cmdline"])
        assert "-m tests.lab.standins.scheduler --authentication-kubeconfig=" in argv.stdout.decode()
    finally:
        lab.ssh(host, f"systemctl stop kubelet; {RMP_ALL}; rm -f {MANIFESTS}/kube-scheduler.yaml {conf}")
    assert lab.ssh(host, "pgrep -f 'standins[.]scheduler'").returncode == 1, "crictl rmp must remove the pod"


SLEEPER = yaml.safe_dump({
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper", "namespace": "kube-system"},
    "spec": {"hostNetwork": True, "containers": [{"name": "sleeper", "image": "registry.k8s.io/pause:3.10",
                                                  "command": ["sleep", "3600"]}]}})


def test_crictl_lists_the_pods_a_stopped_kubelet_leaves_and_rmp_removes_them(lab: Lab) -> None:
    host = "node4"
    install_kubelet(lab, host, addresses(lab)[host])
    conf = put_scheduler_pod(lab, host)
    lab.put(host, f"{MANIFESTS}/sleeper.yaml", SLEEPER, 0o600)

    def sleep_pid() -> str:
        return lab.exec(host, ["pgrep", "-x", "sleep"]).stdout.decode().strip()

    def scheduler_pid() -> str:
        return lab.exec(host, ["pgrep", "-f", "standins[.]scheduler"]).stdout.decode().strip()

    try:
        assert lab.ssh(host, "systemctl start kubelet").returncode == 0
        wait_for("the scheduler stand-in's /livez", lambda: scheduler_live(lab, host), timeout=30)
        first_sleep = wait_for("the sleeper", sleep_pid, timeout=10)
        pods = crictl(lab, host, "pods")
        assert pods.returncode == 0 and re.split(rb"\s{2,}", pods.stdout.splitlines()[0]) == [
            b"POD ID", b"CREATED", b"STATE", b"NAME", b"NAMESPACE", b"ATTEMPT", b"RUNTIME"]
        assert sorted((r["NAME"], r["STATE"], r["NAMESPACE"], r["ATTEMPT"]) for r in table_rows(pods.stdout)) == [
            ("kube-scheduler-node4", "Ready", "kube-system", "0"), ("sleeper-node4", "Ready", "kube-system", "0")]
        ids = crictl(lab, host, "pods -q").stdout.decode().split()
        assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)
        ps = table_rows(crictl(lab, host, "ps").stdout)
        assert sorted((r["NAME"], r["STATE"], r["IMAGE"], r["POD"]) for r in ps) == [
            ("kube-scheduler", "Running", "registry.k8s.io/kube-scheduler:v1.36.0", "kube-scheduler-node4"),
            ("sleeper", "Running", "registry.k8s.io/pause:3.10", "sleeper-node4")]
        # Without --runtime-endpoint: crictl's deprecation warning, then the default endpoint.
        plain = lab.ssh(host, "crictl ps -q")
        assert plain.returncode == 0 and len(plain.stdout.split()) == 2
        assert b"runtime connect using default endpoints" in plain.stderr
        # A socket that is not there fails as crictl's dial does.
        bad = lab.ssh(host, "crictl -r unix:///run/no-such.sock pods")
        assert bad.returncode == 1 and b"connect: no such file or directory" in bad.stderr, bad.stderr

        # Removed while the kubelet runs and the manifest exists: the kubelet starts it again.
        sleeper_id = crictl(lab, host, "pods --name '^sleeper' -q").stdout.decode().strip()
        removed = crictl(lab, host, f"rmp -f {sleeper_id[:12]}")
        assert (removed.returncode, removed.stdout.decode()) == (
            0, f"Stopped sandbox {sleeper_id[:12]}\nRemoved sandbox {sleeper_id[:12]}\n"), removed.stderr
        second_sleep = wait_for("the sleeper started again", changed(sleep_pid, first_sleep), timeout=15)
        wait_for("the kubelet's record back in crictl's list",
                 lambda: crictl(lab, host, "pods --name '^sleeper' -q").stdout.strip() != b"", timeout=5)

        # The kubelet stops; its pods do not.
        running_scheduler = scheduler_pid()
        assert lab.ssh(host, "systemctl stop kubelet").returncode == 0
        assert lab.ssh(host, "curl -sf http://127.0.0.1:10248/healthz").returncode != 0
        assert scheduler_live(lab, host) and scheduler_pid() == running_scheduler and sleep_pid() == second_sleep
        assert [r["STATE"] for r in table_rows(crictl(lab, host, "pods").stdout)] == ["Ready", "Ready"]
        refused = crictl(lab, host, "rmp --all")
        assert refused.returncode == 1 and b"is running, please stop it first" in refused.stderr
        assert scheduler_pid() == running_scheduler

        # What kubeadm reset does through the CRI: every pod stopped and removed, no process left.
        ids = crictl(lab, host, "pods -q").stdout.decode().split()
        rmp = lab.ssh(host, RMP_ALL)
        assert rmp.returncode == 0, rmp.stderr
        assert sorted(rmp.stdout.decode().splitlines()) == sorted(
            [f"Stopped sandbox {i}" for i in ids] + [f"Removed sandbox {i}" for i in ids])
        assert scheduler_pid() == "" and sleep_pid() == ""
        assert crictl(lab, host, "pods -q").stdout == b"" and crictl(lab, host, "ps -aq").stdout == b""
        again = lab.ssh(host, RMP_ALL)
        assert again.returncode == 0 and b"No pods to remove" in again.stderr
    finally:
        lab.ssh(host, f"systemctl stop kubelet; {RMP_ALL}; rm -f {MANIFESTS}/kube-scheduler.yaml "
                      f"{MANIFESTS}/sleeper.yaml {conf}")
    assert lab.exec(host, ["pgrep", "-f", "standins[.]scheduler|^sleep "]).returncode == 1
