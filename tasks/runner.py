"""Build plans from a workflow, then print, write (offline dry-run) or apply them.

The runner does the same thing every time (style.md §5): build every selected phase's plan for
every host — pure, no connection — and only then act. A phase that fails to plan stops the run
before anything is written, so bad input never leaves half-written files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from .core.errors import KubefabError
from .core.plan import ApiObject, FileWrite, Plan, plans_to_json
from .core.state import write_atomic
from .phases.workflow import Step, Workflow


def build_plans(workflow: Workflow, ctx, *, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Plan]:
    """Plans of the selected phases for one host, in order.

    Phases listed in the config's ``skipPhases`` are skipped too (kubeadm merges both).
    """
    steps = select(workflow, ctx, only=only, skip=skip)
    return plan_steps(workflow, steps, with_selection(ctx, steps))


def select(workflow: Workflow, ctx, *, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Step]:
    """The selected leaf phases: ``only``/``skip`` plus the config's ``skipPhases``."""
    node = ctx.config.init or ctx.config.join
    from_config = list(node.skip_phases) if node is not None and workflow.config_skip else []
    return workflow.select(only, list(skip) + from_config)


def with_selection(ctx, steps: list[Step]):
    """The context that knows which top-level phases run."""
    from dataclasses import replace

    return replace(ctx, selected=frozenset(s.top for s in steps))


def probe_paths(steps: list[Step], ctx) -> list[str]:
    """The paths the selected phases declare (read or written): one facts probe for all."""
    return sorted({p for step in steps for p in step.probes(ctx)})


def plan_steps(workflow: Workflow, steps: list[Step], ctx) -> list[Plan]:
    """One plan per selected phase, in order; a phase whose needs come from a phase not
    selected says that it relies on an earlier run."""
    relies = workflow.relies_on(steps)
    plans = []
    for step in steps:
        plan = plan_step(step, ctx)
        if step.path in relies:
            plan.notes.append("relies on an earlier run for " + "; ".join(relies[step.path]))
        plans.append(plan)
    return plans


def plan_step(step: Step, ctx) -> Plan:
    phase = step.phase
    if phase.run_if is not None and not phase.run_if(ctx):
        return Plan(step.path, ctx.host_name, notes=[f"skipped: {phase.skip_reason}"])
    try:
        plan = phase.run(ctx)
    except KubefabError as exc:
        raise exc.with_context(host=ctx.host_name, phase=step.path)
    plan.phase = step.path
    plan.host = ctx.host_name
    return plan


def object_path(obj: dict) -> str:
    """``api/<namespace or _cluster>/<Kind>-<name>.yaml``: where ``--output-dir`` puts an API object."""
    meta = obj.get("metadata") or {}
    return f"api/{meta.get('namespace') or '_cluster'}/{obj['kind']}-{meta['name']}.yaml"


# a bootstrap token's Secret keys that are not secret (token list prints them)
TOKEN_PUBLIC_KEYS = frozenset({"token-id", "description", "expiration", "usage-bootstrap-authentication",
                               "usage-bootstrap-signing", "auth-extra-groups"})


def redacted(obj: dict) -> dict:
    """A Secret's shape (type, keys) with each secret value replaced by its sha256, like plan.json."""
    if obj.get("kind") != "Secret":
        return obj
    public = TOKEN_PUBLIC_KEYS if obj.get("type") == "bootstrap.kubernetes.io/token" else frozenset()
    out = dict(obj)
    for key in ("data", "stringData"):
        if key in out:
            out[key] = {k: v if k in public else "sha256:" + hashlib.sha256(str(v).encode()).hexdigest()
                        for k, v in out[key].items()}
    return out


def write_offline(plans_by_host: dict[str, list[Plan]], output: Path) -> list[Path]:
    """Write each host's files to ``output/<host>/<absolute path>``, the API objects the plans
    would create or update to ``output/api/`` (Secrets redacted) and ``output/plan.json``.

    Files get the plan's modes. Returns the paths written.
    """
    import yaml

    written = []
    for host, plans in plans_by_host.items():
        for plan in plans:
            for step in plan.steps:
                if isinstance(step, FileWrite):
                    target = output / host / step.path.lstrip("/")
                    write_atomic(target, step.data(), step.mode, dir_mode=0o755)
                    written.append(target)
                elif isinstance(step, ApiObject):
                    for obj in (*step.related, step.obj):
                        target = output / object_path(obj)
                        text = yaml.safe_dump(redacted(obj), sort_keys=False)
                        write_atomic(target, text.encode(), 0o644, dir_mode=0o755)
                        written.append(target)
    all_plans = [p for plans in plans_by_host.values() for p in plans]
    plan_json = output / "plan.json"
    merged = json.loads(plans_to_json(all_plans))
    if plan_json.exists():  # a previous -H call of the same run: keep other hosts
        try:
            previous = json.loads(plan_json.read_text()).get("hosts", {})
            merged["hosts"] = {**{h: s for h, s in previous.items() if h not in merged["hosts"]},
                               **merged["hosts"]}
        except (ValueError, AttributeError):
            pass
    write_atomic(plan_json, (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode(), 0o644, dir_mode=0o755)
    written.append(plan_json)
    os.chmod(output, 0o755)
    return written
