"""Transport faults (issue 15, item 4): a short or failed upload is never renamed into place;
SSH connects are retried within a bound and kept alive; the API client's key never touches a disk.

The uploads run the real apply script with ``sh`` on this machine (LocalTransport), with the
upload itself cut short as paramiko's pipelined SFTP does on a full disk. The connects run
SshTransport's real loop against a strict fake Fabric connection.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import paramiko
import pytest

from tasks.core.errors import RemoteError
from tasks.core.plan import Command, FileWrite
from tasks.core.secrets import Secret
from tasks.remote import transport as tr
from tasks.remote.transport import TMP_SUFFIX, LocalTransport, SshTransport


class ShortUpload(LocalTransport):
    """Stages like LocalTransport, but ``cut`` files arrive with other content (a write error
    the SFTP client swallowed: ``b""``, a truncated file, or same-size garbage)."""

    def __init__(self, cut: dict[str, bytes]) -> None:
        super().__init__("node3")
        self.cut = cut

    def _stage(self, files, private_name):
        staged, private = super()._stage(files, private_name)
        for _, step in files:
            if step.path in self.cut:
                Path(tr.temp_path(step.path)).write_bytes(self.cut[step.path])
        return staged, private


def leftovers(base: Path) -> list[str]:
    return [str(p) for p in base.rglob(f"*{TMP_SUFFIX}")]


@pytest.mark.parametrize("arrived, says", [(b"", "0 of 1200 bytes arrived (disk full?)"),
                                           (b"x" * 100, "100 of 1200 bytes arrived"),
                                           (b"y" * 1200, "is corrupt on the host: sha256")])
def test_a_short_or_corrupt_upload_renames_nothing(tmp_path, arrived, says):
    (tmp_path / "pki").mkdir()
    (tmp_path / "admin.conf").write_bytes(b"the old admin.conf\n")
    key = Secret(b"k" * 1200, kind="private key")
    steps = [FileWrite(f"{tmp_path}/admin.conf", b"new admin.conf\n", 0o600),
             FileWrite(f"{tmp_path}/pki/apiserver.key", key, 0o600),
             Command(("touch", f"{tmp_path}/ran"))]
    t = ShortUpload({f"{tmp_path}/pki/apiserver.key": arrived})
    with pytest.raises(RemoteError) as exc:
        t.apply(steps)
    text = exc.value.render()
    assert text.startswith("node3: upload of ") and f"{tmp_path}/pki/apiserver.key" in text and says in text
    assert "no file was renamed into place" in text and "fix: free space on the host" in text
    assert "k" * 50 not in text  # the key's bytes are never shown
    # the file uploaded before it, though whole, was not renamed either; nothing ran, nothing left
    assert (tmp_path / "admin.conf").read_bytes() == b"the old admin.conf\n"
    assert not (tmp_path / "pki" / "apiserver.key").exists() and not (tmp_path / "ran").exists()
    assert leftovers(tmp_path) == []
    # with the space back, the same apply converges
    res = LocalTransport("node3").apply(steps)
    assert res.ok and (tmp_path / "pki" / "apiserver.key").read_bytes() == b"k" * 1200


def test_a_whole_upload_passes_the_check(tmp_path):
    res = LocalTransport("node3").apply([FileWrite(f"{tmp_path}/a", b""), FileWrite(f"{tmp_path}/b", b"b" * 70000)])
    assert [s.status for s in res.steps] == ["changed", "changed"] and res.round_trips == 2


# ---- connects ----------------------------------------------------------------------------

class FakeParamikoTransport:
    def __init__(self) -> None:
        self.keepalive = None
        self.sock = socket.socket()

    def set_keepalive(self, seconds):
        self.keepalive = seconds


class FakeConnection:
    """Fabric's Connection as SshTransport uses it: open(), close(), is_connected, client.
    ``outcomes``: one exception (raised) or None (connected) per expected open(); a further
    open() is an error, so a retry the test did not expect fails it."""

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        self.outcomes = list(outcomes)
        self.opens: list[float] = []
        self.is_connected = False
        self.paramiko = FakeParamikoTransport()
        self.client = self
        self.host, self.port = "192.0.2.2", 22

    def get_transport(self):
        return self.paramiko

    def open(self):
        if not self.outcomes:
            raise AssertionError("open() called more often than the test expected")
        self.opens.append(time.monotonic())
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        self.is_connected = True

    def close(self):
        self.is_connected = False


def ssh(conn: FakeConnection, timeout: float = 5.0) -> SshTransport:
    t = SshTransport("node2", address="192.0.2.2", user="root", connect_timeout=timeout,
                     load_user_known_hosts=False)
    t._conn = conn
    return t


def refused() -> BaseException:
    return paramiko.ssh_exception.NoValidConnectionsError({("192.0.2.2", 22): ConnectionRefusedError(111, "refused")})


def test_a_connect_that_fails_once_is_retried_and_kept_alive():
    conn = FakeConnection([paramiko.SSHException("Error reading SSH protocol banner[Errno 104] reset"), None])
    t = ssh(conn)
    t.open()
    assert len(conn.opens) == 2 and conn.opens[1] - conn.opens[0] >= tr.CONNECT_RETRY_DELAY * 0.9
    assert conn.paramiko.keepalive == tr.KEEPALIVE_SECONDS
    sock = conn.paramiko.sock
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == tr.DEAD_PEER_SECONDS * 1000
    sock.close()


def test_a_host_that_keeps_refusing_is_named_after_bounded_attempts():
    conn = FakeConnection([refused()] * tr.CONNECT_ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(RemoteError) as exc:
        ssh(conn).open()
    assert time.monotonic() - started < 5.0
    text = exc.value.render()
    assert text.startswith("node2: cannot reach 192.0.2.2:22 as root: connection refused")
    assert f"({tr.CONNECT_ATTEMPTS} attempts in" in text and "fix:" in text


def test_retries_never_outlast_the_connect_timeout():
    conn = FakeConnection([refused(), refused()])
    with pytest.raises(RemoteError, match=r"\(2 attempts in"):
        ssh(conn, timeout=1.0).open()  # a third attempt would start after 0.5 + 1.0 s


@pytest.mark.parametrize("exc", [socket.timeout("timed out"), paramiko.AuthenticationException("denied"),
                                 socket.gaierror(-2, "Name or service not known")])
def test_timeouts_and_refusals_of_trust_are_not_retried(exc):
    conn = FakeConnection([exc])
    with pytest.raises(RemoteError) as err:
        ssh(conn).open()
    assert len(conn.opens) == 1 and "attempts" not in err.value.render()


# ---- the API client's key ----------------------------------------------------------------

def test_the_api_session_writes_no_key_file(tmp_path, monkeypatch, key_cache):
    """The official client writes kubeconfig data to temp files (deleted only at a clean exit);
    the session hands it memory files instead, and they work for TLS."""
    import base64
    import sys
    import tempfile
    from datetime import datetime, timezone

    import yaml

    from datetime import timedelta

    from tasks.core import pki
    from tasks.core.spec import ClusterConfiguration
    from tasks.session import api_session

    cluster = ClusterConfiguration(kubernetes_version="v1.36.3", encryption_algorithm="ECDSA-P256")
    now = datetime.now(timezone.utc)
    ca = pki.build_ca("kubernetes", algorithm="ECDSA-P256", now=now, validity=timedelta(days=1), keygen=key_cache)
    admin = pki.build_client_cert(ca, "kubernetes-admin", ("kubeadm:cluster-admins",), cluster=cluster, now=now,
                                  keygen=key_cache)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1",
                                               "certificate-authority-data": b64(ca.cert_pem)}}],
        "users": [{"name": "u", "user": {"client-certificate-data": b64(admin.cert_pem),
                                         "client-key-data": b64(admin.key_pem)}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}}]}).encode()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made: list[str] = []

    def hook(event, args):
        if event.startswith("tempfile.") and hook.on:
            made.append(str(args[0]))

    hook.on = True
    sys.addaudithook(hook)  # (audit hooks cannot be removed: switched off below)
    try:
        with api_session(kubeconfig, timeout=5) as api:
            import ssl

            conf = api.client.configuration
            assert conf.key_file.startswith("/proc/self/fd/") and conf.cert_file.startswith("/proc/self/fd/")
            ctx = ssl.create_default_context(cafile=conf.ssl_ca_cert)
            ctx.load_cert_chain(conf.cert_file, conf.key_file)  # the memory files are real
    finally:
        hook.on = False
    assert made == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [EOFError(), OSError(104, "Connection reset by peer"),
                                 paramiko.SSHException("SSH session not active")])
def test_a_host_that_dies_while_a_command_starts_is_a_clean_error(exc):
    """paramiko raises its transport's EOFError from exec_command when the host dies at that
    moment (the fault suite killed a control plane mid-join): a RemoteError naming the host, not
    a traceback."""
    class Channel:
        closed = False

        def exec_command(self, command):
            raise exc

        def close(self):
            self.closed = True

    chan = Channel()
    t = ssh(FakeConnection([]))
    t.open = lambda: None
    t._session = lambda: chan
    with pytest.raises(RemoteError) as err:
        t.run("true", timeout=5)
    assert "the connection to 192.0.2.2:22 was lost during a command" in err.value.render()
    assert err.value.host == "node2" and chan.closed
