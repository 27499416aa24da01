"""--prompt-for-sudo-password: a terminal, else one line of standard input, else a clean error."""

from __future__ import annotations

import io
import os

import pytest

from tasks import apply
from tasks.core.errors import KubefabError


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch):
    monkeypatch.setattr(apply, "_has_terminal", lambda: False)
    monkeypatch.setattr(apply, "_PIPED_SUDO_PASSWORD", [])


def test_without_a_terminal_the_password_comes_from_standard_input(monkeypatch):
    r, w = os.pipe()
    os.write(w, b"s3cret-pw\nnext line\n")
    os.close(w)
    with os.fdopen(r) as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        first = apply.ask_sudo_password("admin")
        assert first.reveal() == "s3cret-pw" and "s3cret" not in str(first)
        assert apply.ask_sudo_password("admin") is first  # read once: kubefab asks once


@pytest.mark.parametrize("stdin", ["devnull", "empty", "closed", None])
def test_without_a_terminal_or_input_it_is_a_clean_error(monkeypatch, tmp_path, stdin):
    empty = tmp_path / "empty"
    empty.write_text("")
    handle = {"devnull": lambda: open(os.devnull), "empty": lambda: open(empty),
              "closed": lambda: io.StringIO(), None: lambda: None}[stdin]()
    if stdin == "closed":
        handle.close()
    monkeypatch.setattr("sys.stdin", handle)
    with pytest.raises(KubefabError) as exc:
        apply.check_sudo_password_source("admin")
    text = str(exc.value)
    assert "--prompt-for-sudo-password" in text and "terminal" in text
    assert "< password-file" in exc.value.fix and "admin ALL=(ALL) NOPASSWD: ALL" in exc.value.fix


def test_end_of_input_at_the_terminal_is_a_clean_error(monkeypatch):
    monkeypatch.setattr(apply, "_has_terminal", lambda: True)

    def eof(prompt):
        raise EOFError

    monkeypatch.setattr(apply.getpass, "getpass", eof)
    with pytest.raises(KubefabError, match="no password was entered"):
        apply.ask_sudo_password("admin")


def test_with_a_terminal_nothing_is_read_early(monkeypatch):
    monkeypatch.setattr(apply, "_has_terminal", lambda: True)
    monkeypatch.setattr("sys.stdin", None)
    apply.check_sudo_password_source("admin")  # getpass asks later, on the terminal
