"""``wait-control-plane`` (kubeadm's phase of the same name): the kubelet's healthz on the host,
then the API server's /readyz (and, as with WaitForAllControlPlaneComponents, the
controller-manager and scheduler). Also the last step of a control-plane join."""

from __future__ import annotations

from ..core import constants as K
from ..core.plan import Plan, Wait
from .workflow import API, Phase


def plan_wait_control_plane(ctx) -> Plan:
    t = ctx.timeouts
    plan = Plan("wait-control-plane", ctx.host_name)
    # the three host-local health ports are polled on the host in one round trip, the kubelet
    # first as kubeadm does; the API server's /readyz from the operator machine
    plan.add(Wait("kubelet-healthz", f"http://127.0.0.1:{K.KUBELET_HEALTHZ_PORT}/healthz", t.kubelet_health_check))
    plan.add(Wait("component-healthz", f"https://127.0.0.1:{K.KUBE_CONTROLLER_MANAGER_PORT}/healthz",
                  t.control_plane_component_health_check))
    plan.add(Wait("component-healthz", f"https://127.0.0.1:{K.KUBE_SCHEDULER_PORT}/livez",
                  t.control_plane_component_health_check))
    plan.add(Wait("api-readyz", "/readyz", t.control_plane_component_health_check, on="api"))
    return plan


WAIT_CONTROL_PLANE = Phase("wait-control-plane", "Wait for the control plane to start", run=plan_wait_control_plane,
                           where=API, needs=("kubelet", "static-pods"), produces=("api",))
