"""SshTransport against a real throwaway OpenSSH sshd (root, and a sudo user).

Covers: commands, facts in one round trip, a ~20-file plan in <= 3 round trips with exact
modes and contents, atomicity (failed command, failed upload), host-key verification
(unknown, wrong, accept-new, ProxyJump hop), auth failure, unreachable hosts within the
connect timeout, the sudo path (good and wrong password), and no secret in any output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.core.errors import KubefabError, RemoteError
from tasks.core.plan import ApiObject, Command, FileRemove, FileWrite, Plan
from tasks.core.secrets import Secret
from tasks.remote.facts import gather_facts
from tasks.remote.parallel import run_parallel
from tasks.remote.transport import (
    LocalTransport, SshTransport, TMP_SUFFIX, build_apply_script, host_steps, parse_apply_output, segments,
)

from .sshd_server import SshdServer, sshd, sudo_user  # noqa: F401 - pytest fixtures

KEY_PEM = (b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKubefabTestKeyMaterialNotARealKey0000\n"
           b"-----END PRIVATE KEY-----\n")


def connect(server: SshdServer, tmp_path: Path | None = None, **kw) -> SshTransport:
    opts = dict(address="127.0.0.1", port=server.port, user="root", known_hosts=[server.known_hosts],
                key_filename=str(server.client_key), load_user_known_hosts=False,
                connect_kwargs={"look_for_keys": False, "allow_agent": False}, connect_timeout=5)
    opts.update(kw)
    if tmp_path is not None and "ssh_config_path" not in opts:
        empty = tmp_path / "ssh_config"
        empty.touch()
        opts["ssh_config_path"] = str(empty)
    return SshTransport("node1", **opts)


@pytest.fixture()
def root_t(sshd, tmp_path):
    t = connect(sshd, tmp_path)
    yield t
    t.close()


@pytest.fixture()
def workdir():
    """A target tree for plans, outside pytest's 0700 tmp (the sudo user's files land here too)."""
    d = Path("/tmp") / f"kubefab-apply-{os.getpid()}-{time.monotonic_ns()}"
    yield d
    shutil.rmtree(d, ignore_errors=True)


def twenty_files(base: Path) -> list[FileWrite]:
    files = []
    for n in range(20):
        sub = ("pki/etcd" if n % 3 == 0 else "pki" if n % 3 == 1 else "manifests")
        mode = 0o600 if n % 2 else 0o644
        content: bytes | Secret = f"file {n}\n".encode() * (n + 1)
        if n == 5:
            content = Secret(KEY_PEM, kind="private key")
        files.append(FileWrite(f"{base}/{sub}/f{n}.conf", content, mode, 0o755 if sub != "pki/etcd" else 0o700))
    return files


def leftovers(base: Path) -> list[str]:
    return [str(p) for p in base.rglob(f"*{TMP_SUFFIX}")] if base.exists() else []


# ---- basic commands and facts ------------------------------------------------------------

def test_run_returns_output_and_exit_code(root_t):
    res = root_t.run("echo out; echo err >&2; exit 0")
    assert (res.stdout, res.stderr.strip(), res.exit_code) == ("out\n", "err", 0)
    bad = root_t.run(["sh", "-c", "echo nope; exit 4"], check=False)
    assert bad.exit_code == 4 and bad.stdout == "nope\n"
    with pytest.raises(RemoteError) as exc:
        root_t.run("echo broken >&2; exit 9")
    text = str(exc.value)
    assert "exit code 9" in text and "broken" in text and "node1" in text
    assert root_t.stats.count == 3


def test_facts_in_exactly_one_round_trip(root_t, workdir):
    workdir.mkdir()
    (workdir / "ca.crt").write_bytes(b"cert\n")
    (workdir / "ca.crt").chmod(0o640)
    (workdir / "empty").mkdir()
    facts = gather_facts(root_t, [f"{workdir}/ca.crt", f"{workdir}/empty", str(workdir), f"{workdir}/absent"])
    assert root_t.stats.count == 1
    assert facts.uid == 0 and facts.user == "root"
    assert facts.hostname == socket.gethostname()
    assert facts.cpus == len(os.sched_getaffinity(0))  # nproc honours affinity, as kubeadm does
    assert facts.mem_mb > 0 and facts.kernel == os.uname().release
    # our sshd is listening: its port and pid are visible to root
    assert sshd_pid_in(facts.listening_ports.get(root_t._conn.port, ""))
    ca = facts.paths[f"{workdir}/ca.crt"]
    assert (ca.exists, ca.type, ca.mode, ca.owner, ca.size) == (True, "file", 0o640, "root", 5)
    assert ca.sha256 == hashlib.sha256(b"cert\n").hexdigest()
    assert facts.paths[f"{workdir}/empty"].nonempty is False
    assert facts.paths[str(workdir)].nonempty is True
    assert facts.paths[f"{workdir}/absent"].exists is False
    assert facts.binaries["sha256sum"] and facts.binaries["mount"]


def sshd_pid_in(owner: str) -> bool:
    return owner.startswith("pid ") and "sshd" in owner


# ---- apply -------------------------------------------------------------------------------

def test_apply_twenty_files_and_commands_in_two_round_trips(root_t, workdir):
    files = twenty_files(workdir)
    plan = Plan("test", "node1", [*files,
                                  Command(("sh", "-c", f"ls {workdir}/pki | wc -l > {workdir}/count")),
                                  Command(("touch", f"{workdir}/restarted"), on_change=True),
                                  Command(("touch", f"{workdir}/never"), creates=f"{workdir}/count")])
    result = root_t.apply(plan)
    assert result.ok and result.round_trips <= 3
    assert [s.status for s in result.steps] == ["changed"] * 22 + ["skipped"]
    for f in files:
        p = Path(f.path)
        assert p.read_bytes() == f.data(), f.path
        assert p.stat().st_mode & 0o7777 == f.mode, f.path
        assert (p.stat().st_uid, p.stat().st_gid) == (0, 0)
    assert (workdir / "pki/etcd").stat().st_mode & 0o777 == 0o700
    assert (workdir / "count").read_text().strip() == "8"  # 7 files + etcd/
    assert (workdir / "restarted").exists() and not (workdir / "never").exists()
    assert leftovers(workdir) == []
    # a re-run changes nothing, and on_change commands stay quiet
    again = root_t.apply(plan)
    assert [s.status for s in again.steps[:20]] == ["unchanged"] * 20
    assert again.steps[21].status == "skipped" and again.round_trips <= 3


def test_apply_reports_mode_change_as_changed(root_t, workdir):
    f = FileWrite(f"{workdir}/a.conf", b"x\n", 0o644)
    root_t.apply([f])
    os.chmod(f.path, 0o666)
    assert root_t.apply([f]).steps[0].status == "changed"
    assert os.stat(f.path).st_mode & 0o777 == 0o644


def test_failing_command_stops_and_leaves_earlier_files_and_no_temp_files(root_t, workdir):
    token = Secret("abcdef.0123456789abcdef", kind="bootstrap token")
    steps = [FileWrite(f"{workdir}/one", b"1"), FileWrite(f"{workdir}/two", b"2"),
             Command(("sh", "-c", f"echo using {token.reveal()}; echo boom >&2; exit 5")),
             FileWrite(f"{workdir}/three", b"3"), Command(("touch", f"{workdir}/after"))]
    with pytest.raises(RemoteError) as exc:
        root_t.apply(steps)
    err = exc.value
    text = str(err)
    assert "step 3 failed" in text and "exit code 5" in text and "boom" in text
    assert token.reveal() not in text and "<redacted>" in text
    assert [s.status for s in err.result.steps] == ["changed", "changed", "failed", "not-run", "not-run"]
    assert (workdir / "one").read_bytes() == b"1" and (workdir / "two").read_bytes() == b"2"
    assert not (workdir / "three").exists() and not (workdir / "after").exists()
    assert leftovers(workdir) == []


def test_failed_upload_leaves_no_partial_target_and_no_temp_files(root_t, workdir):
    workdir.mkdir()
    (workdir / "existing.conf").write_bytes(b"old\n")
    (workdir / "blocker").write_bytes(b"a file where a directory is needed")
    steps = [FileWrite(f"{workdir}/existing.conf", b"new\n"), FileWrite(f"{workdir}/new.conf", b"n"),
             FileWrite(f"{workdir}/blocker/inner.conf", b"never"), Command(("touch", f"{workdir}/ran"))]
    with pytest.raises(RemoteError) as exc:
        root_t.apply(steps)
    assert "upload failed" in str(exc.value) and "blocker" in str(exc.value)
    assert (workdir / "existing.conf").read_bytes() == b"old\n"
    assert not (workdir / "new.conf").exists() and not (workdir / "ran").exists()
    assert leftovers(workdir) == []


def test_file_remove_and_directory_target(root_t, workdir):
    (workdir / "d").mkdir(parents=True)
    for n in ("a", ".hidden", "..dots"):
        (workdir / "d" / n).write_text(n)
    (workdir / "gone").write_text("x")
    res = root_t.apply([FileRemove(f"{workdir}/d", recursive=True), FileRemove(f"{workdir}/gone"),
                        FileRemove(f"{workdir}/absent")])
    assert [s.status for s in res.steps] == ["changed", "changed", "unchanged"]
    assert (workdir / "d").is_dir() and list((workdir / "d").iterdir()) == []
    # a directory where a file should go is an error, never a file moved inside it
    with pytest.raises(RemoteError) as exc:
        root_t.apply([FileWrite(f"{workdir}/d", b"x")])
    assert "directory" in str(exc.value)
    assert list((workdir / "d").iterdir()) == [] and leftovers(workdir) == []


def test_api_steps_are_refused(root_t):
    obj = ApiObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "y"}})
    with pytest.raises(KubefabError, match="API helper"):
        root_t.apply([obj])
    assert root_t.stats.count == 0


def test_connection_forwards_a_local_port(root_t):
    """The API tunnel (tasks/apply.py) rides on ``transport.connection.forward_local``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    target = srv.getsockname()[1]
    local = sshd_free_port()
    with root_t.connection.forward_local(local, remote_port=target, remote_host="127.0.0.1"):
        deadline = time.monotonic() + 3  # Fabric binds the local port in a thread
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", local), timeout=5)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        peer, _ = srv.accept()
        client.sendall(b"ping")
        assert peer.recv(4) == b"ping"
        client.close()
        peer.close()
    srv.close()


def test_put_and_get_roundtrip_binary(root_t, workdir):
    data = bytes(range(256)) * 4
    root_t.put(data, f"{workdir}/bin/blob", 0o600)
    assert root_t.get(f"{workdir}/bin/blob") == data


def test_killed_apply_never_leaves_a_partial_target(root_t, workdir):
    """SIGTERM: cleanup runs (no temp files). SIGKILL: temp files may stay, targets are whole,
    and the next apply replaces the leftovers."""
    workdir.mkdir()
    (workdir / "b.conf").write_bytes(b"old b\n")
    steps = [FileWrite(f"{workdir}/a.conf", b"new a\n"), Command(("sh", "-c", "kill -TERM $PPID")),
             FileWrite(f"{workdir}/b.conf", b"new b\n")]
    with pytest.raises(RemoteError) as exc:
        root_t.apply(steps)
    assert "step 2 failed" in str(exc.value)
    assert (workdir / "a.conf").read_bytes() == b"new a\n" and (workdir / "b.conf").read_bytes() == b"old b\n"
    assert leftovers(workdir) == []
    steps[1] = Command(("sh", "-c", "kill -KILL $PPID"))
    with pytest.raises(RemoteError):
        root_t.apply(steps)
    assert (workdir / "b.conf").read_bytes() == b"old b\n"
    res = root_t.apply([steps[0], steps[2]])
    assert res.ok and (workdir / "b.conf").read_bytes() == b"new b\n" and leftovers(workdir) == []


def test_command_timeout_is_a_remote_error(root_t):
    started = time.monotonic()
    with pytest.raises(RemoteError, match="did not finish within 1s"):
        root_t.run("echo started; sleep 10", timeout=1)
    assert time.monotonic() - started < 3
    assert root_t.run("echo still usable").stdout == "still usable\n"


def test_local_transport_has_the_same_apply_semantics(workdir):
    t = LocalTransport("here")
    files = twenty_files(workdir)
    res = t.apply([*files, Command(("sh", "-c", "exit 3"), ignore_failure=True)])
    assert res.ok and res.round_trips == 2 and res.steps[-1].status == "ignored"
    for f in files:
        assert Path(f.path).read_bytes() == f.data() and os.stat(f.path).st_mode & 0o7777 == f.mode
    with pytest.raises(RemoteError, match="exit code 4"):
        t.apply([FileWrite(f"{workdir}/x", b"x"), Command(("sh", "-c", "exit 4")), FileWrite(f"{workdir}/y", b"y")])
    assert (workdir / "x").exists() and not (workdir / "y").exists() and leftovers(workdir) == []
    assert t.run("echo hi").stdout == "hi\n"


def test_apply_script_is_valid_sh_and_markers_cannot_be_forged(workdir):
    steps = host_steps([FileWrite(f"{workdir}/it's here", b"q"), FileRemove(f"{workdir}/d", recursive=True),
                        Command(("echo", "@@fake 0 changed"), creates="/x y", on_change=True)])
    script = build_apply_script(steps, nonce="abc123", staged_from={0: "/home/u/.up/0"}, private_dir="/home/u/.up")
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    out = "@@fake 0 changed\n@@abc123 0 changed\n@@abc123 1 unchanged\n@@fake 2 changed\n"
    results = parse_apply_output(steps, "abc123", out, 3)
    assert [r.status for r in results] == ["changed", "unchanged", "not-run"]


def test_oversized_apply_is_refused_before_any_upload(workdir):
    t = LocalTransport("here")
    steps = [FileWrite(f"{workdir}/{'d' * 200}/{n}", b"x") for n in range(400)]
    with pytest.raises(KubefabError, match="several batches"):
        t.apply(steps)
    assert t.stats.count == 0 and not workdir.exists()


def test_segments_split_host_and_api_steps():
    obj = ApiObject({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    w, c = FileWrite("/a", b""), Command(("true",))
    assert segments([w, c, obj, obj, w]) == [("host", [w, c]), ("api", [obj, obj]), ("host", [w])]


# ---- parallel ----------------------------------------------------------------------------

def test_parallel_bounds_concurrency_keeps_order_and_every_failure():
    import threading

    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def work(host: str) -> str:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05 if host != "h0" else 0.15)  # h0 finishes last
        with lock:
            state["now"] -= 1
        if host == "h3":
            raise RemoteError("disk full", host="h3")
        if host == "h5":
            raise ValueError("not a KubefabError")
        return host.upper()

    hosts = [f"h{n}" for n in range(8)]
    results = run_parallel(hosts, work, max_workers=3)
    assert state["peak"] == 3
    assert [r.host for r in results] == hosts
    assert [r.host for r in results.failed] == ["h3", "h5"]
    assert results.values() == {h: h.upper() for h in hosts if h not in ("h3", "h5")}
    assert isinstance(results["h5"].error, ValueError) and "ValueError" in results["h5"].traceback
    with pytest.raises(KubefabError) as exc:
        results.raise_if_failed("facts")
    text = str(exc.value)
    assert "facts: 2 of 8 hosts failed: h3, h5" in text
    assert "h3: disk full" in text and "h5: ValueError: not a KubefabError" in text
    assert exc.value.results is results


def test_parallel_rejects_duplicates_and_bad_bounds():
    with pytest.raises(KubefabError, match="listed twice: a"):
        run_parallel(["a", "b", "a"], str)
    with pytest.raises(KubefabError, match="at least 1"):
        run_parallel(["a"], str, max_workers=0)
    assert len(run_parallel([], str)) == 0


# ---- host keys, auth, reachability ------------------------------------------------------

def test_unknown_host_key_is_refused_with_keyscan_hint(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    t = connect(sshd, tmp_path, known_hosts=[empty])
    with pytest.raises(RemoteError) as exc:
        t.run("true")
    text = str(exc.value)
    assert "unknown host key" in text and "ssh-keyscan -p" in text and "--accept-new-host-keys" in text
    assert "SHA256:" in text and "Traceback" not in text
    assert t.stats.count == 0  # a refused connection is not a round trip


def test_changed_host_key_is_refused(sshd, tmp_path):
    other = tmp_path / "otherhost"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, blob = Path(f"{other}.pub").read_text().split()[:2]
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    with pytest.raises(RemoteError, match="HOST KEY MISMATCH"):
        connect(sshd, tmp_path, known_hosts=[kh]).run("true")


def test_accept_new_host_keys_records_the_key(sshd, tmp_path):
    kh = tmp_path / "inventory_known_hosts"
    t = connect(sshd, tmp_path, known_hosts=[kh], accept_new_host_keys=True)
    assert t.run("echo ok").stdout == "ok\n"
    t.close()
    assert kh.read_text() == sshd.known_hosts_line("127.0.0.1")
    # next time the key is known: strict mode connects
    t2 = connect(sshd, tmp_path, known_hosts=[kh])
    assert t2.run("echo ok").stdout == "ok\n"
    t2.close()


def test_wrong_client_key_is_an_auth_error(sshd, tmp_path):
    t = connect(sshd, tmp_path, key_filename=str(sshd.other_key))
    with pytest.raises(RemoteError) as exc:
        t.run("true")
    assert "authentication failed" in str(exc.value) and "root" in str(exc.value)


def test_closed_port_fails_fast_with_clear_message(sshd, tmp_path):
    port = sshd_free_port()
    t = connect(sshd, tmp_path, port=port, connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(RemoteError) as exc:
        t.run("true")
    assert time.monotonic() - started < 3
    assert f"127.0.0.1:{port}" in str(exc.value) and "refused" in str(exc.value)


def sshd_free_port() -> int:
    from .sshd_server import free_port

    return free_port()


@pytest.mark.parametrize("kind", ["blackhole", "silent"])
def test_unreachable_host_fails_within_connect_timeout(sshd, tmp_path, kind, caplog):
    """blackhole: SYNs dropped (full accept queue); silent: TCP accepted, no SSH banner."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    filler = []
    if kind == "blackhole":
        filler.append(socket.create_connection(("127.0.0.1", port)))  # fills the queue
    try:
        t = connect(sshd, tmp_path, port=port, connect_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(RemoteError) as exc:
            t.run("true")
        elapsed = time.monotonic() - started
        assert elapsed < 1.0 + 1.5, elapsed
        text = str(exc.value)
        assert f"127.0.0.1:{port}" in text and "within 1s" in text and "fix:" in text
        assert "Traceback" not in caplog.text and "Traceback" not in text
    finally:
        for s in filler:
            s.close()
        lst.close()


def test_proxyjump_from_ssh_config_verifies_both_hops(sshd, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host target\n  HostName 127.0.0.2\n  Port {sshd.port}\n  User root\n"
                   f"  ProxyJump root@127.0.0.1:{sshd.port}\n")
    t = SshTransport("target", known_hosts=[sshd.known_hosts], key_filename=str(sshd.client_key),
                     load_user_known_hosts=False, ssh_config_path=str(cfg),
                     connect_kwargs={"look_for_keys": False, "allow_agent": False})
    assert t.run("echo via-jump").stdout == "via-jump\n"
    assert t._conn.gateway is not None and t._conn.gateway.is_connected
    t.close()
    # the jump host's key is checked too: known_hosts with only the target's key is refused
    only_target = tmp_path / "kh_target"
    only_target.write_text(sshd.known_hosts_line("127.0.0.2"))
    t2 = SshTransport("target", known_hosts=[only_target], key_filename=str(sshd.client_key),
                      load_user_known_hosts=False, ssh_config_path=str(cfg),
                      connect_kwargs={"look_for_keys": False, "allow_agent": False})
    with pytest.raises(RemoteError, match=r"unknown host key for \[127.0.0.1\]"):
        t2.run("true")


# ---- sudo --------------------------------------------------------------------------------

def test_sudo_user_runs_as_root_and_applies_plans(sshd, sudo_user, tmp_path, workdir):
    pw = Secret(sudo_user.password, kind="sudo password")
    t = connect(sshd, tmp_path, user=sudo_user.name, sudo_password=pw)
    assert t.use_sudo
    assert t.run("id -u").stdout == "0\n"
    facts = gather_facts(t, [str(workdir)])
    assert facts.uid == 0 and t.stats.count == 2
    files = twenty_files(workdir)
    before = t.stats.count
    res = t.apply(Plan("x", "node1", [*files, Command(("sh", "-c", "echo done"))]))
    assert res.ok and t.stats.count - before <= 3
    for f in files:
        st = os.stat(f.path)
        assert Path(f.path).read_bytes() == f.data()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (f.mode, 0, 0)
    assert (workdir / "pki/etcd").stat().st_mode & 0o777 == 0o700
    assert leftovers(workdir) == []
    # the private upload directory is gone from the user's home
    assert [p.name for p in sudo_user.home.iterdir() if p.name.startswith(".kubefab-upload")] == []
    # a failing command under sudo: same guarantees
    with pytest.raises(RemoteError, match="exit code 2"):
        t.apply([FileWrite(f"{workdir}/late", b"l"), Command(("sh", "-c", "exit 2")),
                 FileWrite(f"{workdir}/later", b"l")])
    assert (workdir / "late").exists() and not (workdir / "later").exists() and leftovers(workdir) == []
    assert [p.name for p in sudo_user.home.iterdir() if p.name.startswith(".kubefab-upload")] == []
    for entry in t.stats.entries:
        assert sudo_user.password not in entry.what
    t.close()


def test_sudo_wrong_password_is_a_clear_error(sshd, sudo_user, tmp_path):
    wrong = Secret("definitely-wrong-" + sudo_user.password, kind="sudo password")
    t = connect(sshd, tmp_path, user=sudo_user.name, sudo_password=wrong)
    started = time.monotonic()
    with pytest.raises(RemoteError) as exc:
        t.run("id -u")
    assert time.monotonic() - started < 10
    text = str(exc.value)
    assert "sudo rejected the password" in text
    assert wrong.reveal() not in text and sudo_user.password not in text


def test_sudo_without_password_does_not_hang(sshd, sudo_user, tmp_path):
    t = connect(sshd, tmp_path, user=sudo_user.name)
    with pytest.raises(RemoteError, match="needs a password"):
        t.run("id -u")


def test_no_secret_in_captured_output(sshd, sudo_user, tmp_path, workdir, capfd, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    pw = Secret(sudo_user.password, kind="sudo password")
    t = connect(sshd, tmp_path, user=sudo_user.name, sudo_password=pw)
    res = t.apply([FileWrite(f"{workdir}/key.pem", Secret(KEY_PEM, kind="private key"), 0o600),
                   Command(("sh", "-c", f"cat {workdir}/key.pem"))])
    assert res.ok
    shown = "\n".join(res.steps[1].output)
    assert "PRIVATE KEY-----\nMC4" not in shown and "redacted" in shown
    out, err = capfd.readouterr()
    everything = out + err + caplog.text + repr(res) + repr(t.stats.entries)
    assert sudo_user.password not in everything
    assert "KubefabTestKeyMaterial" not in everything


# ---- parallel over real connections -------------------------------------------------------

def test_parallel_facts_over_ssh_keeps_every_failure(sshd, tmp_path):
    hosts = ["ok1", "bad", "ok2"]

    def probe(name: str):
        port = sshd.port if name != "bad" else sshd_free_port()
        with connect(sshd, tmp_path, port=port) as t:
            return gather_facts(t, []).uid

    results = run_parallel(hosts, probe, max_workers=3)
    assert [r.host for r in results] == hosts
    assert [r.ok for r in results] == [True, False, True]
    assert results["ok1"].value == 0 and "refused" in str(results["bad"].error)
    with pytest.raises(KubefabError) as exc:
        results.raise_if_failed()
    assert "bad" in str(exc.value) and "1 of 3 hosts failed" in str(exc.value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ---- the host lock's holder (tasks/locks.py) through sudo ---------------------------------------
def test_host_lock_through_sudo_holds_refuses_and_releases(sshd, sudo_user, tmp_path):
    from tasks.locks import HELD_MARK, HostLock, host_lock_script

    lock_path = str(tmp_path / "kubefab.lock")
    os.chmod(tmp_path, 0o755)

    def script(record):  # the same holder, on a path of this test
        return host_lock_script(record, path=lock_path)

    pw = Secret(sudo_user.password, kind="sudo password")
    a = connect(sshd, tmp_path, user=sudo_user.name, sudo_password=pw)
    held = a.start_held(script('{"user": "a", "machine": "m", "pid": 1, "command": "fab init", "since": "x"}'))
    out, code = held.wait_for(HELD_MARK, 20)
    assert code is None and HELD_MARK in out
    assert os.stat(lock_path).st_uid == 0  # held as root
    b = connect(sshd, tmp_path, user=sudo_user.name, sudo_password=pw)
    lock = HostLock(b, "fab join")
    lock.channel = b.start_held(script(lock.me.to_json()))
    with pytest.raises(RemoteError, match=r"is held by a@m \(pid 1, `fab init`\)"):
        lock._wait()
    held.close(wait=5)  # released: the next run takes it at once
    again = b.start_held(script(lock.me.to_json()))
    assert again.wait_for(HELD_MARK, 20)[1] is None
    again.close(wait=5)
    a.close()
    b.close()


def test_host_lock_with_a_wrong_sudo_password_fails_at_once(sshd, sudo_user, tmp_path):
    from tasks.locks import HELD_MARK, host_lock_script

    wrong = Secret("definitely-wrong-" + sudo_user.password, kind="sudo password")
    t = connect(sshd, tmp_path, user=sudo_user.name, sudo_password=wrong)
    started = time.monotonic()
    held = t.start_held(host_lock_script("{}", path=str(tmp_path / "kubefab.lock")))
    with pytest.raises(RemoteError, match="sudo rejected the password"):
        held.wait_for(HELD_MARK, 20)
    assert time.monotonic() - started < 10  # sudo's second prompt is not waited on
    t.close()
