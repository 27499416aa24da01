"""``mark-control-plane``: the control-plane node's labels and taints (also run by a
control-plane join)."""

from __future__ import annotations

from ..core import constants as K
from ..core.plan import ApiObject, Plan
from .rbac import node_patch
from .workflow import API, Phase


def plan_mark_control_plane(ctx) -> Plan:
    labels = {K.CONTROL_PLANE_LABEL: "", K.EXCLUDE_FROM_LB_LABEL: ""}
    taints = [{"key": t.key, "effect": t.effect, **({"value": t.value} if t.value else {})}
              for t in ctx.control_plane_taints()]
    obj = node_patch(ctx.node_name, labels=labels)
    obj["spec"] = {"taints": taints}
    return Plan("mark-control-plane", ctx.host_name, [ApiObject(obj, strategy="patch")])


MARK_CONTROL_PLANE = Phase("mark-control-plane", "Mark a node as a control-plane", run=plan_mark_control_plane,
                           where=API, needs=("api",))
