"""``certs``: kubeadm's PKI for a control-plane host.

Mirrors ``kubeadm init phase certs``. Keys and certificates are made (or reused) centrally in
the cluster state dir by :mod:`tasks.core.pki`, then pushed to ``<certificatesDir>`` on the
host with kubeadm's modes (keys 0600, certificates 0644, ``sa.pub`` 0600). One sub-phase per
entry of kubeadm's certificate list, so ``--skip-phases certs/etcd-ca`` works as in kubeadm.
"""

from __future__ import annotations

import posixpath

from ..core import pki
from ..core.plan import FileWrite, Plan
from ..core.secrets import Secret
from .workflow import Phase


def node_pki_files(ctx) -> list[tuple[str, bytes, int]]:
    """Every file of the host's ``<pki>`` as (relative path, bytes, mode)."""
    return pki.node_files(ctx.cluster_pki, ctx.node_pki)


def file_steps(ctx, rel_paths: set[str] | None = None) -> list[FileWrite]:
    steps = []
    for rel, data, mode in node_pki_files(ctx):
        if rel_paths is not None and rel not in rel_paths:
            continue
        content = Secret(data, kind="private key") if rel.endswith(".key") else data
        steps.append(FileWrite(posixpath.join(ctx.pki_dir, rel), content, mode=mode))
    return steps


def _plan_for(spec) -> callable:
    def run(ctx) -> Plan:
        plan = Plan(f"certs/{spec.name}", ctx.host_name)
        wanted = set(spec_files(spec))
        plan.add(*file_steps(ctx, wanted))
        if not plan.steps:
            plan.notes.append(f"{spec.long_name}: not used by this cluster")
        return plan

    run.__name__ = f"plan_certs_{spec.name.replace('-', '_')}"
    return run


def pki_paths(ctx, specs) -> list[str]:
    """Where the files of these certificate-list entries go on the host (facts probe)."""
    return [posixpath.join(ctx.pki_dir, f) for s in specs for f in spec_files(s)]


def spec_files(spec) -> list[str]:
    """Relative file names one certificate-list entry produces."""
    if spec.name == "sa":
        return ["sa.key", "sa.pub"]
    return [f"{spec.base_name}.crt", f"{spec.base_name}.key"]


CERTS = Phase(
    name="certs",
    help="Certificate generation",
    phases=tuple(
        Phase(name=spec.name, help=f"Generate the {spec.long_name}", run=_plan_for(spec),
              probes=lambda ctx, spec=spec: pki_paths(ctx, [spec]))
        for spec in pki.CERT_SPECS
    ),
    produces=("pki",),
)
