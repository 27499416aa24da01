"""The CLI contract, through the real `fab` program in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def fab(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("KUBEFAB_INVENTORY", None) if env is None or "KUBEFAB_INVENTORY" not in env else None
    return subprocess.run([sys.executable, "-m", "fabric", *args], cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def test_list_shows_the_tasks():
    r = fab("--list")
    assert r.returncode == 0, r.stderr
    for name in ("init", "join", "join-control-plane", "cluster-up", "reset", "certs.ca-hash"):
        assert f"  {name}" in r.stdout, (name, r.stdout)


def test_init_help_shows_flags_and_the_phase_tree():
    r = fab("--help", "init")
    assert r.returncode == 0, r.stderr
    for text in ("--dry-run", "--offline", "--skip-phases", "--upload-certs", "--inventory",
                 "executes the following phases", "certs", "/apiserver-etcd-client", "kube-proxy", "Examples:"):
        assert text in r.stdout, text


@pytest.mark.parametrize("args,words", [
    (("join",), ["join needs -H"]),
    (("reset",), ["reset needs -H"]),
    (("-H", "master1", "join"), ["master1", "join-control-plane"]),
    (("-H", "worker1", "join-control-plane"), ["worker1", "roles: [control-plane]"]),
    (("-H", "nosuch", "join"), ["nosuch", "worker1"]),
    (("-H", "worker1", "join", "--only", "bogus"), ["bogus", "kubelet-start"]),
    (("-H", "master1,master2", "init", "--dry-run", "--offline"), ["master1", "join-control-plane"]),
])
def test_join_and_reset_refuse_bad_input_before_connecting(args, words, tmp_path):
    r = fab(*args, "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 1, r.stderr
    for word in words:
        assert word in r.stderr, (word, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "state").exists()


def test_unknown_host_is_named_with_the_known_ones(tmp_path):
    r = fab("-H", "nosuch", "init", "--dry-run", "--offline", "--output-dir", str(tmp_path / "out"),
            "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 1
    assert "nosuch" in r.stderr and "master1" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "state").exists()


def test_unknown_phase_lists_the_valid_ones(tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--only", "certz",
            "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 1
    assert "certz" in r.stderr and "certs/apiserver" in r.stderr and "addon/coredns" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "state").exists()


def test_missing_inventory_is_a_clear_error(tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--inventory", str(tmp_path / "none.yaml"))
    assert r.returncode == 1
    assert "none.yaml" in r.stderr and "--inventory" in r.stderr
    assert "Traceback" not in r.stderr


def test_inventory_from_environment(tmp_path):
    r = fab("-H", "master1", "init", "--dry-run", "--offline", env={"KUBEFAB_INVENTORY": str(tmp_path / "x.yaml")})
    assert r.returncode == 1 and "x.yaml" in r.stderr


def test_offline_needs_dry_run(tmp_path):
    r = fab("-H", "master1", "init", "--offline", "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1 and "--dry-run" in r.stderr


def test_init_refuses_a_worker(tmp_path):
    r = fab("-H", "worker1", "init", "--dry-run", "--offline", "--state-dir", str(tmp_path / "s"))
    assert r.returncode == 1 and "worker1" in r.stderr and "join" in r.stderr


@pytest.mark.parametrize("args,words", [
    (("join", "--token", "master1.x", "--discovery-token-ca-cert-hash", "sha256:xyz", "--endpoint", "10.0.0.1"),
     ["--token", "--discovery-token-ca-cert-hash", "--endpoint"]),
    (("join-control-plane", "--certificate-key", "xyz"), ["--certificate-key"]),
])
def test_join_flags_are_checked_before_anything(args, words, tmp_path):
    r = fab("-H", "worker1" if args[0] == "join" else "master2", *args, "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 1, r.stderr
    for word in words:
        assert word in r.stderr, (word, r.stderr)
    assert "  fix: " in r.stderr and "Traceback" not in r.stderr and "xyz" not in r.stderr.replace("sha256:xyz", "")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args,words", [
    (("token.create", "--ttl", "-1h"), ["--ttl", "zero or more"]),
    (("token.delete", "--token", "../../x"), ["--token", "neither a token nor a token id"]),
])
def test_token_flags_are_checked_before_connecting(args, words, tmp_path):
    r = fab(*args, "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 1, r.stderr
    for word in words:
        assert word in r.stderr, (word, r.stderr)
    assert "Traceback" not in r.stderr and not (tmp_path / "state").exists()


def test_an_invalid_state_dir_is_reported_before_anything_is_written(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "join.yaml").write_text("certificate_key: xyz\n")
    r = fab("-H", "master1", "init", "--dry-run", "--offline", "--state-dir", str(state))
    assert r.returncode == 1, r.stderr
    assert f"{state}/join.yaml: certificate_key:" in r.stderr and "remove the certificate_key line" in r.stderr
    assert sorted(p.name for p in state.iterdir()) == ["join.yaml"]
