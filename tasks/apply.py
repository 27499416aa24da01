"""The executor: a host's plans applied in order, and the difference a dry-run prints.

What happens when a phase runs, in one place (the pipeline, ``tasks/pipeline.py``, calls
:func:`execute` once the plans are built and the state files written):

1. Host steps (files, commands) of consecutive plans are batched into one transport apply:
   one SFTP session + one shell command, files already in place (by the facts) not sent.
2. A Wait or an API object first flushes the batch. Host-side waits of a phase (``Wait.on ==
   "host"``: loopback health URLs, files) share one round trip; API waits and objects go
   through one API session (the node's admin.conf, direct or tunnelled through the host),
   opened on first use. An object with a ``fallback_kubeconfig`` is retried with that
   kubeconfig on 403 (kubeadm's super-admin.conf for kubeadm:cluster-admins); a ``patch``
   waits for its object to exist (the Node registered by the kubelet).
3. A phase with a :class:`~tasks.phases.workflow.Refresh` is planned again right before it
   runs, with the paths it names read again on the host (waiting up to its seconds).
4. Every step is checked against its phase's ``where`` (``host``, ``api``, ``operator``).
5. :class:`~tasks.core.plan.Message` steps (closing words) are returned for the pipeline to
   print after the summary.

The executor knows no phase by name: all it needs is in the steps and the phase table.
"""

from __future__ import annotations

import getpass
import os
import shlex
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Iterable

from . import output
from .core.errors import ApiError, KubefabError, RemoteError
from .core.poll import poll
from .core.plan import ApiObject, Command, FileRemove, FileWrite, Message, Plan, Wait
from .core.secrets import Secret
from .output import PhaseTiming
from .phases.workflow import API, HOST


_PIPED_SUDO_PASSWORD: list[Secret] = []  # read from standard input once: a pipe holds one password


def _has_terminal() -> bool:
    """Whether getpass can prompt without echo (it asks on /dev/tty, whatever stdin is)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _no_password_error(user: str, why: str) -> KubefabError:
    return KubefabError(f"--prompt-for-sudo-password: {why}",
                        fix=f"run kubefab from a terminal, or give the password on standard input "
                            f"(`fab ... --prompt-for-sudo-password < password-file`), or give {user} "
                            f"passwordless sudo (`{user} ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/) "
                            f"and drop the flag")


def ask_sudo_password(user: str) -> Secret:
    """The sudo password: asked on the terminal without echo, else one line of standard input.

    :raises KubefabError: when there is neither a terminal nor a line on standard input.
    """
    if _has_terminal():
        try:
            return Secret(getpass.getpass(f"[sudo] password for {user} (kubefab asks once): "),
                          kind="sudo password")
        except EOFError:
            raise _no_password_error(user, "no password was entered") from None
    if not _PIPED_SUDO_PASSWORD:
        stdin = sys.stdin
        try:
            if stdin is None or stdin.closed or os.path.samestat(os.fstat(stdin.fileno()), os.stat(os.devnull)):
                raise _no_password_error(user, "there is no terminal to ask on and nothing on standard input")
            line = stdin.readline()
        except (OSError, ValueError):
            raise _no_password_error(user, "there is no terminal to ask on and standard input cannot be read") \
                from None
        if not line:
            raise _no_password_error(user, "there is no terminal to ask on and standard input is empty")
        _PIPED_SUDO_PASSWORD.append(Secret(line.rstrip("\r\n"), kind="sudo password"))
    return _PIPED_SUDO_PASSWORD[0]


def check_sudo_password_source(user: str) -> None:
    """Fail before anything is written when the sudo password cannot be had (no terminal and
    nothing on standard input); a piped password is read now."""
    if not _has_terminal():
        ask_sudo_password(user)


# --- plan vs facts ---------------------------------------------------------------------------
@dataclass
class Diff:
    """What a step would do on the host, and why."""

    step: object
    action: str   # create | update | unchanged | run | skip | api | wait
    reason: str = ""


def diff_plan(plan: Plan, facts) -> list[Diff]:
    """Compare a plan's host steps with the facts (pyinfra's "only the difference")."""
    out: list[Diff] = []
    changed_files = False
    for step in plan.steps:
        if isinstance(step, FileWrite):
            fact = facts.paths.get(step.path) if facts is not None else None
            if fact is None or not fact.exists:
                out.append(Diff(step, "create", "absent on the host"))
                changed_files = True
            elif fact.sha256 != step.sha256:
                out.append(Diff(step, "update", "content differs"))
                changed_files = True
            elif fact.mode is not None and fact.mode & 0o7777 != step.mode:
                out.append(Diff(step, "update", f"mode {fact.mode & 0o7777:04o} should be {step.mode:04o}"))
                changed_files = True
            else:
                out.append(Diff(step, "unchanged", "same sha256 and mode"))
        elif isinstance(step, Command):
            if step.creates and facts is not None and facts.paths.get(step.creates) and \
                    facts.paths[step.creates].exists:
                out.append(Diff(step, "skip", f"{step.creates} exists"))
            elif step.on_change and not changed_files:
                out.append(Diff(step, "skip", "no file of this phase changed"))
            else:
                out.append(Diff(step, "run"))
        elif isinstance(step, FileRemove):
            out.append(Diff(step, "run"))
        elif isinstance(step, ApiObject):
            out.append(Diff(step, "api", "compared with the live object when applied"))
        elif isinstance(step, Wait):
            out.append(Diff(step, "wait"))
        elif isinstance(step, Message):
            out.append(Diff(step, "print", "once the host's plans are applied"))
    return out


def plan_paths(plans: Iterable[Plan]) -> list[str]:
    """The paths a plan writes or checks (what its phases must declare as probes)."""
    paths: list[str] = []
    for plan in plans:
        for step in plan.steps:
            if isinstance(step, FileWrite):
                paths.append(step.path)
            elif isinstance(step, Command) and step.creates:
                paths.append(step.creates)
    return paths


def diff_data(plans: list[Plan], facts) -> list[dict]:
    """The difference as data (the ``plan`` of a ``RunSummary``): per phase its notes and steps,
    each step's ``action`` and ``reason`` with the step's own JSON form (never a secret value).
    Without facts (an offline plan) every step is ``planned``."""
    phases = []
    for plan in plans:
        if facts is None:
            steps = [{"action": "planned", "reason": "offline: the host was not read", **s.to_json()}
                     for s in plan.steps]
        else:
            steps = [{"action": d.action, "reason": d.reason, **d.step.to_json()} for d in diff_plan(plan, facts)]
        phases.append({"phase": plan.phase, "notes": [str(n) for n in plan.notes], "steps": steps})
    return phases


def render_diff(host: str, plans: list[Plan], facts, *, show_secrets: bool = False) -> str:
    lines = []
    counts = {"change": 0, "unchanged": 0}
    for plan in plans:
        lines.append(f"[{host}] [{plan.phase}]")
        for note in plan.notes:
            lines.append(f"    # {note}")
        for d in diff_plan(plan, facts):
            text = d.step.describe()
            if d.action == "print":
                lines.append(f"    {d.action}: {text}")
                continue
            if d.action in ("unchanged", "skip"):
                counts["unchanged"] += 1
                lines.append(f"    unchanged: {text} ({d.reason})")
            else:
                counts["change"] += 1
                lines.append(f"    {d.action}: {text}" + (f" ({d.reason})" if d.reason else ""))
            if show_secrets and isinstance(d.step, FileWrite) and d.step.secret and d.action in ("create", "update"):
                lines.extend("      | " + ln for ln in d.step.data().decode(errors="replace").splitlines())
    lines.append(f"[{host}] would change {counts['change']} steps, {counts['unchanged']} unchanged")
    return "\n".join(lines)



# --- waits ---------------------------------------------------------------------------------
from .core.poll import PROBE_FUNCTION  # noqa: E402 - the host-side URL probe, one copy


def host_wait_script(waits: list[Wait], then_remove: Iterable[str] = ()) -> str:
    """One sh script for a phase's waits on the host, in order, each polled (the one poll loop,
    :func:`tasks.core.poll.poll_script`) until it holds or its own deadline passes: a URL until
    it answers ok, a path (``/...``) until the file exists and is not empty. Then the paths
    ``then_remove`` are removed, once every wait held (kubeadm removes bootstrap-kubelet.conf
    after the TLS bootstrap). Prints ``ok <target>`` per wait and ``removed <path>``; on a
    timeout ``failed <target>`` and ``last answer: ...`` and exits 1 with nothing removed."""
    from .core.poll import poll_script

    parts = [PROBE_FUNCTION]
    for wait in waits:
        t = shlex.quote(wait.target)
        if wait.target.startswith("/"):
            body = f'if [ -s {t} ]; then echo "ok "{t}; else echo {t}" not written"; false; fi'
        else:
            body = f'last=$(probe {t}); case "$last" in ok*|*"HTTP 200") echo "ok "{t};; *) echo "$last"; false;; esac'
        on_timeout = f'echo "failed "{t}; echo "last answer: $out"; exit 1'
        parts.append("(\n" + poll_script(body, int(wait.timeout.total_seconds()), on_timeout=on_timeout)
                     + ") || exit 1\n")
    for path in then_remove:
        q = shlex.quote(path)
        parts.append(f'if [ -e {q} ] || [ -L {q} ]; then rm -f -- {q} || {{ echo "failed remove "{q}; exit 1; }}; '
                     f'echo "removed "{q}; fi\n')
    return "".join(parts)


LOG_TAIL_SCRIPT = r"""
echo "--- kubelet (last 15 lines)"
(journalctl -u kubelet -n 15 --no-pager 2>/dev/null | grep . ) || tail -n 15 /var/log/kubelet.log 2>/dev/null || echo "(no kubelet log found)"
for f in /var/log/pods/kube-system_etcd-*/etcd/*.log /var/log/pods/kube-system_kube-apiserver-*/kube-apiserver/*.log; do
  [ -f "$f" ] || continue; echo "--- $f (last 10 lines)"; tail -n 10 "$f"
done
"""


def wait_on_host(transport, waits: list[Wait], *, host: str, phase: str,
                 then_remove: list[FileRemove] = ()) -> list[str]:
    """Poll local URLs and files on the host, in order, until each is ok, then remove
    ``then_remove``: one round trip for all (a worker's kubelet-healthz, its TLS bootstrap and the
    removal of bootstrap-kubelet.conf).

    :returns: the paths that were there and are removed.
    """
    argv = ["sh", "-c", host_wait_script(waits, [r.path for r in then_remove])]
    budget = sum(w.timeout.total_seconds() for w in waits)
    with output.waiting(f"{phase}: " + ", ".join(dict.fromkeys(w.check for w in waits)), [host]):
        result = transport.run(argv, check=False, timeout=budget + 30)
    lines = result.stdout.strip().splitlines()
    if result.exit_code != 0:
        removing = next((ln[len("failed remove "):] for ln in lines if ln.startswith("failed remove ")), None)
        if removing is not None:
            raise RemoteError(f"cannot remove {removing}", host=host, phase=phase, details=lines[-3:],
                              fix="check the file system on the host, then re-run")
        failed = next((ln[len("failed "):] for ln in lines if ln.startswith("failed ")), waits[-1].target)
        wait = next((w for w in waits if w.target == failed), waits[-1])
        logs = transport.run(["sh", "-c", LOG_TAIL_SCRIPT], check=False, timeout=30)
        details = [ln for ln in (lines[-1:] + logs.stdout.splitlines()) if ln][:40]
        timeout = int(wait.timeout.total_seconds())
        if failed.startswith("/"):
            raise RemoteError(f"{failed} was not written within {timeout}s ({wait.check})", host=host, phase=phase,
                              details=details[1:],
                              fix="look at the kubelet log above (TLS bootstrap: is the token valid and the "
                                  "auto-approval RBAC in place?); re-running continues from here")
        raise RemoteError(f"{failed} did not become healthy within {timeout}s", host=host, phase=phase,
                          details=details,
                          fix="look at the logs above; once the cause is fixed, re-running continues from here")
    return [ln[len("removed "):] for ln in lines if ln.startswith("removed ")]




# --- where a step may run ----------------------------------------------------------------------------
def check_where(path: str, where: str, steps: Iterable) -> None:
    """A phase's steps fit where the table says it runs (a table or phase bug otherwise)."""
    for step in steps:
        if isinstance(step, Message):
            continue
        api_step = isinstance(step, ApiObject) or (isinstance(step, Wait) and step.on == "api")
        ok = where == API or (where == HOST and not api_step)  # operator phases: closing words only
        if not ok:
            raise KubefabError(f"phase {path} runs on the {where} but plans {step.describe()!r}",
                               phase=path, fix="a kubefab bug: the phase table and the phase disagree")


# --- the run -------------------------------------------------------------------------------------------
def refresh_paths(transport, facts, refresh) -> object:
    """The facts with ``refresh.paths`` read again: those the facts already saw are kept; the
    others are awaited on the host for up to ``refresh.wait_seconds`` (one round trip)."""
    from .core.facts import PathFact
    from .core.poll import poll_script

    known = (getattr(facts, "paths", None) or {}) if facts is not None else {}
    missing = [p for p in refresh.paths if not (known.get(p) and known[p].get("exists"))]
    if not missing or facts is None:
        return facts
    test = " && ".join(f"test -e {shlex.quote(p)}" for p in missing)
    script = poll_script(f"{test} && echo yes", refresh.wait_seconds, on_timeout="echo no")
    with output.waiting(", ".join(missing), [getattr(transport, "host", "")]):
        result = transport.run(["sh", "-c", script], check=False, timeout=refresh.wait_seconds + 30)
    present = result.stdout.strip().endswith("yes") and result.exit_code == 0
    return facts.with_paths({p: PathFact(p, exists=present) for p in missing})


def execute(ctx, transport, steps, plans: list[Plan], result, *, replan) -> list[Message]:
    """Apply ``plans`` (one per selected phase ``steps``) in order on the host and the cluster.

    :param replan: ``replan(step, ctx) -> Plan``, for phases whose facts are refreshed.
    :returns: the closing words of the plans, for the pipeline to print.
    """
    pending: list[Plan] = []
    messages: list[Message] = []
    sessions = ExitStack()
    apis: dict[str, object] = {}
    files = HostFiles(ctx.facts)
    host = ctx.host_name

    def flush() -> None:
        if not pending:
            return
        from .remote.transport import ApplyResult

        t0, rt0 = time.monotonic(), transport.stats.count
        label = ", ".join(dict.fromkeys(p.phase.split("/")[0] for p in pending))
        output.info(f"applying {sum(len(p.steps) for p in pending)} steps", host=host, phase=label)
        to_send, known_same = files.prune(pending)
        if any(p.steps for p in to_send):
            with output.waiting(_batch_what(label, to_send), [host]):
                applied = transport.apply(to_send, check=False)
            files.record(to_send, applied)
            output.log(f"[{host}] [{label}] {len(applied.steps)} steps in {time.monotonic() - t0:.1f}s, "
                       f"{transport.stats.count - rt0} round trip(s)", level=1)
        else:  # every file already as planned, nothing else to run: no round trip at all
            applied = ApplyResult(host, (), 0, 0.0)
        err = applied.error()
        changed = applied.changed
        unchanged = known_same + sum(1 for s in applied.steps if s.status in ("unchanged", "skipped"))
        result.add(PhaseTiming(host, label, time.monotonic() - t0, transport.stats.count - rt0, changed, unchanged))
        pending.clear()
        if err is not None:
            raise err

    def api(kubeconfig: str = ""):
        """The API session with the node's admin.conf (or the named node kubeconfig)."""
        key = kubeconfig or "admin"
        if key not in apis:
            from .session import api_session

            conf = ctx.kubeconfigs.get(kubeconfig) if kubeconfig else ctx.api_kubeconfig
            if conf is None:
                raise KubefabError(f"no {kubeconfig or 'admin.conf'} for this host", host=host,
                                   fix="run the kubeconfig phase first")
            apis[key] = sessions.enter_context(api_session(
                conf, timeout=ctx.timeouts.kubernetes_api_call.total_seconds(), transport=transport,
                via=ctx.api_via, host=host))
        return apis[key]

    def await_rights(obj: dict, timeout: float) -> None:
        """A binding made through the fallback gives admin.conf its rights once the API server's
        RBAC cache has it (found on the real API server: the next request got 403): read the
        binding back with admin.conf until that is allowed."""
        def allowed():
            try:
                api().get(obj)
                return True, None
            except ApiError as exc:
                if "HTTP 403" not in exc.problem:
                    raise
                return False, exc
        done, last = poll(allowed, timeout, interval=0.2)
        if not done:
            raise last

    def apply_object(step: ApiObject, phase: str):
        try:
            if step.strategy == "patch":
                api().wait_for(step.obj, ctx.timeouts.kubelet_health_check.total_seconds())
            try:
                return api().apply(step)
            except ApiError as exc:
                if "HTTP 403" not in exc.problem or not step.fallback_kubeconfig or \
                        ctx.kubeconfigs.get(step.fallback_kubeconfig) is None:
                    raise
                applied = api(step.fallback_kubeconfig).apply(step)
                await_rights(step.obj, ctx.timeouts.kubernetes_api_call.total_seconds())
                return applied
        except KubefabError as exc:
            raise exc.with_context(host=host, phase=phase)

    try:
        for step_, plan in zip(steps, plans):
            if step_.phase.refresh is not None:
                flush()
                fresh = refresh_paths(transport, ctx.facts, step_.phase.refresh)
                if fresh is not ctx.facts:
                    plan = replan(step_, ctx.with_facts(fresh))
            check_where(plan.phase, step_.where, plan.steps)
            messages += [s for s in plan.steps if isinstance(s, Message)]
            segs = _segments(plan.actions)
            removed_with_waits = -1  # a segment of removals done in the round trip of the waits before it
            for n, (kind, seg) in enumerate(segs):
                if n == removed_with_waits:
                    continue
                if kind == "host":
                    pending.append(Plan(plan.phase, plan.host, seg))
                    continue
                flush()
                t0, rt0 = time.monotonic(), transport.stats.count
                changed = unchanged = 0
                host_waits: list[Wait] = []
                for i, step in enumerate(seg):
                    if isinstance(step, Wait) and _polled_on_host(step):
                        host_waits.append(step)  # consecutive ones share one round trip
                        nxt = seg[i + 1] if i + 1 < len(seg) else None
                        if not (isinstance(nxt, Wait) and _polled_on_host(nxt)):
                            then = _removals_after(segs, n) if nxt is None else []
                            gone = wait_on_host(transport, host_waits, host=host, phase=plan.phase,
                                                then_remove=then)
                            if then:
                                removed_with_waits = n + 1
                                files.forget([r.path for r in then])
                                changed += len(gone)
                                unchanged += len(then) - len(gone)
                            host_waits = []
                        continue
                    if isinstance(step, Wait):
                        _wait(ctx, transport, step, plan.phase, api)
                        continue
                    applied = apply_object(step, plan.phase)
                    if applied.changed:
                        changed += 1
                        output.info(f"{applied.action} {applied.ref}", host=host, phase=plan.phase)
                    else:
                        unchanged += 1
                result.add(PhaseTiming(host, plan.phase, time.monotonic() - t0, transport.stats.count - rt0,
                                       changed, unchanged))
        flush()
    finally:
        sessions.close()
    return messages


def _batch_what(label: str, plans: list[Plan]) -> str:
    """What a batch is busy with, for the progress line: its last described command (the
    retried ones are the long ones: "promote etcd member m2 once it has caught up")."""
    described = [s.description for p in plans for s in p.steps if isinstance(s, Command) and s.description]
    return f"{label}: {described[-1]}" if described else f"{label} steps"


def _segments(steps) -> list[tuple[str, list]]:
    from .remote.transport import segments

    return segments(steps)


def _polled_on_host(step: Wait) -> bool:
    """A health URL on the host's own loopback (kubelet, controller manager, scheduler, etcd), or a
    file that must appear there (kubelet.conf after the TLS bootstrap): :func:`host_wait_script`."""
    return step.on == "host" and step.target.startswith(("http://", "https://", "/"))


def _removals_after(segs: list, n: int) -> list[FileRemove]:
    """The next segment when it only removes files: it can ride in the round trip of the waits."""
    if n + 1 < len(segs) and segs[n + 1][0] == "host" and segs[n + 1][1] and all(
            isinstance(s, FileRemove) and not s.recursive for s in segs[n + 1][1]):
        return list(segs[n + 1][1])
    return []


def _wait(ctx, transport, step: Wait, phase: str, api) -> None:
    """An API path is polled from here through the API client (any other wait is the host's)."""
    if step.on == "api" and step.check == "mirror-pods":
        from .session import wait_mirror_pods

        images = dict(pair.split("=", 1) for pair in step.expect.split(","))
        wait_mirror_pods(api(), step.target.rstrip("/").rsplit("/", 1)[-1], images, step.timeout.total_seconds(),
                         host=ctx.host_name)
    elif step.on == "api" and step.check == "node-ready":
        from .session import wait_node_ready

        wait_node_ready(api(), step.target, step.timeout.total_seconds(), version=step.expect, host=ctx.host_name,
                        phase=phase)
    elif step.on == "api":
        from .session import wait_api_ready

        wait_api_ready(api(), step.target, step.timeout.total_seconds(), host=ctx.host_name, phase=phase)
    else:
        wait_on_host(transport, [step], host=ctx.host_name, phase=phase)


class HostFiles:
    """What the host's files hold, as far as this run knows: the facts, then what it wrote.

    A file step whose target is known to hold the planned bytes, mode and owner (root) is not
    sent again; a plan whose files are all in place is left with only the commands that run
    regardless of change. A re-run on a converged host thus uploads nothing, and a segment
    left with nothing to do costs no round trip. What other writers change between the facts
    and the apply is not seen, as with any plan made from facts; the next run puts it back.
    """

    def __init__(self, facts) -> None:
        self.known: dict[str, tuple[str, int]] = {}
        if facts is None or getattr(facts, "uid", None) != 0:
            return  # the apply script checks ownership against root; only then can we
        for path, fact in (getattr(facts, "paths", None) or {}).items():
            if (fact.exists and fact.type == "file" and fact.sha256 and fact.mode is not None
                    and fact.uid == 0 and fact.gid == 0):
                self.known[path] = (fact.sha256, fact.mode & 0o7777)

    def in_place(self, step: FileWrite) -> bool:
        return self.known.get(step.path) == (step.sha256, step.mode)

    def prune(self, plans: list[Plan]) -> tuple[list[Plan], int]:
        """The plans without the file steps already in place, and how many were dropped."""
        out: list[Plan] = []
        dropped = 0
        for plan in plans:
            keep = [st for st in plan.steps if not (isinstance(st, FileWrite) and self.in_place(st))]
            dropped += len(plan.steps) - len(keep)
            if not any(isinstance(st, FileWrite) for st in keep):
                # no file of this plan changes: its on-change commands would be skipped anyway
                runs = [st for st in keep if not (isinstance(st, Command) and st.on_change)]
                dropped += len(keep) - len(runs)
                keep = runs
            out.append(Plan(plan.phase, plan.host, keep, notes=list(plan.notes)))
        return out, dropped

    def forget(self, paths: list[str]) -> None:
        for path in paths:
            self.known.pop(path, None)

    def record(self, plans: list[Plan], result) -> None:
        """Remember the files the host now holds (written or found identical)."""
        from .remote.transport import host_steps

        flat = host_steps(plans)
        for res in result.steps:
            step = flat[res.index][1] if res.index < len(flat) else None
            if isinstance(step, FileWrite):
                if res.status in ("changed", "unchanged"):
                    self.known[step.path] = (step.sha256, step.mode)
                else:
                    self.known.pop(step.path, None)
