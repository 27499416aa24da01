"""The cluster state directory: join.yaml is read bounded and checked, never saved invalid."""

from __future__ import annotations

import pytest

from tasks.core.errors import ConfigError
from tasks.core.secrets import Secret
from tasks.core.state import ClusterState

TOKEN = "abcdef.0123456789abcdef"
KEY = "3f2a6b8c1d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd"


def state_with(tmp_path, data: bytes) -> ClusterState:
    state = ClusterState(tmp_path / "state")
    state.root.mkdir()
    state.join_file.write_bytes(data)
    return state


def refused(state: ClusterState) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        state.load_join()
    err = exc.value
    assert str(state.join_file) in str(err) and err.fix
    return err


def test_valid_join_file_round_trips(tmp_path):
    state = ClusterState(tmp_path / "state").ensure()
    state.remember(token=Secret(TOKEN, "t"), certificate_key=Secret(KEY, "k"))
    assert state.token().reveal() == TOKEN and state.certificate_key().reveal() == KEY
    state.check()


def test_the_issues_bad_certificate_key_names_file_key_and_fix(tmp_path):
    err = refused(state_with(tmp_path, b"certificate_key: xyz\n"))
    assert err.details == (f"{tmp_path}/state/join.yaml: certificate_key: not a certificate key "
                           f"(64 hexadecimal characters)",)
    assert "remove the certificate_key line" in err.fix and "xyz" not in str(err)


@pytest.mark.parametrize("text,key", [
    (b"tokens: [abcdef.0123456789abcdeX]\n", "tokens[0]"),
    (b"tokens: [{a: 1}]\n", "tokens[0]"),
    (b"tokens: abcdef.0123456789abcdef\n", "tokens"),
    (b"certificate_key: 22\n", "certificate_key"),
    (b"other: 1\n", "other"),
])
def test_each_invalid_value_is_named(tmp_path, text, key):
    err = refused(state_with(tmp_path, text))
    assert any(f"join.yaml: {key}: " in d for d in err.details), err.details


@pytest.mark.parametrize("data,words", [
    (b"\xff\xfe\x00tokens", "not UTF-8"),
    (b"tokens: [\x01]", "not allowed in YAML"),
    (b"- a\n", "not a mapping"),
    (b"tokens: [a]\ntokens: [b]\n", "duplicate field"),
    (b"l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n" + b"".join(
        b"l%d: &l%d [%s]\n" % (i, i, b", ".join([b"*l%d" % (i - 1)] * 10)) for i in range(1, 9)), "billion laughs"),
])
def test_a_damaged_file_is_a_clean_error(tmp_path, data, words):
    err = refused(state_with(tmp_path, data))
    assert words in str(err) and "delete it" in err.fix


def test_an_invalid_value_is_never_saved(tmp_path):
    state = ClusterState(tmp_path / "state").ensure()
    with pytest.raises(ConfigError, match="refusing to save certificate_key"):
        state.remember(certificate_key=Secret("xyz", "k"))
    with pytest.raises(ConfigError, match="refusing to save tokens"):
        state.remember(token=Secret("master1", "t"))
    assert not state.join_file.exists()
