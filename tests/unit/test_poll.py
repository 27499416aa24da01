"""The one poll loop's shell forms, run by a real ``sh`` against real sockets: the port wait of
reset / etcd.restore / certs.renew and the executor's host-side URL waits."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from datetime import timedelta

import pytest

from tasks.apply import host_wait_script
from tasks.core.plan import Wait
from tasks.core.poll import poll, ports_free_script


def sh(script: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=timeout)


def test_poll_returns_the_last_answer_at_the_deadline():
    now = [0.0]
    answers = iter(range(100))
    done, last = poll(lambda: (False, next(answers)), 3, sleep=lambda s: now.__setitem__(0, now[0] + s),
                      clock=lambda: now[0])
    assert (done, last) == (False, 4)
    assert poll(lambda: (True, "ok"), 3, sleep=lambda s: None) == (True, "ok")


def test_ports_free_script_waits_for_a_listener_and_names_its_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        script = ports_free_script([port], 1, on_timeout='echo "busy: $out" >&2; exit 1')
        busy = sh(script)
        assert busy.returncode == 1 and busy.stderr.strip() == f"busy: port {port}", busy
        also = sh(ports_free_script([port], 1, also="echo etcd still runs",
                                    on_timeout='echo "($out)" >&2; exit 1'))
        assert also.stderr.strip() == f"(port {port} etcd still runs)", also
    finally:
        server.close()
    assert sh(ports_free_script([port], 5, on_timeout="exit 1")).returncode == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's API
        code = 200 if self.path == "/healthz" else 503
        body = b"ok" if code == 200 else b"not ready"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_host_wait_script_polls_each_url_in_order_and_reports_the_failing_one(http_url):
    ok = Wait("kubelet-healthz", f"{http_url}/healthz", timedelta(seconds=5))
    bad = Wait("component-healthz", f"{http_url}/livez", timedelta(seconds=1))
    good = sh(host_wait_script([ok, ok]))
    assert good.returncode == 0 and good.stdout.count(f"ok {http_url}/healthz") == 2, good
    failed = sh(host_wait_script([ok, bad, ok]))
    lines = failed.stdout.strip().splitlines()
    assert failed.returncode == 1, failed
    assert f"failed {http_url}/livez" in lines and lines[-1].startswith("last answer: "), lines
    assert "not ready" in lines[-1] or "503" in lines[-1], lines
    assert failed.stdout.count("ok ") == 1  # the third wait never ran


def test_api_wait_for_polls_until_the_object_appears():
    from tasks.api import Api
    from tasks.core.errors import ApiError

    class Answers(Api):
        def __init__(self, answers):
            self.slept: list[float] = []
            super().__init__(None, timeout=1.0, sleep=self.slept.append)
            self.answers = answers

        def get(self, obj):
            return self.answers.pop(0) if self.answers else None

    node = {"kind": "Node", "metadata": {"name": "n1"}}
    api = Answers([None, None, {"kind": "Node", "metadata": {"name": "n1", "uid": "u"}}])
    assert api.wait_for(node, 60)["metadata"]["uid"] == "u" and api.slept == [1.0, 1.0]
    with pytest.raises(ApiError, match="Node n1 did not appear within 0s"):
        Answers([]).wait_for(node, 0)


class _Client:
    """A kubernetes ApiClient stand-in answering with the given HTTP statuses in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.calls = 0

    def param_serialize(self, method, path, **_):
        return method, path, {}, None, None

    def call_api(self, method, url, **_):
        self.calls += 1
        code = self.statuses.pop(0) if self.statuses else 403

        class Response:
            status = code

            def read(self):
                if code < 400:
                    return b'{"kind": "Node", "metadata": {"name": "n1"}}'
                return (b'{"kind": "Status", "code": %d, "reason": "Forbidden", "message": "nodes \\"n1\\" is '
                        b'forbidden: User \\"kubernetes-admin\\" cannot get resource \\"nodes\\""}' % code)
        return Response()


def test_a_starting_api_servers_403_is_asked_again_and_a_lasting_one_raised(monkeypatch):
    """Behind a load balancer a just-restarted API server answers 403 until its RBAC caches are
    filled: asked again for a few seconds; a 403 that lasts is the answer, and a 404 at once."""
    from tasks import api as api_mod
    from tasks.api import Api, ApiStatus

    client = _Client([403, 403, 200])
    assert Api(client, sleep=lambda s: None).request("GET", "/api/v1/nodes/n1")["kind"] == "Node"
    assert client.calls == 3
    monkeypatch.setattr(api_mod, "AUTH_SETTLE_SECONDS", 0.5)
    client = _Client([])
    with pytest.raises(ApiStatus, match="forbidden") as exc:
        Api(client).request("GET", "/api/v1/nodes/n1")
    assert exc.value.code == 403 and 2 <= client.calls <= 5
    client = _Client([404, 200])
    with pytest.raises(ApiStatus):
        Api(client, sleep=lambda s: None).request("GET", "/api/v1/nodes/n1")
    assert client.calls == 1
