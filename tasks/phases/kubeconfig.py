"""``kubeconfig``: the kubeconfig files of a control-plane host.

Mirrors ``kubeadm init phase kubeconfig``: admin.conf, super-admin.conf (init only),
kubelet.conf (init only; joins get theirs from TLS bootstrap), controller-manager.conf and
scheduler.conf in ``/etc/kubernetes``, mode 0600, certificate data embedded. Client
certificates are signed centrally by the cluster CA and kept per node in the state dir.
"""

from __future__ import annotations

import posixpath

from ..core import constants as K
from ..core.plan import FileWrite, Plan
from ..core.secrets import Secret
from .workflow import Phase

FILES = {
    "admin": K.ADMIN_KUBECONFIG,
    "super-admin": K.SUPER_ADMIN_KUBECONFIG,
    "kubelet": K.KUBELET_KUBECONFIG,
    "controller-manager": K.CONTROLLER_MANAGER_KUBECONFIG,
    "scheduler": K.SCHEDULER_KUBECONFIG,
}
HELP = {
    "admin": "Generate a kubeconfig file for the admin to use and for kubeadm itself",
    "super-admin": "Generate a kubeconfig file for the super-admin",
    "kubelet": "Generate a kubeconfig file for the kubelet to use *only* for cluster bootstrapping purposes",
    "controller-manager": "Generate a kubeconfig file for the controller manager to use",
    "scheduler": "Generate a kubeconfig file for the scheduler to use",
}


def node_kubeconfigs(ctx) -> dict[str, bytes]:
    """File name -> content for this host (cached on the context)."""
    return ctx.kubeconfigs


def _rotated_on_host(ctx) -> bool:
    """kubelet.conf and kubelet-client-current.pem both exist on the host."""
    if ctx.facts is None:
        return False
    paths = ctx.fact("paths", {}) or {}
    conf = paths.get(posixpath.join(K.KUBERNETES_DIR, K.KUBELET_KUBECONFIG))
    pem = paths.get(K.KUBELET_CLIENT_CURRENT_PEM)
    return bool(conf and conf.get("exists") and pem and pem.get("exists"))


def _plan_for(name: str):
    def run(ctx) -> Plan:
        plan = Plan(f"kubeconfig/{name}", ctx.host_name)
        content = node_kubeconfigs(ctx).get(FILES[name])
        if name == "kubelet" and _rotated_on_host(ctx):
            plan.notes.append("kubelet.conf already uses the kubelet's rotated client certificate "
                              "(kubelet-finalize); kept as kubeadm keeps a valid kubeconfig")
            return plan
        if content is None:
            plan.notes.append(f"{FILES[name]} is not written on this node")
            return plan
        plan.add(FileWrite(posixpath.join(K.KUBERNETES_DIR, FILES[name]),
                           Secret(content, kind="kubeconfig"), mode=0o600))
        return plan

    run.__name__ = f"plan_kubeconfig_{name.replace('-', '_')}"
    return run


KUBECONFIG = Phase(
    name="kubeconfig",
    help="Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file",
    phases=tuple(Phase(name=n, help=HELP[n], run=_plan_for(n), probes=lambda ctx, n=n: _probes(n)) for n in FILES),
    needs=("pki",),
    produces=("kubeconfigs",),
)


def _probes(name: str) -> list[str]:
    paths = [posixpath.join(K.KUBERNETES_DIR, FILES[name])]
    if name == "kubelet":
        paths.append(K.KUBELET_CLIENT_CURRENT_PEM)  # kept when the kubelet has rotated it
    return paths
