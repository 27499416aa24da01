"""What each command does, between the CLI's flags and the phases' plans.

Load and validate the inventory and kubeadm config (all errors at once), resolve ``-H`` names,
build every plan, and only then act: print it, write it (offline dry-run) or apply it.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from . import output
from .core.config.validate import check_command_line
from .core.errors import ConfigError, KubefabError
from .core.plan import render_plan
from .core.state import ClusterState
from .phases.context import Options, RunContext


PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_INVENTORY = "inventory/hosts.yaml"


def resolve_inventory_path(inventory: str) -> Path:
    """``--inventory`` > ``$KUBEFAB_INVENTORY`` > ``inventory/hosts.yaml`` (cwd, then project)."""
    raw = inventory or os.environ.get("KUBEFAB_INVENTORY") or ""
    if raw:
        path = Path(raw).expanduser()
        if not path.exists():
            raise ConfigError(f"inventory {raw} not found",
                              fix="pass --inventory FILE or set KUBEFAB_INVENTORY to an existing file")
        return path
    for base in (Path.cwd(), PROJECT_DIR):
        if (base / DEFAULT_INVENTORY).exists():
            return base / DEFAULT_INVENTORY
    raise ConfigError(f"no inventory: {DEFAULT_INVENTORY} not found",
                      fix="pass --inventory FILE or set KUBEFAB_INVENTORY")


def load_inventory(path: str):
    from .core import inventory

    return inventory.load_inventory(Path(path))


def state_for(inv, state_dir: str) -> ClusterState:
    return ClusterState(Path(state_dir) if state_dir else Path(inv.state_dir))


def init_targets(inv, names: list[str]):
    """The host(s) to init: the -H names (control planes only), else the first control plane."""
    hosts = inv.resolve(names) if names else [inv.first_control_plane]
    if len(hosts) > 1:
        raise ConfigError(f"init brings up the first control plane of a cluster; {len(hosts)} hosts were given "
                          f"({', '.join(h.name for h in hosts)})",
                          fix=f"run `fab -H {hosts[0].name} init`, then `fab -H "
                              f"{','.join(h.name for h in hosts[1:])} join-control-plane` (or `fab cluster-up`)")
    bad = [h.name for h in hosts if not h.is_control_plane]
    if bad:
        raise ConfigError(f"init runs on control-plane hosts; {', '.join(bad)} "
                          f"{'is a worker' if len(bad) == 1 else 'are workers'} in the inventory",
                          fix="use `fab -H <host> join` for workers, or give the host the control-plane role")
    return hosts


def check_init(options: Options, *, output_dir: str = "", only=(), skip=()) -> None:
    """The flag rules of init (and of cluster-up's init), before anything else happens."""
    from .phases.init import INIT

    if options.offline and not options.dry_run:
        raise ConfigError("--offline only goes with --dry-run", fix="add --dry-run, or drop --offline")
    if output_dir and not (options.dry_run and options.offline):
        raise ConfigError("--output-dir only goes with --dry-run --offline", fix="add --dry-run --offline")
    INIT.select(only, skip)  # an unknown phase name fails before anything else happens
    # a flag's value is checked before anything is written (a bad key once saved broke every later run)
    check_command_line(certificate_key=options.certificate_key)


def init_context(inv, host, *, state, options: Options, now) -> RunContext:
    """init's prepare step: the host's config (it must have an InitConfiguration) and a pending
    store for the PKI, token and certificate key (written only when the run applies)."""
    from .core.statestore import PendingStore

    config = inv.kubeadm_config(host)
    if config.init is None:
        raise ConfigError(f"{config.source or 'the kubeadm config'} has no InitConfiguration for {host.name}",
                          host=host.name, fix="add an InitConfiguration document or remove the JoinConfiguration")
    ctx = RunContext(config=config, host_name=host.name, state=state, options=options, now=now,
                     store=PendingStore(state))
    announce_patches(ctx)
    return ctx


def announce_patches(ctx: RunContext) -> None:
    """Read the run's patch directory now (a bad one fails before any connection or write) and
    print what kubeadm prints reading it."""
    if ctx.patches is not None:
        for line in ctx.patches.messages:
            output.info(line, host=ctx.host_name)


def init_run(inv, host, *, state, options: Options, only=(), skip=(), role: str = "control-plane (init)"):
    """The pipeline's :class:`~tasks.pipeline.Run` of init on one host (init and cluster-up)."""
    from .phases.init import INIT
    from .pipeline import Run

    now = datetime.now(timezone.utc)
    return Run(INIT, role, lambda: init_context(inv, host, state=state, options=options, now=now),
               only=tuple(only), skip=tuple(skip),
               done=lambda r: f"Done in {r.timer.elapsed():.1f}s on {host.name}: {r.changed} changed, "
                              f"{r.unchanged} unchanged")


def init(*, hosts: list[str], options: Options, state_dir: str = "", output_dir: str = "", only=(), skip=(),
         accept_new_host_keys: bool = False, prompt_for_sudo_password: bool = False) -> None:
    """``fab -H <host> init``."""
    from .apply import ask_sudo_password
    from .phases.init import INIT
    from .apply import diff_data
    from .pipeline import HostResult, emit_summary, render_state_writes, run_workflow, ssh_connector
    from .runner import build_plans, write_offline

    check_init(options, output_dir=output_dir, only=only, skip=skip)
    inv = load_inventory(options.inventory_path)
    targets = init_targets(inv, hosts)
    if prompt_for_sudo_password and not options.offline:
        from .apply import check_sudo_password_source

        check_sudo_password_source(targets[0].user or inv.ssh.user or "root")
    state = state_for(inv, state_dir)
    state.check()
    now = datetime.now(timezone.utc)

    if not options.offline:
        from .locks import run_lock

        results = []
        with run_lock(state, dry_run=options.dry_run, hosts=hosts):
            for host in targets:
                sudo = ask_sudo_password(host.user or inv.ssh.user or "root") if prompt_for_sudo_password else None
                connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys, sudo_password=sudo)
                run = init_run(inv, host, state=state, options=options, only=only, skip=skip)
                try:
                    results.append(run_workflow(host, run, connect=connect, options=options))
                except KubefabError as exc:
                    emit_summary([*results, HostResult.failed(host.name, run.role, exc)],
                                 dry_run=options.dry_run)
                    raise
        emit_summary(results, dry_run=options.dry_run)
        return

    out_dir = Path(output_dir) if output_dir else None
    plans_by_host = {}
    contexts = {}
    for host in targets:
        ctx = contexts[host.name] = init_context(inv, host, state=state, options=options, now=now)
        output.stage(f"Planning init on {host.name} (offline: no connection)")
        plans_by_host[host.name] = build_plans(INIT, ctx, only=only, skip=skip)
    summary = []
    for host_name, plans in plans_by_host.items():
        output.out(render_plan(plans, show_secrets=options.show_secrets), reveal=options.show_secrets)
        writes = render_state_writes(host_name, contexts[host_name].store)
        if writes:
            output.out(writes)
        store = contexts[host_name].store
        summary.append(HostResult(host_name, "control-plane (init)", phases=len([p for p in plans if p.actions]),
                                  plan=diff_data(plans, None),
                                  state_writes=list(store.describe()) if store is not None and not store.empty else []))
    emit_summary(summary, dry_run=True)
    if out_dir is not None:
        written = write_offline(plans_by_host, out_dir)
        output.stage(f"Wrote {len(written)} files under {out_dir}")


def ca_hash(*, cert: str = "", inventory: str = "", state_dir: str = "") -> str:
    """``fab certs.ca-hash``: the discovery pin of a certificate (default: the cluster CA)."""
    from .core import bootstrap

    if cert:
        path = Path(cert)
    else:
        inv = load_inventory(str(resolve_inventory_path(inventory)))
        path = state_for(inv, state_dir).pki_dir / "ca.crt"
        if not path.exists():
            raise KubefabError(f"the cluster CA {path} does not exist yet",
                               fix="run `fab -H <host> init` first, or pass --cert FILE")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KubefabError(f"cannot read {path}: {exc.strerror}", fix="pass a readable PEM certificate with --cert")
    return bootstrap.ca_pin(pem)


def _redact_kubeconfig(data: bytes) -> str:
    """The kubeconfig with its private key and token replaced by placeholders (dry-run)."""
    from .core import kubeconfig as kc

    doc = kc.parse_kubeconfig(data)
    for user in doc.get("users") or []:
        auth = user.get("user") or {}
        for key, what in (("client-key-data", "private key"), ("token", "token")):
            if key in auth:
                auth[key] = f"<redacted {what}>"
    return kc.render_kubeconfig(doc).decode()


def kubeconfig_user(*, client_name: str, organizations=(), validity_period: str = "8760h", token=None,
                    output_file: str = "", hosts=(), inventory: str = "", state_dir: str = "",
                    dry_run: bool = False, show_secrets: bool = False, now=None) -> None:
    """``fab kubeconfig.user``: kubeadm's ``kubeconfig user`` from the state dir's CA.

    The kubeconfig goes to stdout (as kubeadm prints it), or to ``output_file`` (created with mode
    0600, atomically; an existing file is never overwritten). Nothing else is written, nothing
    is contacted.
    """
    from .core import constants as K
    from .core import kubeconfig as kc
    from .core import pki
    from .core.config.durations import format_go_duration, parse_go_duration
    from .core.secrets import Secret
    from .core.state import write_atomic

    if not client_name or not client_name.strip():
        raise ConfigError("--client-name is required: the user name, used as the certificate's CN",
                          fix="fab kubeconfig.user --client-name alice")
    client_name = client_name.strip()
    orgs = tuple(o.strip() for raw in organizations for o in str(raw).split(",") if o.strip())
    try:
        validity = parse_go_duration(validity_period)
    except ValueError as exc:
        raise ConfigError(f"--validity-period: {exc}", fix="use a Go duration such as 24h, 720h or 8760h") from None
    if validity.total_seconds() <= 0 and token is None:
        raise ConfigError(f"--validity-period {validity_period!r} is not positive",
                          fix="use a Go duration such as 24h, 720h or 8760h")
    target = Path(output_file).expanduser() if output_file else None
    if target is not None:
        if target.exists() or target.is_symlink():
            raise ConfigError(f"{target} already exists; kubefab does not overwrite a kubeconfig",
                              fix="remove it, or pass another --output-file FILE")
        if not target.parent.is_dir():
            raise ConfigError(f"the directory of {target} does not exist", fix=f"create {target.parent} first")
    inv = load_inventory(str(resolve_inventory_path(inventory)))
    host = inv.resolve(list(hosts))[0] if hosts else inv.first_control_plane
    if len(hosts) > 1 or not host.is_control_plane:
        raise ConfigError("-H names the one control plane whose endpoint the kubeconfig uses when there is no "
                          "controlPlaneEndpoint", fix="give one control-plane host, or no -H (the first control plane)")
    state = state_for(inv, state_dir)
    state.check()
    now = now or datetime.now(timezone.utc)
    config = inv.kubeadm_config(host)
    ctx = RunContext(config=config, host_name=host.name, state=state, now=now)
    ca, warnings = pki.load_signing_ca(state.pki_dir, now=now)
    for w in warnings:
        output.err(f"[kubeconfig] WARNING: {w}")
    if validity > K.DEFAULT_CERT_VALIDITY and token is None:
        output.err(f"[kubeconfig] WARNING: the certificate validity period {format_go_duration(validity)} is longer "
                   f"than the default {format_go_duration(K.DEFAULT_CERT_VALIDITY)}; this may increase security risks")
    data = kc.build_user_kubeconfig(ca, config.cluster, server=ctx.control_plane_url, client_name=client_name,
                                    organizations=orgs, not_after=now + validity, token=token)
    secret = Secret(data, kind="kubeconfig")
    what = (f"user {client_name!r}" + (f" (O={','.join(orgs)})" if orgs else "")
            + (" with a token" if token is not None else f", certificate valid {format_go_duration(validity)}")
            + f", server {ctx.control_plane_url}")
    if dry_run:
        where = f"{target} (mode 0600)" if target is not None else "stdout"
        output.stage(f"[dryrun] Would write a kubeconfig for {what} to {where}:")
        output.out(data.decode() if show_secrets else _redact_kubeconfig(data), reveal=show_secrets)
        return
    if target is None:
        output.out(secret.reveal().decode(), reveal=True)  # the command's output, as kubeadm prints it
        return
    try:
        write_atomic(target, data, 0o600, dir_mode=0o700)
    except OSError as exc:
        raise KubefabError(f"cannot write {target}: {exc.strerror}", fix="choose a writable --output-file path") from None
    output.stage(f"Wrote a kubeconfig for {what} to {target} (mode 0600)")


def admin_kubeconfig(inv, state, *, output_file: str = "") -> tuple[Path, str]:
    """``fab kubeconfig.admin``: the first control plane's admin.conf from the state dir, written
    for the operator machine (k0sctl's ``kubeconfig``) with mode 0600.

    Its server is the control-plane endpoint (``controlPlaneEndpoint``, else the first control
    plane's advertise address), as kubeadm writes admin.conf.

    :param output_file: where to write it (default: ``admin.conf`` at the state dir's root).
    :returns: ``(path written, server URL)``.
    :raises KubefabError: no admin.conf in the state dir yet, or a path that cannot be written.
    """
    from .core import constants as K
    from .core.state import write_atomic
    from .core.yamlload import load_document

    host = inv.first_control_plane
    ctx = RunContext(config=inv.kubeadm_config(host), host_name=host.name, state=state, options=Options())
    source = ctx.node_state_dir / K.ADMIN_KUBECONFIG
    if not source.exists():
        raise KubefabError(f"no admin.conf for {host.name} in {state.root}",
                           fix="run `fab cluster-up` (or `fab -H <host> init`) first, or pass --state-dir "
                               "of this cluster")
    data = source.read_bytes()
    doc = load_document(data.decode("utf-8", "replace"), source=str(source))
    try:
        server = str(doc["clusters"][0]["cluster"]["server"])
    except (KeyError, IndexError, TypeError):
        raise KubefabError(f"{source} holds no cluster server", fix=f"remove {source} and re-run "
                           f"`fab -H {host.name} init` to write it again") from None
    dest = Path(output_file).expanduser() if output_file else state.root / K.ADMIN_KUBECONFIG
    if dest.resolve() != source.resolve():
        try:
            write_atomic(dest, data, 0o600, dir_mode=0o700)
        except OSError as exc:
            raise KubefabError(f"cannot write {dest}: {exc.strerror}",
                               fix="pass --output-file with a writable path") from None
    return dest, server


def version_info() -> dict:
    """kubefab's version and the Kubernetes minors it supports (no connection)."""
    import platform

    from . import __version__
    from .core import versions

    return {"kubefab": {"version": __version__, "python": platform.python_version()},
            "supportedKubernetesMinors": [f"v1.{m}" for m in sorted(versions.TABLE)]}


def cluster_versions(inv, state, names: list[str], *, connect) -> dict:
    """The API server's version and each Node's kubelet version (the -H hosts' Nodes, else all),
    through the first control plane's admin.conf from the state dir."""
    from .session import cluster_api

    with cluster_api(inv, state, connect=connect) as (ctx, api):
        server = api.request("GET", "/version") or {}
        nodes = api.request("GET", "/api/v1/nodes")["items"]
    wanted = {h.node_name for h in inv.resolve(names)} if names else None
    rows = []
    for n in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = n["metadata"]["name"]
        if wanted is not None and name not in wanted:
            continue
        info = n.get("status", {}).get("nodeInfo", {})
        rows.append({"name": name, "kubeletVersion": info.get("kubeletVersion", ""),
                     "kubeProxyVersion": info.get("kubeProxyVersion", ""),
                     "containerRuntimeVersion": info.get("containerRuntimeVersion", "")})
    missing = sorted(wanted - {r["name"] for r in rows}) if wanted is not None else []
    return {"server": ctx.control_plane_url, "serverVersion": server.get("gitVersion", ""), "nodes": rows,
            "missingNodes": missing}


def kubeconfig_admin(inv, state, *, output_file: str = "") -> Path:
    """``fab kubeconfig.admin``: write it (:func:`admin_kubeconfig`), say where, warn when its
    server does not answer from here, and print the kubectl line to try (stdout)."""
    import shlex

    from .core.endpoints import split_host_port
    from .session import reachable

    path, server = admin_kubeconfig(inv, state, output_file=output_file)
    output.err(f"admin kubeconfig: {path} (server {server})")
    host, port = split_host_port(server.removeprefix("https://"))
    if not reachable(host, int(port or 443)):
        output.err(f"WARNING: {server} does not answer from this machine: kubectl needs a route to it "
                   "(or an SSH tunnel to a control plane and its server set to the tunnel)")
    output.out(f"kubectl --kubeconfig {shlex.quote(str(path))} get nodes")
    return path


def version(inv, state, names: list[str], *, accept_new_host_keys: bool = False) -> None:
    """``fab version``: kubefab's, the supported minors, and with an inventory the cluster's."""
    from .pipeline import ssh_connector

    info = version_info()
    output.out(f"kubefab {info['kubefab']['version']} (Python {info['kubefab']['python']})")
    output.out("Kubernetes minors: " + ", ".join(info["supportedKubernetesMinors"]))
    if inv is not None:
        info["cluster"] = found = cluster_versions(
            inv, state, names, connect=ssh_connector(inv, accept_new_host_keys=accept_new_host_keys))
        output.out(f"cluster {found['server']}: API server {found['serverVersion'] or '<unknown>'}")
        rows = [("NODE", "KUBELET", "KUBE-PROXY", "CONTAINER RUNTIME")]
        rows += [(n["name"], n["kubeletVersion"], n["kubeProxyVersion"], n["containerRuntimeVersion"])
                 for n in found["nodes"]]
        output.out(output.table(rows))
        for name in found["missingNodes"]:
            output.err(f"[{name}] no Node of that name in the cluster")
    output.emit("Version", info)
