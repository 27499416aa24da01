"""Removing a node from the cluster's side: kubectl's cordon and drain, and the quorum rule.

kubeadm documents node removal as ``kubectl drain``, ``kubeadm reset``, ``kubectl delete node``;
``fab reset`` does all three (``tasks/phases/reset.py``). This module holds the parts that are
not kubeadm's:

- :func:`classify_pods`: kubectl drain's filters, pure: mirror pods and DaemonSet pods are
  skipped (kubectl with ``--ignore-daemonsets``); finished pods are deleted; pods that declare
  no controller are refused unless ``force``; pods with ``emptyDir`` data are refused unless
  ``delete_emptydir_data``. Every refusal is reported at once, before anything is evicted.
- :func:`drain`: cordon is done by the step before; evict each pod through the Eviction API
  (a PodDisruptionBudget that allows no disruption answers 429: retried every 5 s), then wait
  until each evicted pod is gone, all within ``timeout`` (0: no limit, as kubectl's).
- :func:`quorum_problem`: whether removing a member leaves etcd without quorum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .core.errors import ApiError

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
EVICTION_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class DrainPlan:
    """What a drain does with the node's pods (``namespace/name`` keys)."""

    evict: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()   # (pod, why)
    refused: tuple[tuple[str, str], ...] = ()   # (pod, why): the drain cannot start

    def notes(self) -> list[str]:
        out = [f"evict {p}" for p in self.evict]
        out += [f"skip {p}: {why}" for p, why in self.skipped]
        out += [f"cannot evict {p}: {why}" for p, why in self.refused]
        return out


def _key(pod: dict[str, Any]) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', 'default')}/{m['name']}"


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def classify_pods(pods: list[dict[str, Any]], *, force: bool = False,
                  delete_emptydir_data: bool = False) -> DrainPlan:
    """kubectl drain's pod filters (with ``--ignore-daemonsets``), in pod order.

    :param pods: the Pod objects bound to the node.
    """
    evict: list[str] = []
    skipped: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    for pod in pods:
        key = _key(pod)
        if MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {}):
            skipped.append((key, "mirror pod of a static pod (the kubelet runs it from its manifest)"))
            continue
        controller = _controller(pod)
        if controller is not None and controller.get("kind") == "DaemonSet":
            skipped.append((key, f"managed by DaemonSet {controller.get('name')}"))
            continue
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if controller is None and not finished and not force:
            refused.append((key, "declares no controller (nothing would re-create it); --force deletes it"))
            continue
        empty_dirs = [v["name"] for v in (pod.get("spec") or {}).get("volumes") or [] if "emptyDir" in v]
        if empty_dirs and not finished and not delete_emptydir_data:
            refused.append((key, f"has local storage (emptyDir {', '.join(empty_dirs)}); "
                                 "--delete-emptydir-data deletes it"))
            continue
        evict.append(key)
    return DrainPlan(tuple(evict), tuple(skipped), tuple(refused))


@dataclass
class DrainResult:
    evicted: list[str] = field(default_factory=list)


def drain(api, node: str, *, force: bool, delete_emptydir_data: bool, timeout: float,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
          say: Callable[[str], None] = lambda _: None) -> DrainResult:
    """Evict the node's pods through the Eviction API and wait until they are gone.

    :param api: a :class:`tasks.api.Api`.
    :param timeout: seconds for the whole drain; 0 waits without limit (kubectl's ``--timeout=0``).
    :raises ApiError: a pod that cannot be evicted (named), or the timeout with the pods left.
    """
    from .api import ApiStatus

    pods = list_pods(api, node)
    plan = classify_pods(pods, force=force, delete_emptydir_data=delete_emptydir_data)
    if plan.refused:
        raise ApiError(f"cannot drain node {node}: {len(plan.refused)} pod(s) cannot be evicted",
                       details=[f"{p}: {why}" for p, why in plan.refused],
                       fix="pass the flag named above, or move those pods first")
    by_key = {_key(p): p for p in pods}
    deadline = clock() + timeout if timeout > 0 else None
    result = DrainResult()
    waiting = dict.fromkeys(plan.evict)
    for key in plan.evict:
        ns, name = key.split("/", 1)
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
        while True:
            try:
                api.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", body, retry_429=False)
                say(f"evicting pod {key}")
                result.evicted.append(key)
                break
            except ApiStatus as exc:
                if exc.code == 404:
                    waiting.pop(key, None)
                    break
                if exc.code != 429:
                    raise ApiError(f"evicting pod {key} failed: {exc.problem}", fix=exc.fix) from None
                if deadline is not None and clock() + EVICTION_RETRY_SECONDS > deadline:
                    raise ApiError(f"drain of node {node} timed out after {int(timeout)}s: the eviction of "
                                   f"{key} is refused ({exc.message or 'a PodDisruptionBudget allows no disruption'})",
                                   fix="wait until the budget allows it, raise --timeout, or relax the "
                                       "PodDisruptionBudget") from None
                say(f"error when evicting pod {key} (will retry after {int(EVICTION_RETRY_SECONDS)}s): "
                    f"{exc.message or 'a PodDisruptionBudget allows no disruption'}")
                sleep(EVICTION_RETRY_SECONDS)
    while waiting:
        for key in list(waiting):
            ns, name = key.split("/", 1)
            live = api.get({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}})
            if live is None or live["metadata"].get("uid") != by_key[key]["metadata"].get("uid"):
                waiting.pop(key)
                say(f"pod {key} evicted")
        if not waiting:
            break
        if deadline is not None and clock() > deadline:
            raise ApiError(f"drain of node {node} timed out after {int(timeout)}s waiting for "
                           f"{', '.join(waiting)} to terminate", fix="raise --timeout, or look at those pods")
        sleep(1.0)
    return result


def list_pods(api, node: str) -> list[dict[str, Any]]:
    return api.request("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node}"})["items"]


# --- etcd quorum ------------------------------------------------------------------------------------
def quorum_problem(members: list[dict[str, Any]], healthy_urls: set[str], removing_peer_url: str) -> str:
    """Why removing the member with ``removing_peer_url`` would leave etcd without quorum ("" = it
    would not).

    :param members: ``etcdctl member list -w json``'s members (learners do not vote).
    :param healthy_urls: client URLs that answered ``endpoint health``.
    """
    voters = [m for m in members if not m.get("isLearner")]
    target = [m for m in voters if removing_peer_url in (m.get("peerURLs") or [])]
    if not target:
        return ""
    rest = [m for m in voters if m not in target]
    if not rest:
        return "it is the last etcd member"
    healthy = [m for m in rest if set(m.get("clientURLs") or []) & healthy_urls]
    need = len(rest) // 2 + 1
    if len(healthy) < need:
        return (f"{len(rest)} member(s) would remain and only {len(healthy)} of them are healthy; "
                f"quorum needs {need}")
    return ""
