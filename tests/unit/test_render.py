"""The Go-like YAML emitter, scalar quoting, %q quoting and the strict Jinja2 environment."""

from __future__ import annotations

import pytest
import yaml

from tasks.core.errors import KubefabError
from tasks.core.render import dump_yaml, environment, go_quote, render_template, sorted_keys, yaml_scalar


@pytest.mark.parametrize("value, expected", [
    ("10.96.0.10", "10.96.0.10"),
    ("--advertise-address=10.0.0.1", "--advertise-address=10.0.0.1"),
    ("https://10.0.0.1:2379", "https://10.0.0.1:2379"),
    ("*,bootstrapsigner,tokencleaner", "'*,bootstrapsigner,tokencleaner'"),
    ("system:coredns", "system:coredns"),
    ("0s", "0s"),
    ("v1.36.0", "v1.36.0"),
    # strings that YAML would read back as something else are double-quoted, as go-yaml does
    ("", '""'),
    ("9153", '"9153"'),
    ("true", '"true"'),
    ("yes", '"yes"'),
    ("null", '"null"'),
    ("3.10", '"3.10"'),
    ("1e3", '"1e3"'),
    ("1:20", '"1:20"'),
    # strings plain style cannot carry
    ("a: b", "'a: b'"),
    ("#x", "'#x'"),
    ("- x", "'- x'"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
    (2000001000, "2000001000"),
])
def test_yaml_scalar(value, expected):
    assert yaml_scalar(value) == expected
    # whatever we write must read back as the same value
    assert yaml.safe_load(f"k: {expected}")["k"] == value


def test_yaml_scalar_refuses_multiline():
    with pytest.raises(KubefabError):
        yaml_scalar("a\nb")


def test_dump_yaml_go_layout():
    doc = {
        "spec": {"containers": [{"name": "a", "command": ["x", "--y=1"]}], "hostNetwork": True,
                 "volumes": []},
        "metadata": {"annotations": {"p": "9153"}},
        "status": {},
        "data": {"Corefile": ".:53 {\n    errors\n}\n", "nofinal": "a\nb"},
    }
    assert dump_yaml(doc) == (
        "data:\n"
        "  Corefile: |\n"
        "    .:53 {\n"
        "        errors\n"
        "    }\n"
        "  nofinal: |-\n"
        "    a\n"
        "    b\n"
        "metadata:\n"
        "  annotations:\n"
        '    p: "9153"\n'
        "spec:\n"
        "  containers:\n"
        "  - command:\n"
        "    - x\n"
        "    - --y=1\n"
        "    name: a\n"
        "  hostNetwork: true\n"
        "  volumes: []\n"
        "status: {}\n"
    )
    assert yaml.safe_load(dump_yaml(doc)) == doc


@pytest.mark.parametrize("doc", [
    {"a": [[1, 2], {"k": "v"}, [], {}], "b": {"c": {"d": None}}},
    {"x": "trailing\n\n", "y": " leading space\nline", "z": "space before break \nx", "c": "bell\x07\n"},
    [{"a": 1}, "b", ["c"]],
])
def test_dump_yaml_round_trips(doc):
    assert yaml.safe_load(dump_yaml(doc)) == doc


def test_dump_yaml_indent_and_order_options():
    assert dump_yaml({"b": 1, "a": 2}, indent=2) == "  a: 2\n  b: 1\n"
    assert dump_yaml({"b": 1, "a": 2}, sort_keys=False) == "b: 1\na: 2\n"


def test_key_order_is_go_yaml_order():
    # letters by code point (upper case first), non-letters before letters, digit runs numeric
    assert sorted_keys({"kind": 0, "apiVersion": 0, "Corefile": 0, "a10": 0, "a9": 0, "_x": 0, "A": 0}) == \
        ["_x", "A", "Corefile", "a9", "a10", "apiVersion", "kind"]


def test_non_string_keys_are_rejected():
    with pytest.raises(KubefabError):
        dump_yaml({1: "a"})


@pytest.mark.parametrize("text, expected", [
    ("--v=2", '"--v=2"'),
    ('a"b', '"a\\"b"'),
    ("back\\slash", '"back\\\\slash"'),
    ("tab\there", '"tab\\there"'),
    ("\x01", '"\\x01"'),
    ("é", '"é"'),
])
def test_go_quote(text, expected):
    assert go_quote(text) == expected


def test_environment_is_strict_and_keeps_trailing_newline():
    env = environment()
    assert env.keep_trailing_newline
    with pytest.raises(KubefabError, match="needs a value"):
        render_template("kubelet/instance-config.yaml.j2")
    assert render_template("kubelet/instance-config.yaml.j2", cri_socket="x").endswith(b"\n")


def test_missing_template_is_a_kubefab_error():
    with pytest.raises(KubefabError, match="not found"):
        render_template("no-such-template.j2")
