"""The one bounded YAML reader (tasks/core/yamlload.py): every bound is a clean ConfigError."""

from __future__ import annotations

import time
from datetime import date

import pytest

from tasks.core import yamlload
from tasks.core.errors import ConfigError
from tasks.core.yamlload import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH, MAX_SCALAR, load_document, load_documents, read_file


def refused(text: str, source: str = "f.yaml") -> ConfigError:
    started = time.monotonic()
    with pytest.raises(ConfigError) as exc:
        load_documents(text, source=source)
    assert time.monotonic() - started < 5
    err = exc.value
    assert source in err.problem and err.fix
    assert all(d.startswith(f"{source}: ") for d in err.details)
    return err


def laughs(levels: int, width: int = 10) -> str:
    """The "billion laughs" document: each level is ``width`` aliases of the one before."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_plain_documents_load_with_positions():
    docs = load_documents("a: 1\n---\n# two\nb: [x, {c: d}]\n", source="f.yaml")
    assert [(d.index, d.line, d.data) for d in docs] == [(1, 1, {"a": 1}), (2, 4, {"b": ["x", {"c": "d"}]})]
    assert load_document("", source="f.yaml") is None


def test_billion_laughs_is_refused_quickly():
    err = refused(laughs(9))  # 10^9 values once expanded
    assert "billion laughs" in err.details[0] and "line " in err.details[0]


def test_a_few_aliases_are_fine():
    data = load_document("base: &b {x: 1, y: [1, 2]}\nc: *b\nd:\n  <<: *b\n  x: 3\n", source="f.yaml")
    assert data["c"] == {"x": 1, "y": [1, 2]} and data["d"] == {"x": 3, "y": [1, 2]}
    # 3 levels of 8 aliases add about 800 values: under the bound
    load_document(laughs(3, width=8), source="f.yaml")


def test_alias_expansion_bound_is_counted_in_values():
    assert MAX_ALIAS_NODES < 10_000
    err = refused(laughs(5))  # 10^4 leaves and more
    assert f"more than {MAX_ALIAS_NODES}" in err.details[0]


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: {c: *a}}\n"])
def test_recursive_alias_is_refused(text):
    assert "recursive alias" in refused(text).details[0]


@pytest.mark.parametrize("text", ["[" * 10_000 + "]" * 10_000, "a: " + "{a: " * 200 + "1" + "}" * 200,
                                  "- " * 500 + "x\n"])
def test_deep_nesting_is_refused_without_recursion_error(text):
    assert f"more than {MAX_DEPTH} levels deep" in refused(text).details[0]


def test_aliases_cannot_build_depth_either():
    # each level nests the one before 4 deeper: 20 levels are 80 deep, with few values added
    text = "a0: &a0 {x: 1}\n" + "".join(f"a{i}: &a{i} {{b: {{c: {{d: {{e: *a{i - 1}}}}}}}}}\n" for i in range(1, 20))
    assert "levels deep" in refused(text).details[0]


@pytest.mark.parametrize("number", ["9" * 5000, "9223372036854775808", "-9223372036854775809", "0x" + "f" * 17,
                                    ":".join(["59"] * 40)])
def test_integers_beyond_int64_are_refused_and_never_echoed(number):
    err = refused(f"spec:\n  port: {number}\n")
    assert "out of range" in err.details[0] and "spec.port" in err.details[0] and "quote it" in err.details[0]
    assert number not in str(err)


def test_int64_itself_loads():
    assert load_document("a: 9223372036854775807\nb: -9223372036854775808\n", source="f")["a"] == 2**63 - 1


def test_long_values_and_large_files_are_refused():
    assert f"at most {MAX_SCALAR}" in refused("a: " + "x" * (MAX_SCALAR + 1) + "\n").details[0]
    assert "larger than 1 MiB" in refused("a: b\n" * (MAX_BYTES // 4)).problem


def test_binary_junk_is_a_clean_error_at_its_position():
    err = refused("a: 1\nb: \x00\x01\x02\n")
    assert err.details == ("f.yaml: line 2, column 4: malformed YAML: character U+0000 is not allowed in YAML "
                           "(binary data?)",)


def test_duplicate_keys_are_all_reported():
    err = refused("a: 1\nb: {x: 1, x: 2}\na: 3\n")
    assert err.details == ("f.yaml: line 2, column 11: duplicate field 'x'", "f.yaml: line 3, column 1: duplicate field 'a'")
    assert "give each field once" in err.fix


def test_merged_keys_may_be_overridden_in_any_order():
    text = "a: &a {x: 0}\nm: {n: &b {<<: *a, x: 1}}\no: {<<: *b}\n"
    assert load_document(text, source="f")["o"] == {"x": 1}


def test_keys_are_strings_and_complex_keys_are_refused():
    assert load_document("1: a\ntrue: b\n2024-01-02: c\n", source="f") == {"1": "a", "true": "b", "2024-01-02": "c"}
    assert "a key must be a plain value, not a list" in refused("? [a]\n: 1\n").details[0]
    assert "not a mapping" in refused("{x: {{a: 1}: 2}}").details[0]


@pytest.mark.parametrize("text,words", [
    ("a: !!set {x}\n", "tag !!set is not supported"),
    ("a: !!binary aGVsbG8=\n", "tag !!binary is not supported"),
    ("a: !!python/object:os.system x\n", "is not supported"),
    ("a: !!float x\n", "is not a valid !!float"),
    ("a: !!bool maybe\n", "is not a valid !!bool"),
    ("a: 2024-13-45\n", "is not a valid !!timestamp"),
    ("a: !!int x\n", "not an integer"),
])
def test_values_without_a_json_form_are_refused(text, words):
    assert words in refused(text).details[0]


def test_times_still_load():
    assert load_document("a: 2024-01-02\n", source="f") == {"a": date(2024, 1, 2)}


def test_several_documents_where_one_is_expected():
    with pytest.raises(ConfigError) as exc:
        load_document("a: 1\n---\nb: 2\n", source="f.yaml")
    assert "2 YAML documents" in exc.value.problem and exc.value.fix


def test_read_file_is_bounded_and_names_the_file(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 10))
    with pytest.raises(ConfigError) as exc:
        read_file(big, what="inventory", missing_fix="x")
    assert str(big) in exc.value.problem and "1 MiB" in exc.value.problem
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(ConfigError) as exc:
        read_file(latin, what="inventory", missing_fix="x", fix="the fix")
    assert "not UTF-8" in exc.value.problem and exc.value.fix == "the fix"
    with pytest.raises(ConfigError) as exc:
        read_file(tmp_path / "none.yaml", what="inventory", missing_fix="create it")
    assert exc.value.fix == "create it"


def test_shown_keeps_messages_short():
    assert len(yamlload.shown("x" * 10_000)) < 80
    assert len(yamlload.shown([[[[list(range(1000))]]]])) < 80
