"""The etcd steps of join-control-plane and reset, run for real against etcd 3.4 (Debian's).

Two "hosts" are two loopback addresses on this machine. Each etcd runs from the command line of
the manifest kubefab renders (only the 127.0.0.1 listeners are moved off, since both members
share this machine's loopback), and the plan's etcdctl Commands run as they would on the
joining host: check-etcd, learner add, promote; then reset's member removal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tasks.core import pki
from tasks.core.spec import (APIEndpoint, ClusterConfiguration, InitConfiguration, JoinConfiguration,
                             JoinControlPlane, KubeadmConfig, NodeRegistration)
from tasks.core.state import ClusterState
from tasks.phases.context import RunContext
from tasks.phases.join import JOIN_CONTROL_PLANE
from tasks.phases.joindata import JoinData, parse_member_list
from tasks.phases.reset import RESET
from tasks.runner import build_plans



def _pick_pair() -> tuple[str, str]:
    """Two free loopback addresses, random so that parallel runs of this test do not collide."""
    import random

    for _ in range(50):
        net = f"127.{random.randint(32, 250)}.{random.randint(0, 250)}"
        pair = (f"{net}.21", f"{net}.22")
        if all(_free(a) for a in pair):
            return pair
    raise AssertionError("no free loopback address pair for ports 2379-2381")


def _free(addr: str) -> bool:
    import socket

    for port in (2379, 2380, 2381):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners: TIME_WAIT is fine
            try:
                s.bind((addr, port))
            except OSError:
                return False
    return True


def _write_pki(root: Path, cluster_pki, node_pki) -> None:
    for rel, data, mode in pki.node_files(cluster_pki, node_pki):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


def _etcd_command(manifest: bytes, adv: str) -> list[str]:
    """The manifest's command with the shared 127.0.0.1 listeners moved to the member's address."""
    cmd = yaml.safe_load(manifest)["spec"]["containers"][0]["command"]
    out = []
    for arg in cmd:
        if arg.startswith("--listen-client-urls="):
            arg = f"--listen-client-urls=https://{adv}:2379"
        elif arg.startswith("--listen-metrics-urls="):
            arg = f"--listen-metrics-urls=http://{adv}:2381"
        out.append(arg)
    return out


def _run(cmd, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def _wait_health(adv: str, proc, timeout=20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "etcd exited"
        try:
            if b'"true"' in urllib.request.urlopen(f"http://{adv}:2381/health", timeout=1).read():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"etcd on {adv} not healthy")


@pytest.fixture
def two_hosts(tmp_path, key_cache):
    assert shutil.which("etcd") and shutil.which("etcdctl"), "needs apt packages etcd-server and etcd-client"
    m1, m2 = _pick_pair()
    now = datetime.now(timezone.utc)
    base = ClusterConfiguration(kubernetes_version="v1.33.0", control_plane_endpoint="lb:6443",
                                encryption_algorithm="ECDSA-P256")
    state = ClusterState(tmp_path / "state").ensure()
    shared = pki.ensure_cluster_pki(state.pki_dir, base, now=now, keygen=key_cache)
    hosts = {}
    for name, adv in (("m1", m1), ("m2", m2)):
        root = tmp_path / name
        cluster = replace(base, certificates_dir=str(root / "pki"),
                          etcd_local=replace(base.etcd_local, data_dir=str(root / "etcd")))
        node = pki.ensure_node_pki(shared, state.node_dir(name), cluster, node_name=name, advertise_address=adv,
                                   now=now, keygen=key_cache)
        _write_pki(root / "pki", shared, node)
        hosts[name] = (cluster, adv)
    procs = []
    yield state, shared, hosts, procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(10)


def _start(cmd, log: Path):
    return subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _members(cluster, adv) -> list:
    p = cluster.certificates_dir
    out = _run(["etcdctl", f"--endpoints=https://{adv}:2379", f"--cacert={p}/etcd/ca.crt",
                f"--cert={p}/etcd/healthcheck-client.crt", f"--key={p}/etcd/healthcheck-client.key",
                "member", "list", "-w", "json"])
    assert out.returncode == 0, out.stderr
    return parse_member_list(out.stdout)


def test_learner_join_promote_and_reset(two_hosts, tmp_path):
    state, shared, hosts, procs = two_hosts
    # m1: the first control plane, from init's own etcd manifest
    c1, a1 = hosts["m1"]
    init_cfg = KubeadmConfig(cluster=c1, init=InitConfiguration(NodeRegistration("m1"), APIEndpoint(a1)))
    ctx1 = RunContext(init_cfg, "m1", state)
    from tasks.phases.controlplane import static_pods

    ctx1.__dict__["cluster_pki"] = shared
    procs.append(_start(_etcd_command(static_pods(ctx1)["etcd"], a1), tmp_path / "m1.log"))
    _wait_health(a1, procs[0])

    # m2 joins: what discovery would gather first
    c2, a2 = hosts["m2"]
    jcfg = KubeadmConfig(cluster=c2, join=JoinConfiguration(NodeRegistration("m2"),
                                                            control_plane=JoinControlPlane(APIEndpoint(a2))))
    jd = JoinData(server="https://lb:6443", ca_pem=shared.ca_cert_pem, cluster_configuration="controlPlaneEndpoint: lb\n",
                  etcd_members=tuple(_members(c1, a1)), etcd_endpoints=(f"https://{a1}:2379",))
    ctx2 = RunContext(jcfg, "m2", state, join_data=jd)
    plans = {p.phase: p for p in build_plans(JOIN_CONTROL_PLANE, ctx2, only=["check-etcd", "control-plane-join/etcd"])}
    check = plans["check-etcd"].steps[0]
    res = _run(check.argv)
    assert res.returncode == 0, res.stdout + res.stderr
    mkdir, add, manifest, _wait, promote = plans["control-plane-join/etcd"].steps
    # a learner another node's failed join left behind (never started) would block this join
    # ("too many learner members"): member add removes it first
    p = c1.certificates_dir
    stale = _run(["etcdctl", f"--endpoints=https://{a1}:2379", f"--cacert={p}/etcd/ca.crt",
                  f"--cert={p}/etcd/healthcheck-client.crt", f"--key={p}/etcd/healthcheck-client.key",
                  "member", "add", "ghost", f"--peer-urls=https://{a2.rsplit('.', 1)[0]}.23:2380", "--learner"])
    assert stale.returncode == 0, stale.stderr
    res = _run(add.argv)
    assert res.returncode == 0, res.stdout + res.stderr
    # (its message is in the output unless etcd asked for a retry of the add: then the last try's)
    learners = [m for m in _members(c1, a1) if m.is_learner]
    assert len(learners) == 1 and learners[0].peer_urls == (f"https://{a2}:2380",)
    # a re-run before this node's etcd ever started: its own learner has no data on the host
    # (the host may have come back empty), so it is replaced; still one learner, this node's
    res = _run(add.argv)
    assert res.returncode == 0, res.stdout + res.stderr
    again = [m for m in _members(c1, a1) if m.is_learner]
    assert len(again) == 1 and again[0].peer_urls == (f"https://{a2}:2380",) and again[0].id != learners[0].id
    os.makedirs(c2.etcd_local.data_dir, mode=0o700, exist_ok=True)
    procs.append(_start(_etcd_command(manifest.data(), a2), tmp_path / "m2.log"))
    _wait_health(a2, procs[1])
    # once started (its data is there) a re-run converges
    res = _run(add.argv)
    assert res.returncode == 0 and "already a member" in res.stdout, res.stdout
    res = _run(promote.argv)
    assert res.returncode == 0, res.stdout + res.stderr
    members = _members(c1, a1)
    assert sorted(m.name for m in members) == ["m1", "m2"] and not any(m.is_learner for m in members)
    # promoting again counts as done
    assert _run(promote.argv).returncode == 0

    # reset m2: its member goes; reset m1 then keeps the last member
    rm2 = build_plans(RESET, ctx2, only=["remove-etcd-member"])[0].steps[0]
    res = _run(rm2.argv)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [m.name for m in _members(c1, a1)] == ["m1"]
    rm1 = build_plans(RESET, ctx1, only=["remove-etcd-member"])[0].steps[0]
    res = _run(rm1.argv)
    assert res.returncode == 0 and "last etcd member" in res.stdout
