"""Phase fixtures as data (pyinfra's operation tests): an inventory and kubeadm config, the facts
of a host, a command's options -> the plan summary each phase must produce.

Each ``tests/fixtures/phases/<case>.json`` holds:

- ``workflow``: ``init`` or ``reset`` (kubeadm reset alone); ``host``; ``only`` / ``skip``;
- ``inventory``: the inventory document (``cluster.config`` names ``kubeadm.yaml``, written from
  ``kubeadm_config``); ``options``: :class:`~tasks.phases.context.Options` fields; ``now``;
- ``facts``: a probe fixture of ``tests/fixtures/facts/`` (its raw ``stdout``, parsed by the
  real parser), with ``paths`` and scalar facts replaced as the case says;
- ``expected``: per phase, its notes (``# ...``) and each step as the dry-run shows it
  (``<action>: <step> (<reason>)``, from :func:`tasks.apply.diff_plan`), with what a run
  generates afresh left out: a written file's size (keys and certificates vary by a byte or
  two) and a new bootstrap token's id (``bootstrap-token-<id>``).

One test runs them all; a case fails with the phase whose summary differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted((ROOT / "tests/fixtures/phases").glob("*.json"))


def facts_of(spec: dict):
    from tasks.core.facts import HostFacts, PathFact
    from tasks.remote.facts import parse_probe

    raw = json.loads((ROOT / "tests/fixtures/facts" / f"{spec['probe']}.json").read_text())
    facts = parse_probe("\n".join(raw["stdout"]))
    known = {f.name for f in fields(HostFacts)} - {"paths"}
    scalars = {k: v for k, v in spec.items() if k not in ("probe", "paths")}
    unknown = set(scalars) - known
    assert not unknown, f"unknown facts in the fixture: {sorted(unknown)}"  # the fake cannot drift
    facts = replace(facts, **scalars)
    return facts.with_paths({p: PathFact(p, **attrs) for p, attrs in (spec.get("paths") or {}).items()})


def summary(case: dict, tmp_path: Path) -> dict[str, list[str]]:
    from tasks.apply import diff_plan
    from tasks.commands import init_context
    from tasks.core.inventory import load_inventory
    from tasks.core.state import ClusterState
    from tasks.core.statestore import PendingStore
    from tasks.phases.context import Options, RunContext
    from tasks.phases.init import INIT
    from tasks.phases.reset import RESET
    from tasks.runner import plan_steps, select, with_selection

    (tmp_path / "kubeadm.yaml").write_text(case.get("kubeadm_config", ""))
    (tmp_path / "hosts.yaml").write_text(yaml.safe_dump(case["inventory"]))
    inv = load_inventory(tmp_path / "hosts.yaml")
    host = inv.host(case["host"])
    state = ClusterState(tmp_path / "state")
    options = Options(**{k: frozenset(v) if isinstance(v, list) else v for k, v in case.get("options", {}).items()})
    now = datetime.fromisoformat(case["now"])
    if case["workflow"] == "init":
        workflow, ctx = INIT, init_context(inv, host, state=state, options=options, now=now)
    else:
        workflow = RESET
        ctx = RunContext(config=inv.kubeadm_config(host, join=True), host_name=host.name, state=state,
                         options=options, now=now, store=PendingStore(state))
    steps = select(workflow, ctx, only=case.get("only", ()), skip=case.get("skip", ()))
    ctx = with_selection(ctx, steps).with_facts(facts_of(case["facts"]))
    out: dict[str, list[str]] = {}
    for plan in plan_steps(workflow, steps, ctx):
        lines = [f"# {note}" for note in plan.notes]
        for d in diff_plan(plan, ctx.facts):
            text = f"{d.action}: {d.step.describe()}" + (f" ({d.reason})" if d.reason else "")
            lines.append(re.sub(r"bootstrap-token-[a-z0-9]{6}", "bootstrap-token-<id>", re.sub(r", \d+ bytes\)", ")", text)))
        out[plan.phase] = lines
    assert not state.root.exists(), "planning wrote to the state dir"
    return out


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_phase_fixture(path: Path, tmp_path: Path) -> None:
    case = json.loads(path.read_text())
    got = summary(case, tmp_path)
    assert list(got) == list(case["expected"]), "the phases planned differ"
    for phase, lines in case["expected"].items():
        assert got[phase] == lines, f"{path.name}: phase {phase}"


def test_there_are_phase_fixtures() -> None:
    assert len(CASES) >= 3, CASES
