"""join, join-control-plane, reset and cluster-up over SSH (kubeadm join / reset, and beyond).

A join follows kubeadm: discovery from this machine (cluster-info verified with the token's JWS
and the CA pin, then kubeadm-config, kubelet-config and, for control planes, kubeadm-certs read
with the bootstrap token), then the join plans applied on the host like init's. Control-plane
joins run one at a time (one etcd membership change at a time); workers run in parallel.
"""

from __future__ import annotations

import posixpath
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from . import output
from .apply import HostRun, _apply_plans, ask_sudo_password, connect, gather_timed, plan_paths, render_diff, show_plans
from .core import constants as K
from .core.errors import ConfigError, KubefabError, RemoteError
from .core.secrets import Secret
from .phases.context import Options, RunContext, join_host_port, split_host_port


@dataclass(frozen=True)
class JoinFlags:
    """kubeadm join's discovery flags (empty: from the state dir and the inventory)."""

    token: Secret | None = None
    ca_cert_hashes: tuple[str, ...] = ()
    unsafe_skip_ca_verification: bool = False
    endpoint: str = ""
    certificate_key: Secret | None = None
    discovery_file: str = ""


@dataclass
class HostOutcome:
    host: str
    role: str
    phases: int = 0
    changed: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def discovery_endpoint(inv, cfg) -> str:
    """Where discovery asks: --endpoint, the JoinConfiguration's, controlPlaneEndpoint, else the
    first control plane's address."""
    if cfg.join and cfg.join.discovery.api_server_endpoint:
        return cfg.join.discovery.api_server_endpoint
    if cfg.cluster.control_plane_endpoint:
        host, port = split_host_port(cfg.cluster.control_plane_endpoint)
        return join_host_port(host, port or K.DEFAULT_API_BIND_PORT)
    first = inv.first_control_plane
    return join_host_port(first.advertise_address or first.address, K.DEFAULT_API_BIND_PORT)


def _discover(inv, host, cfg, *, state, flags: JoinFlags, control_plane: bool):
    from . import discovery
    from .core.spec import Discovery

    d = cfg.join.discovery
    d = replace(d, token=flags.token or d.token, ca_cert_hashes=flags.ca_cert_hashes or d.ca_cert_hashes,
                unsafe_skip_ca_verification=flags.unsafe_skip_ca_verification or d.unsafe_skip_ca_verification,
                api_server_endpoint=flags.endpoint or d.api_server_endpoint,
                file_kubeconfig_path=flags.discovery_file or d.file_kubeconfig_path)
    if not isinstance(d, Discovery):  # pragma: no cover - defensive
        raise ConfigError("bad discovery settings", host=host.name)
    key = None
    if control_plane:
        key = flags.certificate_key or (cfg.join.control_plane.certificate_key if cfg.join.control_plane else None) \
            or state.certificate_key()
    return discovery.discover(d, node_name=cfg.join.node_registration.name, control_plane=control_plane,
                              certificate_key=key, external_etcd=cfg.cluster.etcd_external is not None,
                              timeout=cfg.join.timeouts.discovery.total_seconds(), host=host.name, state=state,
                              endpoint=discovery_endpoint(inv, cfg))


def _etcd_members(inv, ctx, jd, *, accept_new_host_keys: bool):
    """Existing members, asked on an existing control plane with its healthcheck-client cert."""
    from . import discovery
    from .phases.join import etcdctl_argv
    from .phases.kubeconfig import node_kubeconfigs

    import base64

    import yaml

    # the joining node's own admin.conf (signed by the cluster CA), as kubeadm uses it here
    user = yaml.safe_load(node_kubeconfigs(ctx)[K.ADMIN_KUBECONFIG])["users"][0]["user"]
    reader = discovery.ApiReader(jd.server, ca_pem=jd.ca_pem,
                                 client_cert_pem=base64.b64decode(user["client-certificate-data"]),
                                 client_key=Secret(base64.b64decode(user["client-key-data"]), kind="private key"))
    endpoints = discovery.etcd_endpoints(reader, host=ctx.host_name)
    addresses = {split_host_port(e.removeprefix("https://"))[0] for e in endpoints}
    peers = [h for h in inv.control_planes if h.name != ctx.host_name and (h.advertise_address or h.address) in addresses]
    if not peers:
        raise KubefabError("no control-plane host of the inventory runs one of the etcd members "
                           + ", ".join(endpoints), host=ctx.host_name, phase="check-etcd",
                           fix="add the existing control planes to the inventory (kubefab asks their etcd "
                               "for the member list over SSH)")
    transport = connect(inv, peers[0], accept_new_host_keys=accept_new_host_keys)
    try:
        result = transport.run(etcdctl_argv(ctx.pki_dir, endpoints, "member", "list", "-w", "json"), check=False,
                               timeout=120)
    finally:
        transport.close()
    if result.exit_code != 0:
        raise RemoteError("etcdctl member list failed on " + peers[0].name, host=ctx.host_name, phase="check-etcd",
                          details=result.tail(), fix="check etcd on the existing control planes")
    return discovery.with_etcd_members(jd, result.stdout, endpoints)


def join_host(inv, host, *, control_plane: bool, state, options: Options, flags: JoinFlags, only=(), skip=(),
              accept_new_host_keys: bool = False, sudo: Secret | None = None) -> HostOutcome:
    """One host's join, from discovery to the last wait. Raises KubefabError on failure."""
    from . import discovery
    from .phases.join import JOIN, JOIN_CONTROL_PLANE
    from .phases.kubeconfig import node_kubeconfigs
    from .phases.preflight import paths_to_probe
    from .runner import build_plans

    workflow = JOIN_CONTROL_PLANE if control_plane else JOIN
    role = "control-plane" if control_plane else "worker"
    outcome = HostOutcome(host.name, role)
    started = time.monotonic()
    cfg = inv.kubeadm_config(host, join=True)
    if control_plane and cfg.join.control_plane is None:
        raise ConfigError(f"{host.name} is not a control-plane host in the inventory", host=host.name,
                          fix="give it roles: [control-plane], or use `fab -H <host> join` for a worker")
    if not control_plane and cfg.join.control_plane is not None:
        cfg = replace(cfg, join=replace(cfg.join, control_plane=None))
    output.info("discovery", host=host.name, phase="preflight")
    jd = _discover(inv, host, cfg, state=state, flags=flags, control_plane=control_plane)
    cfg = discovery.join_config(cfg, jd, host=host.name)
    now = datetime.now(timezone.utc)
    ctx = RunContext(config=cfg, host_name=host.name, state=state, options=options, now=now, join_data=jd)
    if control_plane and cfg.cluster.etcd_local is not None:
        jd = _etcd_members(inv, ctx, jd, accept_new_host_keys=accept_new_host_keys)
        ctx = RunContext(config=cfg, host_name=host.name, state=state, options=options, now=now, join_data=jd)
    draft = build_plans(workflow, ctx, only=only, skip=skip)
    paths = sorted(set(plan_paths(draft)) | set(paths_to_probe(ctx)))
    t0 = time.monotonic()
    transport = connect(inv, host, accept_new_host_keys=accept_new_host_keys, sudo_password=sudo)
    try:
        facts, run = gather_timed(transport, paths, t0)
        ctx = RunContext(config=cfg, host_name=host.name, state=state, options=options, now=now, join_data=jd,
                         facts=facts)
        plans = build_plans(workflow, ctx, only=only, skip=skip)
        if show_plans(host.name, plans, facts, options):
            return outcome
        admin = node_kubeconfigs(ctx).get(K.ADMIN_KUBECONFIG) if control_plane else None
        _apply_plans(ctx, transport, plans, run, admin_conf=admin, started=started)
    finally:
        transport.close()
    outcome.phases = len([p for p in plans if p.steps])
    outcome.changed = run.changed
    outcome.seconds = time.monotonic() - started
    output.stage(f"{host.name} joined as {role} in {outcome.seconds:.1f}s: {run.changed} changed, "
                 f"{run.unchanged} unchanged")
    output.err(run.timer.table())
    return outcome


def _resolve_join_targets(inv, names: list[str], *, control_plane: bool):
    if not names:
        raise ConfigError(f"{'join-control-plane' if control_plane else 'join'} needs -H <host>[,<host>...]",
                          fix="name the hosts to join, e.g. fab -H worker1,worker2 join")
    hosts = inv.resolve(names)
    wrong = [h.name for h in hosts if h.is_control_plane != control_plane]
    if wrong:
        if control_plane:
            raise ConfigError(f"{', '.join(wrong)}: not control-plane hosts in the inventory",
                              fix="use `fab -H <host> join` for workers, or give them roles: [control-plane]")
        raise ConfigError(f"{', '.join(wrong)}: control-plane hosts in the inventory",
                          fix="use `fab -H <host> join-control-plane` for them")
    return hosts


def join(inv, names: list[str], *, control_plane: bool, state, options: Options, flags: JoinFlags, only=(), skip=(),
         accept_new_host_keys: bool = False, prompt_for_sudo_password: bool = False, parallel: int = 10) -> None:
    """``fab -H ... join`` (workers in parallel) / ``join-control-plane`` (one at a time)."""
    from .core.config import check_command_line
    from .phases.join import JOIN, JOIN_CONTROL_PLANE

    check_command_line(token=flags.token, ca_cert_hashes=flags.ca_cert_hashes, endpoint=flags.endpoint,
                       certificate_key=flags.certificate_key)
    state.check()
    (JOIN_CONTROL_PLANE if control_plane else JOIN).select(only, skip)
    hosts = _resolve_join_targets(inv, names, control_plane=control_plane)
    sudo = ask_sudo_password(inv.ssh.user or "root") if prompt_for_sudo_password else None
    kw = dict(control_plane=control_plane, state=state, options=options, flags=flags, only=only, skip=skip,
              accept_new_host_keys=accept_new_host_keys, sudo=sudo)
    outcomes = run_hosts(hosts, lambda h: join_host(inv, h, **kw), parallel=1 if control_plane else parallel)
    report(outcomes)


def run_hosts(hosts, fn, *, parallel: int) -> list[HostOutcome]:
    """Run ``fn`` per host (bounded threads); every failure is kept, none stops the others."""
    from .remote.parallel import run_parallel

    if parallel <= 1:
        outcomes = []
        for h in hosts:
            outcomes.append(_guard(h, fn))
        return outcomes
    results = run_parallel(hosts, lambda h: _guard(h, fn), max_workers=parallel, name=lambda h: h.name)
    return [r.value for r in results]


def _guard(host, fn) -> HostOutcome:
    started = time.monotonic()
    try:
        return fn(host)
    except KubefabError as exc:
        exc.with_context(host=host.name)
        output.err(exc.render())
        return HostOutcome(host.name, "control-plane" if host.is_control_plane else "worker",
                           seconds=time.monotonic() - started, error=exc.render().splitlines()[0])


def report(outcomes: list[HostOutcome]) -> None:
    """The summary table; raises (exit 1) naming every failed host."""
    rows = [("HOST", "ROLE", "PHASES", "CHANGED", "TIME", "RESULT")]
    for o in outcomes:
        rows.append((o.host, o.role, str(o.phases), str(o.changed), f"{o.seconds:.1f}s", "ok" if o.ok else "FAILED"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    output.err("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows))
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise KubefabError(f"{len(failed)} of {len(outcomes)} host(s) failed",
                           details=[f"{o.host}: {o.error}" for o in failed],
                           fix="fix the cause and re-run: hosts that are done report 0 changed")


# --- reset ----------------------------------------------------------------------------------------
def reset(inv, names: list[str], *, state, options: Options, force: bool = False, only=(), skip=(),
          accept_new_host_keys: bool = False) -> None:
    """``fab -H ... reset``: kubeadm reset on each host, one at a time (etcd membership)."""
    from .phases.reset import LEFT_BEHIND, RESET
    from .remote.facts import gather_facts
    from .runner import build_plans

    RESET.select(only, skip)
    if not names:
        raise ConfigError("reset needs -H <host>[,<host>...]", fix="name the hosts to reset")
    hosts = inv.resolve(names)
    if not force and not options.dry_run:
        output.err(f"[reset] WARNING: changes made to {', '.join(h.name for h in hosts)} by 'init' or 'join' "
                   "will be reverted.")
        sys.stderr.write("[reset] Are you sure you want to proceed? [y/N]: ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower() if not sys.stdin.closed else ""
        if answer not in ("y", "yes"):
            raise KubefabError("reset aborted: not confirmed", fix="answer y, or pass --force")

    def one(host) -> HostOutcome:
        started = time.monotonic()
        cfg = inv.kubeadm_config(host, join=True)
        ctx = RunContext(config=cfg, host_name=host.name, state=state, options=options)
        transport = connect(inv, host, accept_new_host_keys=accept_new_host_keys)
        try:
            facts = gather_facts(transport, [posixpath.join(K.MANIFESTS_DIR, f"{K.ETCD}.yaml")])
            ctx = RunContext(config=cfg, host_name=host.name, state=state, options=options, facts=facts)
            plans = build_plans(RESET, ctx, only=only, skip=skip)
            if options.dry_run:
                output.out(render_diff(host.name, plans, facts), reveal=False)
                return HostOutcome(host.name, "reset")
            run = HostRun(host.name)
            _apply_plans(ctx, transport, plans, run, admin_conf=None, started=started)
        finally:
            transport.close()
        for plan in plans:
            for note in plan.notes:
                if "WARNING" in note:
                    output.info(note, host=host.name, phase=plan.phase)
        for line in LEFT_BEHIND:
            output.info(line, host=host.name, phase="reset")
        return HostOutcome(host.name, "reset", phases=len(plans), changed=run.changed,
                           seconds=time.monotonic() - started)

    report(run_hosts(hosts, one, parallel=1))


# --- cluster-up -------------------------------------------------------------------------------------
def cluster_up(inv, *, state, options: Options, accept_new_host_keys: bool = False, parallel: int = 10,
               wait_ready_seconds: float = 300) -> None:
    """Init the first control plane, join the others one at a time, workers in parallel,
    wait for every Node Ready, then the summary."""
    from .apply import run_init

    state.check()
    started = time.monotonic()
    first = inv.first_control_plane
    outcomes: list[HostOutcome] = []
    options = replace(options, upload_certs=True)
    t0 = time.monotonic()
    output.stage(f"init on {first.name}")
    try:
        runs = run_init(inv, [first], state=state, options=options, only=[], skip=[],
                        now=datetime.now(timezone.utc), accept_new_host_keys=accept_new_host_keys,
                        prompt_for_sudo_password=False)
        outcomes.append(HostOutcome(first.name, "control-plane (init)", phases=sum(r.phases for r in runs),
                                    changed=sum(r.changed for r in runs), seconds=time.monotonic() - t0))
    except KubefabError as exc:
        exc.with_context(host=first.name)
        output.err(exc.render())
        outcomes.append(HostOutcome(first.name, "control-plane (init)", seconds=time.monotonic() - t0,
                                    error=exc.render().splitlines()[0]))
        report(outcomes)
    flags = JoinFlags()
    others = [h for h in inv.control_planes if h.name != first.name]
    ready = set() if options.dry_run else _ready_nodes(inv, state, accept_new_host_keys=accept_new_host_keys)
    kw = dict(state=state, options=options, flags=flags, accept_new_host_keys=accept_new_host_keys, ready=ready)
    if others:
        output.stage(f"join-control-plane, one at a time: {', '.join(h.name for h in others)}")
        outcomes += run_hosts(others, lambda h: _joined_or_join(inv, h, control_plane=True, **kw), parallel=1)
    if inv.workers:
        output.stage(f"join, {min(parallel, len(inv.workers))} at a time: {', '.join(h.name for h in inv.workers)}")
        outcomes += run_hosts(inv.workers, lambda h: _joined_or_join(inv, h, control_plane=False, **kw),
                              parallel=parallel)
    ok_nodes = [inv.host(o.host) for o in outcomes if o.ok]
    if not options.dry_run:
        _wait_nodes_ready(inv, state, [h.node_name for h in ok_nodes], wait_ready_seconds,
                          accept_new_host_keys=accept_new_host_keys)
    output.stage(f"cluster-up done in {time.monotonic() - started:.1f}s")
    admin = state.root / "nodes" / first.node_name / K.ADMIN_KUBECONFIG
    output.err(f"admin kubeconfig: {admin}")
    report(outcomes)


def _joined_or_join(inv, host, *, control_plane: bool, ready: set[str], **kw) -> HostOutcome:
    """A host whose Node is already Ready is a member: nothing to do (kubeadm would refuse to
    join it again). Any other host is joined."""
    if host.node_name in ready:
        output.info("already a Ready member of the cluster: nothing to do", host=host.name)
        return HostOutcome(host.name, "control-plane" if control_plane else "worker")
    return join_host(inv, host, control_plane=control_plane, **kw)


def _ready_nodes(inv, state, *, accept_new_host_keys: bool) -> set[str]:
    from .tokens import cluster_api

    with cluster_api(inv, state, accept_new_host_keys=accept_new_host_keys) as (_, api):
        nodes = api.request("GET", "/api/v1/nodes")["items"]
    return {n["metadata"]["name"] for n in nodes if any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in n.get("status", {}).get("conditions", []))}


def _wait_nodes_ready(inv, state, node_names: list[str], timeout: float, *, accept_new_host_keys: bool) -> None:
    from .tokens import cluster_api

    if not node_names:
        return
    output.stage(f"waiting for {len(node_names)} Node(s) to be Ready")
    with cluster_api(inv, state, accept_new_host_keys=accept_new_host_keys) as (_, api):
        deadline = time.monotonic() + timeout
        while True:
            nodes = api.request("GET", "/api/v1/nodes")["items"]
            ready = {n["metadata"]["name"] for n in nodes if any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in n.get("status", {}).get("conditions", []))}
            missing = [n for n in node_names if n not in ready]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise KubefabError(f"Nodes not Ready after {int(timeout)}s: {', '.join(missing)}",
                                   fix="look at the kubelet logs on those hosts")
            time.sleep(1)

