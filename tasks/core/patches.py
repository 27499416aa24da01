"""kubeadm's ``--patches DIR`` / ``patches.directory``: patch files applied to what kubeadm writes.

The rules are those of kubeadm's ``app/util/patches`` (the same in 1.33-1.36), in our own code:

- **Files.** The directory is walked depth first with names in byte order (Go's ``filepath.Walk``:
  files in sub-directories count too, at their place in that order). A file is
  ``target[suffix][+patchtype].{json,yaml}``: ``target`` one of :data:`KNOWN_TARGETS`,
  ``suffix`` any text without ``.`` or ``+`` (it only orders the files), ``patchtype``
  ``strategic`` (the default), ``merge`` or ``json``. A name with another extension or another
  target is *ignored* (kubeadm prints ``[patches] Ignoring file ...``); an empty file is
  ignored; a ``+`` not followed by a known patch type is an *error*, as is a file that does not
  read or a patch that does not parse.
- **Documents.** A file may hold several patches, separated by ``---`` lines (a separator line
  may only be followed by a comment); each is YAML or JSON.
- **Applying.** For one target, every file's patches in walk order, each patch in file order:
  a JSON patch (RFC 6902), a JSON merge patch (RFC 7386) or a Kubernetes strategic merge patch
  with the patch metadata of the target's type (:data:`POD`, :data:`DEPLOYMENT`,
  :data:`KUBELET_CONFIGURATION`): lists merged by their ``patchMergeKey`` (containers, volumes,
  env, ports, volumeMounts...), other lists replaced, ``null`` deleting a field, and the
  directives ``$patch: replace|delete``, ``$retainKeys``, ``$deleteFromPrimitiveList/<field>`` and
  ``$setElementOrder/<field>``. The merged order of a
  list follows apimachinery: items named in the patch in the patch's order, interleaved with the
  others in their original order (so a new container comes before the existing ones).

Pure apart from :func:`load_patch_dir`, which reads the directory on the operator machine.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

PHASE = "patches"

KNOWN_TARGETS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubeletconfiguration",
                 "corednsdeployment")
KUBELET_CONFIGURATION = "kubeletconfiguration"
COREDNS_DEPLOYMENT = "corednsdeployment"
PATCH_TYPES = {"json": "application/json-patch+json", "merge": "application/merge-patch+json",
               "strategic": "application/strategic-merge-patch+json", "": "application/strategic-merge-patch+json"}
_TYPE_NAMES = ("json", "merge", "strategic")
_EXTENSION = re.compile(r".+\.(json|yaml)\Z")
_NAME = re.compile(r"(%s)([^.+\n]*)?(\+)?(%s)?" % ("|".join(map(re.escape, KNOWN_TARGETS)), "|".join(_TYPE_NAMES)))


def _go_list(items) -> str:
    return "[" + " ".join(items) + "]"


def _quote(text: str) -> str:
    from .render import go_quote

    return go_quote(text)


class PatchError(ConfigError):
    """A patch directory, file or patch kubeadm would refuse."""


# --- file names ----------------------------------------------------------------------------------
def parse_filename(name: str) -> tuple[str, str] | str:
    """``(target, patch type)`` of a patch file name, or the reason kubeadm ignores the file.

    :raises PatchError: for a ``+`` not followed by a known patch type (kubeadm fails on it).
    """
    if not _EXTENSION.search(name):
        return "the file extension must be one of [json yaml]"
    m = _NAME.match(name)
    if m is None:
        return f"unknown target, must be one of {_go_list(KNOWN_TARGETS)}"
    if m.group(3) and not m.group(4):
        raise PatchError(f"patch file {name!r}: unknown or missing patch type after '+', must be one of "
                         f"{_go_list(_TYPE_NAMES)}", phase=PHASE,
                         fix="name it target[suffix][+strategic|+merge|+json].{yaml,json}, e.g. kube-apiserver0+merge.yaml")
    return m.group(1), PATCH_TYPES[m.group(4) or ""]


# --- documents -----------------------------------------------------------------------------------
def split_documents(text: str, *, source: str) -> list[str]:
    """The patches of one file: chunks between ``---`` lines, trimmed, empty ones dropped."""
    chunks, buf = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("---"):
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                raise PatchError(f"{source}: invalid Yaml document separator: {rest}", phase=PHASE,
                                 fix="a line starting with --- separates patches and may only be followed by a comment")
            chunks.append("".join(buf))
            buf = []
            continue
        buf.append(line)
    chunks.append("".join(buf))
    return [c.strip() for c in chunks if c.strip()]


def _to_json(chunk: str, *, source: str) -> Any:
    from .yamlload import load_document

    try:
        return load_document(chunk, source=source)
    except ConfigError as exc:
        raise PatchError(f"could not convert a patch of {source} to JSON", details=exc.details or [exc.problem],
                         phase=PHASE, fix=f"fix the YAML or JSON of {source}") from None


@dataclass(frozen=True)
class PatchSet:
    """The patches of one file, for one target, in file order."""

    file: str
    target: str
    patch_type: str
    patches: tuple[Any, ...]


@dataclass(frozen=True)
class PatchDir:
    """What a patch directory holds, in kubeadm's order, and what kubeadm prints reading it."""

    directory: str
    sets: tuple[PatchSet, ...] = ()
    files: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()

    def for_target(self, target: str) -> list[PatchSet]:
        return [s for s in self.sets if s.target == target]

    def apply(self, target: str, doc: Any, schema: "Schema | None" = None) -> tuple[Any, list[str]]:
        """``doc`` with every patch for ``target`` applied in order, and kubeadm's lines about it.

        :raises PatchError: naming the file when a patch does not apply.
        """
        if target not in KNOWN_TARGETS:
            raise PatchError(f"unknown patch target name {target!r}, must be one of {_go_list(KNOWN_TARGETS)}")
        notes = []
        for s in self.for_target(target):
            for patch in s.patches:
                try:
                    doc = apply_patch(s.patch_type, doc, copy.deepcopy(patch), schema)
                except PatchError as exc:
                    raise PatchError(f"could not apply the patch of type {_quote(s.patch_type)} in "
                                     f"{os.path.join(self.directory, s.file)} to target {_quote(target)}: "
                                     f"{exc.problem}", phase=PHASE,
                                     fix=f"correct or remove {s.file}") from None
                notes.append(f"[patches] Applied patch of type {_quote(s.patch_type)} to target {_quote(target)}")
        return doc, notes


def parse_patch_files(directory: str, files: list[tuple[str, bytes | None]]) -> PatchDir:
    """A :class:`PatchDir` from ``(relative path, content)`` pairs in walk order (content None:
    a file that is not readable as one, e.g. a symbolic link to a directory)."""
    sets, names, ignored = [], [], []
    messages = [f"[patches] Reading patches from path {_quote(directory)}"]
    for rel, data in files:
        base = os.path.basename(rel)
        parsed = parse_filename(base)
        if isinstance(parsed, str):
            messages.append(f"[patches] Ignoring file {_quote(base)}: {parsed}")
            ignored.append(base)
            continue
        path = os.path.join(directory, rel)
        if data is None:
            raise PatchError(f"could not read the patch file {path}", phase=PHASE, fix=f"make {path} a readable file")
        if not data:
            messages.append(f"[patches] Ignoring empty file: {_quote(base)}")
            ignored.append(base)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PatchError(f"patch file {path} is not UTF-8 text", phase=PHASE, fix=f"fix or remove {path}") from None
        patches = tuple(_to_json(chunk, source=path) for chunk in split_documents(text, source=path))
        sets.append(PatchSet(rel, parsed[0], parsed[1], patches))
        names.append(base)
    if names:
        messages.append(f"[patches] Found the following patch files: {_go_list(names)}")
    if ignored:
        messages.append(f"[patches] Ignored the following files: {_go_list(ignored)}")
    return PatchDir(directory, tuple(sets), tuple(names), tuple(ignored), tuple(messages))


def load_patch_dir(directory: str | os.PathLike[str]) -> PatchDir:
    """Read a patch directory on the operator machine as kubeadm reads it on the node.

    :raises PatchError: the directory is missing or not a directory (a symbolic link to one is
        not one either: kubeadm checks it with lstat), or a file is refused (see the module doc).
    """
    root = str(directory)
    fix = "pass --patches DIR (or patches.directory) naming a directory of patch files"
    try:
        st = os.lstat(root)
    except OSError as exc:
        raise PatchError(f"could not list patch files for path {_quote(root)}: {exc.strerror}", phase=PHASE,
                         fix=fix) from None
    if not stat.S_ISDIR(st.st_mode):
        raise PatchError(f"could not list patch files for path {_quote(root)}: not a directory", phase=PHASE, fix=fix)
    files: list[tuple[str, bytes | None]] = []

    def walk(rel: str) -> None:
        here = os.path.join(root, rel) if rel else root
        try:
            names = sorted(os.listdir(here), key=lambda n: n.encode("utf-8", "surrogateescape"))
        except OSError as exc:
            raise PatchError(f"could not list patch files for path {_quote(root)}: {here}: {exc.strerror}",
                             phase=PHASE, fix=fix) from None
        for name in names:
            sub = os.path.join(rel, name) if rel else name
            full = os.path.join(root, sub)
            if stat.S_ISDIR(os.lstat(full).st_mode):
                walk(sub)
                continue
            if isinstance(parse_filename(name), str):
                files.append((sub, b""))  # ignored by name; never read
                continue
            try:
                size = os.path.getsize(full)
                if size > (1 << 20):
                    raise PatchError(f"patch file {full} is larger than 1 MiB", phase=PHASE, fix=f"shrink {full}")
                files.append((sub, Path(full).read_bytes()))
            except (IsADirectoryError, FileNotFoundError):
                files.append((sub, None))
            except OSError as exc:
                raise PatchError(f"could not read the patch file {full}: {exc.strerror}", phase=PHASE,
                                 fix=f"make {full} readable") from None

    walk("")
    return parse_patch_files(root, files)


# --- JSON patch (RFC 6902) and JSON merge patch (RFC 7386) ---------------------------------------
def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"path {path!r} is not a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"path {path!r} does not start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(key: str, size: int, *, append: bool) -> int:
    if append and key == "-":
        return size
    try:
        i = int(key)
    except ValueError:
        raise PatchError(f"{key!r} is not an array index") from None
    if i < 0:
        i += size
    if i < 0 or i > size or (i == size and not append):
        raise PatchError(f"array index {key} is out of bounds")
    return i


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for p in parts[:-1]:
        if isinstance(node, dict) and p in node:
            node = node[p]
        elif isinstance(node, list):
            node = node[_index(p, len(node), append=False)]
        else:
            raise PatchError(f"path element {p!r} does not exist")
    return node, parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    node, key = _parent(doc, parts)
    if isinstance(node, dict):
        if key not in node:
            raise PatchError(f"key {key!r} does not exist")
        return node[key]
    if isinstance(node, list):
        return node[_index(key, len(node), append=False)]
    raise PatchError(f"cannot read {key!r} of a scalar")


def _remove(doc: Any, parts: list[str]) -> Any:
    node, key = _parent(doc, parts)
    if isinstance(node, dict):
        if key not in node:
            raise PatchError(f"remove: key {key!r} does not exist")
        return node.pop(key)
    if isinstance(node, list):
        return node.pop(_index(key, len(node), append=False))
    raise PatchError(f"remove: cannot remove {key!r} of a scalar")


def _add(doc: Any, parts: list[str], value: Any, *, replace: bool = False) -> Any:
    if not parts:
        return value
    node, key = _parent(doc, parts)
    if isinstance(node, dict):
        if replace and key not in node:
            raise PatchError(f"replace: key {key!r} does not exist")
        node[key] = value
    elif isinstance(node, list):
        if replace:
            node[_index(key, len(node), append=False)] = value
        else:
            node.insert(_index(key, len(node), append=True), value)
    else:
        raise PatchError(f"cannot set {key!r} in a scalar")
    return doc


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 operations (add, remove, replace, move, copy, test), in order."""
    if ops is None:
        return doc
    if not isinstance(ops, list):
        raise PatchError("a JSON patch is a list of operations")
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"operation {op!r} has no 'op'")
        kind, path = op["op"], _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation on {op.get('path')!r} has no value")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"test operation on {op.get('path')!r} failed")
        else:
            raise PatchError(f"unexpected operation {kind!r}")
    return doc


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, ``null`` deletes, anything else replaces."""
    if patch is None:
        raise PatchError("a merge patch is not null")
    if not isinstance(patch, dict):
        return patch
    out = doc if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value) if isinstance(value, dict) else value
    return out


# --- strategic merge patch -----------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """A field's patch metadata: ``merge`` (patchStrategy merge) with its ``key`` (patchMergeKey;
    empty for a list of scalars), and the schema of its values."""

    merge: bool = False
    key: str = ""
    schema: "Schema | None" = None


@dataclass(frozen=True)
class Schema:
    """The patch metadata of one Go type: only fields that have some, or lead to some."""

    name: str
    fields: dict[str, Field] = field(default_factory=dict)

    def get(self, key: str) -> Field:
        return self.fields.get(key) or Field()


_META = Schema("ObjectMeta", {"ownerReferences": Field(True, "uid"), "finalizers": Field(True, "")})
_CONTAINER = Schema("Container", {"ports": Field(True, "containerPort"), "env": Field(True, "name"),
                                  "volumeMounts": Field(True, "mountPath"), "volumeDevices": Field(True, "devicePath")})
_POD_SPEC = Schema("PodSpec", {
    "volumes": Field(True, "name"), "initContainers": Field(True, "name", _CONTAINER),
    "containers": Field(True, "name", _CONTAINER), "ephemeralContainers": Field(True, "name", _CONTAINER),
    "imagePullSecrets": Field(True, "name"), "hostAliases": Field(True, "ip"),
    "topologySpreadConstraints": Field(True, "topologyKey"), "schedulingGates": Field(True, "name"),
    "resourceClaims": Field(True, "name")})
POD = Schema("Pod", {"metadata": Field(schema=_META), "spec": Field(schema=_POD_SPEC)})
DEPLOYMENT = Schema("Deployment", {"metadata": Field(schema=_META), "spec": Field(schema=Schema("DeploymentSpec", {
    "template": Field(schema=Schema("PodTemplateSpec", {"metadata": Field(schema=_META),
                                                         "spec": Field(schema=_POD_SPEC)}))}))})
# the KubeletConfiguration type has no patch metadata: its lists are replaced, its maps merged
KUBELET_CONFIGURATION_SCHEMA = Schema("KubeletConfiguration")

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER = "$setElementOrder/"


def _strip_directives(value: Any) -> tuple[Any, bool]:
    """The value without ``$patch`` maps; False when the value itself is one (drop it)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            v2, keep = _strip_directives(v)
            if keep:
                out[k] = v2
        return out, True
    if isinstance(value, list):
        return [v2 for v2, keep in map(_strip_directives, value) if keep], True
    return value, True


def _drop_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for k in [k for k, v in value.items() if v is None]:
            del value[k]
        for v in value.values():
            _drop_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _drop_nulls(v)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _merge_key_value(item: Any, key: str) -> Any:
    if not isinstance(item, dict):
        raise PatchError(f"list item {item!r} is not a map")
    if key not in item:
        raise PatchError(f"map {item!r} does not contain declared merge key: {key}")
    return item[key]


def _find(items: list, key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if _merge_key_value(item, key) == value:
            return i
    return -1


def _position(order: list, item: Any, key: str) -> int:
    want = item.get(key) if key and isinstance(item, dict) else item
    for i, other in enumerate(order):
        have = other.get(key) if key and isinstance(other, dict) else other
        if have == want and _kind(have) == _kind(want):
            return i
    return -1


def _ordered(patch_items: list, server_only: list, patch_order: list, server_order: list, key: str) -> list:
    """apimachinery's element order: patch items in the patch's order, server-only items in the
    original's, merged by original position (an item not in the original goes first)."""
    def by(order):
        return lambda item: _position(order, item, key)

    deletes = [i for i in patch_items if isinstance(i, dict) and i.get(DIRECTIVE) == "delete"]
    patch_items = sorted((i for i in patch_items if i not in deletes), key=by(patch_order)) + deletes
    server_only = sorted(server_only, key=by(server_order))
    out, i, j = [], 0, 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i]); i += 1
        elif i >= len(server_only):
            out.append(patch_items[j]); j += 1
        else:
            li, ri = _position(server_order, server_only[i], key), _position(server_order, patch_items[j], key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i]); i += 1
            else:
                out.append(patch_items[j]); j += 1
    return out


def _merge_list(original: list, patch: list, f: Field, *, delete_list: bool) -> list:
    if not original and not patch:
        return original
    kinds = {_kind(v) for v in original + patch}
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {original!r} and {patch!r}")
    if "list" in kinds:
        raise PatchError("lists of lists are not supported")
    if kinds != {"map"}:
        if delete_list:
            return [v for v in original if v not in patch]
        merged = []
        for v in original + patch:
            if v not in merged:
                merged.append(v)
        key = ""
    else:
        key = f.key
        if not key:
            raise PatchError("cannot merge lists without merge key")
        kept, replace = [], False
        for item in patch:
            directive = item.get(DIRECTIVE)
            if directive is None:
                kept.append(item)
            elif directive == "delete":
                value = _merge_key_value(item, key)
                original = [o for o in original if _merge_key_value(o, key) != value]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise PatchError("merging lists cannot yet be specified in the patch")
            else:
                raise PatchError(f"unknown patch type: {directive!r}")
        if replace:
            original, patch = kept, []
        else:
            patch = kept
        merged = list(original)
        for item in patch:
            at = _find(merged, key, _merge_key_value(item, key))
            if at >= 0:
                merged[at] = _merge_map(merged[at], item, f.schema)
            else:
                merged.append(item)
    in_patch = [m for m in merged if _position(patch, m, key) >= 0]
    server_only = [m for m in merged if _position(patch, m, key) < 0]
    return _ordered(in_patch, server_only, patch, original, key)


def _apply_element_orders(original: dict, patch: dict, schema: Schema) -> None:
    """``$setElementOrder/<field>``: merge that list first, then order it by the directive's list
    (apimachinery: the directive's order, then the patch's, then the original's)."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        name = key[len(SET_ELEMENT_ORDER):]
        if not name:
            raise PatchError(f"{key} names no field")
        if not isinstance(order, list):
            raise PatchError(f"{key} is not a list")
        f = schema.get(name)
        merge_key = f.key if f.merge else ""
        have, want = original.get(name), patch.get(name)
        if have is not None and not isinstance(have, list) or want is not None and not isinstance(want, list):
            raise PatchError(f"{key} goes with a list, and {name} is not one")
        if want:  # the patch's items (deletions aside) must keep the directive's relative order
            rest = [w for w in want if not (isinstance(w, dict) and w.get(DIRECTIVE) == "delete")]
            positions = [_position(order, w, merge_key) for w in rest
                         if not (isinstance(w, dict) and DIRECTIVE in w)]
            if any(p < 0 for p in positions) or positions != sorted(positions):
                raise PatchError(f"the order in the {name} list of the patch does not match {key}")
        if have is None and want is None:
            continue
        if want is None:
            merged = have
        elif have is None:
            merged = _strip_directives(want)[0]
        else:
            merged = _merge_list(have, want, f, delete_list=False) if f.merge else want
        kinds = {_kind(v) for v in (have or []) + (want or [])}
        if not kinds:
            raise PatchError(f"{key}: no elements in the lists")
        in_order = [m for m in merged if _position(order, m, merge_key) >= 0]
        server_only = [m for m in merged if _position(order, m, merge_key) < 0]
        original[name] = _ordered(in_order, server_only, order, have or [], merge_key)
        patch.pop(name, None)


def _merge_map(original: Any, patch: dict, schema: Schema | None) -> dict:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return {k: v for k, v in patch.items() if k != DIRECTIVE}
        if directive == "delete":
            return {}
        raise PatchError(f"unknown patch type: {directive!r} in map")
    schema = schema or Schema("")
    original = {} if original is None else original
    if RETAIN_KEYS in patch:
        keep = patch.pop(RETAIN_KEYS)
        if not isinstance(keep, list):
            raise PatchError("$retainKeys is not a list")
        for k, v in patch.items():
            if v is not None and not k.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)) and k not in keep:
                raise PatchError(f"$retainKeys does not name {k!r}, which the patch sets")
        for k in [k for k in original if k not in keep]:
            del original[k]
    _apply_element_orders(original, patch, schema)
    for k, value in patch.items():
        delete_list = k.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if delete_list:
            k = k[len(DELETE_FROM_PRIMITIVE_LIST):]
            if not k:
                raise PatchError("$deleteFromPrimitiveList/ names no field")
        if value is None:
            original.pop(k, None)
            continue
        if k not in original or _kind(original[k]) != _kind(value):
            if not delete_list:
                _drop_nulls(value)
                value, keep = _strip_directives(value)
                if keep:
                    original[k] = value
                else:
                    original.pop(k, None)
            continue
        f = schema.get(k)
        if isinstance(value, dict):
            original[k] = _merge_map(original[k], value, f.schema)
        elif isinstance(value, list):
            original[k] = _merge_list(original[k], value, f, delete_list=delete_list) if (f.merge or delete_list) \
                else _strip_directives(value)[0]
        else:
            original[k] = value
    return original


def apply_strategic_merge_patch(doc: Any, patch: Any, schema: Schema | None) -> Any:
    """A Kubernetes strategic merge patch, with the patch metadata of ``schema``'s type."""
    if patch is None:
        return doc  # kubeadm reads a null patch as an empty one
    if not isinstance(patch, dict) or not isinstance(doc, dict):
        raise PatchError("a strategic merge patch and its target are JSON objects")
    return _merge_map(doc, patch, schema)


def apply_patch(patch_type: str, doc: Any, patch: Any, schema: Schema | None = None) -> Any:
    if patch_type == PATCH_TYPES["json"]:
        return apply_json_patch(doc, patch)
    if patch_type == PATCH_TYPES["merge"]:
        return apply_merge_patch(doc, patch)
    return apply_strategic_merge_patch(doc, patch, schema)
