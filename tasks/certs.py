"""``fab certs.check-expiration``: kubeadm certs check-expiration, from the cluster state dir.

It reads the certificates kubefab made and installed (the central PKI and each control plane's
leaves and kubeconfigs under ``nodes/<node>/``); it connects to no host and creates nothing.
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
                                       advertise_address=ctx.advertise_address, now=now, store=reader)
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
        for r in rows:
            if r.expired:
                output.err(f"[{host.name}] {r.name} has expired: renew it (delete it in the state dir and re-run init "
                           "or join-control-plane for that host)")
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
