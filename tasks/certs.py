"""``fab certs.check-expiration`` and ``fab certs.renew``: kubeadm's certs commands, cluster-wide.

check-expiration reads the certificates kubefab made and installed (the central PKI and each
control plane's leaves and kubeconfigs under ``nodes/<node>/``); it connects to no host and
creates nothing. A certificate that lacks a SAN the config now requires is named with the
``certs.renew`` command that fixes it.

certs.renew renews in the state dir and on every control plane, one at a time, on the host
pipeline (``tasks/phases/renew.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from . import output
from .core import constants as K
from .core.errors import KubefabError


def _residual(delta: timedelta) -> str:
    """kubeadm's short form: ``364d``, ``9y``, ``<invalid>``."""
    if delta <= timedelta(0):
        return "<invalid>"
    days = delta.days
    if days >= 365 * 2:
        return f"{days // 365}y"
    if days >= 1:
        return f"{days}d"
    return f"{int(delta.total_seconds() // 3600)}h"


def check_expiration(inv, state, names: list[str]) -> None:
    from .core import kubeconfig as kc
    from .core import pki
    from .core.statestore import PendingStore
    from .phases.context import Options, RunContext

    if not (state.pki_dir / "ca.crt").exists():
        raise KubefabError(f"no cluster PKI in {state.root}",
                           fix="run `fab -H <host> init` first, or pass --state-dir")
    hosts = inv.resolve(names) if names else list(inv.control_planes)
    now = datetime.now(timezone.utc)
    data = []
    for host in hosts:
        ctx = RunContext(config=inv.kubeadm_config(host), host_name=host.name, state=state, options=Options(), now=now)
        node_dir = state.root / "nodes" / ctx.node_name
        if not (node_dir / "pki").exists():
            output.err(f"[{host.name}] no certificates in the state dir (not set up from this machine)")
            data.append({"host": host.name, "node": ctx.node_name, "found": False, "certificates": [],
                         "certificateAuthorities": []})
            continue
        reader = PendingStore(state)  # never committed: this command creates nothing
        cluster_pki = pki.ensure_cluster_pki(state.pki_dir, ctx.cluster, now=now, store=reader)
        node_pki = pki.ensure_node_pki(cluster_pki, node_dir, ctx.cluster, node_name=ctx.node_name,
                                       advertise_address=ctx.advertise_address, now=now, store=reader,
                                       strict_sans=False)
        extra = {}
        for name in (K.ADMIN_KUBECONFIG, K.SUPER_ADMIN_KUBECONFIG, K.CONTROLLER_MANAGER_KUBECONFIG,
                     K.SCHEDULER_KUBECONFIG):
            path = node_dir / name
            if path.exists():
                cert = kc.client_certificate(path.read_bytes())
                if cert is not None:
                    extra[name] = cert
        rows = pki.check_expiration(cluster_pki, node_pki, now=now, extra=extra)
        cas = [r for r in rows if r.ca is None]
        leaves = [r for r in rows if r.ca is not None]
        output.out(f"[{host.name}]")
        output.out(_table(("CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"),
                          [(r.name, r.not_after.strftime("%b %d, %Y %H:%M UTC"), _residual(r.residual), r.ca,
                            "yes" if r.external else "no") for r in leaves]))
        output.out("")
        output.out(_table(("CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"),
                          [(r.name, r.not_after.strftime("%b %d, %Y %H:%M UTC"), _residual(r.residual),
                            "yes" if r.external else "no") for r in cas]))
        for name, sans in node_pki.lacking_sans:
            output.err(f"[{host.name}] {name} lacks the SAN(s) {', '.join(sans)} the config requires: "
                       + pki.renew_fix(host.name, name))
        for r in rows:
            if r.expired:
                output.err(f"[{host.name}] {r.name} has expired: "
                           + (pki.renew_fix(host.name, r.name) if r.ca is not None else
                              "a CA is not renewed by kubeadm or kubefab: see kubeadm's manual CA rotation"))
        data.append({"host": host.name, "node": ctx.node_name, "found": True,
                     "certificates": [_cert_data(r) for r in leaves],
                     "certificateAuthorities": [_cert_data(r) for r in cas]})
    output.emit("CertificateExpirationList", {"hosts": data})


def _cert_data(r) -> dict:
    """kubeadm's output.kubeadm.k8s.io ``CertificateExpirationInfo`` fields, camelCase."""
    entry = {"name": r.name, "expirationDate": r.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "residualTimeSeconds": max(int(r.residual.total_seconds()), 0), "residualTime": _residual(r.residual),
             "externallyManaged": bool(r.external), "expired": bool(r.expired)}
    if r.ca is not None:
        entry["certificateAuthority"] = r.ca
    return entry


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return output.table([header, *rows])


def renew(inv, state, names: list[str], hosts: list[str], *, options, new_keys: bool = False,
          accept_new_host_keys: bool = False) -> None:
    """``fab certs.renew``: renew on every control plane (or the -H ones), one at a time."""
    from .locks import run_lock

    with run_lock(state, dry_run=options.dry_run, hosts=hosts):
        _renew(inv, state, names, hosts, options=options, new_keys=new_keys, accept_new_host_keys=accept_new_host_keys)


def _renew(inv, state, names: list[str], hosts: list[str], *, options, new_keys: bool,
           accept_new_host_keys: bool) -> None:
    from dataclasses import replace

    from .core.statestore import PendingStore
    from .phases.context import RunContext
    from .phases.renew import RENEW, build_renewal, resolve_names
    from .pipeline import Run, report, run_hosts, run_workflow, ssh_connector

    resolve_names(names, inv.kubeadm_config(inv.first_control_plane, join=True).cluster)  # bad names first
    state.check()
    if not (state.pki_dir / "ca.crt").exists():
        raise KubefabError(f"no cluster PKI in {state.root}", fix="run `fab -H <host> init` first, or pass --state-dir")
    targets = inv.resolve(hosts) if hosts else list(inv.control_planes)
    workers = [h.name for h in targets if not h.is_control_plane]
    if workers:
        raise KubefabError(f"{', '.join(workers)}: not control planes; kubelets renew their own certificates",
                           fix="name control-plane hosts, or leave -H out for all of them")
    now = datetime.now(timezone.utc)
    contexts = {}
    for host in targets:  # every renewal is made (and every name checked) before any host is touched
        ctx = RunContext(config=inv.kubeadm_config(host, join=True), host_name=host.name, state=state,
                         options=options, now=now, store=PendingStore(state))
        wanted = resolve_names(names, ctx.cluster)
        if not (ctx.node_state_dir / "pki").exists():
            raise KubefabError(f"no certificates of {host.name} in {state.root} (not set up from this machine)",
                               host=host.name, fix="run certs.renew for the hosts this state dir set up (-H), "
                                                   "or pass --state-dir")
        try:
            renewal = build_renewal(ctx, wanted, new_keys=new_keys)
        except KubefabError as exc:
            raise exc.with_context(host=host.name, phase="certs-renew")
        contexts[host.name] = replace(ctx, renewal=renewal)
    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)

    def one(host):
        ctx = contexts[host.name]
        run = Run(RENEW, "control-plane", lambda: ctx,
                  done=lambda r: f"{host.name}: renewed {len(ctx.renewal.leaves) + len(ctx.renewal.kubeconfigs)} "
                                 f"certificate(s), restarted {', '.join(ctx.renewal.restarts) or 'nothing'} in "
                                 f"{r.timer.elapsed():.1f}s")
        return run_workflow(host, run, connect=connect, options=options)

    report(run_hosts(targets, one, parallel=1, role=lambda h: "control-plane"))
