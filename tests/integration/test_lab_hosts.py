"""The lab's hosts (issue 5): isolation, real SSH, CLI, speed, and a clean teardown."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.fixtures import fresh_lab, lab, test_lab_dir  # noqa: F401
from tests.lab.hosts import REPO_ROOT, Lab

pytestmark = pytest.mark.lab


def _cli(lab_dir: Path | str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, KUBEFAB_LAB_DIR=str(lab_dir), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "tests.lab", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(REPO_ROOT))


@pytest.mark.parametrize("directory", ["/etc", "/root", "/tmp", "/var/lib/kubelet", "/etc/kubernetes",
                                       "/usr/local/bin", "/var/log", "/run"])
def test_file_written_on_one_host_is_absent_elsewhere(lab: Lab, directory: str) -> None:
    path = f"{directory}/kubefab-lab-{secrets.token_hex(4)}"
    wrote = lab.ssh("node1", f"echo hi > {path} && cat {path}")
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout == b"hi\n"
    other = lab.ssh("node2", f"test -e {path}")
    assert other.returncode == 1
    assert not os.path.exists(path), f"{path} leaked onto the machine"
    lab.ssh("node1", f"rm -f {path}")


def test_wrong_host_key_is_refused_by_real_ssh(lab: Lab, tmp_path: Path) -> None:
    good = lab.known_hosts.read_text().splitlines()
    keys = {line.split()[0].split(",")[0]: line.split(None, 1)[1] for line in good}
    bad = tmp_path / "known_hosts"
    addr = lab.status()["hosts"][0]["address"]
    bad.write_text(f"node1,{addr} {keys['node2']}\n")  # node2's key claimed for node1
    refused = lab.sw(["ssh", "-F", str(lab.ssh_config), "-o", f"UserKnownHostsFile={bad}", "node1", "true"])
    assert refused.returncode == 255
    assert b"Host key verification failed" in refused.stderr
    accepted = lab.ssh("node1", "true")
    assert accepted.returncode == 0, accepted.stderr


def test_each_host_has_its_own_identity_and_pid_namespace(lab: Lab) -> None:
    out = lab.ssh("node3", "hostname; cat /etc/machine-id; ps -o comm= -p 1")
    other = lab.ssh("node4", "hostname; cat /etc/machine-id")
    name, machine_id, pid1 = out.stdout.decode().split()
    assert (name, pid1) == ("node3", "sshd")
    assert other.stdout.decode().split()[0] == "node4"
    assert other.stdout.decode().split()[1] != machine_id


def test_process_started_over_ssh_survives_the_disconnect(lab: Lab) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}"
    started = lab.ssh("node2", f"setsid -f sleep {marker} >/dev/null 2>&1 </dev/null")
    assert started.returncode == 0, started.stderr
    time.sleep(0.3)
    try:
        seen = lab.ssh("node2", f"pgrep -x -f 'sleep {marker}'")
        assert seen.returncode == 0, "the process died with its SSH session"
        elsewhere = lab.ssh("node3", f"pgrep -x -f 'sleep {marker}'")
        assert elsewhere.returncode == 1, "the PID namespace leaked into another host"
    finally:
        lab.ssh("node2", f"pkill -x -f 'sleep {marker}'")


def test_hosts_cannot_reach_off_the_machine(lab: Lab) -> None:
    routes = lab.exec("node1", ["ip", "-o", "route"]).stdout.decode()
    switch_routes = lab.sw(["ip", "-o", "route"]).stdout.decode()
    assert "default" not in switch_routes, "the switch namespace must have no way out"
    # the lab's /24, the default route into the switch, and the pod network's ranges (10.244.x.0/24
    # via the other hosts, its own on cni0): nothing else
    assert all(line.split()[0] in ("default", lab.subnet) or line.startswith("10.244.")
               for line in routes.splitlines()), routes
    reach = lab.exec("node1", ["sh", "-c", "timeout 0.5 bash -c 'echo > /dev/tcp/1.1.1.1/53'"])
    assert reach.returncode != 0


def test_cli_status_exec_and_sw(lab: Lab) -> None:
    status = _cli(lab.dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert [h["name"] for h in doc["hosts"]] == ["node1", "node2", "node3", "node4"]
    assert [h["roles"] for h in doc["hosts"]] == [["control-plane"]] * 3 + [["worker"]]
    assert set(doc) >= {"hosts", "inventory", "ssh_config", "known_hosts", "lb"}
    assert doc["lb"]["address"]
    for key in ("inventory", "ssh_config", "known_hosts"):
        assert Path(doc[key]).is_file()
    ran = _cli(lab.dir, "exec", "node2", "--", "sh", "-c", "hostname; echo err >&2; exit 7")
    assert (ran.returncode, ran.stdout, ran.stderr) == (7, "node2\n", "err\n")
    sw = _cli(lab.dir, "sw", "--", "ssh", "-F", doc["ssh_config"], "node4", "hostname")
    assert (sw.returncode, sw.stdout) == (0, "node4\n"), sw.stderr
    unknown = _cli(lab.dir, "exec", "node99", "--", "true")
    assert unknown.returncode == 1 and "no lab host named 'node99'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_inventory_and_kubeadm_config(lab: Lab) -> None:
    inv = yaml.safe_load(lab.inventory.read_text())
    status = lab.status()
    lb = status["lb"]["address"]
    assert inv["cluster"] == {"name": "lab", "config": "kubeadm.yaml", "controlPlaneEndpoint": f"{lb}:6443"}
    assert inv["hosts"]["node4"] == {"address": status["hosts"][3]["address"], "roles": ["worker"]}
    assert inv["ssh"]["user"] == "root" and inv["ssh"]["port"] == 22
    base = lab.inventory.parent
    for key in ("identity", "known_hosts", "ssh_config"):
        assert (base / inv["ssh"][key]).is_file()
    docs = list(yaml.safe_load_all((base / inv["cluster"]["config"]).read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"InitConfiguration", "JoinConfiguration", "ClusterConfiguration", "KubeletConfiguration",
                          "KubeProxyConfiguration"}
    for kind in ("InitConfiguration", "JoinConfiguration", "ClusterConfiguration"):
        assert kinds[kind]["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    # what an operator of these hosts must say: no systemd, cgroup v1
    assert kinds["KubeletConfiguration"]["cgroupDriver"] == "cgroupfs"
    assert kinds["KubeletConfiguration"]["failCgroupV1"] is False
    for kind in ("InitConfiguration", "JoinConfiguration"):  # kubeadm join reads only the latter
        assert kinds[kind]["nodeRegistration"]["ignorePreflightErrors"] == ["SystemVerification"]
    assert kinds["ClusterConfiguration"]["controlPlaneEndpoint"] == f"{lb}:6443"


def test_up_again_is_idempotent(lab: Lab) -> None:
    before = {n: h.pid for n, h in lab.load().hosts.items()}
    lab.up(4, lb=True)
    assert {n: h.pid for n, h in lab.load().hosts.items()} == before


def _live_with_env(marker: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0") and \
                        Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _netns_of(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def _leftovers(lab: Lab, pids: list[int]) -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(f"kfl-{lab.tag}-")]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line.split()[4]}" for line in mounts.splitlines()
              if str(lab.dir) in line or f"kfl-{lab.tag}-" in line]
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(f"process {pid}")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(lab.dir).encode() in cmd:
                found.append(f"process {entry}: {cmd[:80]!r}")
    if lab.dir.exists():
        found.append(f"directory {lab.dir}")
    found += [f"cgroup {d.parent}" for d in lab.cgroup_dirs("node1") if d.parent.exists()]
    return found


def test_each_host_has_cgroups_of_its_own(lab: Lab) -> None:
    # inside: a cgroup namespace rooted at the host's own cgroup; outside: one cgroup per host
    inside = lab.exec("node1", ["cat", "/proc/1/cgroup"]).stdout.decode()
    assert all(line.endswith(":/") for line in inside.splitlines()), inside
    for name in ("node1", "node2"):
        procs = {int(p) for d in lab.cgroup_dirs(name) for p in (d / "cgroup.procs").read_text().split()}
        assert lab.load().hosts[name].pid in procs, name
    assert not set(lab.cgroup_dirs("node1")) & set(lab.cgroup_dirs("node2"))


def test_ten_hosts_up_fast_grow_and_down_leaves_nothing(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """A second lab beside the session lab: 10 hosts through the CLI, grown to 12, then gone.
    (Speed is measured by scripts/bench.py, not asserted here: each host now starts a real
    containerd and imports its images, about 3 s a host on 2 cores.)"""
    other = fresh_lab(test_lab_dir("ten"))
    assert other.subnet != lab.subnet and other.tag != lab.tag
    try:
        start = time.monotonic()
        up = _cli(other.dir, "up", "10")
        elapsed = time.monotonic() - start
        with capsys.disabled():
            print(f"\n[lab] up of 10 hosts took {elapsed:.2f}s")
        assert up.returncode == 0, up.stderr
        status = other.status()
        assert len(status["hosts"]) == 10 and status["running"]
        roles = [h["roles"][0] for h in status["hosts"]]
        assert roles == ["control-plane"] * 3 + ["worker"] * 7
        first_pid = other.load().hosts["node1"].pid
        grown = _cli(other.dir, "up", "12")
        assert grown.returncode == 0, grown.stderr
        assert other.load().hosts["node1"].pid == first_pid
        reach = other.ssh("node12", "hostname")
        assert reach.stdout == b"node12\n", reach.stderr
        # Hosts hold no reference to any lab's namespace mounts (they would outlive `down`).
        mounts = other.exec("node1", ["cat", "/proc/self/mountinfo"]).stdout.decode()
        assert "kfl-" not in mounts
        # running a command in the switch namespace that outlives us must not survive down
        other.sw(["sh", "-c", "setsid -f sleep 600 >/dev/null 2>&1 </dev/null"])
        pids = [p for h in other.load().hosts.values() for p in (h.pid, h.launcher_pid)]
        switch_ns = f"net:[{os.stat(other.switch_netns_path).st_ino}]"
        strays = [int(e) for e in os.listdir("/proc") if e.isdigit() and _netns_of(e) == switch_ns]
        assert strays, "the stray process in the switch namespace did not start"
        pids += strays
        assert all(Path(f"/proc/{p}").exists() for p in pids)
    finally:
        down = _cli(other.dir, "down")
    assert down.returncode == 0, down.stderr
    assert _leftovers(other, pids) == []
    # The CLI's keeper (it reaps the hosts' launchers) exits once the lab is down.
    marker = f"{'KUBEFAB_LAB_DIR'}={other.dir}".encode()
    time_limit = time.monotonic() + 5
    while (keepers := _live_with_env(marker)) and time.monotonic() < time_limit:
        time.sleep(0.05)
    assert keepers == []
    # the session lab beside it is untouched
    assert lab.ssh("node1", "true").returncode == 0


def test_fabric_connects_from_the_switch_with_verified_host_keys(lab: Lab) -> None:
    """What kubefab does: Fabric over the lab's ssh_config, keys checked against known_hosts."""
    import paramiko
    from fabric import Config, Connection

    config = Config(runtime_ssh_path=str(lab.ssh_config), overrides={"run": {"in_stream": False}})
    with lab.switch():
        conn = Connection("node3", config=config)
        conn.client.load_host_keys(str(lab.known_hosts))
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            result = conn.run("hostname && setsid -f sleep 1 >/dev/null 2>&1 </dev/null", hide=True)
        finally:
            conn.close()
        assert result.stdout == "node3\n"
        stranger = Connection("node2", config=config)
        stranger.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        stranger.client.get_host_keys().clear()
        stranger.client.load_host_keys("/dev/null")
        with pytest.raises(paramiko.SSHException):
            stranger.open()
        stranger.close()


def test_inotify_limits_hold_many_kubelets(lab: Lab) -> None:
    """Every kubelet and containerd of every lab takes from one per-user inotify budget."""
    from tests.lab.hosts import INOTIFY_LIMITS

    for path, want in INOTIFY_LIMITS.items():
        assert int(Path(path).read_text()) >= want, path
