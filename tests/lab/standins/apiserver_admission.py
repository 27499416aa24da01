"""Admission for the kube-apiserver stand-in: the NodeRestriction plugin kubeadm enables.

Stands in for kube-apiserver's admission chain (the binary cannot run here). kubeadm renders
``--enable-admission-plugins=NodeRestriction``; with it a kubelet (``system:node:<name>`` in
``system:nodes``) may only create or modify its own Node, may only create mirror pods bound
to itself, and may not give its Node labels in the ``kubernetes.io``/``k8s.io`` namespaces
outside the allowed set (so a kubelet cannot label itself a control plane: kubeadm's
mark-control-plane phase must). Simplified: only these three rules are enforced.
"""

from __future__ import annotations

from typing import Any

from .apiserver_registry import ApiError
from .apiserver_resources import Resource
from .rbac import NODES, User

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
ALLOWED_LABELS = {
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os", "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
}
ALLOWED_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")


def _node_name(user: User) -> str | None:
    if NODES in user.groups and user.name.startswith("system:node:"):
        return user.name[len("system:node:"):]
    return None


def _restricted(key: str) -> bool:
    domain = key.split("/", 1)[0] if "/" in key else ""
    in_ns = domain in ("kubernetes.io", "k8s.io") or domain.endswith((".kubernetes.io", ".k8s.io"))
    return in_ns and key not in ALLOWED_LABELS and not key.startswith(ALLOWED_PREFIXES)


def _forbidden(res: Resource, name: str, why: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{res.plural} "{name}" is forbidden: {why}',
                    {"name": name, "kind": res.plural})


def node_restriction(user: User, res: Resource, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise 403 when a kubelet oversteps (create when ``old`` is None, else update)."""
    node = _node_name(user)
    if node is None:
        return
    meta = new.get("metadata") or {}
    name = meta.get("name", "")
    if res.kind == "Node":
        if name != node:
            raise _forbidden(res, name, f'node "{node}" is not allowed to modify node "{name}"')
        before = ((old or {}).get("metadata") or {}).get("labels") or {}
        for key, value in (meta.get("labels") or {}).items():
            if _restricted(key) and before.get(key) != value:
                raise _forbidden(res, name, f'is not allowed to modify labels: {key}')
    elif res.kind == "Pod" and old is None:
        if MIRROR_ANNOTATION not in (meta.get("annotations") or {}):
            raise _forbidden(res, name, f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can '
                                        "only create mirror pods")
        if (new.get("spec") or {}).get("nodeName") != node:
            raise _forbidden(res, name, f'node "{node}" can only create pods with spec.nodeName set to itself')
