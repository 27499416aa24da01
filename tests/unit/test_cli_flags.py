"""The operator's interface: deliberate flags, help that never runs a task, shell completion.

Invoke gives every task made-up short flags unless told not to (``-h`` became
``--show-secrets``, so ``fab init -h`` ran a real init and printed the keys). kubefab's tasks
have long flags only; ``-h`` after a task is help.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection, task

from tasks.cli import ns

from .test_cli import ROOT, fab

# Short flags a task may have, chosen on purpose: -v (verbosity) on every task, -o (output
# format, as kubectl's and kubeadm's) on the tasks that report something. Fabric's core has
# neither; its -H (and the rest of its core flags) are the other short flags an operator types.
REPORTING_TASKS = {"init", "join", "join-control-plane", "cluster-up", "reset", "token.list",
                   "certs.check-expiration", "version", "upgrade.plan", "upgrade.apply"}
ALLOWED_SHORT_FLAGS: dict[str, set[str]] = {name: {"v"} | ({"o"} if name in REPORTING_TASKS else set())
                                            for name in ns.task_names}


def task_arguments(collection: Collection):
    """(task name, its Arguments) for every task, without consuming the tasks' help dicts."""
    for name in sorted(collection.task_names):
        t = copy.copy(collection[name])
        t.help = dict(t.help)  # Task.get_arguments pops the help it uses
        yield name, t.get_arguments()


def short_flags(collection: Collection) -> dict[str, set[str]]:
    return {name: {n for a in args for n in a.names if len(n) == 1}
            for name, args in task_arguments(collection)}


def test_no_task_has_a_short_flag_it_did_not_choose():
    found = short_flags(ns)
    extra = {name: flags - ALLOWED_SHORT_FLAGS.get(name, set()) for name, flags in found.items()}
    assert not {name: flags for name, flags in extra.items() if flags}, extra


def test_every_reporting_task_takes_o_for_the_output_format():
    for name, args in task_arguments(ns):
        names = {n for a in args for n in a.names}
        assert "v" in names and "verbose" in names, name
        if name in REPORTING_TASKS:
            assert {"o", "output"} <= names, name


def test_the_short_flag_check_sees_generated_flags():
    @task
    def sample(c, show_secrets=False, output=""):
        pass

    assert short_flags(Collection(sample)) == {"sample": {"s", "o"}}


def test_help_lists_long_flags_only():
    r = fab("--help", "join")
    assert r.returncode == 0, r.stderr
    options = r.stdout.split("Options:", 1)[1]
    flag_lines = [line.strip() for line in options.splitlines() if line.strip().startswith("-")]
    short = [line.split()[0] for line in flag_lines if not line.startswith("--")]
    assert flag_lines and short == ["-o", "-v"], flag_lines  # -o STRING, --output=STRING; -v, --verbose


# kubeadm's flags (`kubeadm <command> --help`, v1.36) for options kubefab's tasks have too:
# the task must take them under kubeadm's name.
KUBEADM_FLAGS = {
    "init": ["dry-run", "skip-phases", "ignore-preflight-errors", "upload-certs", "certificate-key",
             "skip-certificate-key-print", "skip-token-print"],
    "join": ["dry-run", "skip-phases", "ignore-preflight-errors", "token", "discovery-token-ca-cert-hash",
             "discovery-token-unsafe-skip-ca-verification", "discovery-file"],
    "join-control-plane": ["dry-run", "skip-phases", "ignore-preflight-errors", "token",
                           "discovery-token-ca-cert-hash", "discovery-token-unsafe-skip-ca-verification",
                           "discovery-file", "certificate-key"],
    "reset": ["dry-run", "skip-phases", "force"],
    "token.create": ["ttl", "description", "print-join-command"],
}


@pytest.mark.parametrize("name", sorted(KUBEADM_FLAGS))
def test_options_kubeadm_has_too_carry_kubeadm_names(name):
    flags = {n for a in dict(task_arguments(ns))[name] for n in a.names}
    assert set(KUBEADM_FLAGS[name]) <= flags, set(KUBEADM_FLAGS[name]) - flags


# --- -h after a task is help: nothing runs, nothing is contacted --------------------------

@pytest.fixture
def listener():
    """A TCP port that records whether anything connected (the inventory's only address)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def contacted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.fixture
def inventory(tmp_path, listener):
    port = listener.getsockname()[1]
    path = tmp_path / "hosts.yaml"
    path.write_text(f"""\
cluster: {{name: helpcheck}}
hosts:
  m1: {{address: 127.0.0.1, port: {port}, roles: [control-plane]}}
  w1: {{address: 127.0.0.1, port: {port}, roles: [worker]}}
ssh: {{user: root, known_hosts: {tmp_path / "known_hosts"}}}
""")
    return path


@pytest.mark.parametrize("args", [
    ("init", "-h"),
    ("-H", "m1", "init", "-h"),
    ("-H", "m1", "init", "--help"),
    ("-H", "m1", "init", "--upload-certs", "-h"),
    ("-H", "m1", "init", "--skip-phases", "-h"),      # where a value belongs
    ("-H", "w1", "join", "--token", "--help"),
    ("cluster-up", "-h"),
    ("token.list", "-h"),                              # -h was --show-secrets
    ("-H", "w1", "reset", "-h"),
], ids=lambda a: " ".join(a))
def test_h_after_a_task_prints_its_help_and_runs_nothing(args, inventory, listener):
    name = next(a for a in args if a in ns.task_names)
    r = fab(*args, env={"KUBEFAB_INVENTORY": str(inventory)})
    assert r.returncode == 0, r.stderr
    assert f" {name} [--options]" in r.stdout.splitlines()[0], r.stdout
    assert "Docstring:" in r.stdout and "Options:" in r.stdout
    assert "Traceback" not in r.stderr and "PRIVATE KEY" not in r.stdout + r.stderr
    assert not contacted(listener), "the task ran and connected to the host"
    assert not (inventory.parent / ".kubefab").exists(), "the task ran and wrote the state dir"


@pytest.mark.parametrize("args,flag,fix", [
    (("-R", "-H", "m1", "init"), "-R/--dry", "--dry-run"),          # -R would have run a real init
    (("-i", "/nonexistent", "-H", "m1", "init"), "-i/--identity", "ssh.identity"),
    (("-S", "/nonexistent", "-H", "m1", "init"), "-S/--ssh-config", "ssh.ssh_config"),
    (("-t", "3", "-H", "w1", "join"), "-t/--connect-timeout", "drop it"),
    (("-T", "3", "cluster-up"), "-T/--command-timeout", "timeouts"),
    (("--prompt-for-sudo-password", "-H", "m1", "init"), "--prompt-for-sudo-password before the task",
     "init --prompt-for-sudo-password"),
    (("-e", "-w", "-H", "w1", "reset"), "-e/--echo", "-v"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else None)
def test_fabric_core_flags_kubefab_does_not_use_are_refused_with_the_fix(args, flag, fix, inventory, listener):
    """Fabric's core flags that kubefab's own SSH transport would silently ignore: named with what
    to do instead, before anything runs (no prompt, no connection, no state dir)."""
    r = fab(*args, env={"KUBEFAB_INVENTORY": str(inventory)})
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{flag} is one of Fabric's options that kubefab does not use" in r.stderr and fix in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not contacted(listener), "the task ran and connected to the host"
    assert not (inventory.parent / ".kubefab").exists()


# --- shell completion (Invoke's, documented in the README) ---------------------------------

FAB = Path(sys.executable).with_name("fab")


def complete(*words: str) -> list[str]:
    r = subprocess.run([str(FAB), "--complete", "--", "fab", *words], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.mark.skipif(not FAB.exists(), reason="no fab script beside the interpreter")
def test_completion_offers_task_names_and_the_task_flags():
    assert {"init", "join-control-plane", "cluster-up", "token.create", "certs.ca-hash"} <= set(complete(""))
    # "--" was a generated short flag of init (skip_certificate_key_print's "-"), so it completed to tasks
    flags = complete("-H", "m1", "init", "--")
    assert {"--skip-phases", "--ignore-preflight-errors", "--upload-certs", "--dry-run"} <= set(flags)
    assert "--token" in complete("join", "--")
    script = subprocess.run([str(FAB), "--print-completion-script", "bash"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120).stdout
    assert "fab --complete" in script and "complete -F" in script


def test_cluster_up_takes_inits_print_flags():
    """cluster-up prints init's join commands: kubeadm init's flags that hide the token and key apply."""
    flags = {n for a in dict(task_arguments(ns))["cluster-up"] for n in a.names}
    assert {"skip-certificate-key-print", "skip-token-print"} <= flags
