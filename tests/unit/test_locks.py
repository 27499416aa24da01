"""The cluster lock (flock in the state dir) and the host lock's holder (flock(1) in a shell), for real:
processes racing, a lock held by a live process, a stale lock of a killed one."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tasks import locks
from tasks.core.errors import KubefabError, RemoteError
from tasks.core.state import ClusterState

CTX = multiprocessing.get_context("fork")


def _hold(root: str, ready, release, command: str = "fab -H node1 join") -> None:
    with locks.cluster_lock(ClusterState(Path(root)), command):
        ready.set()
        release.wait(30)


def _race(root: str, barrier, results, others_done) -> None:
    barrier.wait(10)
    try:
        with locks.cluster_lock(ClusterState(Path(root)), "fab cluster-up"):
            others_done.wait(30)  # held until every other process has tried
        results.put(("ok", os.getpid()))
    except KubefabError as exc:
        results.put(("locked", exc.render()))


def test_racing_processes_one_wins_the_others_fail_at_once_naming_it(tmp_path):
    root = tmp_path / "state"
    n = 6
    barrier, results, others_done = CTX.Barrier(n), CTX.Queue(), CTX.Event()
    procs = [CTX.Process(target=_race, args=(str(root), barrier, results, others_done)) for _ in range(n)]
    started = time.monotonic()
    for p in procs:
        p.start()
    got = [results.get(timeout=30) for _ in range(n - 1)]
    others_done.set()
    got.append(results.get(timeout=30))
    for p in procs:
        p.join(10)
    winners = [pid for what, pid in got if what == "ok"]
    losers = [msg for what, msg in got if what == "locked"]
    assert len(winners) == 1, got
    assert len(losers) == n - 1
    for msg in losers:
        assert f"pid {winners[0]}" in msg and "`fab cluster-up`" in msg and "since " in msg, msg
        assert "fix: wait for that run to finish" in msg and f"kill {winners[0]}" in msg
    assert time.monotonic() - started < 15
    # no lock file is left; the state dir the lock alone made is removed by whichever run made it
    # (when a loser made it, it stays, empty)
    assert not root.exists() or list(root.iterdir()) == []


def test_a_lock_alone_leaves_no_state_dir(tmp_path):
    root = tmp_path / ".kubefab" / "example"
    with locks.cluster_lock(ClusterState(root), "fab init"):
        assert (root / locks.LOCK_NAME).exists()
    assert not (tmp_path / ".kubefab").exists()


def test_a_live_holder_is_named_and_the_lock_is_free_after_it(tmp_path):
    root = tmp_path / "state"
    root.mkdir()
    ready, release = CTX.Event(), CTX.Event()
    p = CTX.Process(target=_hold, args=(str(root), ready, release))
    p.start()
    try:
        assert ready.wait(10)
        t0 = time.monotonic()
        with pytest.raises(KubefabError) as err:
            with locks.cluster_lock(ClusterState(root), "fab reset"):
                pass
        assert time.monotonic() - t0 < 1  # at once, no waiting
        msg = err.value.render()
        assert f"pid {p.pid}" in msg and "`fab -H node1 join`" in msg and "locked by" in msg
        holder = locks.read_cluster_holder(ClusterState(root))
        assert holder is not None and holder.pid == p.pid and holder.boot_id == locks.boot_id()
    finally:
        release.set()
        p.join(10)
    assert not (root / locks.LOCK_NAME).exists()  # released and removed
    with locks.cluster_lock(ClusterState(root), "fab reset") as me:
        assert json.loads((root / locks.LOCK_NAME).read_text())["pid"] == me.pid == os.getpid()
    assert root.is_dir() and list(root.iterdir()) == []  # the state dir existed before: kept


def test_a_killed_holders_lock_is_taken_over_with_a_line(tmp_path, capsys):
    root = tmp_path / "state"
    ready, release = CTX.Event(), CTX.Event()
    p = CTX.Process(target=_hold, args=(str(root), ready, release, "fab cluster-up"))
    p.start()
    assert ready.wait(10)
    os.kill(p.pid, signal.SIGKILL)  # no cleanup: its record stays in the file
    p.join(10)
    assert (root / locks.LOCK_NAME).exists()
    with locks.cluster_lock(ClusterState(root), "fab cluster-up"):
        pass
    line = capsys.readouterr().err
    assert "taking over the lock of a run that is gone" in line and f"pid {p.pid}" in line


def test_a_lock_file_replaced_between_open_and_lock_is_not_trusted(tmp_path, monkeypatch):
    """Run A releases (removes the file) just after run B opened it: B must lock the new file."""
    root = tmp_path / "state"
    root.mkdir()
    real_flock = locks.fcntl.flock
    calls = []

    def flock(fd, op):
        if not calls:  # the first attempt: the file is removed and recreated under us
            os.unlink(root / locks.LOCK_NAME)
            (root / locks.LOCK_NAME).write_text("")
        calls.append(fd)
        return real_flock(fd, op)

    monkeypatch.setattr(locks.fcntl, "flock", flock)
    with locks.cluster_lock(ClusterState(root), "fab join") as me:
        assert len(calls) == 2
        assert json.loads((root / locks.LOCK_NAME).read_text())["pid"] == me.pid


# --- the host lock's holder, run by a real sh and flock(1) on this machine -------------------------------
class LocalHeld:
    """What SshTransport.start_held returns, for a shell on this machine."""

    def __init__(self, script: str) -> None:
        self.proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = b""

    def wait_for(self, marker: str, timeout: float):
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self.proc.stdout.read() or b""
            self.out += chunk
            if marker.encode() in self.out:
                return self.out.decode(), None
            if self.proc.poll() is not None:
                self.out += self.proc.stdout.read() or b""
                return self.out.decode(), self.proc.returncode
            time.sleep(0.01)
        raise AssertionError("no answer")

    def close(self, wait: float = 0.0) -> None:
        self.proc.stdin.close()
        if wait:
            self.proc.wait(wait)


class LocalTransport:
    def __init__(self, path: str) -> None:
        self.host, self.path, self.started = "node1", path, []

    def start_held(self, script: str) -> LocalHeld:
        script = script.replace(locks.HOST_LOCK, self.path)
        held = LocalHeld(script)
        self.started.append(held)
        return held


@pytest.fixture
def flock_bin():
    if subprocess.run(["sh", "-c", "command -v flock"], capture_output=True).returncode != 0:
        pytest.fail("flock(1) (util-linux) is needed for the host lock tests")


def test_host_lock_busy_names_the_holder_and_frees_on_release(tmp_path, flock_bin):
    path = str(tmp_path / "kubefab.lock")
    first = locks.HostLock(LocalTransport(path), "fab -H node1 join").start()
    first.wait()
    assert first.held
    pid, holder = locks.parse_host_record(Path(path).read_text())
    assert holder is not None and holder.pid == os.getpid() and pid > 0
    second = locks.HostLock(LocalTransport(path), "fab -H node1 reset").start()
    t0 = time.monotonic()
    # the holder is this very process, alive: no take-over
    with pytest.raises(RemoteError) as err:
        second.wait()
    assert time.monotonic() - t0 < 2
    msg = err.value.render()
    assert "[lock] node1:" in msg and f"pid {os.getpid()}" in msg and "`fab -H node1 join`" in msg
    first.release()  # the holder's input closes: it exits at once
    third = locks.HostLock(LocalTransport(path), "fab -H node1 reset").start()
    third.wait()
    assert third.held
    third.release()


def test_host_lock_runs_then_once_held_in_the_same_round_trip(tmp_path, flock_bin):
    """Lock and facts in one round trip: the holder runs ``then`` once it holds the lock and
    reports its output and exit code; a busy host never runs it."""
    path = str(tmp_path / "kubefab.lock")
    then = f"test -s {path} && printf '{{\"probe\": 1}}'; echo to-stderr >&2; exit 3"
    first = locks.HostLock(LocalTransport(path), "fab -H node1 join", then=then).start()
    first.wait()
    assert first.held and first.then_result == (3, '{"probe": 1}\n')  # the record was written first
    marker = tmp_path / "ran"
    second = locks.HostLock(LocalTransport(path), "fab -H node1 join", then=f"touch {marker}").start()
    with pytest.raises(RemoteError):
        second.wait()
    assert second.then_result is None and not marker.exists()
    first.release()


def test_host_lock_of_a_dead_run_of_this_machine_is_taken_over(tmp_path, flock_bin, capsys):
    path = str(tmp_path / "kubefab.lock")
    # a holder whose record names a process of this machine that is gone (its session still up)
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = json.loads(locks.Holder.me("fab cluster-up").to_json())
    record["pid"] = dead.pid
    stale = LocalHeld(locks.host_lock_script(json.dumps(record)).replace(locks.HOST_LOCK, path))
    assert stale.wait_for(locks.HELD_MARK, 5)[1] is None
    lock = locks.HostLock(LocalTransport(path), "fab -H node1 join").start()
    lock.wait()
    assert lock.held
    assert "taking over /run/kubefab.lock from a run of this machine that is gone" in capsys.readouterr().err
    assert stale.proc.wait(5) is not None  # the stale holder was killed
    lock.release()


def test_host_lock_of_another_machine_is_never_taken_over(tmp_path, flock_bin):
    path = str(tmp_path / "kubefab.lock")
    record = json.loads(locks.Holder.me("fab cluster-up").to_json())
    record.update(machine="elsewhere", pid=1, bootID="another-boot")
    other = LocalHeld(locks.host_lock_script(json.dumps(record)).replace(locks.HOST_LOCK, path))
    assert other.wait_for(locks.HELD_MARK, 5)[1] is None
    try:
        with pytest.raises(RemoteError) as err:
            locks.HostLock(LocalTransport(path), "fab -H node1 join").start().wait()
        msg = err.value.render()
        assert "@elsewhere (pid 1" in msg and "sshd drops its session" in msg and "kill " in msg
        assert other.proc.poll() is None
    finally:
        other.close(wait=5)


def _write_forever(path: str, ready) -> None:
    from tasks.core.state import write_atomic

    n = 0
    ready.set()
    while True:
        n += 1
        write_atomic(Path(path), bytes([65 + n % 26]) * 4_000_000, 0o600)


def test_a_killed_writer_leaves_the_old_file_or_the_new_one_and_the_next_lock_clears_its_temp(tmp_path, capsys):
    root = tmp_path / "state"
    target = root / "pki" / "ca.key"
    ready = CTX.Event()
    p = CTX.Process(target=_write_forever, args=(str(target), ready))
    p.start()
    assert ready.wait(10)
    time.sleep(0.4)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    data = target.read_bytes()
    assert len(data) == 4_000_000 and data == data[:1] * len(data)  # whole, never half
    with locks.cluster_lock(ClusterState(root), "fab init"):
        assert [f.name for f in target.parent.iterdir()] == ["ca.key"]
    # killed mid-write almost always leaves a temp: then the lock says it removed it
    err = capsys.readouterr().err
    assert err == "" or "temp file(s) a killed run left" in err


# --- what init and cluster-up print on purpose (issue 15, item 6) ------------------------------------
@pytest.mark.parametrize("skip_token,skip_key", [(False, False), (True, False), (False, True), (True, True)])
def test_join_commands_print_the_token_and_key_unless_skipped(tmp_path, capsys, skip_token, skip_key):
    from tasks.core import inventory
    from tasks.core.statestore import PendingStore
    from tasks.phases.showjoincommand import plan_show_join_command
    from tasks.phases.context import Options, RunContext
    from tasks.pipeline import say
    from tests.unit.test_cli import ROOT

    inv = inventory.load_inventory(ROOT / "inventory" / "hosts.yaml")
    state = ClusterState(tmp_path / "state")
    ctx = RunContext(config=inv.kubeadm_config(inv.host("master1")), host_name="master1", state=state,
                     options=Options(upload_certs=True, skip_token_print=skip_token, skip_certificate_key_print=skip_key),
                     store=PendingStore(state), selected=frozenset({"upload-certs", "show-join-command"}))
    token, key = ctx.bootstrap_tokens[0].token.reveal(), ctx.certificate_key.reveal()
    say("master1", plan_show_join_command(ctx).steps)  # as the pipeline prints them (scrubbed unless revealed)
    text = capsys.readouterr().out
    assert text.count("kubeadm join ") == 2
    assert (token in text) is not skip_token and (token.split(".")[1] in text) is not skip_token
    assert (key in text) is not skip_key
    assert ("[upload-certs] Using certificate key:" in text) is not skip_key
    if skip_token:
        assert "--token <redacted bootstrap token>" in text
    if skip_key:
        assert "--certificate-key <certificate key>" in text
    else:
        assert f"--control-plane --certificate-key {key}" in text  # in the command too, as kubeadm prints it


# --- the pipeline takes the host lock before anything else on the host -------------------------------
def test_a_busy_host_fails_before_the_facts_and_writes_nothing(tmp_path, flock_bin):
    from dataclasses import dataclass

    from tasks.commands import init_run
    from tasks.core import inventory
    from tasks.phases.context import Options
    from tasks.pipeline import run_workflow
    from tests.unit.test_cli import ROOT
    from tests.unit.test_pipeline import StrictTransport

    @dataclass
    class Locking(StrictTransport):
        lock_path: str = ""

        def start_held(self, script):
            return LocalTransport(self.lock_path).start_held(script)

    path = str(tmp_path / "kubefab.lock")
    record = json.loads(locks.Holder.me("fab -H master1 init").to_json())
    record.update(machine="bastion", bootID="other")
    other = LocalHeld(locks.host_lock_script(json.dumps(record)).replace(locks.HOST_LOCK, path))
    assert other.wait_for(locks.HELD_MARK, 5)[1] is None
    inv = inventory.load_inventory(ROOT / "inventory" / "hosts.yaml")
    host, state = inv.host("master1"), ClusterState(tmp_path / "state")
    try:
        for dry_run in (False, True):
            options = Options(dry_run=dry_run, upload_certs=True, ignore_preflight_errors=frozenset({"all"}))
            fake = Locking([] if not dry_run else [(r"kubefab|probe|sh -c", _probe_result())], lock_path=path)
            run = init_run(inv, host, state=state, options=options)
            if dry_run:  # a dry-run takes no lock: it reads the host and changes nothing
                assert run_workflow(host, run, connect=lambda h: fake, options=options).ok
                continue
            with pytest.raises(RemoteError) as err:
                run_workflow(host, run, connect=lambda h: fake, options=options)
            assert "is held by " in err.value.render() and "@bastion" in err.value.render()
            assert fake.calls == [] and fake.closed  # not even the facts
            assert fake.stats.count == 1  # the lock's round trip
            assert not state.root.exists()
    finally:
        other.close(wait=5)


def _probe_result():
    from tests.unit.test_pipeline import probe

    return probe()[1]
