"""``addon``: CoreDNS and kube-proxy (reference §5.5, §5.6; each can be disabled in
ClusterConfiguration), rendered by :mod:`tasks.core.manifests.addons`."""

from __future__ import annotations

from ..core.manifests.addons import (
    patch_coredns_deployment, render_coredns_objects, render_kube_proxy_objects,
)
from ..core.plan import ApiObject, Plan
from .workflow import API, Phase


def plan_addon_coredns(ctx) -> Plan:
    plan = Plan("addon/coredns", ctx.host_name)
    if ctx.cluster.dns.disabled:
        plan.notes.append("CoreDNS disabled in ClusterConfiguration (dns.disabled)")
        return plan
    objects, notes = patch_coredns_deployment(render_coredns_objects(ctx.cluster), ctx.patches)
    plan.notes.extend(notes)
    plan.add(*(ApiObject(o) for o in objects))
    return plan


def plan_addon_kube_proxy(ctx) -> Plan:
    plan = Plan("addon/kube-proxy", ctx.host_name)
    if ctx.cluster.proxy_disabled:
        plan.notes.append("kube-proxy disabled in ClusterConfiguration (proxy.disabled)")
        return plan
    plan.add(*(ApiObject(o) for o in render_kube_proxy_objects(
        ctx.cluster, ctx.config.kube_proxy, control_plane_url=ctx.control_plane_url,
        advertise_address=ctx.advertise_address, proxy_env=ctx.proxy_env)))
    return plan


ADDON = Phase(
    "addon", "Install required addons for passing conformance tests", aliases=("addons",),
    phases=(Phase("coredns", "Install the CoreDNS addon to a Kubernetes cluster", run=plan_addon_coredns),
            Phase("kube-proxy", "Install the kube-proxy addon to a Kubernetes cluster", run=plan_addon_kube_proxy)),
    where=API, needs=("api",),
)
