"""OpenAPI-derived structure for the kube-apiserver stand-in: known fields and patch metadata.

Stands in for the typed decoding of kube-apiserver (a binary these machines cannot run). The
JSON schemas shipped with ``kubernetes-validate`` carry every field of every kind plus the
``x-kubernetes-patch-merge-key``/``-patch-strategy`` markers, which is exactly what the real
server uses to drop unknown fields (and warn: ``unknown field "spec.foo"``) and to run a
strategic merge patch (containers merged by name, node taints replaced whole).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "v1.36.0-local"


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, Any]:
    """All OpenAPI definitions, keyed by their Go-package name."""
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / SCHEMA_VERSION
    return json.loads((base / "_definitions.json").read_text())["$defs"]


def resolve(node: dict[str, Any] | None) -> dict[str, Any]:
    """Follow ``$ref`` links (and single ``allOf`` wrappers) to the schema they name."""
    while node:
        if "$ref" in node:
            node = definitions()[node["$ref"].rsplit("/", 1)[1]]
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            break
    return node or {}


def kind_schema(definition: str) -> dict[str, Any]:
    """The schema of a top-level kind, e.g. ``io.k8s.api.core.v1.ConfigMap``."""
    return definitions()[definition]


def child(node: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of field ``key`` of an object node (None: unknown field)."""
    node = resolve(node)
    props = node.get("properties")
    if props is not None and key in props:
        return props[key]
    addl = node.get("additionalProperties")
    if isinstance(addl, dict):
        return addl
    if addl is True or (props is None and "object" in _types(node)) or node.get("x-kubernetes-preserve-unknown-fields"):
        return {}
    return None


def items(node: dict[str, Any]) -> dict[str, Any]:
    """The schema of the elements of an array node."""
    return resolve(node).get("items") or {}


def _types(node: dict[str, Any]) -> list[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def prune(obj: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """Drop fields the schema does not know, in place; return their paths (kubectl style)."""
    node = resolve(node)
    unknown: list[str] = []
    if isinstance(obj, dict):
        if not node.get("properties") and not node.get("additionalProperties") and \
                (node.get("x-kubernetes-preserve-unknown-fields") or not node):
            return unknown
        for key in list(obj):
            sub = child(node, key)
            where = f"{path}.{key}" if path else key
            if sub is None:
                unknown.append(where)
                del obj[key]
            else:
                unknown += prune(obj[key], sub, where)
    elif isinstance(obj, list):
        sub = items(node)
        for i, el in enumerate(obj):
            unknown += prune(el, sub, f"{path}[{i}]")
    return unknown


def merge_meta(node: dict[str, Any] | None, key: str) -> tuple[str | None, bool]:
    """Strategic-merge facts of list field ``key``: (merge key, merge strategy?)."""
    if node is None:
        return None, False
    field = child(node, key) or {}
    strategy = field.get("x-kubernetes-patch-strategy", "")
    return field.get("x-kubernetes-patch-merge-key"), "merge" in strategy.split(",")
