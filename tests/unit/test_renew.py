"""certs.renew: the renewal in the state dir, the plans per control plane, the pipeline with a
strict fake transport, and check-expiration's SAN report (issue 13, item 2)."""

from __future__ import annotations

import base64
import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tasks.core import pki
from tasks.core.errors import ConfigError, KubefabError
from tasks.core.plan import Command, FileWrite, Wait
from tasks.core.state import ClusterState
from tasks.core.statestore import PendingStore
from tasks.phases.context import Options, RunContext
from tasks.phases.renew import RENEW, build_renewal, resolve_names
from tests.unit.test_offline_init import seed_state, tree_digest
from tests.unit.test_pipeline import StrictTransport, probe

ROOT = Path(__file__).resolve().parents[2]
LATER = datetime.now(timezone.utc) + timedelta(days=200)


@pytest.fixture
def inv():
    from tasks.core import inventory

    return inventory.load_inventory(ROOT / "inventory" / "hosts.yaml")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("renew") / "state"
    seed_state(root)  # RSA keys: made once for the module
    return root


@pytest.fixture
def state(seeded, tmp_path):
    shutil.copytree(seeded, tmp_path / "state")
    return ClusterState(tmp_path / "state")


def ctx_for(inv, state, host="master1", *, now=LATER, dry_run=False, cluster=None):
    cfg = inv.kubeadm_config(inv.host(host), join=True)
    if cluster is not None:
        cfg = replace(cfg, cluster=cluster)
    return RunContext(config=cfg, host_name=host, state=state, options=Options(dry_run=dry_run), now=now,
                      store=PendingStore(state))


def test_names_as_kubeadm_has_them(inv):
    cluster = inv.kubeadm_config(inv.host("master1")).cluster
    assert resolve_names(["all"], cluster) == [
        "apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd-server", "etcd-peer",
        "etcd-healthcheck-client", "apiserver-etcd-client", "admin.conf", "super-admin.conf",
        "controller-manager.conf", "scheduler.conf"]
    assert resolve_names(["scheduler.conf", "apiserver"], cluster) == ["apiserver", "scheduler.conf"]
    with pytest.raises(ConfigError, match="unknown certificate name.*ca, nosuch") as exc:
        resolve_names(["ca", "nosuch"], cluster)
    assert "apiserver" in exc.value.fix  # the valid ones are listed
    with pytest.raises(ConfigError, match="alone"):
        resolve_names(["all", "apiserver"], cluster)


def test_renewal_keeps_subject_key_and_sans_with_a_new_validity(inv, state):
    ctx = ctx_for(inv, state)
    node_dir = ctx.node_state_dir
    old = pki.parse_certs((node_dir / "pki" / "apiserver.crt").read_bytes())[0]
    old_key = (node_dir / "pki" / "apiserver.key").read_bytes()
    before = tree_digest(state.root)
    r = build_renewal(ctx, ["apiserver", "admin.conf", "scheduler.conf"])
    assert tree_digest(state.root) == before  # pending until the run applies
    crt, pem, key = r.leaves["apiserver"]
    new = pki.parse_certs(pem)[0]
    assert crt == "apiserver.crt" and key is None
    assert new.subject == old.subject and new.public_key() == old.public_key()
    assert pki.cert_alt_names(new) == pki.cert_alt_names(old)
    assert new.not_valid_after_utc > old.not_valid_after_utc + timedelta(days=150)
    assert new.not_valid_before_utc == pki._utc(LATER) - timedelta(minutes=5)
    ca = pki.parse_certs((state.pki_dir / "ca.crt").read_bytes())[0]
    assert pki.signed_by(new, ca)
    conf = yaml.safe_load(r.kubeconfigs["admin.conf"])
    user = conf["users"][0]["user"]
    client = pki.parse_certs(base64.b64decode(user["client-certificate-data"]))[0]
    assert pki.subject_of(client) == ("kubernetes-admin", ("kubeadm:cluster-admins",))
    assert client.not_valid_after_utc > LATER
    old_conf = yaml.safe_load((node_dir / "admin.conf").read_bytes())
    assert user["client-key-data"] == old_conf["users"][0]["user"]["client-key-data"]
    assert conf["clusters"] == old_conf["clusters"]
    assert r.restarts == ["kube-apiserver", "kube-scheduler"]
    ctx.store.commit()
    assert (node_dir / "pki" / "apiserver.crt").read_bytes() == pem
    assert (node_dir / "pki" / "apiserver.key").read_bytes() == old_key


def test_new_keys_when_asked(inv, state):
    ctx = ctx_for(inv, state)
    r = build_renewal(ctx, ["front-proxy-client"], new_keys=True)
    _, pem, key = r.leaves["front-proxy-client"]
    assert key is not None and pki.parse_certs(pem)[0].public_key() == pki.parse_private_key(key).public_key()
    files = {s.path: s for s in RENEW.phases[1].run(replace(ctx, renewal=r)).steps}
    assert files["/etc/kubernetes/pki/front-proxy-client.key"].mode == 0o600
    assert files["/etc/kubernetes/pki/front-proxy-client.key"].secret


def test_a_san_the_config_now_requires_is_added_and_reported(inv, state):
    cfg = inv.kubeadm_config(inv.host("master1"), join=True)
    grown = replace(cfg.cluster, api_server=replace(cfg.cluster.api_server,
                                                    cert_sans=(*cfg.cluster.api_server.cert_sans, "api.example.org")))
    ctx = ctx_for(inv, state, cluster=grown)
    # init on this config refuses the old certificate with the exact command that fixes it
    with pytest.raises(KubefabError, match="api.example.org") as exc:
        ctx.node_pki
    assert "`fab -H master1 certs.renew apiserver`" in exc.value.fix
    r = build_renewal(ctx_for(inv, state, cluster=grown), ["apiserver"])
    assert r.added_sans == {"apiserver": ["api.example.org"]}
    assert "api.example.org" in pki.cert_alt_names(pki.parse_certs(r.leaves["apiserver"][1])[0]).dns


def test_restart_plan_keeps_the_api_server_out_while_etcd_restarts(inv, state):
    from tasks.runner import build_plans

    ctx = ctx_for(inv, state)
    ctx = replace(ctx, renewal=build_renewal(ctx, resolve_names(["all"], ctx.cluster)))
    plans = {p.phase: p for p in build_plans(RENEW, ctx)}
    assert [s.path for s in plans["certs"].steps] == [f"/etc/kubernetes/pki/{n}.crt" for n in (
        "apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd/server", "etcd/peer",
        "etcd/healthcheck-client", "apiserver-etcd-client")]
    assert all(isinstance(s, FileWrite) and s.mode == 0o644 for s in plans["certs"].steps)
    assert sorted(s.path for s in plans["kubeconfig"].steps) == [
        f"/etc/kubernetes/{n}" for n in ("admin.conf", "controller-manager.conf", "scheduler.conf",
                                         "super-admin.conf")]
    steps = plans["restart"].steps
    described = [s.description if isinstance(s, Command) else s.check for s in steps]
    assert described[0].startswith("stop kube-apiserver") and described[1] == "stop etcd"
    assert described.index("etcd-healthy") < described.index("start kube-apiserver: its manifest back")
    assert described.index("kube-apiserver-healthy") < described.index("stop kube-controller-manager")
    # the controller manager and the scheduler restart together, then both are waited for
    assert described[-6:] == ["stop kube-controller-manager", "stop kube-scheduler",
                              "start kube-controller-manager: its manifest back", "start kube-scheduler: its manifest back",
                              "kube-controller-manager-healthy", "kube-scheduler-healthy"]
    waits = [s for s in steps if isinstance(s, Wait)]
    assert [w.target for w in waits] == ["http://127.0.0.1:2381/readyz", "https://192.0.2.11:6443/readyz",
                                         "https://127.0.0.1:10257/healthz", "https://127.0.0.1:10259/livez"]
    stop = steps[0].argv[2]
    assert "mv -f /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/tmp/kubefab-restart/" in stop
    assert "192B" in stop  # 6443: wait until the port is free
    # the manifest goes back even when the pod would not stop (nothing half-done)
    assert stop.rstrip().endswith("exit 1") and "its manifest is back in place" in stop


def test_only_what_reads_a_renewed_file_restarts(inv, state):
    ctx = ctx_for(inv, state)
    r = build_renewal(ctx, ["etcd-healthcheck-client", "admin.conf"])
    assert r.restarts == []
    assert build_renewal(ctx_for(inv, state), ["etcd-peer"]).restarts == ["etcd"]


def test_dry_run_through_the_pipeline_probes_once_and_writes_nothing(inv, state, capsys):
    from tasks.pipeline import Run, run_workflow

    before = tree_digest(state.root)
    ctx = ctx_for(inv, state, dry_run=True)
    ctx = replace(ctx, renewal=build_renewal(ctx, ["apiserver", "controller-manager.conf"]))
    fake = StrictTransport([probe()])
    run_workflow(inv.host("master1"), Run(RENEW, "control-plane", lambda: ctx), connect=lambda h: fake,
                 options=ctx.options)
    assert len(fake.calls) == 1 and fake.closed
    assert tree_digest(state.root) == before
    out = capsys.readouterr().out
    assert "[master1] [certs]" in out and "/etc/kubernetes/pki/apiserver.crt" in out
    assert "[master1] [restart]" in out and "stop kube-controller-manager" in out
    assert "would create in" in out and "PRIVATE KEY" not in out


def test_bad_input_stops_before_anything(inv, tmp_path):
    from tasks.certs import renew

    with pytest.raises(ConfigError, match="unknown certificate"):
        renew(inv, ClusterState(tmp_path / "none"), ["apiserverr"], [], options=Options())
    with pytest.raises(KubefabError, match="no cluster PKI"):
        renew(inv, ClusterState(tmp_path / "none"), ["all"], [], options=Options())
    assert not (tmp_path / "none").exists()


def test_workers_are_refused(inv, state):
    from tasks.certs import renew

    with pytest.raises(KubefabError, match="worker1: not control planes"):
        renew(inv, state, ["all"], ["worker1"], options=Options())


def test_check_expiration_names_the_renew_command(inv, state, tmp_path, capsys):
    from tasks.certs import check_expiration

    inline = tmp_path / "inv.yaml"
    data = yaml.safe_load((ROOT / "inventory" / "hosts.yaml").read_text())
    data["cluster"]["config"] = str(ROOT / "inventory" / data["cluster"]["config"])
    data["cluster"].setdefault("apiServer", {})["certSANs"] = ["api.example.org"]
    inline.write_text(yaml.safe_dump(data))
    from tasks.core import inventory

    grown = inventory.load_inventory(inline)
    check_expiration(grown, state, ["master1"])
    err = capsys.readouterr().err
    assert "apiserver lacks the SAN(s) api.example.org" in err
    assert "`fab -H master1 certs.renew apiserver`" in err


def test_a_stopping_api_server_is_stopped_once_it_stops_listening_and_etcd_is_left_to_the_kubelet(
        inv, state, tmp_path, monkeypatch):
    """Once the API server's port is free (its requests in flight drained) what it still waits
    for is its watches, for the kubelet's 30 s grace period: its container is stopped then, not
    before. etcd is left to the kubelet."""
    import os
    import socket
    import subprocess
    import time

    from tasks.core import constants as K
    from tasks.phases import renew

    manifests, parked, bin_ = tmp_path / "manifests", tmp_path / "parked", tmp_path / "bin"
    manifests.mkdir()
    bin_.mkdir()
    (manifests / "kube-apiserver.yaml").write_text("kind: Pod\n")
    log = tmp_path / "crictl.log"
    (bin_ / "crictl").write_text(f'#!/bin/sh\necho "$*" >> {log}\ncase "$*" in *" ps "*) echo c0ffee;; esac\n')
    (bin_ / "crictl").chmod(0o755)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    monkeypatch.setattr(K, "MANIFESTS_DIR", str(manifests))
    monkeypatch.setattr(renew, "PARKED_DIR", str(parked))
    monkeypatch.setattr(renew, "_ports", lambda ctx, component: (port,))
    monkeypatch.setattr(renew, "LB_SETTLE_SECONDS", 1)  # kept out this long for a load balancer to see
    script = renew._stop_script(ctx_for(inv, state), K.KUBE_APISERVER)
    proc = subprocess.Popen(["sh", "-c", script], env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    assert not log.exists(), "the container was stopped while the API server still listened"
    assert (parked / "kube-apiserver.yaml").exists() and not (manifests / "kube-apiserver.yaml").exists()
    listener.close()
    closed = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - closed >= 1.0  # then out for LB_SETTLE_SECONDS before the start
    assert log.read_text().splitlines() == [
        "-r unix:///var/run/containerd/containerd.sock ps --name ^kube-apiserver$ -q",
        "-r unix:///var/run/containerd/containerd.sock stop --timeout 0 c0ffee"]
    assert "crictl" not in renew._stop_script(ctx_for(inv, state), K.ETCD)


@pytest.mark.parametrize("which", ["etcd.restore", "reset"])
def test_stopping_every_static_pod_stops_the_api_server_first_and_not_past_its_drain(inv, state, which):
    from tasks.phases import etcd, renew, reset

    ctx = ctx_for(inv, state)
    if which == "reset":
        script = reset.stop_static_pods_command(ctx).argv[2]
        rest = "find /etc/kubernetes/manifests"
    else:
        script = etcd.stop_script(replace(ctx, etcd_restore=etcd.RestoreData("20261206T091654Z", b"")))
        rest = "for f in /etc/kubernetes/manifests/*.yaml"
    api = script.index("api=/etc/kubernetes/manifests/kube-apiserver.yaml")
    drained = script.index(f"+ {renew.API_DRAIN_SECONDS} ))")
    assert api < drained < script.index("stop --timeout 0") < script.index(rest)
