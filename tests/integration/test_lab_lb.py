"""The lab's load balancer (issue 5): the real haproxy, TCP mode, :6443 over the ready control
planes (its health check is GET /readyz over TLS), still serving when one of them stops."""

from __future__ import annotations

import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.lab.fixtures import lab  # noqa: F401
from tests.lab.hosts import Lab

pytestmark = pytest.mark.lab

CONTROL_PLANES = ("node1", "node2", "node3")
# A listener on :6443 in place of the API server: TLS (haproxy checks GET /readyz over TLS, as for
# the real one) and every answer is its host's name.
LISTENER = (
    "import http.server,socket,ssl,subprocess\n"
    "subprocess.run(['openssl','req','-x509','-nodes','-newkey','ec','-pkeyopt','ec_paramgen_curve:P-256',"
    "'-subj','/CN=listener','-keyout','/tmp/l.key','-out','/tmp/l.crt','-days','1'],check=True,capture_output=True)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body=socket.gethostname().encode(); self.send_response(200)\n"
    "        self.send_header('Content-Length',str(len(body))); self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self,*a): pass\n"
    "http.server.ThreadingHTTPServer.allow_reuse_address=True\n"
    "srv=http.server.ThreadingHTTPServer(('0.0.0.0',6443),H)\n"
    "ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain('/tmp/l.crt','/tmp/l.key')\n"
    "srv.socket=ctx.wrap_socket(srv.socket,server_side=True)\n"
    "srv.serve_forever()\n"
)
_CLIENT_TLS = ssl.create_default_context()
_CLIENT_TLS.check_hostname = False
_CLIENT_TLS.verify_mode = ssl.CERT_NONE


def ask(address: str) -> str:
    """One TLS connection through the LB; returns who answered ('' on failure)."""
    try:
        with socket.create_connection((address, 6443), timeout=3) as raw, \
                _CLIENT_TLS.wrap_socket(raw) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.split(b"\r\n\r\n", 1)[1].decode() if b"\r\n\r\n" in data else ""
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

        # Wait until the listener is gone, not only signalled: a connection the kernel queued on
        # node1's still-open socket is established for haproxy, so it is not redispatched.
        stopped = lab.ssh("node1", "pkill -f '/tmp/listener[.]py'; for i in $(seq 100); do "
                                   "pgrep -f '/tmp/listener[.]py' >/dev/null || exit 0; sleep 0.05; done; exit 1")
        assert stopped.returncode == 0, "node1's listener did not exit within 5 s"
        answers = [ask(lb) for _ in range(30)]
        # haproxy redispatches refused connections and its checks take node1 out.
        assert "" not in answers, f"the LB dropped connections after node1 stopped: {answers}"
        assert "node1" not in answers[-10:]
        assert set(answers) <= {"node2", "node3"}
