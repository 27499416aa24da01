"""The one YAML reader for every file kubefab reads: inventory, kubeadm config, state files.

PyYAML's ``safe_load`` has no bounds: an alias expanded a billion times ("billion laughs"),
a list nested ten thousand deep, a 5,000-digit integer or a 2 GB file each end in a hang, a
``MemoryError``, a ``RecursionError`` or a ``ValueError`` far from the file. Here every bound
is checked while the file is read, and crossing one is a :class:`~tasks.core.errors.ConfigError`
naming the file, the line and column, and the fix:

- a file is at most :data:`MAX_BYTES`; a scalar (string, number) at most :data:`MAX_SCALAR`
  characters;
- lists and mappings nest at most :data:`MAX_DEPTH` deep, and a document holds at most
  :data:`MAX_NODES` values, counting what every alias expands to;
- aliases add at most :data:`MAX_ALIAS_NODES` values in all, and may not refer to themselves;
- an integer fits in 64 bits (Go's ``int64``, the widest integer of kubeadm's and Kubernetes'
  types: kubeadm could not decode a larger one either);
- a key appears once per mapping (kubeadm decodes strictly); keys are plain scalars, read as
  strings (kubeadm turns YAML into JSON first, whose keys are strings);
- only YAML's core types: ``!!binary``, ``!!set``, ``!!omap`` and ``!!pairs`` have no JSON
  form, so kubeadm has no use for them.

Public API: :func:`load_documents`, :func:`load_document`, :func:`read_file`, :func:`shown`.
"""

from __future__ import annotations

import os
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import ConfigError

__all__ = ["MAX_BYTES", "MAX_SCALAR", "MAX_DEPTH", "MAX_NODES", "MAX_ALIAS_NODES", "Document",
           "load_documents", "load_document", "read_file", "shown"]

MAX_BYTES = 1 << 20        # 1 MiB: a kubeadm config is a few KB; a 5,000-host inventory ~300 KB
MAX_SCALAR = 64 << 10      # 64 KiB: the longest values are kubeconfigs' base64 certificates (~3 KB)
MAX_DEPTH = 64             # kubeadm's deepest field is 6 levels down; kubeconfigs and kubelet configs ~5
MAX_NODES = 50_000         # values in one document, aliases expanded (~1 s to read in pure Python)
MAX_ALIAS_NODES = 4_096    # values that aliases add, in all (YAML's own examples need a handful)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_INT_CHARS = 80            # no int64 needs more characters, in any base YAML 1.1 allows

_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"
_NO_JSON_FORM = ("tag:yaml.org,2002:binary", "tag:yaml.org,2002:set", "tag:yaml.org,2002:omap",
                 "tag:yaml.org,2002:pairs")


@dataclass
class Document:
    """One document of a (multi-document) YAML file."""

    index: int  # 1-based position in the file
    line: int   # 1-based line where it starts
    data: Any


_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 2
_repr.maxlist = _repr.maxdict = 4


def shown(value: Any) -> str:
    """A short ``repr`` for messages: strings cut at 60 characters, containers at 4 items and
    2 levels (a message must stay one readable line whatever the file holds)."""
    return _repr.repr(value)


class _Bound(yaml.MarkedYAMLError):
    """A bound crossed while reading (reported like a syntax error, at its position)."""


class _Unsupported(yaml.MarkedYAMLError):
    """YAML that has no JSON form (complex keys, foreign tags): kubeadm could not read it either."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with kubefab's bounds, string keys and duplicate-key detection."""

    yaml_constructors = {k: v for k, v in yaml.SafeLoader.yaml_constructors.items() if k not in _NO_JSON_FORM}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, int, str]] = []
        self._path: list[str] = []  # the field being composed, for messages
        self._nodes = 0

    def _refuse(self, problem: str, mark, error=None) -> yaml.MarkedYAMLError:
        field = "".join(self._path).lstrip(".")
        if len(field) > 120:  # 64 levels of long keys: keep the message one readable line
            field = field[:50] + "…" + field[-50:]
        return (error or _Bound)(None, None, f"{field}: {problem}" if field else problem, mark)

    # --- composing: depth, count and size, before any Python object exists -------------------
    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)  # the anchored node: see _check_expansion
        mark = self.peek_event().start_mark
        # a mapping value comes with its key node, a list item with its position
        self._path.append(f".{index.value}" if isinstance(index, ScalarNode)
                          else f"[{index}]" if isinstance(index, int) else "")
        self._nodes += 1
        try:
            if len(self._path) > MAX_DEPTH:
                raise self._refuse(f"nested more than {MAX_DEPTH} levels deep", mark)
            if self._nodes > MAX_NODES:
                raise self._refuse(f"more than {MAX_NODES} values in one document", mark)
            return super().compose_node(parent, index)
        finally:
            self._path.pop()

    def compose_scalar_node(self, anchor):  # type: ignore[override]
        node = super().compose_scalar_node(anchor)
        if len(node.value) > MAX_SCALAR:
            raise self._refuse(f"a value of {len(node.value)} characters (at most {MAX_SCALAR})", node.start_mark)
        if node.tag == _INT_TAG:
            # the number is never echoed: an unquoted all-digit secret reads as one
            out_of_range = self._refuse(f"an integer of {len(node.value)} characters is out of range (at most 64 "
                                        f"bits; quote it if it is meant as a string)", node.start_mark)
            if len(node.value) > _INT_CHARS:
                raise out_of_range
            try:
                value = yaml.constructor.SafeConstructor.construct_yaml_int(self, node)
            except ValueError:
                raise self._refuse("not an integer (quote it if it is meant as a string)", node.start_mark) from None
            if not INT64_MIN <= value <= INT64_MAX:
                raise out_of_range
        return node

    def compose_document(self):  # type: ignore[override]
        self._nodes = 0
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node

    def compose_mapping_node(self, anchor):  # type: ignore[override]
        node = super().compose_mapping_node(anchor)
        # checked on the keys as written: merging ("<<: *base") rewrites mappings while they
        # are constructed, and merged keys may be overridden (YAML's merge rule)
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode):
                what = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                raise self._refuse(f"a key must be a plain value, not {what}", key_node.start_mark, _Unsupported)
            if key_node.tag == _MERGE_TAG:
                continue
            if key_node.value in seen:
                mark = key_node.start_mark
                self.duplicates.append((mark.line + 1, mark.column + 1, key_node.value))
            seen.add(key_node.value)
        return node

    # --- constructing ---------------------------------------------------------------------------
    def construct_undefined(self, node):  # type: ignore[override]
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Unsupported(None, None, f"tag {tag} is not supported: kubefab reads mappings, lists, strings, "
                                       f"numbers, booleans and times", node.start_mark)

    def construct_object(self, node, deep=False):  # type: ignore[override]
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            # a value its tag cannot hold: "!!float x", "!!bool maybe", the date 2024-13-45
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Unsupported(None, None, f"{shown(node.value)} is not a valid {tag} (quote it if it is meant as "
                                           f"a string)", node.start_mark) from None

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        """Keys as written in the file: strings, as in the JSON kubeadm decodes."""
        if not isinstance(node, MappingNode):
            return super().construct_mapping(node, deep=deep)  # raises ConstructorError
        self.flatten_mapping(node)
        return {key_node.value: self.construct_object(value_node, deep=deep) for key_node, value_node in node.value}


_Loader.add_constructor(None, _Loader.construct_undefined)


def _check_expansion(root) -> None:
    """Refuse a document whose aliases expand too far, too deep, or into themselves.

    The composed nodes form a graph (an alias is a second edge to its anchor's node); PyYAML
    constructs it without copying, but every consumer (a deep copy, a merge, a message, a
    dump) walks it as the tree it stands for. Sizes and depths are computed once per node
    (memoized, iteratively: the graph may be deeper than Python's stack), so checking costs
    one pass over the distinct nodes, however far the aliases would expand.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_stack: set[int] = set()
    distinct = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_stack.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if depth[key] > MAX_DEPTH:
                raise _Bound(None, None, f"aliases nest values more than {MAX_DEPTH} levels deep",
                             node.start_mark)
            # every node below this one is counted in ``distinct`` already, so this is at most
            # what aliases add below it: the first node over the bound is named
            if size[key] - distinct > MAX_ALIAS_NODES:
                raise _Bound(None, None, f"aliases expand to more than {MAX_ALIAS_NODES} further values: "
                                         f"a \"billion laughs\" document?", node.start_mark)
            if size[key] > MAX_NODES:
                raise _Bound(None, None, f"aliases expand to more than {MAX_NODES} values",
                             node.start_mark)
            continue
        if key in size:
            continue
        if key in on_stack:
            raise _Bound(None, None, "an alias refers to the value that contains it (a recursive alias)",
                         node.start_mark)
        on_stack.add(key)
        distinct += 1
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) not in size:
                stack.append((kid, False))


def _children(node) -> list:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _where(exc: yaml.YAMLError, text: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[:exc.position]
        return f"line {before.count(chr(10)) + 1}, column {exc.position - before.rfind(chr(10))}"
    return "YAML"


def _problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"character U+{char:04X} is not allowed in YAML (binary data?)"
    return str(getattr(exc, "problem", None) or str(exc).splitlines()[0])


_SYNTAX_FIX = "fix the YAML at the position shown"
_UNSUPPORTED_FIX = "write plain keys and values at the position shown (no tags such as !!set, no lists as keys)"
_BOUND_FIX = ("kubefab reads plain configuration files: write the values out without deep nesting or "
              "far-reaching aliases, and check that the file is the one meant")


def load_documents(text: str, *, source: str, fix: str | None = None) -> list[Document]:
    """Every document of a YAML file, within kubefab's bounds.

    :param text: the file's text.
    :param source: the file name, used in every message.
    :param fix: the ``fix:`` line for any problem (default: how to fix the YAML).
    :raises ConfigError: naming the file, the position and the problem (every duplicate key
        at once); ``details`` holds one ``"<source>: line L, column C: <problem>"`` line each.
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: the file is larger than {MAX_BYTES >> 20} MiB",
                          details=[f"{source}: {len(text)} characters; kubefab reads at most {MAX_BYTES}"],
                          fix=fix or "check that the file is the one meant (kubeadm configs and inventories are small)")
    docs: list[Document] = []
    try:
        loader = _Loader(text)  # the reader checks the characters here
    except yaml.YAMLError as exc:
        raise _error(source, text, exc, fix) from None
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            index += 1
            line = node.start_mark.line + 1 if node is not None else 0
            docs.append(Document(index, line, loader.construct_document(node)))
    except yaml.YAMLError as exc:
        raise _error(source, text, exc, fix) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        details = [f"{source}: line {line}, column {col}: duplicate field {shown(key)}"
                   for line, col, key in loader.duplicates]
        n = len(details)
        raise ConfigError(f"{source}: {n} duplicate field{'s' if n != 1 else ''}", details=details,
                          fix=fix or "give each field once: remove or merge the duplicates shown")
    return docs


def _error(source: str, text: str, exc: yaml.YAMLError, fix: str | None) -> ConfigError:
    where = _where(exc, text)
    if isinstance(exc, _Bound):
        detail = f"{source}: {where}: {_problem(exc)}"
        return ConfigError(f"{source}: over kubefab's limits for a YAML file", details=[detail],
                           fix=fix or _BOUND_FIX)
    if isinstance(exc, _Unsupported):
        detail = f"{source}: {where}: {_problem(exc)}"
        return ConfigError(f"{source}: YAML that kubefab does not read", details=[detail],
                           fix=fix or _UNSUPPORTED_FIX)
    detail = f"{source}: {where}: malformed YAML: {_problem(exc)}"
    return ConfigError(f"{source}: malformed YAML", details=[detail], fix=fix or _SYNTAX_FIX)


def load_document(text: str, *, source: str, fix: str | None = None) -> Any:
    """The one document of a single-document YAML file (None when the file is empty).

    :raises ConfigError: as :func:`load_documents`, or when the file holds several documents.
    """
    docs = load_documents(text, source=source, fix=fix)
    if len(docs) > 1:
        raise ConfigError(f"{source}: {len(docs)} YAML documents, expected one",
                          details=[f"{source}: line {docs[1].line}: a second document starts here"],
                          fix=fix or "keep one document (remove the '---' lines)")
    return docs[0].data if docs else None


def read_file(path: str | os.PathLike[str], *, what: str, missing_fix: str, fix: str | None = None) -> str:
    """A UTF-8 text file of at most :data:`MAX_BYTES`, or a ConfigError naming it.

    :param what: what the file is, for messages ("inventory", "kubeadm config file").
    :param missing_fix: the ``fix:`` line when it does not exist.
    :param fix: the ``fix:`` line for any other problem (default: a generic one).
    :raises ConfigError: missing, unreadable, too large or not UTF-8.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist", fix=missing_fix) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or exc}",
                          fix=fix or "make it a readable UTF-8 YAML file") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{what} {p} is larger than {MAX_BYTES >> 20} MiB",
                          fix=fix or "check that the file is the one meant (kubeadm configs and inventories are small)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line, column = before.count(b"\n") + 1, exc.start - before.rfind(b"\n")
        raise ConfigError(f"{what} {p} is not UTF-8 text: line {line}, column {column} (byte {exc.start + 1})",
                          fix=fix or "save it as UTF-8 YAML; check that the file is the one meant") from None
