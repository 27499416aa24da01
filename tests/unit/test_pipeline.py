"""The glue: the host pipeline, the executor and the phase table, with a strict fake transport.

The fake answers only the calls a test expects (in order) and fails on any other, as Invoke's
MockContext does: a pipeline change that adds a round trip or a write shows up here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from tasks.core.errors import KubefabError
from tasks.core.plan import ApiObject, Command, Plan, plan_from_data, plan_to_data
from tasks.phases.workflow import API, HOST, Phase, Refresh, Workflow
from tasks.remote.transport import ApplyResult, RoundTrips, RunResult
from tests.unit.test_offline_init import seed_state, tree_digest

ROOT = Path(__file__).resolve().parents[2]
FACTS = json.loads((ROOT / "tests/fixtures/facts/debian12_fresh_root.json").read_text())


@dataclass
class StrictTransport:
    """Answers ``run`` calls whose command matches the next expected pattern; anything else
    (another command, an apply, a put) fails the test."""

    expect: list[tuple[str, RunResult]]
    host: str = "fake"
    stats: RoundTrips = field(default_factory=RoundTrips)
    calls: list[str] = field(default_factory=list)
    applied: list = field(default_factory=list)
    allow_apply: bool = False
    closed: bool = False

    def run(self, command, *, check=True, timeout=None):
        text = command if isinstance(command, str) else " ".join(command)
        self.calls.append(text)
        self.stats.record("command", text, 0.0)
        if not self.expect:
            raise AssertionError(f"unexpected command: {text[:200]}")
        pattern, result = self.expect.pop(0)
        if not re.search(pattern, text, re.S):
            raise AssertionError(f"expected a command matching {pattern!r}, got {text[:200]}")
        return result

    def apply(self, plans, *, check=True):
        if not self.allow_apply:
            raise AssertionError("unexpected apply")
        self.applied.append(plans)
        self.stats.record("command", "apply", 0.0)
        return ApplyResult(self.host, (), 0, 0.0)

    def put(self, *a, **k):
        raise AssertionError("unexpected put")

    def get(self, *a, **k):
        raise AssertionError("unexpected get")

    def close(self):
        self.closed = True


def ok(stdout: str) -> RunResult:
    return RunResult("", 0, stdout, "", 0.0)


def probe() -> tuple[str, RunResult]:
    return (r"kubefab|probe|sh -c", ok("\n".join(FACTS["stdout"])))


@pytest.fixture
def inv():
    from tasks.core import inventory

    return inventory.load_inventory(ROOT / "inventory" / "hosts.yaml")


def test_online_dry_run_probes_once_and_writes_nothing(tmp_path, inv, capsys):
    from tasks.commands import init_run
    from tasks.core.state import ClusterState
    from tasks.phases.context import Options
    from tasks.pipeline import run_workflow

    state = ClusterState(tmp_path / "state")
    options = Options(dry_run=True, upload_certs=True, ignore_preflight_errors=frozenset({"all"}))
    fake = StrictTransport([probe()])
    host = inv.host("master1")
    result = run_workflow(host, init_run(inv, host, state=state, options=options), connect=lambda h: fake,
                          options=options)
    assert result.ok and fake.closed and not fake.expect and len(fake.calls) == 1
    assert not state.root.exists()
    out = capsys.readouterr().out
    assert "[master1] [certs/ca]" in out and "would create in" in out and "PRIVATE KEY" not in out


def test_online_dry_run_on_a_seeded_state_dir_leaves_it_byte_for_byte(tmp_path, inv, capsys):
    from tasks.commands import init_run
    from tasks.core.state import ClusterState
    from tasks.phases.context import Options
    from tasks.pipeline import run_workflow

    seed_state(tmp_path / "state")
    before = tree_digest(tmp_path / "state")
    options = Options(dry_run=True, upload_certs=True, ignore_preflight_errors=frozenset({"all"}))
    host = inv.host("master1")
    run_workflow(host, init_run(inv, host, state=ClusterState(tmp_path / "state"), options=options),
                 connect=lambda h: StrictTransport([probe()]), options=options)
    assert tree_digest(tmp_path / "state") == before
    assert "would create" not in capsys.readouterr().out


def test_the_phases_declare_every_path_their_plans_write(tmp_path, inv):
    """One facts probe must cover what the plans write (else files are re-sent every run)."""
    from tasks.apply import plan_paths
    from tasks.commands import init_context
    from tasks.core.state import ClusterState
    from tasks.phases.context import Options
    from tasks.phases.init import INIT
    from tasks.phases.reset import RESET
    from tasks.remote.facts import parse_probe
    from tasks.runner import plan_steps, probe_paths, select, with_selection

    seed_state(tmp_path / "state")
    facts = parse_probe("\n".join(FACTS["stdout"]))
    ctx = init_context(inv, inv.host("master1"), state=ClusterState(tmp_path / "state"),
                       options=Options(upload_certs=True, ignore_preflight_errors=frozenset({"all"})),
                       now=__import__("datetime").datetime.now(__import__("datetime").timezone.utc))
    for workflow in (INIT, RESET):
        steps = select(workflow, ctx)
        c = with_selection(ctx, steps).with_facts(facts)
        plans = plan_steps(workflow, steps, c)
        missing = set(plan_paths(plans)) - set(probe_paths(steps, c))
        assert not missing, (workflow.name, sorted(missing))


def test_a_plan_is_plain_data(tmp_path, inv):
    from tasks.core.state import ClusterState
    from tasks.phases.context import Options, RunContext
    from tasks.phases.init import INIT
    from tasks.runner import build_plans

    seed_state(tmp_path / "state")
    ctx = RunContext(config=inv.kubeadm_config(inv.host("master1")), host_name="master1",
                     state=ClusterState(tmp_path / "state"), options=Options(upload_certs=True))
    plans = build_plans(INIT, ctx)
    back = plan_from_data(json.loads(json.dumps(plan_to_data(plans, reveal=True))))
    assert back == plans
    redacted = json.dumps(plan_to_data(plans))
    assert "PRIVATE KEY" not in redacted and "client-key-data" not in redacted
    with pytest.raises(ValueError):
        plan_from_data(json.loads(redacted))


# --- the executor ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ctx:
    """The little of a RunContext the executor reads for host-only plans."""

    host_name: str = "fake"
    facts: object = None

    def with_facts(self, facts):
        return replace(self, facts=facts)


def _facts(**paths):
    from tasks.core.facts import HostFacts, PathFact

    return HostFacts(hostname="fake", uid=0, paths={p: PathFact(p, exists=e) for p, e in paths.items()})


def _refreshing_workflow():
    def run(ctx):
        there = ctx.facts.paths["/x"].exists
        return Plan("finalize", "fake", [Command(("true",), "use /x")] if there else [],
                    notes=[] if there else ["/x not there"])

    return Workflow("t", (Phase("finalize", "f", run=run, refresh=Refresh(("/x",), wait_seconds=1)),))


def test_executor_refreshes_the_facts_a_phase_names_and_plans_it_again():
    from tasks.apply import execute
    from tasks.pipeline import HostResult
    from tasks.runner import plan_step

    wf = _refreshing_workflow()
    steps = wf.select()
    ctx = Ctx(facts=_facts(**{"/x": False}))
    plans = [plan_step(s, ctx) for s in steps]
    assert plans[0].steps == []
    fake = StrictTransport([(r"test -e /x", ok("yes"))], allow_apply=True)
    execute(ctx, fake, steps, plans, HostResult("fake", "t"), replan=plan_step)
    assert len(fake.applied) == 1 and fake.applied[0][0].steps == [Command(("true",), "use /x")]


def test_executor_does_not_look_again_when_the_facts_saw_it():
    from tasks.apply import execute
    from tasks.pipeline import HostResult
    from tasks.runner import plan_step

    wf = _refreshing_workflow()
    steps = wf.select()
    ctx = Ctx(facts=_facts(**{"/x": True}))
    fake = StrictTransport([], allow_apply=True)
    execute(ctx, fake, steps, [plan_step(s, ctx) for s in steps], HostResult("fake", "t"), replan=plan_step)
    assert fake.calls == [] and len(fake.applied) == 1


def test_a_step_must_fit_where_its_phase_runs():
    from tasks.apply import check_where

    obj = ApiObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "y"}})
    check_where("p", API, [obj, Command(("true",))])
    with pytest.raises(KubefabError, match="runs on the host"):
        check_where("p", HOST, [obj])


# --- the phase table --------------------------------------------------------------------------------
def test_needs_are_checked_when_the_table_is_built():
    with pytest.raises(ValueError, match="needs api"):
        Workflow("w", (Phase("a", "a", run=lambda c: Plan("a"), needs=("api",)),))
    wf = Workflow("w", (Phase("a", "a", run=lambda c: Plan("a"), produces=("api",)),
                        Phase("b", "b", run=lambda c: Plan("b"), needs=("api",))))
    assert wf.relies_on(wf.select(only=["b"])) == {"b": ["api (a)"]}
    assert wf.relies_on(wf.select()) == {}


def test_every_workflow_table_is_consistent():
    from tasks.phases.init import INIT
    from tasks.phases.join import JOIN, JOIN_CONTROL_PLANE
    from tasks.phases.reset import RESET

    for wf in (INIT, JOIN, JOIN_CONTROL_PLANE, RESET):
        for step in wf.leaves():
            assert step.where in ("host", "api", "operator"), step.path
    where = {s.path: s.where for s in INIT.leaves()}
    assert where["addon/coredns"] == "api" and where["certs/ca"] == "host" and where["preflight"] == "operator"


def test_summary_table_names_every_failed_host(capsys):
    from tasks.pipeline import HostResult, report

    with pytest.raises(KubefabError, match="1 of 2 host"):
        report([HostResult("a", "worker", phases=3, changed=2, seconds=1.0),
                HostResult("b", "worker", error="boom")])
    err = capsys.readouterr().err
    assert re.search(r"HOST\s+ROLE\s+PHASES\s+CHANGED\s+TIME\s+RESULT", err)
    assert re.search(r"^a\s+worker\s+3\s+2\s+1\.0s\s+ok$", err, re.M) and re.search(r"^b\s+.*FAILED$", err, re.M)


# --- reset as node removal on the pipeline ----------------------------------------------------------
def _removal_run(inv, tmp_path, removal, *, via=None):
    from dataclasses import replace as _replace

    from tasks.core.state import ClusterState
    from tasks.core.statestore import PendingStore
    from tasks.phases.context import Options, RunContext
    from tasks.phases.reset import RESET
    from tasks.pipeline import Run

    host = inv.host("master3")
    options = Options(dry_run=True)
    ctx = RunContext(config=inv.kubeadm_config(host, join=True), host_name=host.name,
                     state=ClusterState(tmp_path / "state"), options=options,
                     store=PendingStore(ClusterState(tmp_path / "state")))
    ctx = _replace(ctx, removal=removal, cluster_kubeconfig=b"admin")
    return host, options, Run(RESET, "removed", lambda: ctx, table=False, via=via)


def test_reset_of_an_unreachable_host_connects_only_to_the_peer(tmp_path, inv, capsys):
    from tasks.phases.reset import Removal
    from tasks.pipeline import run_workflow

    removal = Removal(unreachable=True, via="master1", control_plane_nodes=("master1", "master2", "master3"))
    host, options, run = _removal_run(inv, tmp_path, removal, via=inv.host("master1"))
    connected = []
    fake = StrictTransport([probe()])
    run_workflow(host, run, connect=lambda h: connected.append(h.name) or fake, options=options)
    assert connected == ["master1"] and fake.closed and not fake.expect
    out = capsys.readouterr()
    assert "Connecting to master1" in out.err and "for master3 (unreachable)" in out.err
    assert "[master3] [remove-etcd-member]" in out.out and "member remove" in out.out
    assert "api: delete Node master3" in out.out and "cordon" not in out.out
    assert "remove /etc/kubernetes/pki" not in out.out  # nothing of the dead host's reset runs on the peer
    assert not (tmp_path / "state").exists()


def test_reset_dry_run_of_a_removal_lists_drain_and_delete_after_one_probe(tmp_path, inv, capsys):
    from tasks.phases.reset import Removal
    from tasks.pipeline import run_workflow

    removal = Removal(control_plane_nodes=("master1", "master2", "master3"), force=True, timeout_seconds=90,
                      etcd_error="not asked in this test")
    host, options, run = _removal_run(inv, tmp_path, removal)
    fake = StrictTransport([probe()])
    run_workflow(host, run, connect=lambda h: fake, options=options)
    assert len(fake.calls) == 1
    out = capsys.readouterr().out
    assert "api: cordon Node master3" in out and "api: drain Node master3 (--force, --timeout 90s)" in out
    assert out.index("[drain]") < out.index("[cleanup-node]") < out.index("api: delete Node master3")


def _kubelet_start_like_workflow():
    from datetime import timedelta

    from tasks.core.plan import FileRemove, FileWrite, Wait

    def run(ctx):
        return Plan("kubelet-start", "fake", [
            FileWrite("/var/lib/kubelet/config.yaml", b"kind: KubeletConfiguration\n", mode=0o644),
            Command(("systemctl", "restart", "kubelet"), "restart", on_change=True),
            Wait("kubelet-healthz", "http://127.0.0.1:10248/healthz", timedelta(seconds=40)),
            Wait("kubelet-tls-bootstrap", "/etc/kubernetes/kubelet.conf", timedelta(seconds=40)),
            FileRemove("/etc/kubernetes/bootstrap-kubelet.conf")])

    return Workflow("t", (Phase("kubelet-start", "k", run=run),))


def test_a_worker_join_waits_and_removes_the_bootstrap_kubeconfig_in_one_round_trip():
    """Round-trip budget of a fresh worker (issue 17): facts, upload, apply + start, ONE wait. The
    kubelet's health, its TLS bootstrap and the removal of bootstrap-kubelet.conf share a round trip."""
    from tasks.apply import execute
    from tasks.pipeline import HostResult
    from tasks.runner import plan_step

    wf = _kubelet_start_like_workflow()
    steps = wf.select()
    ctx = Ctx(facts=_facts())
    # one script: the kubelet's health, then kubelet.conf written, then the removal
    fake = StrictTransport([(r"probe http://127\.0\.0\.1:10248/healthz.*\[ -s /etc/kubernetes/kubelet\.conf \].*"
                             r"rm -f -- /etc/kubernetes/bootstrap-kubelet\.conf",
                             ok("ok http://127.0.0.1:10248/healthz\nok /etc/kubernetes/kubelet.conf\n"
                                "removed /etc/kubernetes/bootstrap-kubelet.conf\n"))], allow_apply=True)
    result = HostResult("fake", "worker")
    execute(ctx, fake, steps, [plan_step(s, ctx) for s in steps], result, replan=plan_step)
    assert len(fake.applied) == 1 and fake.stats.count == 2 and not fake.expect
    assert [s.__class__.__name__ for p in fake.applied[0] for s in p.steps] == ["FileWrite", "Command"]
    assert result.timer.rows[-1].changed == 1  # the removal counts as a change


def test_the_host_poll_script_waits_for_files_then_removes(tmp_path):
    """The host's wait script itself, in the real sh: a file wait holds once the file is not
    empty; the removals run only after every wait held; a wait that times out removes nothing."""
    import subprocess
    from datetime import timedelta

    from tasks.apply import host_wait_script
    from tasks.core.plan import Wait

    conf, boot = tmp_path / "kubelet.conf", tmp_path / "bootstrap.conf"
    boot.write_text("x")
    conf.write_text("")
    wait = lambda seconds: Wait("kubelet-tls-bootstrap", str(conf), timedelta(seconds=seconds))  # noqa: E731
    r = subprocess.run(["sh", "-c", host_wait_script([wait(0)], [str(boot)])], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and f"failed {conf}" in r.stdout and boot.exists()
    conf.write_text("apiVersion: v1\n")
    r = subprocess.run(["sh", "-c", host_wait_script([wait(5)], [str(boot), str(tmp_path / "absent")])],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.splitlines() == [f"ok {conf}", f"removed {boot}"] and not boot.exists()
