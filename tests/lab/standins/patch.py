"""PATCH semantics of kube-apiserver, for the stand-in (the real binary cannot run here).

Three content types as the real server accepts them: ``application/merge-patch+json``
(RFC 7386), ``application/json-patch+json`` (RFC 6902) and
``application/strategic-merge-patch+json`` (lists merged by their patch merge key from the
OpenAPI schema, e.g. containers/volumes/env by name; lists without a merge strategy, such as
node ``spec.taints``, replaced whole; ``$patch: delete``/``replace`` directives,
``$deleteFromPrimitiveList``, ``$setElementOrder`` and ``$retainKeys`` honoured).
"""

from __future__ import annotations

import copy
from typing import Any

from . import schema

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


class PatchError(Exception):
    """The patch cannot be applied (the server answers 400/422)."""

    def __init__(self, message: str, *, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------- RFC 7386
def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch: objects merged recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# ---------------------------------------------------------------------------- RFC 6902
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(doc, dict):
            if p not in doc:
                raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
            doc = doc[p]
        elif isinstance(doc, list):
            doc = doc[_index(doc, p, exists=True)]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def _index(lst: list[Any], token: str, *, exists: bool) -> int:
    if token == "-" and not exists:
        return len(lst)
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(lst) or (exists and i >= len(lst)):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, exists=False), value)
    else:
        raise PatchError(f"cannot add to non-container at /{'/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, exists=True))
    raise PatchError(f"cannot remove from non-container at /{'/'.join(parts)}")


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 operation list (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid json patch operation: {op!r}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)  # must exist
            if parts:
                _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, src))
            if kind == "move":
                _remove(doc, src)
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise PatchError(f"testing value /{'/'.join(parts)} failed: test failed", code=422)
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


# ---------------------------------------------------------------------------- strategic merge
def strategic_merge(target: Any, patch: Any, node: dict[str, Any] | None) -> Any:
    """Strategic merge patch of ``target`` with ``patch`` under schema ``node``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}, Primitive: {patch}")
    out = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [x for x in out[field] if x not in value]
            continue
        if value is None:
            out.pop(key, None)
            continue
        sub = schema.child(node, key) if node is not None else None
        if isinstance(value, list):
            merge_key, merge = schema.merge_meta(node, key)
            if merge:
                out[key] = _merge_list(out.get(key), value, merge_key, schema.items(sub or {}))
            else:
                out[key] = [_strip(v) for v in value]  # atomic list, e.g. node spec.taints
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value, sub)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = value
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _strip(value: Any) -> Any:
    """Drop patch directives from a value that replaces whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)


def _merge_list(current: Any, patch: list[Any], merge_key: str | None, item_node: dict[str, Any]) -> list[Any]:
    current = list(current) if isinstance(current, list) else []
    if merge_key is None:  # merge strategy on primitives: union, keeping order
        if len(patch) == 1 and isinstance(patch[0], dict) and patch[0].get("$patch") == "replace":
            return []
        return current + [copy.deepcopy(v) for v in patch if v not in current]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    for el in patch:
        if not isinstance(el, dict):
            raise PatchError(f"strategic merge list element {el!r} is not an object")
        if merge_key not in el:
            raise PatchError(f"map: {el} does not contain declared merge key: {merge_key}")
        idx = next((i for i, c in enumerate(current) if isinstance(c, dict) and c.get(merge_key) == el[merge_key]), None)
        if el.get("$patch") == "delete":
            if idx is not None:
                current.pop(idx)
            continue
        if idx is None:
            merged = strategic_merge({}, el, item_node)
            current.append(merged)
        else:
            current[idx] = strategic_merge(current[idx], el, item_node)
    return current
