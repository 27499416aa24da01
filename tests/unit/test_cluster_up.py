"""cluster-up's order of work, with the hosts' work replaced by timed fakes (no SSH, no API)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from tasks import cluster, commands
from tasks.phases.context import Options
from tasks.pipeline import HostResult


def _host(name, cp):
    return SimpleNamespace(name=name, node_name=name, address="192.0.2.1", is_control_plane=cp)


def test_workers_join_while_the_control_planes_join(monkeypatch, tmp_path):
    """kubeadm join of a worker needs only the API through the endpoint and a token: the workers
    must not wait for the serial control-plane joins (they were 64 % of a 3+2 cluster-up)."""
    cps = [_host(f"cp{i}", True) for i in (1, 2, 3)]
    workers = [_host(f"w{i}", False) for i in range(1, 6)]
    inv = SimpleNamespace(first_control_plane=cps[0], control_planes=cps, workers=workers,
                          host=lambda n: next(h for h in cps + workers if h.name == n))
    events: list[tuple[str, str, float]] = []
    lock = threading.Lock()
    running_cps = []

    def note(what, name):
        with lock:
            events.append((what, name, time.monotonic()))

    def fake_join(inv_, host, *, control_plane, ready, cache=None, **kw):
        assert (cache is None) == control_plane  # workers share one discovery, control planes never
        note("start", host.name)
        if control_plane:
            assert not running_cps, "control planes must join one at a time"
            running_cps.append(host.name)
            time.sleep(0.3)
            running_cps.remove(host.name)
        else:
            time.sleep(0.05)
        note("end", host.name)
        return HostResult(host.name, "control-plane" if control_plane else "worker")

    reported = {}
    monkeypatch.setattr(cluster, "_joined_or_join", fake_join)
    monkeypatch.setattr(cluster, "ssh_connector", lambda inv_, **kw: None)
    monkeypatch.setattr(cluster, "run_workflow", lambda h, run, **kw: HostResult(h.name, "control-plane (init)"))
    monkeypatch.setattr(commands, "check_init", lambda options: None)
    monkeypatch.setattr(commands, "init_run", lambda *a, **kw: None)
    monkeypatch.setattr(cluster, "report", lambda outcomes, **kw: reported.setdefault("outcomes", outcomes))
    state = SimpleNamespace(check=lambda: None, root=tmp_path)
    cluster.cluster_up(inv, state=state, options=Options(dry_run=True), parallel=30)

    assert [r.host for r in reported["outcomes"]] == ["cp1", "cp2", "cp3", "w1", "w2", "w3", "w4", "w5"]
    at = {(what, name): t for what, name, t in events}
    assert max(at[("end", w.name)] for w in workers) < at[("end", "cp2")]  # all done during the first CP join
    assert at[("start", "cp3")] >= at[("end", "cp2")]
    assert cluster.JOIN_PARALLEL == 30


def test_transports_count_the_bytes_they_send(tmp_path):
    """The benchmark's bytes per host: command lines (with stdin) and uploaded files, per round trip."""
    from tasks.core.plan import FileWrite, Plan
    from tasks.remote.transport import LocalTransport

    t = LocalTransport("local")
    t.run("true")
    assert t.stats.bytes_sent == len("true")
    plan = Plan("p", "local")
    plan.add(FileWrite(str(tmp_path / "a"), b"x" * 1000, mode=0o600), FileWrite(str(tmp_path / "b"), b"y" * 24, mode=0o600))
    t.apply(plan)
    sftp = [e for e in t.stats.entries if e.kind == "sftp"]
    assert len(sftp) == 1 and sftp[0].sent == 1024
    assert t.stats.bytes_sent == 4 + 1024 + sum(e.sent for e in t.stats.entries if e.kind == "command"
                                                 and e.what != "true")


def test_the_first_control_plane_joins_an_existing_cluster_it_is_not_part_of(monkeypatch, tmp_path):
    """init on a host of a running cluster would start a second, one-member etcd behind the same
    endpoint: the inventory's first control plane joins instead once it was removed (its Node is
    gone while other control planes serve) or once it joined back (the state dir says so)."""
    from contextlib import contextmanager

    from tasks import session
    from tasks.core.errors import KubefabError

    first = _host("cp1", True)
    inv = SimpleNamespace(first_control_plane=first)
    state = SimpleNamespace(root=tmp_path)
    cluster_nodes: dict = {}

    class Api:
        def request(self, method, path, query=None):
            cp = {"node-role.kubernetes.io/control-plane": ""}
            return {"items": [{"metadata": {"name": n, "labels": cp}} for n in cluster_nodes["cps"]]
                    + [{"metadata": {"name": n}} for n in cluster_nodes["workers"]]}

    @contextmanager
    def cluster_api(inv_, state_, *, connect):
        if cluster_nodes.get("down"):
            raise KubefabError("no API")
        yield None, Api()

    monkeypatch.setattr(session, "cluster_api", cluster_api)
    cases = [
        ({"cps": ["cp1", "cp2"], "workers": ["w1"]}, ""),  # a member: init converges on it
        ({"cps": ["cp2", "cp3"], "workers": ["w1"]}, "not a Node of the existing cluster"),  # removed
        ({"cps": [], "workers": []}, ""),  # an init that stopped before the kubelet registered: it goes on
        ({"down": True}, ""),  # no API to ask: init (it fails or goes on as before)
    ]
    for nodes, why in cases:
        cluster_nodes.clear()
        cluster_nodes.update(nodes)
        got = cluster._first_joins(inv, state, connect=None)
        assert (why in got) if why else got == "", (nodes, got)
    # once it joined back, it stays a joined control plane, whatever the API says
    (tmp_path / "nodes" / "cp1").mkdir(parents=True)
    (tmp_path / "nodes" / "cp1" / cluster.JOINED_MARK).write_text("joined\n")
    cluster_nodes.update({"cps": ["cp1", "cp2"], "workers": [], "down": False})
    assert "joined this cluster" in cluster._first_joins(inv, state, connect=None)
