"""Run a workflow's plans on a real host: SSH for files and commands, the API for objects.

Per host the budget is: one round trip for facts, one SFTP session plus one command for all
the file phases (certs → kubelet-start), one command per host-side wait, and the API calls.
The sequence for ``init``:

1. plan once without facts (to learn which paths to probe), connect, gather facts (1 round trip);
2. plan again with the facts — preflight raises here, before anything is written;
3. ``--dry-run``: print per step what would change and why ("unchanged: same sha256 and mode");
4. apply: consecutive host-only plans go to the transport in one batch; waits and API objects
   run in plan order in between; the summary shows time and round trips per phase.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Iterable

import yaml

from . import output
from .core import constants as K
from .core.errors import ApiError, KubefabError, RemoteError
from .core.plan import ApiObject, Command, FileRemove, FileWrite, Plan, Wait
from .core.secrets import Secret
from .output import PhaseTiming, Timer
from .phases.context import Options, RunContext, split_host_port


# --- connections ---------------------------------------------------------------------------
def connect(inv, host, *, accept_new_host_keys: bool = False, sudo_password: Secret | None = None):
    """An SSH transport to an inventory host, host keys verified (the inventory's known_hosts)."""
    from .remote.transport import SshTransport

    ssh = inv.ssh
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
    return out


def plan_paths(plans: Iterable[Plan]) -> list[str]:
    paths: list[str] = []
    for plan in plans:
        for step in plan.steps:
            if isinstance(step, FileWrite):
                paths.append(step.path)
            elif isinstance(step, Command) and step.creates:
                paths.append(step.creates)
    return paths


def render_diff(host: str, plans: list[Plan], facts, *, show_secrets: bool = False) -> str:
    lines = []
    counts = {"change": 0, "unchanged": 0}
    for plan in plans:
        lines.append(f"[{host}] [{plan.phase}]")
        for note in plan.notes:
            lines.append(f"    # {note}")
        for d in diff_plan(plan, facts):
            text = d.step.describe()
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
POLL_SCRIPT = r"""
probe() {
  if command -v curl >/dev/null 2>&1; then curl -ksS --max-time 5 -o /dev/stdout -w ' HTTP %{http_code}' "$1" 2>&1
  elif command -v wget >/dev/null 2>&1; then wget -q --no-check-certificate -T 5 -O - "$1" 2>&1
  else python3 -c 'import sys,ssl,urllib.request as u;c=ssl._create_unverified_context();print(u.urlopen(sys.argv[1],timeout=5,context=c).read().decode())' "$1" 2>&1
  fi
}
# each argument: <timeout seconds> <url>; polled in order, each until ok or its own deadline
while [ $# -gt 0 ]; do
  deadline=$(( $(date +%s) + $1 )); url=$2; shift 2
  while :; do
    last=$(probe "$url"); case "$last" in ok*|*"HTTP 200") echo "ok $url"; break;; esac
    [ "$(date +%s)" -ge "$deadline" ] && { echo "failed $url"; echo "last answer: $last"; exit 1; }
    sleep 1
  done
done
"""

LOG_TAIL_SCRIPT = r"""
echo "--- kubelet (last 15 lines)"
(journalctl -u kubelet -n 15 --no-pager 2>/dev/null | grep . ) || tail -n 15 /var/log/kubelet.log 2>/dev/null || echo "(no kubelet log found)"
for f in /var/log/pods/kube-system_etcd-*/etcd/*.log /var/log/pods/kube-system_kube-apiserver-*/kube-apiserver/*.log; do
  [ -f "$f" ] || continue; echo "--- $f (last 10 lines)"; tail -n 10 "$f"
done
"""


def wait_on_host(transport, waits: list[Wait], *, host: str, phase: str) -> None:
    """Poll local URLs on the host, in order, until each answers ok: one round trip for all."""
    argv = ["sh", "-c", POLL_SCRIPT, "poll"]
    for wait in waits:
        argv += [str(int(wait.timeout.total_seconds())), wait.target]
    budget = sum(w.timeout.total_seconds() for w in waits)
    result = transport.run(argv, check=False, timeout=budget + 30)
    if result.exit_code != 0:
        lines = result.stdout.strip().splitlines()
        failed = next((ln[len("failed "):] for ln in lines if ln.startswith("failed ")), waits[-1].target)
        wait = next((w for w in waits if w.target == failed), waits[-1])
        logs = transport.run(["sh", "-c", LOG_TAIL_SCRIPT], check=False, timeout=30)
        raise RemoteError(
            f"{failed} did not become healthy within {int(wait.timeout.total_seconds())}s",
            host=host, phase=phase,
            details=[ln for ln in (lines[-1:] + logs.stdout.splitlines()) if ln][:40],
            fix="look at the logs above; once the cause is fixed, re-running continues from here")


# --- API access ----------------------------------------------------------------------------
@contextmanager
def tunnel(transport, remote_host: str, remote_port: int):
    """Forward a free local port to ``remote_host:remote_port`` as seen from the SSH host."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local_port = s.getsockname()[1]
    conn = transport.connection  # the Fabric Connection under the transport
    with conn.forward_local(local_port, remote_port=remote_port, remote_host=remote_host,
                            local_host="127.0.0.1"):
        yield local_port


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def api_session(ctx: RunContext, transport, admin_conf: bytes, *, timeout: float):
    """An :class:`tasks.api.Api` for the cluster: direct, or through an SSH tunnel via the host.

    :param transport: the host's transport, or a callable that opens one (only when a tunnel
        is needed, so a reachable API costs no SSH connection).
    """
    from kubernetes import client as kclient
    from kubernetes.config import kube_config

    from .api import Api

    cfg = yaml.safe_load(admin_conf)
    server = cfg["clusters"][0]["cluster"]["server"]
    host, port = split_host_port(server.removeprefix("https://"))
    configuration = kclient.Configuration()
    kube_config.KubeConfigLoader(cfg).load_and_set(configuration)
    with ExitStack() as stack:
        if not _reachable(host, int(port or 443)):
            output.info(f"{server} is not reachable from here: tunnelling through SSH to "
                        f"{ctx.advertise_address}:{ctx.bind_port}", host=ctx.host_name)
            if callable(transport) and not hasattr(transport, "run"):
                transport = transport()
                stack.callback(transport.close)
            local_port = stack.enter_context(tunnel(transport, ctx.advertise_address, ctx.bind_port))
            configuration.host = f"https://127.0.0.1:{local_port}"
            configuration.tls_server_name = "kubernetes"  # a SAN of every kubeadm apiserver cert
        api_client = kclient.ApiClient(configuration)
        stack.callback(api_client.close)
        yield Api(api_client, timeout=timeout)


def ensure_cluster_admins(ctx: RunContext, transport, api, super_admin_conf: bytes | None) -> None:
    """kubeadm's EnsureAdminClusterRoleBinding: admin.conf (group kubeadm:cluster-admins) has
    no rights until ClusterRoleBinding kubeadm:cluster-admins exists; create it with admin.conf,
    and on Forbidden with super-admin.conf (system:masters), exactly as kubeadm init does."""
    from .phases import rbac

    crb = rbac.cluster_role_binding(K.CLUSTER_ADMINS_GROUP, "cluster-admin", rbac.groups(K.CLUSTER_ADMINS_GROUP))
    step = ApiObject(crb, strategy="retain")
    try:
        api.apply(step)
        return
    except ApiError as exc:
        if "HTTP 403" not in exc.problem or super_admin_conf is None:
            raise exc.with_context(host=ctx.host_name, phase="upload-config/kubeadm")
    with api_session(ctx, transport, super_admin_conf, timeout=api.timeout) as super_api:
        super_api.apply(step)


def wait_api_ready(api, timeout: float, *, host: str) -> None:
    from .api import ApiStatus

    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            api.request("GET", "/readyz", raw=True)
            return
        except (ApiStatus, ApiError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise ApiError(f"the API server did not become ready within {int(timeout)}s (last: {last})",
                           host=host, phase="wait-control-plane",
                           fix="check the kube-apiserver and etcd logs on the host; re-run init to continue")
        time.sleep(1)


# --- the run -------------------------------------------------------------------------------
FINALIZE_WAIT_SECONDS = 10

@dataclass
class HostRun:
    host: str
    phases: int = 0
    changed: int = 0
    unchanged: int = 0
    timer: Timer = field(default_factory=Timer)


def gather_timed(transport, paths: list[str], started: float) -> tuple[object, "HostRun"]:
    """Facts in one round trip, and a HostRun whose first row is the connection's cost."""
    from .remote.facts import gather_facts

    facts = gather_facts(transport, paths)
    run = HostRun(transport.host)
    run.timer.add(PhaseTiming(transport.host, "connect + facts", time.monotonic() - started, transport.stats.count))
    return facts, run


def show_plans(host: str, plans: list[Plan], facts, options: Options) -> bool:
    """Print the preflight warnings; with --dry-run print the diff too. True = dry-run: stop."""
    for plan in plans:
        for note in plan.notes:
            if note.startswith("[WARNING"):
                output.info(note, host=host, phase=plan.phase)
    if options.dry_run:
        output.out(render_diff(host, plans, facts, show_secrets=options.show_secrets), reveal=options.show_secrets)
    return options.dry_run


def run_init(inv, targets, *, state, options: Options, only, skip, now, accept_new_host_keys: bool,
             prompt_for_sudo_password: bool) -> list["HostRun"]:
    from .phases.init import INIT
    from .phases.kubeconfig import node_kubeconfigs
    from .phases.preflight import paths_to_probe
    from .runner import build_plans

    runs: list[HostRun] = []
    for host in targets:
        config = inv.kubeadm_config(host)
        ctx = RunContext(config=config, host_name=host.name, state=state, options=options, now=now)
        draft = build_plans(INIT, ctx, only=only, skip=skip)
        paths = sorted(set(plan_paths(draft)) | set(paths_to_probe(ctx)))
        sudo = None
        if prompt_for_sudo_password:
            sudo = ask_sudo_password(host.user or inv.ssh.user or "root")
        output.stage(f"Connecting to {host.name} ({host.address})")
        started = time.monotonic()
        transport = connect(inv, host, accept_new_host_keys=accept_new_host_keys, sudo_password=sudo)
        try:
            facts, run = gather_timed(transport, paths, started)
            ctx = RunContext(config=config, host_name=host.name, state=state, options=options, now=now,
                             facts=facts)
            plans = build_plans(INIT, ctx, only=only, skip=skip)
            if show_plans(host.name, plans, facts, options):
                continue
            confs = node_kubeconfigs(ctx)
            _apply_plans(ctx, transport, plans, run, admin_conf=confs.get(K.ADMIN_KUBECONFIG),
                         super_admin_conf=confs.get(K.SUPER_ADMIN_KUBECONFIG), started=started)
            _finish_init(ctx, run, plans)
            run.phases = len([p for p in plans if p.steps])
            runs.append(run)
        finally:
            transport.close()
    return runs


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

    def record(self, plans: list[Plan], result: ApplyResult) -> None:
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


def _apply_plans(ctx, transport, plans: list[Plan], run: HostRun, *, admin_conf: bytes | None,
                 started: float, super_admin_conf: bytes | None = None) -> None:
    """Apply plans in order. Host steps (files, commands) are batched across consecutive plans
    into one transport apply; a Wait or an API object first flushes the batch, then runs."""
    pending: list[Plan] = []
    api_stack = ExitStack()
    state = {"api": None, "admins": False}
    files = HostFiles(ctx.facts)

    def flush() -> None:
        if not pending:
            return
        t0, rt0 = time.monotonic(), transport.stats.count
        label = ", ".join(dict.fromkeys(p.phase.split("/")[0] for p in pending))
        output.info(f"applying {sum(len(p.steps) for p in pending)} steps", host=ctx.host_name, phase=label)
        from .remote.transport import ApplyResult

        to_send, known_same = files.prune(pending)
        if any(p.steps for p in to_send):
            result = transport.apply(to_send, check=False)
            files.record(to_send, result)
        else:  # every file already as planned, nothing else to run: no round trip at all
            result = ApplyResult(ctx.host_name, (), 0, 0.0)
        err = result.error()
        changed = result.changed
        unchanged = known_same + sum(1 for s in result.steps if s.status in ("unchanged", "skipped"))
        run.changed += changed
        run.unchanged += unchanged
        run.timer.add(PhaseTiming(ctx.host_name, label, time.monotonic() - t0, transport.stats.count - rt0,
                                  changed, unchanged))
        pending.clear()
        if err is not None:
            raise err

    def api():
        if state["api"] is None:
            if admin_conf is None:
                raise KubefabError("no admin.conf for this host", host=ctx.host_name,
                                   fix="run the kubeconfig phase first")
            state["api"] = api_stack.enter_context(api_session(
                ctx, transport, admin_conf, timeout=ctx.timeouts.kubernetes_api_call.total_seconds()))
        return state["api"]

    try:
        for plan in plans:
            if plan.phase.startswith("kubelet-finalize"):
                flush()
                plan = _refresh_finalize(ctx, transport, plan)
            for kind, steps in _segments(plan.steps):
                if kind == "host":
                    pending.append(Plan(plan.phase, plan.host, steps))
                    continue
                flush()
                t0, rt0 = time.monotonic(), transport.stats.count
                changed = unchanged = 0
                host_waits: list[Wait] = []
                for i, step in enumerate(steps):
                    if isinstance(step, Wait) and _polled_on_host(step):
                        host_waits.append(step)  # consecutive ones share one round trip
                        nxt = steps[i + 1] if i + 1 < len(steps) else None
                        if not (isinstance(nxt, Wait) and _polled_on_host(nxt)):
                            wait_on_host(transport, host_waits, host=ctx.host_name, phase=plan.phase)
                            host_waits = []
                        continue
                    if isinstance(step, Wait):
                        _wait(ctx, transport, step, plan.phase, api)
                        continue
                    if not state["admins"] and ctx.config.init is not None:
                        ensure_cluster_admins(ctx, transport, api(), super_admin_conf)
                        state["admins"] = True
                    if step.kind == "Node":
                        api().wait_for(step.obj, ctx.timeouts.kubelet_health_check.total_seconds())
                    try:
                        result = api().apply(step)
                    except KubefabError as exc:
                        raise exc.with_context(host=ctx.host_name, phase=plan.phase)
                    if result.changed:
                        changed += 1
                        output.info(f"{result.action} {result.ref}", host=ctx.host_name, phase=plan.phase)
                    else:
                        unchanged += 1
                run.changed += changed
                run.unchanged += unchanged
                run.timer.add(PhaseTiming(ctx.host_name, plan.phase, time.monotonic() - t0,
                                          transport.stats.count - rt0, changed, unchanged))
        flush()
    finally:
        api_stack.close()
    run.timer.started = started


def _segments(steps) -> list[tuple[str, list]]:
    from .remote.transport import segments

    return segments(steps)


def _polled_on_host(step: Wait) -> bool:
    """A health URL on the host's own loopback (kubelet, controller manager, scheduler, etcd)."""
    return step.check != "api-readyz" and step.target.startswith(("http://", "https://"))


def _wait(ctx, transport, step: Wait, phase: str, api) -> None:
    """The API's /readyz is polled from here; a file wait on the host itself."""
    if step.check == "api-readyz":
        wait_api_ready(api(), step.timeout.total_seconds(), host=ctx.host_name)
    else:
        wait_file_on_host(transport, step, host=ctx.host_name, phase=phase)


def wait_file_on_host(transport, wait: Wait, *, host: str, phase: str) -> None:
    """Poll until a file exists and is not empty on the host (kubelet.conf after TLS bootstrap)."""
    from .phases.join import wait_file_script

    timeout = int(wait.timeout.total_seconds())
    result = transport.run(["sh", "-c", wait_file_script(wait.target, timeout)], check=False, timeout=timeout + 30)
    if result.exit_code != 0:
        logs = transport.run(["sh", "-c", LOG_TAIL_SCRIPT], check=False, timeout=30)
        raise RemoteError(f"{wait.target} was not written within {timeout}s ({wait.check})", host=host, phase=phase,
                          details=[ln for ln in logs.stdout.splitlines() if ln][:40],
                          fix="look at the kubelet log above (TLS bootstrap: is the token valid and the "
                              "auto-approval RBAC in place?); re-running continues from here")


def _refresh_finalize(ctx, transport, plan: Plan) -> Plan:
    """kubelet-finalize looks at the host *now*: has the kubelet written its rotated cert?

    kubeadm checks once; kubefab gives the kubelet's certificate store a few seconds to write
    the file (one round trip), so that one run converges instead of two."""
    from .phases.kubelet import plan_kubelet_finalize

    known = ctx.fact("paths", {}).get(K.KUBELET_CLIENT_CURRENT_PEM) or {}
    present = bool(known.get("exists"))  # there when the run began: no need to look again
    if not present:
        pem = shlex.quote(K.KUBELET_CLIENT_CURRENT_PEM)
        script = f"i=0; while [ $i -lt {FINALIZE_WAIT_SECONDS} ]; do test -e {pem} && {{ echo yes; exit 0; }}; " \
                 "sleep 1; i=$((i+1)); done; echo no"
        result = transport.run(["sh", "-c", script], check=False, timeout=FINALIZE_WAIT_SECONDS + 30)
        present = result.stdout.strip() == "yes"

    class _Facts:
        paths = {K.KUBELET_CLIENT_CURRENT_PEM: {"exists": present}}

    saved = ctx.facts
    ctx.facts = _Facts()
    try:
        new = plan_kubelet_finalize(ctx)
    finally:
        ctx.facts = saved
    new.phase, new.host = plan.phase, plan.host
    return new


def _finish_init(ctx: RunContext, run: HostRun, plans: list[Plan]) -> None:
    """kubeadm's closing words: admin.conf, then both forms of the join commands."""
    from .core import bootstrap

    output.stage(f"Done in {run.timer.elapsed():.1f}s on {ctx.host_name}: {run.changed} changed, "
                 f"{run.unchanged} unchanged")
    output.err(run.timer.table())
    ran = {p.phase.split("/")[0] for p in plans}
    admin = ctx.state.node_dir(ctx.node_name) / K.ADMIN_KUBECONFIG
    if "show-join-command" not in ran:
        return
    reveal = ctx.options.show_secrets or not ctx.options.skip_token_print
    token = ctx.bootstrap_tokens[0].token
    token_text = token.reveal() if reveal else str(token)
    pin = bootstrap.ca_pin(ctx.cluster_pki.ca_cert_pem)
    endpoint = ctx.control_plane_url.removeprefix("https://")
    lines = [
        "",
        "Your Kubernetes control-plane has initialized successfully!",
        "",
        "To start using your cluster from this machine:",
        f"  export KUBECONFIG={admin}",
        "",
        f"On {ctx.host_name} itself, as kubeadm prints it:",
        "  mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config",
        "",
    ]
    inv = ctx.options.inventory_path
    if "upload-certs" in ran and ctx.options.upload_certs:
        key = ctx.certificate_key
        if not ctx.options.skip_certificate_key_print:
            output.out("[upload-certs] Using certificate key:", reveal=True)
            output.out(key.reveal(), reveal=True)
        key_text = key.reveal() if not ctx.options.skip_certificate_key_print else "<certificate key>"
        lines += [
            "You can now join any number of control-plane nodes:",
            f"  fab -H <host> join-control-plane --inventory {inv}",
            f"  kubeadm join {endpoint} --token {token_text} \\",
            f"      --discovery-token-ca-cert-hash {pin} \\",
            f"      --control-plane --certificate-key {key_text}",
            "",
        ]
    lines += [
        "Then you can join any number of worker nodes:",
        f"  fab -H <host> join --inventory {inv}",
        f"  kubeadm join {endpoint} --token {token_text} \\",
        f"      --discovery-token-ca-cert-hash {pin}",
    ]
    # the join commands carry the token on purpose, as kubeadm prints them
    output.out("\n".join(lines), reveal=reveal)
