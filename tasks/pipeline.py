"""The host pipeline every command runs: prepare → facts → plans → dry-run or apply.

One function, :func:`run_workflow`, does for one host what ``init``, ``join``,
``join-control-plane``, ``reset`` (and any command to come: ``certs renew``, ``upgrade``) need:

1. **prepare** the run's inputs, without touching the host or writing the state dir: the
   command's ``prepare()`` returns a frozen :class:`~tasks.phases.context.RunContext` (init: the
   config, a pending store for the PKI, token and certificate key; join: discovery and the etcd
   members; reset: the config);
2. **select** the phases (``--only``/``--skip-phases`` and the config's ``skipPhases``) and
   **gather facts once**, probing the paths the selected phases declare (``Phase.probes``);
3. **plan once**: every selected phase's plan from config + facts + the state dir (pure;
   preflight raises here, before anything is written anywhere);
4. ``--dry-run``: print the difference with the host and the state files it would create,
   then stop: nothing is written, on the host or in the state dir;
5. otherwise write the state files the plans made (``store.commit()``), then
   :func:`tasks.apply.execute` the plans, and print the summary and the closing words.

:func:`run_hosts` runs it over many hosts (a bounded thread pool, or one at a time), keeps every
host's :class:`HostResult`, and :func:`report` prints the one summary table and fails naming
every failed host.

A new command is a ``prepare`` function, a workflow (a phase table in ``tasks/phases/``) and a
few lines in ``tasks/commands.py``; see the README's Design section.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from . import output
from .core.errors import KubefabError
from .core.plan import Message
from .locks import command_name, host_lock
from .output import PhaseTiming, Timer
from .phases.workflow import Workflow


@dataclass
class HostResult:
    """One host's run: what the summary shows and the benchmark reads."""

    host: str
    role: str
    phases: int = 0
    changed: int = 0
    unchanged: int = 0
    seconds: float = 0.0
    error: str = ""
    fix: str = ""                    # the failure's own fix line, when it has one
    round_trips: int = 0             # SSH round trips to the host (facts, uploads, commands, waits)
    bytes_sent: int = 0              # payload bytes sent to it: command lines, stdin, files
    timer: Timer = field(default_factory=Timer)
    plan: list | None = None         # a dry-run: the difference, as data (:func:`tasks.apply.diff_data`)
    state_writes: list = field(default_factory=list)  # a dry-run: what it would create in the state dir

    @property
    def ok(self) -> bool:
        return not self.error

    @classmethod
    def failed(cls, host: str, role: str, exc: KubefabError, *, seconds: float = 0.0) -> "HostResult":
        return cls(host, role, seconds=seconds, error=exc.render().splitlines()[0], fix=exc.fix or "")

    def to_data(self) -> dict:
        """This host's entry of the ``RunSummary`` document (see the README's Output section)."""
        data = {"host": self.host, "role": self.role, "result": "ok" if self.ok else "failed",
                "phases": self.phases, "changed": self.changed, "unchanged": self.unchanged,
                "seconds": round(self.seconds, 2), "roundTrips": self.round_trips, "bytesSent": self.bytes_sent}
        if not self.ok:
            data["error"] = self.error
            data["fix"] = self.fix
        data["timings"] = [{"phase": r.phase, "seconds": round(r.seconds, 2), "roundTrips": r.round_trips,
                            "changed": r.changed, "unchanged": r.unchanged} for r in self.timer.rows]
        if self.plan is not None:
            data["plan"] = self.plan
            data["stateDirWrites"] = list(self.state_writes)
        return data

    def add(self, row: PhaseTiming) -> None:
        """One row of the per-phase table; its counts add to the host's."""
        self.timer.add(row)
        self.changed += row.changed
        self.unchanged += row.unchanged


@dataclass(frozen=True)
class Run:
    """What a command asks of :func:`run_workflow` for one host.

    :param workflow: the phase table.
    :param role: the summary's ROLE column.
    :param prepare: ``prepare() -> RunContext``: the run's inputs (no facts yet).
    :param only, skip: the phase selection flags.
    :param done: ``done(result) -> str``: the closing stage line ("" = none).
    :param table: print the per-phase table after the run.
    :param via: the inventory host to connect to instead (reset ``--unreachable``: the host is
        gone and its etcd member is removed from another control plane).
    """

    workflow: Workflow
    role: str
    prepare: Callable[[], object]
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    done: Callable[[HostResult], str] | None = None
    table: bool = True
    via: object = None


def render_state_writes(host: str, store) -> str:
    """What a dry-run would have created in the state dir (names, modes, sizes; no value)."""
    if store is None or store.empty:
        return ""
    lines = [f"[{host}] [state-dir] would create in {store.state.root} (dry-run: nothing written):"]
    lines += [f"    {line}" for line in store.describe()]
    return "\n".join(lines)


def run_workflow(host, run: Run, *, connect: Callable, options) -> HostResult:
    """Run ``run.workflow`` on one inventory host (see the module doc for the steps).

    :param connect: ``connect(host) -> transport`` (SSH in production, a fake in tests).
    :raises KubefabError: the first failure, with host and phase.
    """
    from .apply import diff_data, execute, render_diff
    from .remote.facts import facts_command, gather_facts, read_facts
    from .runner import plan_step, plan_steps, probe_paths, select, with_selection

    started = time.monotonic()
    result = HostResult(host.name, run.role)
    ctx = run.prepare()
    steps = select(run.workflow, ctx, only=run.only, skip=run.skip)
    ctx = with_selection(ctx, steps)
    paths = probe_paths(steps, ctx)
    target = run.via or host
    output.stage(f"Connecting to {target.name} ({target.address})"
                 + (f" for {host.name} (unreachable)" if run.via is not None else ""))
    transport = connect(target)
    hold = contextlib.ExitStack()
    try:
        # the host lock (not for a dry-run), before the facts: they must not see another run's
        # half-done apply. The holder reads the facts once it holds the lock: one round trip for both
        lock = hold.enter_context(host_lock(transport, command_name(), enabled=not options.dry_run,
                                            then=facts_command(paths)))
        if lock is not None:
            lock.wait()  # another run holds the host: fail before anything is read or written
        if lock is not None and lock.then_result is not None:
            facts = read_facts(transport.host, *lock.then_result)
        else:  # a dry-run, or a host without flock(1)
            facts = gather_facts(transport, paths)
        result.timer.add(PhaseTiming(host.name, "connect + facts", time.monotonic() - started,
                                     transport.stats.count))
        ctx = ctx.with_facts(facts)
        plans = plan_steps(run.workflow, steps, ctx)
        for plan in plans:
            for note in plan.notes:
                # kubeadm's "[patches] Applied patch ..." lines (a dry-run shows them in the difference)
                if note.startswith("[WARNING") or "] WARNING" in note or (
                        note.startswith("[patches]") and not options.dry_run):
                    output.info(note, host=host.name, phase=plan.phase)
        if options.dry_run:
            output.out(render_diff(host.name, plans, facts, show_secrets=options.show_secrets),
                       reveal=options.show_secrets)
            writes = render_state_writes(host.name, ctx.store)
            if writes:
                output.out(writes)
            result.plan = diff_data(plans, facts)
            result.state_writes = list(ctx.store.describe()) if ctx.store is not None and not ctx.store.empty else []
            result.seconds = time.monotonic() - started
            return result
        if ctx.store is not None:
            ctx.store.commit()  # the PKI, kubeconfigs and join material the plans were made from
        messages = execute(ctx, transport, steps, plans, result, replan=plan_step)
    finally:
        result.round_trips, result.bytes_sent = transport.stats.count, transport.stats.bytes_sent
        try:
            hold.close()
        finally:
            transport.close()
    result.phases = len([p for p in plans if p.actions])
    result.seconds = time.monotonic() - started
    result.timer.started = started
    if run.done is not None:
        output.stage(run.done(result))
    if run.table:
        output.err(result.timer.table())
    say(host.name, messages)
    return result


def say(host: str, messages: Iterable[Message]) -> None:
    for m in messages:
        text = m.text.reveal() if hasattr(m.text, "reveal") and m.reveal else str(m.text)
        if m.stream == "out":
            output.out(text, reveal=m.reveal)
        else:
            output.info(text, host=host)


def run_hosts(hosts, fn: Callable[[object], HostResult], *, parallel: int, role: Callable[[object], str]
              ) -> list[HostResult]:
    """``fn(host)`` per host, at most ``parallel`` at a time (1: one after the other, in order);
    every failure is kept as a failed :class:`HostResult`, none stops the others."""
    from .remote.parallel import run_parallel

    def guarded(h) -> HostResult:
        started = time.monotonic()
        try:
            return fn(h)
        except KubefabError as exc:
            exc.with_context(host=h.name)
            output.err(exc.render())
            return HostResult.failed(h.name, role(h), exc, seconds=time.monotonic() - started)

    if parallel <= 1:
        return [guarded(h) for h in hosts]
    return [r.value for r in run_parallel(hosts, guarded, max_workers=parallel, name=lambda h: h.name)]


def emit_summary(results: list[HostResult], *, dry_run: bool = False, seconds: float | None = None) -> None:
    """The ``RunSummary`` document for ``-o json``/``-o yaml`` (nothing in text mode)."""
    output.emit("RunSummary", {
        "command": output.SETTINGS.command,
        "dryRun": bool(dry_run),
        "result": "ok" if all(r.ok for r in results) else "failed",
        "seconds": round(seconds if seconds is not None else max((r.seconds for r in results), default=0.0), 2),
        "hosts": [r.to_data() for r in results],
    })


def failure_fix(failed: list[HostResult]) -> str:
    """The summary's fix line: each failed host's own fix where the error had one, then how to
    go on (a re-run continues: hosts that are done report 0 changed)."""
    fixes = [(r.host, r.fix) for r in failed if r.fix]
    again = "then re-run the same command: hosts that are done report 0 changed"
    if not fixes:
        return f"read each host's error above; {again}"
    if len({f for _, f in fixes}) == 1 and len(fixes) == len(failed):
        return f"{fixes[0][1]}; {again}"
    return "; ".join(f"{h}: {f}" for h, f in fixes) + f"; {again}"


def report(results: list[HostResult], *, dry_run: bool = False, seconds: float | None = None) -> None:
    """The summary table (and the ``-o`` document); raises (exit 1) naming every failed host
    with its own fix."""
    rows = [("HOST", "ROLE", "PHASES", "CHANGED", "TIME", "RESULT")]
    for r in results:
        rows.append((r.host, r.role, str(r.phases), str(r.changed), f"{r.seconds:.1f}s", "ok" if r.ok else "FAILED"))
    output.err(output.table(rows, sep="  "))
    emit_summary(results, dry_run=dry_run, seconds=seconds)
    failed = [r for r in results if not r.ok]
    if failed:
        raise KubefabError(f"{len(failed)} of {len(results)} host(s) failed",
                           details=[f"{r.host}: {r.error}" for r in failed], fix=failure_fix(failed))


def ssh_connector(inv, *, accept_new_host_keys: bool = False, sudo_password=None) -> Callable:
    """``connect(host) -> SshTransport`` for inventory hosts, host keys verified (the
    inventory's known_hosts; ``accept_new_host_keys`` records unknown ones)."""
    from .remote.transport import SshTransport

    ssh = inv.ssh

    def connect(host):
        return SshTransport(
            host.name,
            address=host.address,
            user=host.user or ssh.user,
            port=host.port or ssh.port,
            known_hosts=[p for p in (ssh.known_hosts,) if p],
            accept_new_host_keys=accept_new_host_keys,
            key_filename=ssh.identity or None,
            ssh_config_path=ssh.ssh_config or None,
            sudo_password=sudo_password,
        )

    return connect
