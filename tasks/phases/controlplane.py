"""``etcd`` and ``control-plane``: the static Pod manifests.

Mirrors ``kubeadm init phase etcd local`` and ``kubeadm init phase control-plane``: manifests
in ``/etc/kubernetes/manifests`` (0600, directory 0700), rendered from ``templates/`` by
:mod:`tasks.core.manifests.staticpods`. The etcd data directory is created 0700 as kubeadm does.
"""

from __future__ import annotations

import posixpath

from ..core import constants as K
from ..core.plan import Command, FileWrite, Plan
from .etcdutil import data_dir
from .workflow import Phase


def static_pods(ctx) -> dict[str, bytes]:
    """Every static Pod manifest of this node (cached on the context)."""
    return ctx.static_pods


def manifest_path(component: str) -> str:
    return posixpath.join(K.MANIFESTS_DIR, f"{component}.yaml")


def manifest_step(ctx, component: str) -> FileWrite:
    return FileWrite(posixpath.join(K.MANIFESTS_DIR, f"{component}.yaml"), static_pods(ctx)[component],
                     mode=0o600, dir_mode=0o700)


def _plan_component(name: str, component: str):
    def run(ctx) -> Plan:
        plan = Plan(f"control-plane/{name}", ctx.host_name, [manifest_step(ctx, component)])
        plan.notes.extend(ctx.patch_notes(component))
        return plan

    run.__name__ = f"plan_control_plane_{name.replace('-', '_')}"
    return run


def plan_etcd_local(ctx) -> Plan:
    plan = Plan("etcd/local", ctx.host_name)
    if ctx.cluster.etcd_local is None:
        plan.notes.append("external etcd: no local etcd member on this host")
        return plan
    data_dir = ctx.cluster.etcd_local.data_dir
    fact = (ctx.fact("paths", {}) or {}).get(data_dir)
    if fact and fact.get("exists") and (fact.get("mode") or 0) & 0o7777 == 0o700:
        plan.notes.append(f"{data_dir} exists with mode 0700")
    else:  # creates it, or tightens an existing directory (etcd warns about anything wider)
        plan.add(Command(("install", "-d", "-m", "0700", data_dir), "etcd data directory, mode 0700"))
    plan.add(manifest_step(ctx, K.ETCD))
    plan.notes.extend(ctx.patch_notes(K.ETCD))
    return plan


CONTROL_PLANE = Phase(
    name="control-plane",
    help="Generate all static Pod manifest files necessary to establish the control plane",
    phases=(
        Phase("apiserver", "Generates the kube-apiserver static Pod manifest",
              run=_plan_component("apiserver", K.KUBE_APISERVER),
              probes=lambda ctx: [manifest_path(K.KUBE_APISERVER)]),
        Phase("controller-manager", "Generates the kube-controller-manager static Pod manifest",
              run=_plan_component("controller-manager", K.KUBE_CONTROLLER_MANAGER),
              probes=lambda ctx: [manifest_path(K.KUBE_CONTROLLER_MANAGER)]),
        Phase("scheduler", "Generates the kube-scheduler static Pod manifest",
              run=_plan_component("scheduler", K.KUBE_SCHEDULER),
              probes=lambda ctx: [manifest_path(K.KUBE_SCHEDULER)]),
    ),
    needs=("pki", "kubeconfigs"),
    produces=("static-pods",),
)


def etcd_probes(ctx) -> list[str]:
    return [data_dir(ctx), manifest_path(K.ETCD)]

ETCD = Phase(
    name="etcd",
    help="Generate static Pod manifest file for local etcd",
    phases=(Phase("local", "Generate the static Pod manifest file for a local, single-node local etcd instance",
                  run=plan_etcd_local, probes=etcd_probes),),
    needs=("pki",),
    produces=("static-pods",),
)
