"""Byte-stable rendering: the Jinja2 environment over ``templates/`` and a Go-like YAML emitter.

kubeadm writes every node file and component config by marshalling Go structs through
``sigs.k8s.io/yaml`` (JSON first, then go-yaml): map keys come out sorted, sequences are not
indented below their key, strings that would read back as another type are double-quoted and
long lines are never folded. :func:`dump_yaml` reproduces that shape so kubefab's files diff
cleanly against kubeadm's, and the same input always gives the same bytes.

Templates hold the structure (which keys, in which order); Python computes the values (flag
lists, volumes) and hands them over through the ``q`` / ``to_yaml`` / ``go_quote`` filters,
so no value is ever pasted into YAML unquoted.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
import yaml.emitter
import yaml.nodes
import yaml.resolver

from .errors import KubefabError

if TYPE_CHECKING:  # imported on first use (see environment())
    import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

__all__ = [
    "TEMPLATES_DIR",
    "dump_yaml",
    "environment",
    "go_quote",
    "render_template",
    "yaml_scalar",
]


# --- scalars -------------------------------------------------------------------------------

_RESOLVER = yaml.resolver.Resolver()
# go-yaml refuses to write strings like "1:20" plain because YAML 1.1 reads them as base-60
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
# go-yaml also reads "1e3" as a float, which PyYAML's resolver (it wants a dot) does not
_GO_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")


def _plain_allowed(text: str) -> tuple[bool, bool]:
    """(plain allowed, single-quoted allowed) for a one-line string, per the YAML emitter."""
    analysis = yaml.emitter.Emitter(io.StringIO()).analyze_scalar(text)
    return analysis.allow_block_plain and not analysis.multiline, analysis.allow_single_quoted


def _resolves_to_str(text: str) -> bool:
    tag = _RESOLVER.resolve(yaml.nodes.ScalarNode, text, (True, False))
    return (tag == "tag:yaml.org,2002:str" and not _BASE60.match(text)
            and not _GO_FLOAT.match(text))


def _double_quoted(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def yaml_scalar(value: Any) -> str:
    """One YAML scalar as go-yaml writes it (plain when it reads back as the same string).

    :param value: str, bool, int, float or None.
    :returns: the scalar text, quoted where needed (``"9153"``, ``"true"``, ``""``).
    :raises KubefabError: for a multi-line string (use a block through :func:`dump_yaml`).
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            raise KubefabError(f"cannot write the number {value!r} to YAML",
                               fix="use a finite number in the configuration")
        return repr(value)
    if not isinstance(value, str):
        raise KubefabError(f"cannot write a {type(value).__name__} as a YAML scalar",
                           fix="report this as a kubefab bug")
    if "\n" in value:
        raise KubefabError("a multi-line string cannot be written as an inline YAML scalar",
                           fix="report this as a kubefab bug")
    if value == "" or not _resolves_to_str(value):
        return _double_quoted(value)
    plain, single = _plain_allowed(value)
    if plain:
        return value
    if single:
        return "'" + value.replace("'", "''") + "'"
    return _double_quoted(value)


def go_quote(text: str) -> str:
    """Quote like Go's ``%q`` / ``strconv.Quote`` (kubeadm-flags.env, instance-config.yaml)."""
    named = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
             "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = ['"']
    for ch in text:
        if ch in named:
            out.append(named[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


# --- key order -------------------------------------------------------------------------------

def _go_yaml_key_cmp(a: str, b: str) -> int:
    """go-yaml's map key order: letters by code point, non-letters first, digit runs numeric."""
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            continue
        la, lb = ca.isalpha(), cb.isalpha()
        if la and lb:
            return -1 if ca < cb else 1
        if la or lb:
            return 1 if la else -1
        if ca.isdigit() and cb.isdigit():
            ja, jb = i, i
            while ja < len(a) and a[ja].isdigit():
                ja += 1
            while jb < len(b) and b[jb].isdigit():
                jb += 1
            na, nb = int(a[i:ja]), int(b[i:jb])
            if na != nb:
                return -1 if na < nb else 1
            if ja != jb:
                return -1 if ja < jb else 1
        return -1 if ca < cb else 1
    return (len(a) > len(b)) - (len(a) < len(b))


_KEY = functools.cmp_to_key(_go_yaml_key_cmp)


def sorted_keys(mapping: Mapping[str, Any]) -> list[str]:
    """Keys in the order sigs.k8s.io/yaml writes them."""
    for key in mapping:
        if not isinstance(key, str):
            raise KubefabError(f"YAML mapping key {key!r} is not a string",
                               fix="quote the key in the configuration file")
    return sorted(mapping, key=_KEY)


# --- block emitter ---------------------------------------------------------------------------

def _block_scalar(text: str, indent: int) -> tuple[str, list[str]]:
    """A literal block (``|``, ``|-``, ``|+``) header and its lines, as go-yaml writes them."""
    if text.endswith("\n\n"):
        chomp = "+"
    elif text.endswith("\n"):
        chomp = ""
    else:
        chomp = "-"
    body = text[:-1] if text.endswith("\n") else text
    pad = " " * indent
    indicator = str(2) if body[:1] == " " else ""
    lines = [pad + line if line else "" for line in body.split("\n")]
    return "|" + indicator + chomp, lines


def _emit(value: Any, indent: int, sort_keys: bool, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, Mapping):
        keys = sorted_keys(value) if sort_keys else list(value)
        for key in keys:
            _emit_entry(pad + yaml_scalar(key) + ":", value[key], indent, indent + 2, sort_keys, out)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for item in value:
            if isinstance(item, Mapping) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sort_keys, sub)
                out.append(pad + "- " + sub[0][indent + 2:])
                out.extend(sub[1:])
            elif isinstance(item, Sequence) and not isinstance(item, str) and item:
                sub = []
                _emit(item, indent + 2, sort_keys, sub)
                out.append(pad + "- " + sub[0][indent + 2:])
                out.extend(sub[1:])
            else:
                _emit_entry(pad + "-", item, indent, indent + 2, sort_keys, out)
    else:
        raise KubefabError(f"cannot emit {type(value).__name__} as a YAML block",
                           fix="report this as a kubefab bug")


def _emit_entry(head: str, value: Any, indent: int, child: int, sort_keys: bool,
                out: list[str]) -> None:
    """``head`` is ``key:`` or ``-``; write the value inline or as a nested block."""
    if isinstance(value, Mapping):
        if not value:
            out.append(head + " {}")
            return
        out.append(head)
        _emit(value, child, sort_keys, out)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            out.append(head + " []")
            return
        out.append(head)
        # go-yaml does not indent a sequence below its mapping key
        _emit(value, indent if head.endswith(":") else child, sort_keys, out)
    elif isinstance(value, str) and "\n" in value:
        # like libyaml, fall back to a double-quoted scalar when a literal block cannot carry
        # the text faithfully (trailing spaces before a line break, control characters)
        if not yaml.emitter.Emitter(io.StringIO()).analyze_scalar(value).allow_block:
            out.append(head + " " + _double_quoted(value))
            return
        header, lines = _block_scalar(value, child)
        out.append(head + " " + header)
        out.extend(lines)
    else:
        out.append(head + " " + yaml_scalar(value))


def dump_yaml(value: Any, *, indent: int = 0, sort_keys: bool = True) -> str:
    """Serialize like ``sigs.k8s.io/yaml.Marshal`` (kubeadm's writer); ends with a newline.

    :param value: nested dicts/lists/scalars (a top-level mapping or sequence).
    :param indent: columns to shift every line by (for embedding in a template).
    :param sort_keys: False keeps dict order (kubeadm's text templates, e.g. kubeconfig.conf).
    """
    if not isinstance(value, (Mapping, list, tuple)):
        return " " * indent + yaml_scalar(value) + "\n"
    if not value:
        return " " * indent + ("{}" if isinstance(value, Mapping) else "[]") + "\n"
    out: list[str] = []
    _emit(value, indent, sort_keys, out)
    return "\n".join(out) + "\n"


# --- Jinja2 ----------------------------------------------------------------------------------

def _to_yaml_filter(value: Any, indent: int = 0, sort_keys: bool = True) -> str:
    return dump_yaml(value, indent=indent, sort_keys=sort_keys).rstrip("\n")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: strict about undefined names, keeps trailing newlines.
    (Jinja2 is imported here, on first use: ``fab --list`` and ``--help`` never pay for it.)"""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = yaml_scalar
    env.filters["to_yaml"] = _to_yaml_filter
    env.filters["go_quote"] = go_quote
    return env


def render_template(template: str, /, **values: Any) -> bytes:
    """Render ``templates/<template>`` to UTF-8 bytes.

    :raises KubefabError: when the template is missing or uses a value it was not given.
    """
    import jinja2

    try:
        text = environment().get_template(template).render(**values)
    except jinja2.TemplateNotFound as exc:
        raise KubefabError(f"template {template!r} not found in {TEMPLATES_DIR}",
                           fix="reinstall kubefab: its templates/ directory is incomplete") from exc
    except jinja2.UndefinedError as exc:
        raise KubefabError(f"template {template!r} needs a value it was not given: {exc.message}",
                           fix="report this as a kubefab bug") from exc
    return text.encode("utf-8")
