"""``/openapi/v3`` for the kube-apiserver stand-in, so ``kubectl apply`` can validate.

Stands in for kube-apiserver's OpenAPI v3 publishing (the binary cannot run here). The
documents are built from the same OpenAPI definitions the stand-in decodes with (shipped by
``kubernetes-validate``), rewritten to OpenAPI 3 form: ``#/components/schemas`` references,
one type per schema, int-or-string markers. One document per served group/version, listing
only the schemas its kinds reach, like the real per-group-version documents.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from . import schema
from .apiserver_resources import RESOURCES

REF_PREFIX = "#/components/schemas/"


def _convert(node: Any) -> Any:
    """JSON-schema draft form -> OpenAPI 3 form (refs, single types, int-or-string)."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("oneOf") and {json.dumps(o.get("type")) for o in node["oneOf"]} == \
            {'["string", "null"]', '["integer", "null"]'}:
        return {"x-kubernetes-int-or-string": True, **{k: v for k, v in node.items() if k != "oneOf"}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out["$ref"] = REF_PREFIX + value.rsplit("/", 1)[1]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        else:
            out[key] = _convert(value)
    return out


def _reachable(roots: list[str]) -> list[str]:
    defs, seen, todo = schema.definitions(), set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        text = json.dumps(defs[name])
        for part in text.split('"$ref": "#/$defs/')[1:]:
            todo.append(part.split('"', 1)[0])
    return sorted(seen)


def _group_versions() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        out.setdefault(_gv_path(r), []).append(r.definition)
    return out


def _gv_path(r: Any) -> str:
    return f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"


def _paths(gv_path: str) -> dict[str, Any]:
    """Item paths with their write operations: kubectl looks up the ``fieldValidation``
    parameter there to decide that the server validates fields itself (then it sends
    ``fieldValidation=Strict`` instead of validating client-side)."""
    params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
              for n in ("dryRun", "fieldManager", "fieldValidation")]
    out: dict[str, Any] = {}
    for r in RESOURCES:
        if _gv_path(r) != gv_path:
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        ns = "namespaces/{namespace}/" if r.namespaced else ""
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": REF_PREFIX + r.definition}}}}}
        op = lambda verb: {"operationId": f"{verb}{r.kind}", "parameters": params, "responses": ok,  # noqa: E731
                           "x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk}
        out[f"/{gv_path}/{ns}{r.plural}"] = {"post": op("post")}
        out[f"/{gv_path}/{ns}{r.plural}/{{name}}"] = {"put": op("put"), "patch": op("patch")}
    return out


@functools.lru_cache(maxsize=None)
def document(path: str) -> bytes | None:
    """The OpenAPI 3 document for ``api/v1`` or ``apis/<group>/<version>`` (None: not served)."""
    roots = _group_versions().get(path)
    if roots is None:
        return None
    defs = schema.definitions()
    schemas = {name: _convert(defs[name]) for name in _reachable(roots)}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.36.0"}, "paths": _paths(path),
           "components": {"schemas": schemas}}
    return json.dumps(doc).encode()


@functools.lru_cache(maxsize=1)
def index() -> bytes:
    """``/openapi/v3``: each group/version and where its document lives (hash-pinned)."""
    paths = {}
    for path in _group_versions():
        digest = hashlib.sha512(document(path) or b"").hexdigest()[:32].upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return json.dumps({"paths": paths}).encode()
