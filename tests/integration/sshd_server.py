"""A throwaway OpenSSH sshd for transport tests, plus pytest fixtures.

Runs the real ``/usr/sbin/sshd`` as root on 127.0.0.1 (and 127.0.0.2, for a ProxyJump hop) at
a free port, in a private temp dir with its own host key, authorized keys per user and a
known_hosts file for it. Nothing outside the temp dir is touched, except ``/run/sshd`` (the
privilege-separation directory sshd insists on) and, for the sudo fixture, a throwaway user
and its ``/etc/sudoers.d`` drop-in, both removed afterwards.

Import the fixtures into a test module: ``from .sshd_server import sshd, sudo_user  # noqa``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "kubefab-test", "-f", str(path)],
                   check=True, capture_output=True)
    return path


@dataclass
class SshdServer:
    """One sshd; ``known_hosts`` trusts it at both listen addresses."""

    root: Path
    port: int = field(default_factory=free_port)
    addresses: tuple[str, ...] = ("127.0.0.1", "127.0.0.2")
    proc: subprocess.Popen | None = None

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.root / "client_ed25519"

    @property
    def other_key(self) -> Path:
        """A key that no authorized_keys file lists."""
        return self.root / "stranger_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def authorize(self, user: str, pubkey: Path | None = None) -> None:
        keys = self.root / "authorized_keys"
        keys.mkdir(exist_ok=True, mode=0o755)
        target = keys / user
        target.write_text((pubkey or Path(f"{self.client_key}.pub")).read_text())
        target.chmod(0o644)

    def known_hosts_line(self, address: str = "127.0.0.1") -> str:
        kind, blob = Path(f"{self.host_key}.pub").read_text().split()[:2]
        return f"[{address}]:{self.port} {kind} {blob}\n"

    def start(self) -> "SshdServer":
        if os.geteuid() != 0:
            pytest.fail("the sshd transport tests must run as root (they start sshd and add a user)")
        if not os.path.exists(SSHD):
            pytest.fail(f"{SSHD} not found: apt-get install openssh-server")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        keygen(self.host_key)
        keygen(self.client_key)
        keygen(self.other_key)
        self.authorize("root")
        self.known_hosts.write_text("".join(self.known_hosts_line(a) for a in self.addresses))
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}",
            *(f"ListenAddress {a}" for a in self.addresses),
            f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}/%u",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "MaxStartups 100",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ]))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"sshd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                for a in self.addresses:
                    socket.create_connection((a, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"sshd did not listen on port {self.port}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class SudoUser:
    name: str
    password: str
    home: Path


@pytest.fixture(scope="session")
def sshd():
    root = Path(tempfile.mkdtemp(prefix="kubefab-sshd-"))
    # the sudo test user must traverse it to read its authorized_keys (sshd reads them as the user)
    root.chmod(0o755)
    server = SshdServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def sudo_user(sshd):
    """A non-root login user allowed to sudo with a password (created, then removed)."""
    if shutil.which("sudo") is None:
        pytest.fail("sudo is not installed on this machine; the sudo transport path needs it: "
                    "apt-get install sudo")
    name = "kfsudo" + secrets.token_hex(3)
    password = "pw-" + secrets.token_urlsafe(12)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    dropin = Path(f"/etc/sudoers.d/kubefab-test-{name}")
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n".encode(), check=True, capture_output=True)
        dropin.write_text(f"{name} ALL=(ALL:ALL) ALL\n")
        dropin.chmod(0o440)
        sshd.authorize(name)
        yield SudoUser(name, password, Path("/home") / name)
    finally:
        dropin.unlink(missing_ok=True)
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)
