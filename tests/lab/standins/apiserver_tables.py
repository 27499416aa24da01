"""``meta.k8s.io/v1`` Tables for ``kubectl get``, as the kube-apiserver stand-in serves them.

Stands in for the server-side printers of kube-apiserver (the binary cannot run here): kubectl
asks for ``as=Table`` and prints the columns the server sends. The columns follow the real
printers for the kinds a kubeadm cluster shows (nodes, pods, CSRs, workloads, services);
other kinds get Name and Age. Columns with priority 1 appear only with ``-o wide``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from .apiserver_resources import Resource

Column = tuple[str, int, Callable[[dict[str, Any]], Any]]


def age(ts: str | None) -> str:
    """kubectl's short duration (``45s``, ``12m``, ``5h``, ``3d``)."""
    if not ts:
        return "<unknown>"
    secs = int((dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(ts.replace("Z", "+00:00")))
               .total_seconds())
    if secs < 120:
        return f"{max(secs, 0)}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _status(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("status") or {}


def _spec(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("spec") or {}


def _node_status(o: dict[str, Any]) -> str:
    ready = [c for c in _status(o).get("conditions") or [] if c.get("type") == "Ready"]
    s = "Ready" if ready and ready[0].get("status") == "True" else "NotReady"
    return s + (",SchedulingDisabled" if _spec(o).get("unschedulable") else "")


def _node_roles(o: dict[str, Any]) -> str:
    labels = o["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    return ",".join(r for r in roles if r) or "<none>"


def _node_ip(o: dict[str, Any], kind: str) -> str:
    return next((a.get("address", "") for a in _status(o).get("addresses") or [] if a.get("type") == kind), "<none>")


def _pod_ready(o: dict[str, Any]) -> str:
    statuses = _status(o).get("containerStatuses") or []
    return f"{sum(1 for c in statuses if c.get('ready'))}/{len(_spec(o).get('containers') or [])}"


def _pod_phase(o: dict[str, Any]) -> str:
    if o["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return _status(o).get("reason") or _status(o).get("phase", "")


def _csr_condition(o: dict[str, Any]) -> str:
    conds = [c.get("type", "") for c in _status(o).get("conditions") or []]
    if _status(o).get("certificate"):
        conds.append("Issued")
    return ",".join(conds) or "Pending"


COLUMNS: dict[str, list[Column]] = {
    "Node": [("Status", 0, _node_status), ("Roles", 0, _node_roles), ("Age", 0, None),  # type: ignore[list-item]
             ("Version", 0, lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", "")),
             ("Internal-IP", 1, lambda o: _node_ip(o, "InternalIP"))],
    "Pod": [("Ready", 0, _pod_ready), ("Status", 0, _pod_phase),
            ("Restarts", 0, lambda o: sum(c.get("restartCount", 0) for c in _status(o).get("containerStatuses") or [])),
            ("Age", 0, None), ("IP", 1, lambda o: _status(o).get("podIP", "<none>")),  # type: ignore[list-item]
            ("Node", 1, lambda o: _spec(o).get("nodeName", "<none>"))],
    "CertificateSigningRequest": [("Age", 0, None), ("SignerName", 0, lambda o: _spec(o).get("signerName", "")),  # type: ignore[list-item]
                                  ("Requestor", 0, lambda o: _spec(o).get("username", "")),
                                  ("Condition", 0, _csr_condition)],
    "Deployment": [("Ready", 0, lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 0)}"),
                   ("Up-to-date", 0, lambda o: _status(o).get("updatedReplicas", 0)),
                   ("Available", 0, lambda o: _status(o).get("availableReplicas", 0)), ("Age", 0, None)],  # type: ignore[list-item]
    "DaemonSet": [("Desired", 0, lambda o: _status(o).get("desiredNumberScheduled", 0)),
                  ("Current", 0, lambda o: _status(o).get("currentNumberScheduled", 0)),
                  ("Ready", 0, lambda o: _status(o).get("numberReady", 0)), ("Age", 0, None)],  # type: ignore[list-item]
    "Service": [("Type", 0, lambda o: _spec(o).get("type", "")),
                ("Cluster-IP", 0, lambda o: _spec(o).get("clusterIP", "<none>")),
                ("Ports", 0, lambda o: ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}"
                                                for p in _spec(o).get("ports") or []) or "<none>"),
                ("Age", 0, None)],  # type: ignore[list-item]
    "Secret": [("Type", 0, lambda o: o.get("type", "")), ("Data", 0, lambda o: len(o.get("data") or {})),
               ("Age", 0, None)],  # type: ignore[list-item]
    "ConfigMap": [("Data", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
                  ("Age", 0, None)],  # type: ignore[list-item]
    "Namespace": [("Status", 0, lambda o: _status(o).get("phase", "")), ("Age", 0, None)],  # type: ignore[list-item]
}


def to_table(res: Resource, objs: list[dict[str, Any]], list_meta: dict[str, Any]) -> dict[str, Any]:
    """A Table with the kind's columns (Name first) and each row's object metadata."""
    columns: list[Column] = [("Name", 0, lambda o: o["metadata"].get("name", ""))]
    columns += COLUMNS.get(res.kind, [("Age", 0, None)])  # type: ignore[list-item]
    defs = [{"name": name, "type": "string", "format": "name" if name == "Name" else "", "description": name,
             "priority": prio} for name, prio, _ in columns]
    rows = []
    for o in objs:
        meta = o.get("metadata") or {}
        cells = [age(meta.get("creationTimestamp")) if fn is None else fn(o) for _, _, fn in columns]
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                "metadata": meta}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": defs,
            "rows": rows}
