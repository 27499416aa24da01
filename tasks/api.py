"""Apply :class:`~tasks.core.plan.ApiObject` steps through the official ``kubernetes`` client.

One helper for every kind (kubeadm's ``CreateOrUpdate``/``CreateOrRetain``/``PatchNode``,
written once and keyed on the kind): it reads the live object, decides whether it already is
as wanted (so a re-run says "unchanged" and writes nothing), and creates, updates or patches it
otherwise. Conflicts, 5xx answers and refused connections while the API server starts are
retried until the timeout, and the error reported is the last real one, never "timed out".
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

from .core.compare import _body_without_meta, as_wanted_by, contains, is_as_wanted
from .core.errors import ApiError
from .core.plan import ApiObject

# (apiVersion, kind) -> (path prefix, plural, namespaced)
KINDS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "Node"): ("/api/v1", "nodes", False),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "Pod"): ("/api/v1", "pods", True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
    ("apps/v1", "DaemonSet"): ("/apis/apps/v1", "daemonsets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"):
        ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"):
        ("/apis/certificates.k8s.io/v1", "certificatesigningrequests", False),
}

UID_REF = re.compile(r"^\$\(uid:(\w+)/([^/]*)/([^)]+)\)$")


class ApiStatus(ApiError):
    """A non-2xx answer (``code`` 0: no answer at all): the HTTP code and the Status body's
    reason and message. An :class:`ApiError`, so one that nobody handles still reaches the
    operator as a message with a fix, never as a traceback."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code, self.reason, self.message = code, reason, message
        if code == 0:
            problem = f"the API server did not answer: {message or reason}"
        else:
            problem = f"{message or reason} (HTTP {code})"
        super().__init__(problem, fix=_fix_for(self))


def object_path(obj: dict[str, Any], *, name: bool = True) -> str:
    key = (obj["apiVersion"], obj["kind"])
    if key not in KINDS:
        raise ApiError(f"kubefab does not know how to store {obj['kind']} ({obj['apiVersion']})")
    prefix, plural, namespaced = KINDS[key]
    meta = obj.get("metadata", {})
    path = prefix
    if namespaced:
        path += f"/namespaces/{quote(meta.get('namespace') or 'default')}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(meta['name'])}"
    return path


@dataclass
class Result:
    ref: str
    action: str  # created | updated | patched | unchanged

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"


AUTH_SETTLE_SECONDS = 10.0


def _starting(exc: "ApiStatus", started: float) -> bool:
    """A 401 or 403 in a request's first AUTH_SETTLE_SECONDS is asked again: an API server that
    has just started answers them until its authentication and RBAC caches are filled, and a
    load balancer whose health check has not yet seen it restart sends requests to it (seen on
    the lab, right after a control plane's kubelet was upgraded). A lasting one is raised."""
    return exc.code in (401, 403) and time.monotonic() - started < AUTH_SETTLE_SECONDS


class Api:
    """The API server as kubefab uses it: a thin layer over ``kubernetes.client.ApiClient``.

    :param api_client: an authenticated client (from admin.conf).
    :param timeout: seconds to keep retrying transient failures.
    """

    def __init__(self, api_client, *, timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = api_client
        self.timeout = timeout
        self.sleep = sleep
        self.uids: dict[str, str] = {}

    # --- raw requests -------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                query: dict[str, str] | None = None, raw: bool = False, retry_429: bool = True) -> Any:
        """One request, retried while the failure is transient; returns the decoded JSON body
        (``raw``: the text, for /readyz and friends). ``retry_429=False``: a 429 is the answer
        (an eviction refused by a PodDisruptionBudget), raised at once."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        method_, url, headers, body_, _ = self.client.param_serialize(
            method, path, query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body, auth_settings=["BearerToken"])
        started = time.monotonic()
        deadline = started + self.timeout
        delay = 0.2
        while True:
            # connect within what is left of the budget; an answer may take its time
            connect = min(10.0, max(1.0, deadline - time.monotonic()))
            try:
                resp = self.client.call_api(method_, url, header_params=headers, body=body_,
                                            _request_timeout=(connect, 30))
                data = resp.read()
                if resp.status >= 400:
                    raise _status(resp.status, data)
                if raw:
                    return data.decode(errors="replace") if isinstance(data, bytes) else data
                return json.loads(data) if data else None
            except ApiStatus as exc:
                last = exc
                if exc.code < 500 and (exc.code != 429 or not retry_429) and not _starting(exc, started):
                    raise
            except ApiException as exc:
                last = _status(exc.status or 0, exc.body or b"")
                if last.code and last.code < 500 and (last.code != 429 or not retry_429) and not _starting(last, started):
                    raise last from None
            except (Urllib3Error, OSError) as exc:
                last = ApiStatus(0, "Unreachable", _describe(exc))
                if _certificate_rejected(exc):
                    raise ApiStatus(0, "CertificateRejected", last.message) from None
            if time.monotonic() + delay > deadline:
                raise last
            self.sleep(delay)
            delay = min(delay * 2, 2.0)

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.request("GET", object_path(obj))
        except ApiStatus as exc:
            if exc.code == 404:
                return None
            raise

    # --- the one helper ---------------------------------------------------------------------
    def apply(self, step: ApiObject) -> Result:
        """Bring one object to the wanted state; see :class:`~tasks.core.plan.ApiObject`."""
        obj = self._resolve(copy.deepcopy(step.obj))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                result = self._apply_once(step, obj)
                return result
            except ApiStatus as exc:
                # 409 AlreadyExists (a create raced another writer) or Conflict (stale
                # resourceVersion): read again and retry, as kubeadm's CreateOrMutate does.
                if exc.code != 409 or time.monotonic() > deadline:
                    raise ApiError(f"{step.ref()}: {exc.problem}", fix=exc.fix) from None
                self.sleep(0.2)

    def _apply_once(self, step: ApiObject, obj: dict[str, Any]) -> Result:
        ref = step.ref()
        live = self.get(obj)
        if step.strategy in ("cordon", "uncordon", "drain", "delete"):
            return self._remove_node_step(step, obj, live)
        if step.strategy == "patch":
            return self._patch(step, obj, live)
        if step.strategy == "kubeadm-certs":
            if live is not None and as_wanted_by(step.compare, live) and self._owner_alive(live):
                self._remember(live)
                return Result(ref, "unchanged")
            for related in step.related:
                self._remember(self._create_or_get(related))
            obj = self._resolve(copy.deepcopy(step.obj))
        if live is None:
            created = self.request("POST", object_path(obj, name=False), obj)
            self._remember(created)
            return Result(ref, "created")
        self._remember(live)
        if step.strategy == "retain":
            return Result(ref, "unchanged")
        if step.strategy == "merge":
            merged = copy.deepcopy(live)
            for key, value in _body_without_meta(obj).items():
                if isinstance(value, dict):
                    merged.setdefault(key, {}).update(value)
                else:
                    merged[key] = value
            obj = {**merged, "metadata": {**live["metadata"], **{
                k: {**(live["metadata"].get(k) or {}), **v} for k, v in obj["metadata"].items()
                if k in ("labels", "annotations")}}}
        if step.strategy != "kubeadm-certs" and is_as_wanted(live, obj):
            return Result(ref, "unchanged")
        update = copy.deepcopy(obj)
        update["metadata"] = {**{k: v for k, v in live["metadata"].items()
                                 if k not in ("managedFields",)}, **{
            k: v for k, v in obj["metadata"].items()}}
        update["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        updated = self.request("PUT", object_path(obj), update)
        self._remember(updated)
        return Result(ref, "updated")

    def _create_or_get(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``; when it exists already (an earlier attempt of this apply created it
        before a conflict or a lost answer), take the stored one."""
        try:
            return self.request("POST", object_path(obj, name=False), obj)
        except ApiStatus as exc:
            if exc.code != 409:
                raise
            live = self.get(obj)
            if live is None:
                raise
            return live

    def _patch(self, step: ApiObject, obj: dict[str, Any], live: dict[str, Any] | None) -> Result:
        """Add labels, annotations and taints to an existing object (mark-control-plane)."""
        if live is None:
            raise ApiStatus(404, "NotFound", f"{step.ref()} does not exist (yet)")
        meta_w, meta_l = obj.get("metadata", {}), live.get("metadata", {})
        patch: dict[str, Any] = {"metadata": {"resourceVersion": meta_l.get("resourceVersion")}}
        for key in ("labels", "annotations"):
            want = meta_w.get(key) or {}
            if not contains(meta_l.get(key) or {}, want):
                patch["metadata"][key] = want
        want_taints = (obj.get("spec") or {}).get("taints")
        if want_taints is not None:
            have = list((live.get("spec") or {}).get("taints") or [])
            missing = [t for t in want_taints if not any(
                h.get("key") == t["key"] and h.get("effect") == t["effect"] and h.get("value") == t.get("value")
                for h in have)]
            if missing:
                patch["spec"] = {"taints": have + missing}
        if len(patch["metadata"]) == 1 and "spec" not in patch:
            return Result(step.ref(), "unchanged")
        self.request("PATCH", object_path(obj), patch, content_type="application/merge-patch+json")
        return Result(step.ref(), "patched")

    def _remove_node_step(self, step: ApiObject, obj: dict[str, Any], live: dict[str, Any] | None) -> Result:
        """reset's cluster-side steps: cordon (``spec.unschedulable``), drain (:func:`tasks.drain.drain`),
        delete; an object that is already gone is unchanged."""
        ref = step.ref()
        if live is None:
            return Result(ref, "unchanged")
        if step.strategy == "delete":
            try:
                self.request("DELETE", object_path(obj))
            except ApiStatus as exc:
                if exc.code != 404:
                    raise
                return Result(ref, "unchanged")
            return Result(ref, "deleted")
        marks = (obj["metadata"].get("annotations") or {})
        if step.strategy == "cordon":
            # an upgrade marks the Nodes it cordons (annotations in the wanted object), so that it
            # uncordons those and leaves alone a node that was cordoned before it
            if (live.get("spec") or {}).get("unschedulable"):
                return Result(ref, "unchanged")
            patch: dict[str, Any] = {"spec": {"unschedulable": True}}
            if marks:
                patch["metadata"] = {"annotations": marks}
            self.request("PATCH", object_path(obj), patch, content_type="application/merge-patch+json")
            return Result(ref, "cordoned")
        if step.strategy == "uncordon":
            # only a Node that carries the wanted annotations (cordoned by this kind of run)
            have = live["metadata"].get("annotations") or {}
            if marks and not all(k in have for k in marks):
                return Result(ref, "unchanged")
            if not marks and not (live.get("spec") or {}).get("unschedulable"):
                return Result(ref, "unchanged")
            patch = {"spec": {"unschedulable": None}}
            if marks:
                patch["metadata"] = {"annotations": {k: None for k in marks}}
            self.request("PATCH", object_path(obj), patch, content_type="application/merge-patch+json")
            return Result(ref, "uncordoned")
        from . import output
        from .drain import drain

        spec = step.drain
        done = drain(self, obj["metadata"]["name"], force=spec.force, delete_emptydir_data=spec.delete_emptydir_data,
                     timeout=spec.timeout_seconds, sleep=self.sleep,
                     say=lambda text: output.info(text, host=spec.host, phase="drain"))
        return Result(ref, "drained" if done.evicted else "unchanged")

    def wait_for(self, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Poll until ``obj`` exists (the Node of a kubelet that is registering)."""
        from .core.poll import poll

        def there() -> tuple[bool, dict[str, Any] | None]:
            live = self.get(obj)
            return live is not None, live

        done, live = poll(there, timeout, sleep=self.sleep)
        if not done:
            raise ApiError(f"{obj['kind']} {obj['metadata']['name']} did not appear within {int(timeout)}s",
                           fix="check the kubelet's log on the host (journalctl -u kubelet)")
        return live

    # --- owner references -------------------------------------------------------------------
    def _remember(self, obj: dict[str, Any] | None) -> None:
        if obj and obj.get("metadata", {}).get("uid"):
            m = obj["metadata"]
            self.uids[f"{obj.get('kind')}/{m.get('namespace', '')}/{m['name']}"] = m["uid"]

    def _resolve(self, obj: Any) -> Any:
        """Replace ``$(uid:Kind/ns/name)`` placeholders with uids seen in this run."""
        if isinstance(obj, dict):
            return {k: self._resolve(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._resolve(v) for v in obj]
        if isinstance(obj, str):
            m = UID_REF.match(obj)
            if m:
                return self.uids.get(f"{m.group(1)}/{m.group(2)}/{m.group(3)}", obj)
        return obj

    def _owner_alive(self, live: dict[str, Any]) -> bool:
        ns = live["metadata"].get("namespace", "")
        for ref in live["metadata"].get("ownerReferences") or []:
            owner = self.get({"apiVersion": ref["apiVersion"], "kind": ref["kind"],
                              "metadata": {"name": ref["name"], "namespace": ns}})
            if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
                return False
        return True


def _status(code: int, data: bytes | str) -> ApiStatus:
    try:
        body = json.loads(data or b"{}")
        return ApiStatus(code, body.get("reason", ""), body.get("message", ""))
    except (ValueError, AttributeError):
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        return ApiStatus(code, "", text.strip()[:200])


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*")


def _root_cause(exc: BaseException) -> BaseException:
    """urllib3 wraps the real failure (``MaxRetryError.reason``, then ``__context__``)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if isinstance(inner, BaseException):
            exc = inner
        elif isinstance(exc.__context__, (OSError, ssl.SSLError)) and not isinstance(exc, ssl.SSLError):
            exc = exc.__context__
        else:
            break
    return exc


def _describe(exc: BaseException) -> str:
    """The reason a request got no answer, in a few words ("[Errno 111] Connection refused",
    "certificate verify failed: ..."), without urllib3's object reprs and retry wrappers."""
    text = _OBJECT_REPR.sub("", str(_root_cause(exc))).strip()
    text = re.sub(r"^Failed to establish a new connection:\s*", "", text)
    text = re.sub(r"^\[SSL: [A-Z_]+\]\s*", "", text)
    return text if len(text) <= 300 else text[:300] + "..."


def _certificate_rejected(exc: BaseException) -> bool:
    """The API server's certificate does not verify against the CA we hold: retrying cannot help."""
    root = _root_cause(exc)
    return isinstance(root, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _fix_for(exc: ApiStatus) -> str:
    if exc.code in (401, 403):
        return "check that admin.conf in the state dir belongs to this cluster (its CA and client certificate)"
    if exc.code == 422:
        return "the object was rejected as invalid; check the kubeadm config values it came from"
    if exc.reason == "CertificateRejected":
        return ("the API server's certificate is not signed by the cluster CA in the kubeconfig used "
                "(admin.conf in the state dir): check that the endpoint belongs to this cluster")
    if exc.code == 0:
        return "check that the API server is up and reachable from this machine"
    return "re-run the command; it converges from where it stopped"
