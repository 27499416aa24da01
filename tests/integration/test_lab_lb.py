"""The lab's load balancer (issue 5): the real haproxy, TCP mode, :6443 over the
control planes, still serving when one of them stops."""

from __future__ import annotations

import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.lab.fixtures import lab  # noqa: F401
from tests.lab.hosts import Lab

pytestmark = pytest.mark.lab

CONTROL_PLANES = ("node1", "node2", "node3")
# A stand-in listener on :6443 that answers every connection with its host's name.
LISTENER = (
    "import socket,socketserver\n"
    "class H(socketserver.BaseRequestHandler):\n"
    "    def handle(self): self.request.sendall(socket.gethostname().encode())\n"
    "socketserver.ThreadingTCPServer.allow_reuse_address=True\n"
    "socketserver.ThreadingTCPServer(('0.0.0.0',6443),H).serve_forever()\n"
)


def ask(address: str) -> str:
    """One TCP connection through the LB; returns who answered ('' on failure)."""
    try:
        with socket.create_connection((address, 6443), timeout=3) as s:
            return s.recv(64).decode()
    except OSError:
        return ""


@pytest.fixture
def listeners(lab: Lab) -> Iterator[None]:
    for host in CONTROL_PLANES:
        lab.put(host, "/tmp/listener.py", LISTENER)
        started = lab.ssh(host, f"setsid -f {sys.executable} /tmp/listener.py >/dev/null 2>&1 </dev/null")
        assert started.returncode == 0, started.stderr
    try:
        yield
    finally:
        for host in CONTROL_PLANES:
            lab.ssh(host, "pkill -f '/tmp/listener[.]py'; rm -f /tmp/listener.py")


def test_haproxy_balances_6443_and_survives_a_stopped_control_plane(lab: Lab, listeners: None) -> None:
    lb = lab.status()["lb"]["address"]
    with lab.switch():
        deadline = time.monotonic() + 15
        seen: Counter[str] = Counter()
        while not set(CONTROL_PLANES) <= set(seen) and time.monotonic() < deadline:
            seen[ask(lb)] += 1
            time.sleep(0.05)
        assert set(CONTROL_PLANES) <= set(seen), f"not every control plane answered through the LB: {seen}"

        assert lab.ssh("node1", "pkill -f '/tmp/listener[.]py'").returncode == 0
        answers = [ask(lb) for _ in range(30)]
        # haproxy redispatches refused connections and its checks take node1 out.
        assert "" not in answers, f"the LB dropped connections after node1 stopped: {answers}"
        assert "node1" not in answers[-10:]
        assert set(answers) <= {"node2", "node3"}
