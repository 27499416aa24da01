"""``etcd`` and ``control-plane``: the static Pod manifests.

Mirrors ``kubeadm init phase etcd local`` and ``kubeadm init phase control-plane``: manifests
in ``/etc/kubernetes/manifests`` (0600, directory 0700), rendered from ``templates/`` by
:mod:`tasks.core.manifests`. The etcd data directory is created 0700 as kubeadm does.
"""

from __future__ import annotations

import posixpath

from ..core import constants as K
from ..core import manifests
from ..core.plan import Command, FileWrite, Plan
from .workflow import Phase


def static_pods(ctx) -> dict[str, bytes]:
    cache = ctx.__dict__.get("_static_pods")
    if cache is None:
        # a config file may hold both documents; init reads the InitConfiguration (as kubeadm's)
        join = ctx.config.init is None and ctx.config.join is not None
        cache = manifests.render_static_pods(
            ctx.cluster,
            node_name=ctx.node_name,
            advertise_address=ctx.advertise_address,
            bind_port=ctx.bind_port,
            host_ca_dirs=ctx.host_ca_dirs,
            proxy_env=ctx.proxy_env,
            timeouts=ctx.timeouts,
            initial_cluster=ctx.__dict__.get("etcd_initial_cluster"),
            join=join,
            external_ca=ctx.cluster_pki.external_ca,
        )
        ctx.__dict__["_static_pods"] = cache
    return cache


def manifest_step(ctx, component: str) -> FileWrite:
    return FileWrite(posixpath.join(K.MANIFESTS_DIR, f"{component}.yaml"), static_pods(ctx)[component],
                     mode=0o600, dir_mode=0o700)


def _plan_component(name: str, component: str):
    def run(ctx) -> Plan:
        return Plan(f"control-plane/{name}", ctx.host_name, [manifest_step(ctx, component)])

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
    return plan


CONTROL_PLANE = Phase(
    name="control-plane",
    help="Generate all static Pod manifest files necessary to establish the control plane",
    phases=(
        Phase("apiserver", "Generates the kube-apiserver static Pod manifest",
              run=_plan_component("apiserver", K.KUBE_APISERVER)),
        Phase("controller-manager", "Generates the kube-controller-manager static Pod manifest",
              run=_plan_component("controller-manager", K.KUBE_CONTROLLER_MANAGER)),
        Phase("scheduler", "Generates the kube-scheduler static Pod manifest",
              run=_plan_component("scheduler", K.KUBE_SCHEDULER)),
    ),
)

ETCD = Phase(
    name="etcd",
    help="Generate static Pod manifest file for local etcd",
    phases=(Phase("local", "Generate the static Pod manifest file for a local, single-node local etcd instance",
                  run=plan_etcd_local),),
)
