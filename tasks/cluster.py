"""join, join-control-plane, reset and cluster-up over SSH (kubeadm join / reset, and beyond).

A join follows kubeadm: discovery from this machine (cluster-info verified with the token's JWS
and the CA pin, then kubeadm-config, kubelet-config and, for control planes, kubeadm-certs read
with the bootstrap token), then the join plans applied on the host like init's. Control-plane
joins run one at a time (one etcd membership change at a time); workers run in parallel.
"""

from __future__ import annotations

import secrets
import shlex
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from . import output
from .apply import ask_sudo_password
from .core import constants as K
from .core.endpoints import join_host_port, split_host_port
from .core.errors import ApiError, ConfigError, KubefabError, RemoteError
from .core.secrets import Secret
from .phases.context import Options, RunContext
from .pipeline import HostResult, Run, report, run_hosts, run_workflow, ssh_connector


# Workers joining at once (cluster-up, join): k0sctl's default. The work per worker on this side is
# small (one discovery per command, a facts probe, an upload); the hosts do the rest.
JOIN_PARALLEL = 30
CONTROL_PLANE_JOIN_KEYS = 10


@dataclass(frozen=True)
class JoinFlags:
    """kubeadm join's discovery flags (empty: from the state dir and the inventory)."""

    token: Secret | None = None
    ca_cert_hashes: tuple[str, ...] = ()
    unsafe_skip_ca_verification: bool = False
    endpoint: str = ""
    certificate_key: Secret | None = None
    discovery_file: str = ""


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


def _discover(inv, host, cfg, *, state, flags: JoinFlags, control_plane: bool, cache=None):
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
                              endpoint=discovery_endpoint(inv, cfg), cache=cache)


def etcd_endpoints(api, *, host: str | None = None) -> tuple[str, ...]:
    """Client URLs from the etcd mirror Pods, read with the official client (trust is
    established by then: the cluster CA from discovery, an admin identity as kubeadm uses)."""
    from .api import ApiStatus
    from .phases.joindata import etcd_endpoints_from_pods

    try:
        pods = api.request("GET", f"/api/v1/namespaces/{K.KUBE_SYSTEM_NAMESPACE}/pods",
                           query={"labelSelector": "component=etcd,tier=control-plane"})
    except ApiStatus as exc:
        raise ApiError(f"listing the etcd Pods failed: {exc.problem}", host=host, phase="check-etcd",
                       fix="check admin.conf and the API server") from None
    try:
        return etcd_endpoints_from_pods(pods or {})
    except KubefabError as exc:
        raise exc.with_context(host=host)


def _etcd_members(inv, host, ctx, jd, *, connect):
    """Existing members, asked with the cluster's etcd CA and a healthcheck-client certificate:
    on an existing control plane of the inventory (its own files), or, when the inventory holds
    none (a cluster kubeadm made), from the joining host with this node's certificate in a
    temporary directory that the same command removes."""
    from . import discovery
    from .phases.etcdutil import etcdctl_argv
    from .phases.kubeconfig import node_kubeconfigs
    from .session import api_session

    import base64

    import yaml

    # the joining node's own admin.conf (signed by the cluster CA), as kubeadm uses it here,
    # pointed at the server and CA discovery established
    admin = yaml.safe_load(node_kubeconfigs(ctx)[K.ADMIN_KUBECONFIG])
    admin["clusters"][0]["cluster"].update({"server": jd.server,
                                            "certificate-authority-data": base64.b64encode(jd.ca_pem).decode()})
    with api_session(yaml.safe_dump(admin).encode(), timeout=ctx.timeouts.kubernetes_api_call.total_seconds(),
                     host=ctx.host_name) as api:
        endpoints = etcd_endpoints(api, host=ctx.host_name)
    addresses = {split_host_port(e.removeprefix("https://"))[0] for e in endpoints}
    peers = [h for h in inv.control_planes if h.name != ctx.host_name and (h.advertise_address or h.address) in addresses]
    if peers:
        # any healthy control plane will do: the first that can be reached answers
        argv = etcdctl_argv(ctx.pki_dir, endpoints, "member", "list", "-w", "json")
        for n, peer in enumerate(peers):
            where = peer.name
            try:
                transport = connect(peer)
                try:
                    result = transport.run(argv, check=False, timeout=120)
                finally:
                    transport.close()
                break
            except RemoteError as exc:
                if n == len(peers) - 1:
                    raise
                output.info(f"{peer.name} cannot be asked for the etcd members ({exc.problem}); asking "
                            f"{peers[n + 1].name}", host=ctx.host_name)
    else:
        where = ctx.host_name
        tmp = f"{K.KUBERNETES_DIR}/tmp/kubefab-etcd-{secrets.token_hex(6)}"
        leaf = ctx.node_pki.leaves["etcd-healthcheck-client"]
        transport = connect(host)
        try:
            for name, data, mode in (("ca.crt", ctx.cluster_pki.etcd_ca.cert_pem, 0o644),
                                     ("healthcheck-client.crt", leaf.cert_pem, 0o644),
                                     ("healthcheck-client.key", Secret(leaf.key_pem, kind="private key"), 0o600)):
                transport.put(data, f"{tmp}/etcd/{name}", mode, dir_mode=0o700)
            argv = shlex.join(etcdctl_argv(tmp, endpoints, "member", "list", "-w", "json"))
            result = transport.run(f"{argv}; rc=$?; rm -rf {shlex.quote(tmp)}; exit $rc", check=False, timeout=120)
        finally:
            transport.close()
    if result.exit_code != 0:
        raise RemoteError("etcdctl member list failed on " + where, host=ctx.host_name, phase="check-etcd",
                          details=result.tail(), fix="check etcd on the existing control planes")
    return discovery.with_etcd_members(jd, result.stdout, endpoints)


def join_context(inv, host, *, control_plane: bool, state, options: Options, flags: JoinFlags, connect,
                 cache=None) -> RunContext:
    """A join's prepare step: discovery from this machine, the join config it gives, and for a
    control plane with local etcd the existing members (asked on an existing control plane).
    Nothing is written: new leaves and kubeconfigs wait in the context's pending store."""
    from . import discovery
    from .core.statestore import PendingStore

    cfg = inv.kubeadm_config(host, join=True)
    if control_plane and cfg.join.control_plane is None:
        raise ConfigError(f"{host.name} is not a control-plane host in the inventory", host=host.name,
                          fix="give it roles: [control-plane], or use `fab -H <host> join` for a worker")
    if not control_plane and cfg.join.control_plane is not None:
        cfg = replace(cfg, join=replace(cfg.join, control_plane=None))
    from .commands import announce_patches

    announce_patches(RunContext(config=cfg, host_name=host.name, state=state, options=options))
    output.info("discovery", host=host.name, phase="preflight")
    jd = _discover(inv, host, cfg, state=state, flags=flags, control_plane=control_plane, cache=cache)
    cfg = discovery.join_config(cfg, jd, host=host.name)
    ctx = RunContext(config=cfg, host_name=host.name, state=state, options=options, now=datetime.now(timezone.utc),
                     join_data=jd, store=PendingStore(state))
    if control_plane and cfg.cluster.etcd_local is not None:
        ctx = replace(ctx, join_data=_etcd_members(inv, host, ctx, jd, connect=connect))
    return ctx


def join_run(inv, host, *, control_plane: bool, state, options: Options, flags: JoinFlags, connect, only=(),
             skip=(), cache=None) -> Run:
    from .phases.join import JOIN, JOIN_CONTROL_PLANE

    role = "control-plane" if control_plane else "worker"
    return Run(JOIN_CONTROL_PLANE if control_plane else JOIN, role,
               lambda: join_context(inv, host, control_plane=control_plane, state=state, options=options,
                                    flags=flags, connect=connect, cache=cache),
               only=tuple(only), skip=tuple(skip),
               done=lambda r: f"{host.name} joined as {role} in {time.monotonic() - r.timer.started:.1f}s: "
                              f"{r.changed} changed, {r.unchanged} unchanged")


def join_host(inv, host, *, control_plane: bool, state, options: Options, flags: JoinFlags, only=(), skip=(),
              accept_new_host_keys: bool = False, sudo: Secret | None = None, cache=None) -> HostResult:
    """One host's join, from discovery to the last wait. Raises KubefabError on failure.

    :param cache: a :class:`tasks.discovery.WorkerDiscoveryCache` shared by the workers of one command.
    """
    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys, sudo_password=sudo)
    run = join_run(inv, host, control_plane=control_plane, state=state, options=options, flags=flags,
                   connect=connect, only=only, skip=skip, cache=cache)
    result = run_workflow(host, run, connect=connect, options=options)
    if control_plane and result.ok and not options.dry_run and host.name == inv.first_control_plane.name:
        # the inventory's first control plane joined an existing cluster (it was removed, or
        # replaced): from now on cluster-up treats it as the joined member it is, never as init's
        from .core.state import write_atomic

        write_atomic(state.node_dir(host.node_name) / JOINED_MARK, b"joined with join-control-plane\n", 0o600)
    return result


# in the state dir's nodes/<first control plane>/: that host joined an existing cluster (see _first_joins)
JOINED_MARK = "joined"


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
         accept_new_host_keys: bool = False, prompt_for_sudo_password: bool = False,
         parallel: int = JOIN_PARALLEL) -> None:
    """``fab -H ... join`` (workers in parallel, one discovery for all) / ``join-control-plane`` (one at a time)."""
    from .core.config.validate import check_command_line
    from .discovery import WorkerDiscoveryCache
    from .phases.join import JOIN, JOIN_CONTROL_PLANE

    check_command_line(token=flags.token, ca_cert_hashes=flags.ca_cert_hashes, endpoint=flags.endpoint,
                       certificate_key=flags.certificate_key)
    state.check()
    (JOIN_CONTROL_PLANE if control_plane else JOIN).select(only, skip)
    hosts = _resolve_join_targets(inv, names, control_plane=control_plane)
    sudo = ask_sudo_password(inv.ssh.user or "root") if prompt_for_sudo_password else None
    if not options.dry_run:
        from .health import check_cluster_serves

        check_cluster_serves(inv, state, ssh_connector(inv, accept_new_host_keys=accept_new_host_keys,
                                                       sudo_password=sudo))
    kw = dict(control_plane=control_plane, state=state, options=options, flags=flags, only=only, skip=skip,
              accept_new_host_keys=accept_new_host_keys, sudo=sudo, cache=WorkerDiscoveryCache())
    from .locks import run_lock

    with run_lock(state, dry_run=options.dry_run, hosts=names):
        outcomes = run_hosts(hosts, lambda h: join_host(inv, h, **kw), parallel=1 if control_plane else parallel,
                             role=_role)
    report(outcomes, dry_run=options.dry_run)


def _role(host) -> str:
    return "control-plane" if host.is_control_plane else "worker"


# --- reset ---------------------------------------------------------------------------------------
def reset(inv, names: list[str], *, state, options: Options, force: bool = False, keep_node: bool = False,
          unreachable: bool = False, delete_emptydir_data: bool = False, timeout: str = "0s", only=(), skip=(),
          accept_new_host_keys: bool = False) -> None:
    """``fab -H ... reset``: remove each host from the cluster, one at a time (etcd membership):
    drain, kubeadm reset, delete the Node (``--keep-node``: kubeadm reset alone)."""
    from .core.config.durations import parse_go_duration
    from .phases.reset import RESET

    RESET.select(only, skip)
    if not names:
        raise ConfigError("reset needs -H <host>[,<host>...]", fix="name the hosts to reset")
    if unreachable and keep_node:
        raise ConfigError("--unreachable removes a dead host from the cluster's side; --keep-node keeps it in "
                          "the cluster", fix="pass one of them")
    try:
        drain_timeout = parse_go_duration(timeout).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"--timeout: {exc}", fix="give a Go duration such as 90s or 5m (0: no limit)") from None
    if drain_timeout < 0:
        raise ConfigError(f"--timeout {timeout} is negative", fix="give 0 (no limit) or a positive duration")
    hosts = inv.resolve(names)
    admin = None if keep_node else _cluster_admin(inv, state)
    if not force and not options.dry_run:
        what = "reverted" + ("" if keep_node else ", and the node(s) drained and removed from the cluster")
        output.err(f"[reset] WARNING: changes made to {', '.join(h.name for h in hosts)} by 'init' or 'join' "
                   f"will be {what}.")
        sys.stderr.write("[reset] Are you sure you want to proceed? [y/N]: ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower() if not sys.stdin.closed else ""
        if answer not in ("y", "yes"):
            raise KubefabError("reset aborted: not confirmed", fix="answer y, or pass --force")

    from .core.statestore import PendingStore
    from .phases.reset import Removal

    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)
    flags = Removal(force=force, delete_emptydir_data=delete_emptydir_data, timeout_seconds=drain_timeout,
                    unreachable=unreachable)

    def one(host) -> HostResult:
        ctx = RunContext(config=inv.kubeadm_config(host, join=True), host_name=host.name, state=state,
                         options=options, store=PendingStore(state))
        via = None
        if not keep_node:
            removal = read_removal(inv, host, ctx, admin, flags, connect=connect)
            via = inv.host(removal.via) if removal.via else None
            ctx = replace(ctx, cluster_kubeconfig=admin, removal=removal)
        run = Run(RESET, "reset" if keep_node else "removed", lambda: ctx, only=tuple(only), skip=tuple(skip),
                  table=False, via=via)
        return run_workflow(host, run, connect=connect, options=options)

    from .locks import run_lock

    with run_lock(state, dry_run=options.dry_run, hosts=names):
        outcomes = run_hosts(hosts, one, parallel=1, role=lambda h: "reset")
    report(outcomes, dry_run=options.dry_run)


def _cluster_admin(inv, state) -> bytes:
    """The admin.conf reset's cluster-side phases use: the first control plane's, in the state dir."""
    first = inv.first_control_plane
    ctx = RunContext(config=inv.kubeadm_config(first), host_name=first.name, state=state, options=Options())
    admin = ctx.node_state_dir / K.ADMIN_KUBECONFIG
    if not admin.exists():
        raise KubefabError(f"no admin.conf of {first.name} in {state.root}: the node cannot be drained and removed "
                           "from the cluster", fix="pass --state-dir of this cluster, or --keep-node to reset the "
                                                    "host alone (kubeadm reset)")
    return admin.read_bytes()


def read_removal(inv, host, ctx, admin: bytes, flags, *, connect):
    """What reset needs to know before planning a node removal: the Node and its pods, the
    control-plane Nodes (through the API), and for an etcd member the member list and health
    (etcdctl on another control plane, else on the host itself). Reads only."""
    from .api import ApiStatus
    from .drain import list_pods
    from .phases.reset import etcd_member_of
    from .session import api_session

    first = inv.first_control_plane
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": ctx.node_name}}
    try:
        with api_session(admin, timeout=ctx.timeouts.kubernetes_api_call.total_seconds(),
                         transport=lambda: connect(first), host=host.name,
                         via=(first.advertise_address or first.address, K.DEFAULT_API_BIND_PORT)) as api:
            live = api.get(node)
            pods = list_pods(api, ctx.node_name) if live is not None and not flags.unreachable else []
            nodes = api.request("GET", "/api/v1/nodes",
                                query={"labelSelector": K.CONTROL_PLANE_LABEL})["items"]
    except (KubefabError, ApiStatus) as exc:
        problem = exc.problem if isinstance(exc, KubefabError) else str(exc)
        raise KubefabError(f"cannot read node {ctx.node_name} from the cluster's API: {problem}", host=host.name,
                           phase="preflight", fix="bring the API server back, or pass --keep-node to reset the "
                                                  "host alone (kubeadm reset)") from None
    cps = tuple(sorted(n["metadata"]["name"] for n in nodes))
    removal = replace(flags, node_exists=live is not None, pods=tuple(pods), control_plane_nodes=cps)
    peers = [h for h in inv.control_planes if h.name != host.name and h.node_name in cps]
    if not etcd_member_of(ctx):
        if flags.unreachable:
            if not peers:
                raise KubefabError(f"no other control plane to work from for the unreachable {host.name}",
                                   host=host.name, phase="preflight", fix="add a control plane to the inventory")
            removal = replace(removal, via=peers[0].name)
        return removal
    errors = []
    for source in peers + ([] if flags.unreachable else [host]):
        got = _etcd_status(source, ctx, connect)
        if isinstance(got, str):
            errors.append(f"{source.name}: {got}")
            continue
        members, healthy = got
        return replace(removal, etcd_members=tuple(members), healthy_urls=frozenset(healthy),
                       via=source.name if flags.unreachable else "")
    if flags.unreachable:
        raise KubefabError(f"no other control plane answered for etcd: {'; '.join(errors) or 'none in the cluster'}",
                           host=host.name, phase="preflight",
                           fix="the member can only be removed through a running etcd member: bring one back")
    return replace(removal, etcd_error="; ".join(errors) or "no control plane answered")


def _etcd_status(source, ctx, connect):
    """``(members, healthy client URLs)`` asked on ``source``'s own etcd, or why not (a string)."""
    import json

    from .phases.etcdutil import etcdctl_argv

    endpoint = f"https://127.0.0.1:{K.ETCD_CLIENT_PORT}"
    try:
        transport = connect(source)
    except KubefabError as exc:
        return exc.problem
    try:
        listed = transport.run(etcdctl_argv(ctx.pki_dir, [endpoint], "member", "list", "-w", "json"), check=False,
                               timeout=60)
        if listed.exit_code != 0:
            return (listed.tail() or ["etcdctl member list failed"])[-1]
        health = transport.run(etcdctl_argv(ctx.pki_dir, [endpoint], "endpoint", "health", "--cluster", "-w", "json"),
                               check=False, timeout=120)
    except KubefabError as exc:
        return exc.problem
    finally:
        transport.close()
    try:
        members = json.loads(listed.stdout).get("members") or []
        healthy = {e.get("endpoint") for e in json.loads(health.stdout or "[]") if e.get("health")}
    except (ValueError, AttributeError, TypeError):
        return "unreadable answer from etcdctl"
    return members, healthy


# --- cluster-up -------------------------------------------------------------------------------------
def cluster_up(inv, *, state, options: Options, accept_new_host_keys: bool = False, parallel: int = JOIN_PARALLEL,
               wait_ready_seconds: float = 300) -> None:
    """Init the first control plane, then the other control planes one at a time and, at the same
    time, the workers in parallel (a worker needs only the API through the endpoint and a token,
    as kubeadm join does); wait for every Node Ready, then the summary. The init goes through
    init's own checks."""
    from .locks import run_lock

    with run_lock(state, dry_run=options.dry_run):
        _cluster_up(inv, state=state, options=options, accept_new_host_keys=accept_new_host_keys, parallel=parallel,
                    wait_ready_seconds=wait_ready_seconds)


def _cluster_up(inv, *, state, options: Options, accept_new_host_keys: bool, parallel: int,
                wait_ready_seconds: float) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .commands import check_init, init_run
    from .discovery import WorkerDiscoveryCache
    from .session import cluster_api, ready_nodes, wait_nodes_ready

    state.check()
    started = time.monotonic()
    first = inv.first_control_plane
    options = replace(options, upload_certs=True)
    check_init(options)
    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)
    existing = not options.dry_run and (state.pki_dir / "ca.crt").is_file()
    first_down = None
    if existing:
        # an existing cluster: stop before any change when etcd has lost its quorum; and a
        # first control plane that is down only costs its own re-run while another serves
        from .health import check_cluster_serves

        check_cluster_serves(inv, state, connect)
        first_down = _unreachable(first, connect)
    others = [h for h in inv.control_planes if h.name != first.name]
    first_joins = existing and first_down is None and bool(others) and _first_joins(inv, state, connect)
    if first_joins:
        output.info(f"{first_joins}: it joins as a control plane; init runs only where a cluster starts",
                    host=first.name)
        others = [first, *others]
    new_cps = [h for h in others if not (state.root / "nodes" / h.node_name).exists()]
    if new_cps and not options.dry_run:
        # a new control plane's join makes 10 keys (7 certificates, 3 kubeconfigs): make them while init waits
        from .core.pki import pregenerate_keys

        pregenerate_keys(inv.kubeadm_config(first).cluster.encryption_algorithm, CONTROL_PLANE_JOIN_KEYS * len(new_cps))
    outcomes: list[HostResult] = []
    if first_down is not None:
        output.info(f"unreachable ({first_down.problem}); cluster-up goes on with the other hosts, which "
                    "do not need it", host=first.name)
        outcomes = [HostResult.failed(first.name, "control-plane (init)", first_down)]
    elif not first_joins:
        output.stage(f"init on {first.name}")
        outcomes = run_hosts([first], lambda h: run_workflow(h, init_run(inv, h, state=state, options=options),
                                                             connect=connect, options=options),
                             parallel=1, role=lambda h: "control-plane (init)")
        if not outcomes[0].ok:
            report(outcomes, dry_run=options.dry_run, seconds=time.monotonic() - started)
    flags = JoinFlags()
    ready: set[str] = set()
    if not options.dry_run:
        with cluster_api(inv, state, connect=connect) as (_, api):
            ready = ready_nodes(api)
    kw = dict(state=state, options=options, flags=flags, accept_new_host_keys=accept_new_host_keys, ready=ready)
    cache = WorkerDiscoveryCache()

    def control_planes() -> list[HostResult]:
        if not others:
            return []
        output.stage(f"join-control-plane, one at a time: {', '.join(h.name for h in others)}")
        return run_hosts(others, lambda h: _joined_or_join(inv, h, control_plane=True, **kw), parallel=1, role=_role)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubefab-control-planes") as pool:
        joining = pool.submit(control_planes)  # the workers do not wait for it
        workers: list[HostResult] = []
        if inv.workers:
            output.stage(f"join, {min(parallel, len(inv.workers))} at a time"
                         + (", while the control planes join" if others else "")
                         + f": {', '.join(h.name for h in inv.workers)}")
            workers = run_hosts(inv.workers, lambda h: _joined_or_join(inv, h, control_plane=False, cache=cache, **kw),
                                parallel=parallel, role=_role)
        outcomes += joining.result() + workers
    ok_nodes = [inv.host(o.host) for o in outcomes if o.ok]
    if not options.dry_run and ok_nodes:
        with cluster_api(inv, state, connect=connect) as (_, api):
            wait_nodes_ready(api, [h.node_name for h in ok_nodes], wait_ready_seconds)
    output.stage(f"cluster-up done in {time.monotonic() - started:.1f}s")
    if not options.dry_run:
        from .commands import admin_kubeconfig

        admin, _ = admin_kubeconfig(inv, state)
        output.err(f"admin kubeconfig: {admin} (again with `fab kubeconfig.admin --output-file FILE`)")
        output.err(f"  try: kubectl --kubeconfig {shlex.quote(str(admin))} get nodes")
    report(outcomes, dry_run=options.dry_run, seconds=time.monotonic() - started)


def _first_joins(inv, state, connect) -> str:
    """Why the inventory's first control plane joins the existing cluster instead of running
    init, or "" when init is right for it (a new cluster, one whose init is unfinished, or the
    host that made it).

    Init on a host of a running cluster would start a second, one-member etcd behind the same
    endpoint: after ``fab -H <first> reset`` removed it (its Node is gone while other control
    planes serve), or once it joined back (``JOINED_MARK``), it is a control plane like the others.
    """
    from .core import constants as K
    from .session import cluster_api

    first = inv.first_control_plane
    if (state.root / "nodes" / first.node_name / JOINED_MARK).is_file():
        return "it joined this cluster with join-control-plane"
    try:
        with cluster_api(inv, state, connect=connect) as (_, api):
            nodes = api.request("GET", "/api/v1/nodes")["items"]
    except KubefabError:
        return ""  # no API to ask: an unfinished init goes on
    names = {n["metadata"]["name"] for n in nodes}
    cps = {n["metadata"]["name"] for n in nodes if K.CONTROL_PLANE_LABEL in (n["metadata"].get("labels") or {})}
    if first.node_name not in names and cps - {first.node_name}:
        return (f"not a Node of the existing cluster, whose control planes are {', '.join(sorted(cps))} "
                "(removed with reset?)")
    return ""


def _unreachable(host, connect) -> KubefabError | None:
    """The connect error when ``host`` cannot be reached over SSH, else None."""
    try:
        transport = connect(host)
        try:
            transport.run("true", timeout=30)
        finally:
            transport.close()
    except KubefabError as exc:
        if isinstance(exc, RemoteError) and ("cannot reach" in exc.problem or "SSH failed" in exc.problem):
            return exc
        raise
    return None


def _joined_or_join(inv, host, *, control_plane: bool, ready: set[str], **kw) -> HostResult:
    """A host whose Node is already Ready is a member: nothing to do (kubeadm would refuse to
    join it again). Any other host is joined."""
    if host.node_name in ready:
        output.info("already a Ready member of the cluster: nothing to do", host=host.name)
        return HostResult(host.name, "control-plane" if control_plane else "worker")
    return join_host(inv, host, control_plane=control_plane, **kw)
