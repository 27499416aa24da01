"""Strict decoding of kubeadm config files: the API versions and kinds kubefab reads, the YAML
documents, and the field reader that records every problem under its field path (kubeadm's
strict decoder: an unknown field or a wrong type is an error naming it).
"""

from __future__ import annotations

import difflib
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from ..spec import Arg
from ..yamlload import Document, load_documents, shown
from .durations import parse_go_duration


KUBEADM_GROUP = "kubeadm.k8s.io"
V1BETA4 = f"{KUBEADM_GROUP}/v1beta4"
V1BETA3 = f"{KUBEADM_GROUP}/v1beta3"
SUPPORTED_KUBEADM_VERSIONS = (V1BETA4, V1BETA3)
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY_API = "kubeproxy.config.k8s.io/v1alpha1"

# kind -> the apiVersions kubefab reads it in. Reset/Upgrade are kubeadm kinds of other
# commands: accepted (kubeadm accepts them in the same file) and kept as plain dicts.
_KINDS: dict[str, tuple[str, ...]] = {
    "InitConfiguration": (V1BETA4, V1BETA3),
    "ClusterConfiguration": (V1BETA4, V1BETA3),
    "JoinConfiguration": (V1BETA4, V1BETA3),
    "ResetConfiguration": (V1BETA4,),
    "UpgradeConfiguration": (V1BETA4,),
    "KubeletConfiguration": (KUBELET_API,),
    "KubeProxyConfiguration": (KUBE_PROXY_API,),
}


def _supported_text() -> str:
    return "; ".join(f"{kind} ({', '.join(apis)})" for kind, apis in _KINDS.items())


# --- YAML (bounded; duplicate keys are errors) ---------------------------------------------------
def _load_documents(text: str, source: str, issues: list[str]) -> list[Document]:
    """The file's documents; a file that cannot be read adds its problem(s) to ``issues``."""
    try:
        return load_documents(text, source=source)
    except ConfigError as exc:
        issues.extend(exc.details or [exc.problem])
        return []


# --- field reader (collects problems) ------------------------------------------------------------
_MISSING = object()


class _Reader:
    """Typed access to a YAML mapping that records every problem under its field path."""

    def __init__(self, source: str, issues: list[str], *, inline_source: str = "",
                 inline_paths: Iterable[str] = ()) -> None:
        self.source = source
        self.issues = issues
        self.inline_source = inline_source
        self.inline_paths = tuple(inline_paths)

    def err(self, path: str, problem: str) -> None:
        for p in self.inline_paths:
            if path == p or path.startswith(p + ".") or path.startswith(p + "["):
                # a value given inline in the inventory's ``cluster:`` section
                self.issues.append(f"{self.inline_source}: cluster{path[len('ClusterConfiguration'):]}: {problem}")
                return
        self.issues.append(f"{self.source}: {path}: {problem}")

    # structure
    def mapping(self, value: Any, path: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping, got {_type_name(value)}")
            return {}
        return value

    def fields(self, node: Mapping, path: str, allowed: Iterable[str]) -> None:
        known = tuple(allowed)
        for key in node:
            if key not in known:
                self.err(f"{path}.{key}", f"unknown field {str(key)!r} ({suggest(str(key), known)})")

    def sub(self, node: Mapping, key: str, path: str, allowed: Iterable[str]) -> dict:
        child = self.mapping(node.get(key), f"{path}.{key}")
        self.fields(child, f"{path}.{key}", allowed)
        return child

    # scalars
    def string(self, node: Mapping, key: str, path: str, default: str = "", *, secret: bool = False) -> str:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str):
            echo = "" if secret else f" {shown(value)}"  # a credential is never echoed
            self.err(f"{path}.{key}", f"must be a string, got {_type_name(value)}{echo} (quote it)")
            return default
        return value

    def boolean(self, node: Mapping, key: str, path: str, default: bool = False) -> bool:
        value = node.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.err(f"{path}.{key}", f"must be true or false, got {_type_name(value)}")
            return default
        return value

    def integer(self, node: Mapping, key: str, path: str, default: int) -> int:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(f"{path}.{key}", f"must be an integer, got {_type_name(value)}")
            return default
        return value

    def strings(self, node: Mapping, key: str, path: str) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.err(f"{path}.{key}", f"must be a list of strings, got {_type_name(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.err(f"{path}.{key}[{i}]", f"must be a string, got {_type_name(item)}")
        return tuple(out)

    def duration(self, node: Mapping, key: str, path: str, default: timedelta | None) -> timedelta | None:
        value = node.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.err(f"{path}.{key}", f"must be a duration string such as \"8760h\", \"4m0s\" or \"1h30m\", "
                                      f"got {_type_name(value)} {shown(value)}")
            return default
        try:
            parsed = parse_go_duration(value)
        except ValueError as exc:
            if "out of range" in str(exc):
                self.err(f"{path}.{key}", f"duration {shown(value)} is out of range: Go durations hold at most "
                                          f"2562047h (about 292 years)")
            else:
                self.err(f"{path}.{key}", f"invalid duration {shown(value)}: use Go form such as \"8760h\", "
                                          f"\"4m0s\" or \"1h30m\"")
            return default
        if parsed < timedelta(0):
            self.err(f"{path}.{key}", f"duration {value!r} must not be negative")
            return default
        return parsed

    def args(self, node: Mapping, key: str, path: str) -> tuple[Arg, ...]:
        """v1beta4 ``extraArgs``: a list of ``{name, value}`` (duplicates allowed, order kept)."""
        value = node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            hint = " (v1beta4 uses a list of {name, value}; maps are v1beta3)" if isinstance(value, dict) else ""
            self.err(f"{path}.{key}", f"must be a list of {{name, value}}, got {_type_name(value)}{hint}")
            return ()
        out = []
        for i, item in enumerate(value):
            p = f"{path}.{key}[{i}]"
            item = self.mapping(item, p)
            self.fields(item, p, ("name", "value"))
            name = self.string(item, "name", p)
            if not name:
                self.err(f"{p}.name", "required")
                continue
            if name.startswith("-"):
                self.err(f"{p}.name", f"give the flag name without leading dashes ({name.lstrip('-')!r})")
            out.append(Arg(name, self.string(item, "value", p)))
        return tuple(out)


def suggest(key: str, known: Iterable[str]) -> str:
    """``did you mean 'x'?`` for a near miss, else the list of known names."""
    names = [k for k in known if k not in ("apiVersion", "kind")]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(names)}"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, datetime):
        return "timestamp"
    return type(value).__name__


def _dig(doc: Any, dotted: str) -> tuple[dict | None, str]:
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), parts[-1]


def _deepcopy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value
