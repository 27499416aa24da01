"""Small builders for the RBAC and ConfigMap objects kubeadm creates (reference §5.1), and the
Node patches of upload-config and mark-control-plane."""

from __future__ import annotations

from typing import Any

RBAC = "rbac.authorization.k8s.io/v1"


def meta(name: str, namespace: str = "", **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m.update({k: v for k, v in extra.items() if v})
    return m


def role(name: str, namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": meta(name, namespace), "rules": rules}


def cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": meta(name), "rules": rules}


def rule(resources: list[str], verbs: list[str], names: list[str] | None = None, group: str = "") -> dict[str, Any]:
    r: dict[str, Any] = {"apiGroups": [group], "resources": resources, "verbs": verbs}
    if names:
        r["resourceNames"] = names
    return r


def subject(kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    s: dict[str, Any] = {"kind": kind, "name": name}
    if kind in ("User", "Group"):
        s["apiGroup"] = "rbac.authorization.k8s.io"
    if namespace:
        s["namespace"] = namespace
    return s


def groups(*names: str) -> list[dict[str, Any]]:
    return [subject("Group", n) for n in names]


def role_binding(name: str, namespace: str, role_name: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": meta(name, namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            "subjects": subjects}


def cluster_role_binding(name: str, role_name: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": subjects}


def config_map(name: str, namespace: str, data: dict[str, str], annotations: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta(name, namespace, annotations=annotations, labels=labels), "data": data}


def node_patch(node_name: str, **meta) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name, **meta}}
