"""Object storage semantics of the kube-apiserver stand-in (the real binary cannot run here).

Create/get/list/update/patch/delete against etcd with the behaviour clients depend on:
201/200/404/409 AlreadyExists/409 Conflict (stale resourceVersion)/422 Invalid, uid,
creationTimestamp, generation (bumped on spec change), server-side defaults, generateName,
namespaces that must exist, status subresources, CSR approval, unknown fields dropped with a
warning (400 under ``fieldValidation=Strict``), finalizers honoured on delete, ownerReferences
left for the garbage collector, ClusterIPs allocated from ``--service-cluster-ip-range``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import ipaddress
import json
import random
import uuid
from typing import Any, Callable

from . import patch as patching
from . import schema
from .apiserver_resources import (RESOURCES, Invalid, Resource, apply_defaults, field_value, service_net,
                                  validate)
from .rbac import User
from .store import KV, EtcdStore, StoreError

GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class ApiError(Exception):
    """An API failure rendered as a ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified()} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural} if res.group
                    else {"name": name, "kind": res.plural})


def _details(res: Resource, name: str, **more: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    d.update(more)
    return d


def conflict(res: Resource, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified()} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and try again",
                    _details(res, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid_error(res: Resource, name: str, exc: Invalid) -> ApiError:
    """422 as upstream words it: one cause bare, several in brackets."""
    causes = [f"{c['field']}: {c['message']}" for c in exc.causes]
    joined = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
    return ApiError(422, "Invalid", f'{res.kind}{"." + res.group if res.group else ""} "{name}" is invalid: '
                    + joined,
                    {"name": name, **({"group": res.group} if res.group else {}), "kind": res.kind,
                     "causes": exc.causes})


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(obj: dict[str, Any]) -> bytes:
    """The stored form: no resourceVersion (it is the etcd mod_revision), compact JSON."""
    body = copy.deepcopy(obj)
    body.get("metadata", {}).pop("resourceVersion", None)
    return json.dumps(body, separators=(",", ":"), sort_keys=False).encode()


# ---------------------------------------------------------------------------- selectors
def parse_label_selector(text: str) -> list[tuple[str, str, list[str]]]:
    """``a=b,c!=d,e in (x,y),f notin (z),g,!h`` -> requirements (key, op, values)."""
    reqs: list[tuple[str, str, list[str]]] = []
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    for raw in parts:
        p = raw.strip()
        if not p:
            continue
        low = p.replace("\t", " ")
        if " notin " in low or " in " in low:
            op = "notin" if " notin " in low else "in"
            key, _, rest = low.partition(f" {op} ")
            rest = rest.strip()
            if not (rest.startswith("(") and rest.endswith(")")):
                raise bad_request(f"unable to parse requirement: {p}")
            reqs.append((key.strip(), op, [v.strip() for v in rest[1:-1].split(",") if v.strip()]))
        elif "!=" in p:
            k, _, v = p.partition("!=")
            reqs.append((k.strip(), "!=", [v.strip()]))
        elif "==" in p:
            k, _, v = p.partition("==")
            reqs.append((k.strip(), "=", [v.strip()]))
        elif "=" in p:
            k, _, v = p.partition("=")
            reqs.append((k.strip(), "=", [v.strip()]))
        elif p.startswith("!"):
            reqs.append((p[1:].strip(), "!exists", []))
        else:
            reqs.append((p, "exists", []))
    return reqs


def labels_match(reqs: list[tuple[str, str, list[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in reqs:
        has, val = key in labels, labels.get(key)
        if op == "=" and val != values[0]:
            return False
        if op == "!=" and has and val == values[0]:
            return False
        if op == "in" and val not in values:
            return False
        if op == "notin" and has and val in values:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def parse_field_selector(res: Resource, text: str) -> list[tuple[str, bool, str]]:
    """``metadata.name=x,spec.nodeName!=y`` -> (field, equal?, value); unknown fields -> 400."""
    out = []
    for raw in text.split(","):
        p = raw.strip()
        if not p:
            continue
        if "!=" in p:
            f, _, v = p.partition("!=")
            eq = False
        else:
            f, _, v = p.partition("==") if "==" in p else p.partition("=")
            eq = True
        f = f.strip()
        probe = {"metadata": {}, "spec": {}, "status": {}}
        if field_value(res, probe, f) is None:
            raise bad_request(f"field label not supported: {f}")
        out.append((f, eq, v.strip()))
    return out


# ---------------------------------------------------------------------------- the registry
class Registry:
    """CRUD over etcd for every served resource."""

    def __init__(self, store: EtcdStore, service_cidr: str) -> None:
        self.store = store
        self.service_cidr = service_cidr
        # Admission hooks (user, resource, new, old or None) -> None or raise ApiError.
        self.admission: list[Callable[[User, Resource, dict[str, Any], dict[str, Any] | None], None]] = []

    # -- keys -------------------------------------------------------------------------------
    @staticmethod
    def key(res: Resource, namespace: str, name: str) -> str:
        if res.namespaced:
            return f"/registry/{res.etcd_segment}/{namespace}/{name}"
        return f"/registry/{res.etcd_segment}/{name}"

    @staticmethod
    def prefix(res: Resource, namespace: str | None) -> str:
        if res.namespaced and namespace:
            return f"/registry/{res.etcd_segment}/{namespace}/"
        return f"/registry/{res.etcd_segment}/"

    # -- reads ------------------------------------------------------------------------------
    def read(self, res: Resource, namespace: str, name: str) -> KV | None:
        return self.store.get(self.key(res, namespace, name))

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        kv = self.read(res, namespace, name)
        if kv is None:
            raise not_found(res, name)
        return kv.obj()

    def find(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        kv = self.read(res, namespace, name)
        return kv.obj() if kv else None

    def list_objects(self, res: Resource, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        """Every stored object of ``res`` (in ``namespace``, or all) and the store revision."""
        kvs, rev = self.store.list(self.prefix(res, namespace))
        return [kv.obj() for kv in kvs], rev

    @staticmethod
    def matcher(res: Resource, label_selector: str = "", field_selector: str = "") -> Callable[[dict[str, Any]], bool]:
        """A predicate for the request's label and field selectors (400 when malformed)."""
        reqs = parse_label_selector(label_selector) if label_selector else []
        fields = parse_field_selector(res, field_selector) if field_selector else []

        def matches(o: dict[str, Any]) -> bool:
            if reqs and not labels_match(reqs, (o.get("metadata") or {}).get("labels") or {}):
                return False
            return all((field_value(res, o, f) == v) == eq for f, eq, v in fields)
        return matches

    def list(self, res: Resource, namespace: str | None, label_selector: str = "",
             field_selector: str = "") -> dict[str, Any]:
        matches = self.matcher(res, label_selector, field_selector)
        objs, rev = self.list_objects(res, namespace)
        items = []
        for o in objs:
            if not matches(o):
                continue
            o.pop("apiVersion", None)
            o.pop("kind", None)
            items.append(o)
        return {"kind": f"{res.kind}List", "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(rev)}, "items": items}

    def namespace_exists(self, namespace: str) -> bool:
        ns_res = next(r for r in RESOURCES if r.plural == "namespaces")
        return self.read(ns_res, "", namespace) is not None

    # -- decoding ---------------------------------------------------------------------------
    def decode(self, res: Resource, body: Any, strict: bool) -> tuple[dict[str, Any], list[str]]:
        """Check kind/apiVersion, drop unknown fields; returns the object and warnings."""
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, "", res.kind) or obj.get("apiVersion") not in (None, "", res.group_version):
            raise bad_request(f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                              f"API version ({res.group_version})" if obj.get("kind") in (None, "", res.kind)
                              else f"{obj.get('kind')} in version \"{res.version}\" cannot be handled as a "
                                   f"{res.kind}: no kind \"{obj.get('kind')}\" is registered")
        unknown = schema.prune(obj, schema.kind_schema(res.definition))
        if unknown and strict:
            raise bad_request(f"{res.kind} in version \"{res.version}\" cannot be handled as a {res.kind}: "
                              "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        obj.setdefault("metadata", {})
        if res.kind in ("Secret",):
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(v or "", validate=True)
                except ValueError:
                    raise bad_request(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                                      f"data in data[{k}]")
            for k, v in (obj.pop("stringData", None) or {}).items():
                # stringData is write-only upstream: merged into data, never stored or returned.
                obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()
        return obj, [f'unknown field "{u}"' for u in unknown]

    # -- create -----------------------------------------------------------------------------
    def create(self, res: Resource, namespace: str, body: Any, user: User, *, strict: bool = False,
               dry_run: bool = False) -> tuple[dict[str, Any], list[str]]:
        obj, warnings = self.decode(res, body, strict)
        meta = obj["metadata"]
        if res.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request("the namespace of the provided object does not match the namespace sent on "
                                  "the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if res.namespaced and not self.namespace_exists(namespace):
            ns_res = next(r for r in RESOURCES if r.plural == "namespaces")
            raise not_found(ns_res, namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choice(GENERATE_CHARS) for _ in range(5))
        if meta.get("resourceVersion"):
            # Upstream's etcd store refuses this with a plain error, which the handler turns
            # into a 500 Status with reason Unknown.
            raise ApiError(500, "Unknown", "resourceVersion should not be set on objects to be created")
        for drop in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                     "managedFields"):
            meta.pop(drop, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if res.generation:
            meta["generation"] = 1
        self._prepare_create(res, obj, user)
        spec = obj.get("spec") or {}
        requested_ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
        for attempt in range(8):
            ip_key = None
            if res.kind == "Service":
                ip_key = self._pick_service_ip(obj, requested_ip, attempt)
            apply_defaults(res, obj)
            for admit in self.admission:
                admit(user, res, obj, None)
            try:
                validate(res, obj, None)
            except Invalid as exc:
                raise invalid_error(res, meta.get("name", ""), exc)
            if dry_run:
                return obj, warnings
            key = self.key(res, namespace, meta["name"])
            extra = {ip_key: self._ipaddress_record(obj)} if ip_key else {}
            ok, rev = self.store.create(key, _canonical(obj), extra)
            if ok:
                meta["resourceVersion"] = str(rev)
                return obj, warnings
            if self.store.get(key) is not None:
                raise ApiError(409, "AlreadyExists", f'{res.qualified()} "{meta["name"]}" already exists',
                               _details(res, meta["name"]))
            if ip_key and requested_ip:
                break  # the asked-for IP was taken meanwhile; a dynamic one is simply re-picked
        raise invalid_error(res, meta.get("name", ""), Invalid([{
            "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
            "message": f"Invalid value: {json.dumps(obj.get('spec', {}).get('clusterIPs'))}: failed to allocate "
                       "IP: provided IP is already allocated"}]))

    def _prepare_create(self, res: Resource, obj: dict[str, Any], user: User) -> None:
        kind = res.kind
        if kind == "CertificateSigningRequest":
            # The server records who asked; approvers (and kubeadm's auto-approval RBAC) rely on it.
            spec = obj.setdefault("spec", {})
            spec["username"] = user.name
            spec["groups"] = list(user.groups)
            if user.uid:
                spec["uid"] = user.uid
            else:
                spec.pop("uid", None)
            if user.extra:
                spec["extra"] = user.extra
            obj["status"] = {}
        elif kind in ("Deployment", "DaemonSet", "Service"):
            obj["status"] = {}
        elif kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif kind == "Pod":
            obj["status"] = {}  # upstream: Pending plus the computed QoS class; status comes via /status

    # -- service IPs ------------------------------------------------------------------------
    def _pick_service_ip(self, obj: dict[str, Any], wanted: str, attempt: int) -> str | None:
        """Set the ClusterIP (``wanted`` or a free dynamic one); returns its IPAddress key."""
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or wanted == "None":
            return None
        net = service_net(self.service_cidr)
        if wanted:
            try:
                ip = ipaddress.ip_address(wanted)
            except ValueError:
                raise invalid_error(_svc(), obj["metadata"].get("name", ""), Invalid([{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs[0]",
                    "message": f"Invalid value: {json.dumps(wanted)}: must be a valid IP address"}]))
            if ip not in net or ip == net.network_address or ip == net.broadcast_address:
                raise invalid_error(_svc(), obj["metadata"].get("name", ""), Invalid([{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                    "message": f"Invalid value: [{json.dumps(wanted)}]: failed to allocate IP {wanted}: the "
                               f"provided IP ({wanted}) is not in the valid range. The range of valid IPs is "
                               f"{net}"}]))
            if self.store.get(f"/registry/ipaddresses/{ip}") is not None and attempt == 0:
                raise invalid_error(_svc(), obj["metadata"].get("name", ""), Invalid([{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                    "message": f"Invalid value: [{json.dumps(wanted)}]: failed to allocate IP {wanted}: provided "
                               "IP is already allocated"}]))
            spec["clusterIP"] = str(ip)
        else:
            # Upstream allocates dynamic IPs above a reserved low band (used for static IPs such
            # as kube-dns' 10th address), so kubeadm's fixed IPs never collide with dynamic ones.
            size = net.num_addresses
            low = max(1, min(min(max(16, size // 16), 256), (size - 2) // 2))
            used = {kv.key.rsplit("/", 1)[1] for kv in self.store.list("/registry/ipaddresses/")[0]}
            for _ in range(64):
                cand = str(net.network_address + random.randrange(low, max(low + 1, size - 1)))
                if cand not in used:
                    break
            spec["clusterIP"] = cand
            spec["clusterIPs"] = [cand]
        spec["clusterIPs"] = [spec["clusterIP"]]
        return f"/registry/ipaddresses/{spec['clusterIP']}"

    @staticmethod
    def _ipaddress_record(obj: dict[str, Any]) -> bytes:
        spec = obj["spec"]
        meta = obj["metadata"]
        return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
                           "metadata": {"name": spec["clusterIP"], "uid": str(uuid.uuid4()),
                                        "creationTimestamp": now_rfc3339()},
                           "spec": {"parentRef": {"group": "", "resource": "services",
                                                  "namespace": meta.get("namespace"), "name": meta["name"]}}}).encode()

    # -- update -----------------------------------------------------------------------------
    def update(self, res: Resource, namespace: str, name: str, body: Any, user: User, *,
               subresource: str = "", strict: bool = False, dry_run: bool = False
               ) -> tuple[dict[str, Any], list[str], bool]:
        """PUT: returns the stored object, warnings and whether it was created (201)."""
        obj, warnings = self.decode(res, body, strict)
        if obj["metadata"].get("name") not in (None, "", name):
            raise bad_request(f"the name of the object ({obj['metadata'].get('name')}) does not match the name on "
                              f"the URL ({name})")
        if res.namespaced and obj["metadata"].get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                              "request")
        obj["metadata"]["name"] = name
        wanted_rv = obj["metadata"].get("resourceVersion") or ""
        if res.create_on_update and not subresource and self.read(res, namespace, name) is None:
            # Upstream strategies with AllowCreateOnUpdate: PUT creates (201), unless the client
            # sent a resourceVersion, which cannot match a missing object (409).
            if wanted_rv:
                raise conflict(res, name)
            try:
                created, _ = self.create(res, namespace, obj, user, strict=strict, dry_run=dry_run)
                return created, warnings, True
            except ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
        return self._write(res, namespace, name, lambda old: obj, wanted_rv, user, subresource, dry_run), warnings, False

    def patch(self, res: Resource, namespace: str, name: str, content_type: str, raw: bytes, user: User, *,
              subresource: str = "", strict: bool = False, dry_run: bool = False
              ) -> tuple[dict[str, Any], list[str]]:
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}")
        ctype = content_type.split(";")[0].strip()
        if ctype not in (patching.MERGE, patching.JSON_PATCH, patching.STRATEGIC):
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                           f"accepted media types include: {patching.JSON_PATCH}, {patching.MERGE}, "
                           f"{patching.STRATEGIC}")
        warnings: list[str] = []
        wanted_rv_box: list[str] = [""]

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            try:
                if ctype == patching.MERGE:
                    new = patching.merge_patch(old, body)
                elif ctype == patching.JSON_PATCH:
                    new = patching.json_patch(old, body)
                else:
                    new = patching.strategic_merge(old, body, schema.kind_schema(res.definition))
            except patching.PatchError as exc:
                if exc.code == 422:
                    raise ApiError(422, "Invalid", str(exc), _details(res, name))
                raise bad_request(str(exc))
            if not isinstance(new, dict):
                raise bad_request("patch did not produce an object")
            new, warns = self.decode(res, new, strict)
            warnings[:] = warns
            rv = (new.get("metadata") or {}).get("resourceVersion") or ""
            if rv and rv != old["metadata"]["resourceVersion"]:
                wanted_rv_box[0] = rv
                raise conflict(res, name)
            if (new.get("metadata") or {}).get("name") != name:
                raise bad_request("metadata.name: Invalid value: the name in the patch does not match")
            return new

        return self._write(res, namespace, name, mutate, "", user, subresource, dry_run), warnings

    def _write(self, res: Resource, namespace: str, name: str, mutate: Callable[[dict[str, Any]], dict[str, Any]],
               wanted_rv: str, user: User, subresource: str, dry_run: bool) -> dict[str, Any]:
        """Read, mutate, validate, compare-and-swap; retries only unconditional writes."""
        key = self.key(res, namespace, name)
        for _ in range(16):
            kv = self.store.get(key)
            if kv is None:
                raise not_found(res, name)
            old = kv.obj()
            if wanted_rv and wanted_rv != str(kv.mod_revision):
                raise conflict(res, name)
            new = self._merge(res, old, copy.deepcopy(mutate(copy.deepcopy(old))), subresource, user)
            apply_defaults(res, new)
            for admit in self.admission:
                admit(user, res, new, old)
            try:
                validate(res, new, old)
            except Invalid as exc:
                raise invalid_error(res, name, exc)
            if _same(new, old):
                return old  # no-op writes do not bump resourceVersion, as upstream
            if dry_run:
                return new
            meta = new["metadata"]
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                if self.store.delete(key, kv.mod_revision, self._also_delete(res, old)):
                    return new
                continue
            ok, rev = self.store.update(key, _canonical(new), kv.mod_revision)
            if ok:
                meta["resourceVersion"] = str(rev)
                return new
            if wanted_rv:
                raise conflict(res, name)
        raise conflict(res, name)

    def _merge(self, res: Resource, old: dict[str, Any], new: dict[str, Any], sub: str, user: User) -> dict[str, Any]:
        """Keep server-owned fields; route status/approval subresources like upstream strategies."""
        meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
        for keep in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace",
                     "generation"):
            if keep in old_meta:
                meta[keep] = old_meta[keep]
            else:
                meta.pop(keep, None)
        if not res.namespaced:
            meta.pop("namespace", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if sub == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status") or {}
            if res.kind == "CertificateSigningRequest":
                # Approval conditions change only through /approval; the certificate only here.
                approval = [c for c in (old.get("status") or {}).get("conditions") or []
                            if c.get("type") in ("Approved", "Denied")]
                others = [c for c in merged["status"].get("conditions") or [] if c.get("type") not in
                          ("Approved", "Denied")]
                merged["status"]["conditions"] = approval + others
                if not merged["status"]["conditions"]:
                    merged["status"].pop("conditions")
                old_cert = (old.get("status") or {}).get("certificate")
                if old_cert and merged["status"].get("certificate") != old_cert:
                    raise ApiError(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io "{old_meta["name"]}"'
                                   " is invalid: status.certificate: Forbidden: updates may not modify existing "
                                   "certificate content", _details(res, old_meta["name"]))
            for k in ("labels", "annotations"):
                if k in meta:
                    merged["metadata"][k] = meta[k]
            self._stamp_conditions(merged, old)
            return merged
        if sub == "approval":
            merged = copy.deepcopy(old)
            conds = [c for c in (new.get("status") or {}).get("conditions") or []]
            types = {c.get("type") for c in conds}
            if {"Approved", "Denied"} <= types:
                raise ApiError(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io "{old_meta["name"]}" '
                               "is invalid: status.conditions[1].type: Invalid value: \"Denied\": Approved and "
                               "Denied conditions are mutually exclusive", _details(res, old_meta["name"]))
            status = merged.setdefault("status", {})
            status["conditions"] = conds
            self._stamp_conditions(merged, old)
            return merged
        if res.kind == "CertificateSigningRequest":
            # Upstream's CSR strategy overwrites spec on update: it is silently immutable.
            new["spec"] = old.get("spec") or {}
        if res.status_split:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if res.generation and (old.get("spec") != new.get("spec")):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        return new

    @staticmethod
    def _stamp_conditions(new: dict[str, Any], old: dict[str, Any]) -> None:
        """Fill condition timestamps as upstream does for CSRs (transition kept if status same)."""
        before = {c.get("type"): c for c in (old.get("status") or {}).get("conditions") or []}
        for c in (new.get("status") or {}).get("conditions") or []:
            c.setdefault("status", "True")
            if not c.get("lastUpdateTime"):
                c["lastUpdateTime"] = now_rfc3339()
            if not c.get("lastTransitionTime"):
                prev = before.get(c.get("type"))
                same = prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime")
                c["lastTransitionTime"] = prev["lastTransitionTime"] if same else now_rfc3339()

    # -- delete -----------------------------------------------------------------------------
    def _also_delete(self, res: Resource, obj: dict[str, Any]) -> list[str]:
        if res.kind == "Service":
            ip = (obj.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                return [f"/registry/ipaddresses/{ip}"]
        return []

    def delete(self, res: Resource, namespace: str, name: str, options: dict[str, Any] | None,
               dry_run: bool = False) -> dict[str, Any]:
        key = self.key(res, namespace, name)
        pre = (options or {}).get("preconditions") or {}
        for _ in range(16):
            kv = self.store.get(key)
            if kv is None:
                raise not_found(res, name)
            obj = kv.obj()
            meta = obj["metadata"]
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified()} "{name}": '
                               f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: '
                               f'{meta.get("uid")}', _details(res, name))
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified()} "{name}": '
                               "Precondition failed: ResourceVersion in precondition: "
                               f'{pre["resourceVersion"]}, ResourceVersion in object meta: '
                               f'{meta["resourceVersion"]}', _details(res, name))
            if dry_run:
                return obj
            if meta.get("finalizers"):
                # Finalizers keep the object until their owners remove them (upstream graceful path).
                if meta.get("deletionTimestamp"):
                    return obj
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                if res.kind == "Namespace":
                    obj.setdefault("status", {})["phase"] = "Terminating"
                ok, rev = self.store.update(key, _canonical(obj), kv.mod_revision)
                if ok:
                    meta["resourceVersion"] = str(rev)
                    return obj
                continue
            if self.store.delete(key, kv.mod_revision, self._also_delete(res, obj)):
                return obj
        raise conflict(res, name)

    def delete_namespace_contents(self, namespace: str) -> None:
        """Stand-in for the namespace controller: remove everything in a terminating namespace."""
        for res in RESOURCES:
            if not res.namespaced:
                continue
            kvs, _ = self.store.list(self.prefix(res, namespace))
            for kv in kvs:
                self.store.delete(kv.key, kv.mod_revision, self._also_delete(res, kv.obj()))

    # -- bootstrap --------------------------------------------------------------------------
    def ensure(self, res: Resource, obj: dict[str, Any]) -> bool:
        """Create ``obj`` if missing (several stand-ins may race on one etcd: first one wins)."""
        meta = obj["metadata"]
        if self.read(res, meta.get("namespace", ""), meta["name"]) is not None:
            return False
        try:
            self.create(res, meta.get("namespace", ""), obj, User("system:apiserver", ("system:masters",)))
            return True
        except ApiError as exc:
            if exc.reason == "AlreadyExists":
                return False
            raise


def _svc() -> Resource:
    return next(r for r in RESOURCES if r.kind == "Service")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal as JSON values (field order is irrelevant)."""
    strip = lambda o: {**o, "metadata": {k: v for k, v in o.get("metadata", {}).items()  # noqa: E731
                                         if k != "resourceVersion"}}
    return json.dumps(strip(a), sort_keys=True) == json.dumps(strip(b), sort_keys=True)


__all__ = ["ApiError", "Registry", "StoreError", "not_found", "conflict", "bad_request"]
