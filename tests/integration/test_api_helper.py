"""``tasks.api.Api``, the one helper every kubefab API object goes through, against a real
kube-apiserver (the lab's v1.36.3 build, a real TLS etcd 3.6 underneath) and, for failures, a
flaky HTTPS front.

What is checked: ``apply`` creates, re-applies as "unchanged" without writing, updates what
changed; the ``retain``, ``merge``, ``patch`` and ``kubeadm-certs`` strategies do what
:class:`tasks.core.plan.ApiObject` promises; a write that loses a race (409 Conflict or
AlreadyExists) is read again and retried; 5xx/429 answers and refused connections while the
API server starts are retried within ``timeout``; an API that never answers usefully ends in a
:class:`~tasks.core.errors.ApiError` naming the last real error, in bounded time, with no
traceback on the command line; 403/422 are reported at once with the server's message.

The races are real: "someone else" (a :class:`KubeClient` as kubernetes-admin) writes the
object just before Api's write reaches the server, through the hook :func:`record_requests`
puts on ``Api.request``, so the 409s are the server's own.

Needs root and the lab's binaries (the ``api_*``/``apiserver`` fixtures run etcd and
kube-apiserver; see apiserver_fixtures.py, and ``make lab-k8s`` if they are missing). The 5xx
answers come from :class:`FlakyFront`, an HTTPS server in this file that serves the API
server's own certificate (so ``Api`` is configured exactly as against the real server) and
forwards what it does not fail to the real server as kubernetes-admin.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import ssl
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from tasks.api import Api, ApiStatus, Result
from tasks.core.errors import ApiError, KubefabError
from tasks.core import bootstrap
from tasks.core.plan import ApiObject, SameKubeadmCerts
from tasks.core.secrets import Secret
from tests.integration.apiserver_fixtures import (  # noqa: F401  (pytest fixtures)
    APISERVER_READY_SECONDS,
    REPO,
    ApiServerProcess,
    EtcdProcess,
    LabPki,
    api_admin,
    api_etcd,
    api_pki,
    api_tmp,
    apiserver,
    free_port,
    start_apiserver,
)
from tests.integration.kubeclient import KubeClient, new_token, token_secret

pytestmark = pytest.mark.lab

MASTERS = ["system:masters"]
REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


# ---------------------------------------------------------------------------- helpers
class Sleeps(list):
    """``Api(sleep=...)``: really sleeps (the backoff is part of what is tested) and records."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


@pytest.fixture()
def make_api(api_pki: LabPki) -> Iterator[Callable[..., tuple[Api, Sleeps]]]:
    """``make_api(url, timeout=..., user=..., groups=...)`` -> (Api, its recorded sleeps).

    The client is built as tasks/apply.py builds it from admin.conf: server URL, ca.crt,
    client certificate; clients are closed after the test."""
    clients: list[Any] = []

    def make(url: str, *, timeout: float = 10.0, user: str = "kubernetes-admin",
             groups: list[str] = MASTERS) -> tuple[Api, Sleeps]:  # type: ignore[assignment]
        client = api_pki.client(url, user, groups)
        clients.append(client)
        sleeps = Sleeps()
        return Api(client, timeout=timeout, sleep=sleeps), sleeps

    yield make
    for client in clients:
        client.close()


@pytest.fixture()
def ns(api_admin: KubeClient) -> str:
    """A fresh namespace per test, so tests stay independent on the shared store."""
    name = "api-" + uuid.uuid4().hex[:8]
    api_admin.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture()
def node(api_admin: KubeClient) -> Iterator[str]:
    """A Node name for this test; the Node (if created) is deleted afterwards so other modules'
    controllers never see it."""
    name = "api-node-" + uuid.uuid4().hex[:8]
    yield name
    api_admin.delete(f"/api/v1/nodes/{name}")


def config_map(ns: str, name: str, data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, **meta},
            "data": data}


def cm_path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps/{name}"


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def record_requests(api: Api, before: dict[tuple[str, str], Callable[[], None]] | None = None,
                    times: float = 1) -> list[tuple[str, str, int]]:
    """Wrap ``api.request`` (the single door of every call ``Api`` makes): log each call as
    (method, path, HTTP code or 0 for "unreachable", 200 for success), and run
    ``before[(method, path)]()`` just before the first ``times`` such calls: someone else
    writing between Api's read and its write."""
    real = api.request
    calls: list[tuple[str, str, int]] = []
    fired: dict[tuple[str, str], int] = {}

    def request(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        key = (method, path)
        if before and key in before and fired.get(key, 0) < times:
            fired[key] = fired.get(key, 0) + 1
            before[key]()
        try:
            out = real(method, path, *args, **kwargs)
        except ApiStatus as exc:
            calls.append((method, path, exc.code))
            raise
        calls.append((method, path, 200))
        return out

    api.request = request  # type: ignore[method-assign]
    return calls


def writes(calls: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [c for c in calls if c[0] != "GET"]


class FlakyFront:
    """An HTTPS server in front of the API server that answers the first ``fail`` requests for
    which ``when(method, path)`` holds with ``code`` and a Kubernetes Status body (message
    numbered ``(answer N)``), and forwards every other request to the API server (as
    kubernetes-admin, through ``upstream``). It serves pki/apiserver.crt, whose SANs include
    127.0.0.1, so an Api verifying with ca.crt accepts it as the API server.

    ``fail=math.inf``: never answers usefully. ``port``: listen there (default: a free port).
    """

    def __init__(self, pki: LabPki, upstream: KubeClient, *, code: int = 503, fail: float = 0,
                 when: Callable[[str, str], bool] = lambda method, path: True, port: int = 0) -> None:
        self.code, self.fail, self.when, self.upstream = code, fail, when, upstream
        self.failed = 0
        self.seen: list[tuple[str, str, int]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with front._lock:
                    failing = front.failed < front.fail and front.when(self.command, self.path)
                    if failing:
                        front.failed += 1
                        number = front.failed
                if failing:
                    code = front.code
                    body: Any = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": f"flaky front refuses this one (answer {number})",
                                 "reason": REASONS.get(code, "InternalError"), "code": code}
                else:
                    ctype = self.headers.get("Content-Type") or "application/json"
                    code, body = front.upstream.request(self.command, self.path, json.loads(raw) if raw else None,
                                                        content_type=ctype)
                front.seen.append((self.command, self.path, code))
                out = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one  # http.server's naming

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                front.errors.append(repr(sys.exc_info()[1]))

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path("apiserver.crt"), pki.path("apiserver.key"))
        self.server = Server(("127.0.0.1", port), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture()
def fronts(api_pki: LabPki, api_admin: KubeClient) -> Iterator[Callable[..., FlakyFront]]:
    """``fronts(code=..., fail=..., when=..., port=...)`` -> a started FlakyFront, stopped after the test."""
    started: list[FlakyFront] = []

    def start(**kwargs: Any) -> FlakyFront:
        front = FlakyFront(api_pki, api_admin, **kwargs)
        started.append(front)
        return front

    yield start
    for front in started:
        front.stop()


def later(delay: float, fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread after ``delay`` seconds; its result or exception lands in the dict."""
    box: dict[str, Any] = {}

    def run() -> None:
        time.sleep(delay)
        try:
            box["result"] = fn()
        except Exception as exc:  # noqa: BLE001  (reported by the test, not lost in the thread)
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def dead_url() -> str:
    """An https URL on 127.0.0.1 with nothing listening: connections are refused."""
    return f"https://127.0.0.1:{free_port()}"


# ---------------------------------------------------------------------------- apply
def test_apply_creates_then_reapply_changes_nothing(make_api: Any, apiserver: ApiServerProcess,
                                                    api_admin: KubeClient, ns: str) -> None:
    api, sleeps = make_api(apiserver.url)
    wanted = config_map(ns, "first", {"a": "1", "b": "2"}, labels={"app": "kubefab"},
                        annotations={"note": "hello"})
    assert api.get(wanted) is None  # 404 is "not there", not an error

    calls = record_requests(api)
    first = api.apply(ApiObject(wanted))
    assert first == Result(f"ConfigMap {ns}/first", "created") and first.changed
    assert writes(calls) == [("POST", f"/api/v1/namespaces/{ns}/configmaps", 200)]
    live = api_admin.get(cm_path(ns, "first"))
    assert live is not None and live["data"] == {"a": "1", "b": "2"}
    assert live["metadata"]["labels"] == {"app": "kubefab"} and live["metadata"]["annotations"] == {"note": "hello"}
    # the uid is remembered for $(uid:...) owner references later in the run
    assert api.uids[f"ConfigMap/{ns}/first"] == live["metadata"]["uid"]

    calls.clear()
    second = api.apply(ApiObject(wanted))
    assert second.action == "unchanged" and not second.changed
    assert writes(calls) == [], "an unchanged object must not be written"
    again = api_admin.get(cm_path(ns, "first"))
    assert again is not None and rv(again) == rv(live)
    assert sleeps == []


def test_apply_ignores_server_defaults(make_api: Any, apiserver: ApiServerProcess,
                                       api_admin: KubeClient, ns: str) -> None:
    """A Service comes back with clusterIP, protocol, sessionAffinity... filled in by the server;
    that is not a difference (else every run would rewrite every object)."""
    api, _ = make_api(apiserver.url)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns", "namespace": ns},
           "spec": {"selector": {"k8s-app": "dns"}, "ports": [{"name": "dns", "port": 53, "targetPort": 53}]}}
    assert api.apply(ApiObject(svc)).action == "created"
    live = api_admin.get(f"/api/v1/namespaces/{ns}/services/dns")
    assert live is not None
    assert live["spec"].get("clusterIP") and live["spec"]["ports"][0].get("protocol") == "TCP", \
        "the API server did not default Service fields: this test would prove nothing"
    calls = record_requests(api)
    assert api.apply(ApiObject(svc)).action == "unchanged"
    assert writes(calls) == []


def test_apply_updates_what_changed(make_api: Any, apiserver: ApiServerProcess,
                                    api_admin: KubeClient, ns: str) -> None:
    api, _ = make_api(apiserver.url)
    api.apply(ApiObject(config_map(ns, "cfg", {"a": "1", "b": "2"}, labels={"app": "kubefab"})))
    before = api_admin.get(cm_path(ns, "cfg"))
    assert before is not None

    changed = config_map(ns, "cfg", {"a": "10"}, labels={"app": "kubefab", "tier": "control-plane"})
    calls = record_requests(api)
    result = api.apply(ApiObject(changed))
    assert result.action == "updated" and result.changed
    assert writes(calls) == [("PUT", cm_path(ns, "cfg"), 200)]
    after = api_admin.get(cm_path(ns, "cfg"))
    assert after is not None
    # "apply" makes the object match: the whole data is replaced, labels added
    assert after["data"] == {"a": "10"}
    assert after["metadata"]["labels"] == {"app": "kubefab", "tier": "control-plane"}
    assert after["metadata"]["uid"] == before["metadata"]["uid"] and rv(after) > rv(before)
    assert api.apply(ApiObject(changed)).action == "unchanged"


def test_a_key_dropped_from_the_wanted_data_is_removed(make_api: Any, apiserver: ApiServerProcess,
                                                      api_admin: KubeClient, ns: str) -> None:
    """Only a dropped key: the live object is not "as wanted" just because it holds every wanted key."""
    api, _ = make_api(apiserver.url)
    api.apply(ApiObject(config_map(ns, "cfg", {"a": "1", "stale": "2"})))
    result = api.apply(ApiObject(config_map(ns, "cfg", {"a": "1"})))
    assert result.action == "updated"
    assert api_admin.get(cm_path(ns, "cfg"))["data"] == {"a": "1"}
    assert api.apply(ApiObject(config_map(ns, "cfg", {"a": "1"}))).action == "unchanged"


def test_retain_creates_but_never_touches_an_existing_object(make_api: Any, apiserver: ApiServerProcess,
                                                             api_admin: KubeClient, ns: str) -> None:
    api, _ = make_api(apiserver.url)
    assert api.apply(ApiObject(config_map(ns, "token", {"v": "original"}), strategy="retain")).action == "created"
    before = api_admin.get(cm_path(ns, "token"))
    assert before is not None

    calls = record_requests(api)
    result = api.apply(ApiObject(config_map(ns, "token", {"v": "other", "extra": "x"},
                                            labels={"new": "label"}), strategy="retain"))
    assert result.action == "unchanged"
    assert writes(calls) == []
    after = api_admin.get(cm_path(ns, "token"))
    assert after is not None and after["data"] == {"v": "original"} and rv(after) == rv(before)
    assert "labels" not in after["metadata"]
    assert api.uids[f"ConfigMap/{ns}/token"] == before["metadata"]["uid"]  # still usable as an owner


def test_merge_updates_only_the_keys_given(make_api: Any, apiserver: ApiServerProcess,
                                           api_admin: KubeClient, ns: str) -> None:
    """cluster-info: kubefab owns ``kubeconfig``; the ``jws-kubeconfig-*`` keys are the
    controller manager's (bootstrap signer) and must survive kubefab's update."""
    api, _ = make_api(apiserver.url)
    step = ApiObject(config_map(ns, "cluster-info", {"kubeconfig": "v1"}, labels={"owner": "kubefab"}),
                     strategy="merge")
    assert api.apply(step).action == "created"
    live = api_admin.get(cm_path(ns, "cluster-info"))
    assert live is not None
    live["data"]["jws-kubeconfig-abcdef"] = "signature"
    live["metadata"]["labels"]["signed-by"] = "bootstrapsigner"
    api_admin.replace(cm_path(ns, "cluster-info"), live)

    assert api.apply(step).action == "unchanged", "keys merge does not own are not a difference"
    newer = ApiObject(config_map(ns, "cluster-info", {"kubeconfig": "v2"}, labels={"owner": "kubefab"}),
                      strategy="merge")
    assert api.apply(newer).action == "updated"
    after = api_admin.get(cm_path(ns, "cluster-info"))
    assert after is not None
    assert after["data"] == {"kubeconfig": "v2", "jws-kubeconfig-abcdef": "signature"}
    assert after["metadata"]["labels"] == {"owner": "kubefab", "signed-by": "bootstrapsigner"}
    assert api.apply(newer).action == "unchanged"


def test_patch_adds_labels_annotations_and_taints(make_api: Any, apiserver: ApiServerProcess,
                                                  api_admin: KubeClient, node: str) -> None:
    """mark-control-plane: add to the kubelet's Node, never remove what others put there."""
    api, _ = make_api(apiserver.url)
    api_admin.create("/api/v1/nodes", {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}, "annotations": {"from": "kubelet"}},
        "spec": {"taints": [{"key": "example.com/special", "value": "yes", "effect": "NoExecute"}]}})
    # kube-apiserver's TaintNodesByCondition admission adds node.kubernetes.io/not-ready to a
    # new Node: one more taint that is not kubefab's and must survive the patch.
    created = api_admin.get(f"/api/v1/nodes/{node}")
    assert created is not None
    theirs = created["spec"]["taints"]
    assert {"key": "example.com/special", "value": "yes", "effect": "NoExecute"} in theirs and len(theirs) >= 2, \
        theirs
    wanted = {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": node, "labels": {"node-role.kubernetes.io/control-plane": ""},
        "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock"}},
        "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}

    calls = record_requests(api)
    assert api.apply(ApiObject(wanted, strategy="patch")) == Result(f"Node {node}", "patched")
    assert writes(calls) == [("PATCH", f"/api/v1/nodes/{node}", 200)]
    live = api_admin.get(f"/api/v1/nodes/{node}")
    assert live is not None
    assert live["metadata"]["labels"] == {"kubernetes.io/hostname": node, "node-role.kubernetes.io/control-plane": ""}
    assert live["metadata"]["annotations"] == {
        "from": "kubelet", "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock"}
    assert live["spec"]["taints"] == [*theirs, {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]

    calls.clear()
    assert api.apply(ApiObject(wanted, strategy="patch")).action == "unchanged"
    assert writes(calls) == []
    again = api_admin.get(f"/api/v1/nodes/{node}")
    assert again is not None and rv(again) == rv(live)


def test_patch_of_a_missing_object_is_reported_at_once(make_api: Any, apiserver: ApiServerProcess,
                                                       node: str) -> None:
    api, sleeps = make_api(apiserver.url, timeout=5)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"x": ""}}},
                            strategy="patch"))
    assert time.monotonic() - started < 1.0 and sleeps == []
    assert info.value.problem == f"Node {node}: Node {node} does not exist (yet) (HTTP 404)"


def kubeadm_certs_step(ns: str, files: dict[str, bytes], key: str) -> tuple[ApiObject, str]:
    """An upload-certs step as tasks/phases/uploadcerts.py builds it: a fresh owner token
    (``related``), the kubeadm-certs Secret encrypted with ``key`` and owned by the token through
    a ``$(uid:...)`` reference, and the plan's comparison data (the files' sha256 sums)."""
    token_id, token_value = new_token()
    owner = token_secret(token_id, token_value, expires=None, usages=("signing",), groups=None)
    owner["metadata"]["namespace"] = ns
    owner_name = owner["metadata"]["name"]
    certs = bootstrap.kubeadm_certs_secret(files, key, owner_name=owner_name,
                                           owner_uid=f"$(uid:Secret/{ns}/{owner_name})")
    certs["metadata"]["namespace"] = ns
    certs["type"] = "Opaque"
    same = SameKubeadmCerts(Secret(key, kind="certificate key"),
                            tuple(sorted((rel, hashlib.sha256(d).hexdigest()) for rel, d in files.items())))
    return ApiObject(certs, strategy="kubeadm-certs", secret=True, related=(owner,), compare=same), owner_name


def test_kubeadm_certs_owner_first_compare_and_owner_checks(make_api: Any, apiserver: ApiServerProcess,
                                                            api_admin: KubeClient, ns: str) -> None:
    api, _ = make_api(apiserver.url)
    secrets = f"/api/v1/namespaces/{ns}/secrets"
    key = "a" * 64
    files = {"ca.crt": b"the CA", "sa.key": b"the key"}

    step, owner = kubeadm_certs_step(ns, files, key)
    calls = record_requests(api)
    assert api.apply(step).action == "created"
    assert writes(calls) == [("POST", secrets, 200), ("POST", secrets, 200)]  # the owner token, then the Secret
    token = api_admin.get(f"{secrets}/{owner}")
    certs = api_admin.get(f"{secrets}/kubeadm-certs")
    assert token is not None and certs is not None
    assert certs["metadata"]["ownerReferences"][0]["uid"] == token["metadata"]["uid"]
    assert bootstrap.decrypt_kubeadm_certs(certs, key) == files

    # A re-run (new owner token, new nonces in the plan) where the live Secret decrypts to the
    # same files and the owner is alive: nothing is written, not even the new token.
    rerun, new_owner = kubeadm_certs_step(ns, files, key)
    calls.clear()
    assert api.apply(rerun).action == "unchanged"
    assert writes(calls) == []
    assert api_admin.get(f"{secrets}/{new_owner}") is None

    # Another certificate key (the live Secret no longer decrypts): uploaded again.
    other, other_owner = kubeadm_certs_step(ns, files, "b" * 64)
    calls.clear()
    assert api.apply(other).action == "updated"
    assert bootstrap.decrypt_kubeadm_certs(api_admin.get(f"{secrets}/kubeadm-certs"), "b" * 64) == files

    # The owner token expired (gone) while the files are the same: upload again, owned by a new token.
    api_admin.delete(f"{secrets}/{other_owner}")
    calls.clear()
    assert api.apply(other).action == "updated"
    assert writes(calls) == [("POST", secrets, 200), ("PUT", f"{secrets}/kubeadm-certs", 200)]
    token = api_admin.get(f"{secrets}/{other_owner}")
    certs = api_admin.get(f"{secrets}/kubeadm-certs")
    assert token is not None and certs is not None
    assert certs["metadata"]["ownerReferences"][0]["uid"] == token["metadata"]["uid"]
    assert bootstrap.decrypt_kubeadm_certs(certs, "b" * 64) == files


# ---------------------------------------------------------------------------- lost races (409)
def test_conflict_between_read_and_write_is_retried(make_api: Any, apiserver: ApiServerProcess,
                                                    api_admin: KubeClient, ns: str) -> None:
    api, sleeps = make_api(apiserver.url)
    api.apply(ApiObject(config_map(ns, "raced", {"k": "old"})))

    def someone_else_writes() -> None:
        live = api_admin.get(cm_path(ns, "raced"))
        assert live is not None
        live["metadata"]["annotations"] = {"touched-by": "someone-else"}
        live["data"] = {"k": "theirs"}
        api_admin.replace(cm_path(ns, "raced"), live)

    calls = record_requests(api, before={("PUT", cm_path(ns, "raced")): someone_else_writes})
    result = api.apply(ApiObject(config_map(ns, "raced", {"k": "mine"})))
    assert result.action == "updated"
    assert writes(calls) == [("PUT", cm_path(ns, "raced"), 409), ("PUT", cm_path(ns, "raced"), 200)]
    assert calls.count(("GET", cm_path(ns, "raced"), 200)) == 2, "the retry must read the object again"
    assert len(sleeps) == 1
    live = api_admin.get(cm_path(ns, "raced"))
    assert live is not None and live["data"] == {"k": "mine"}
    # the retried write was based on the other writer's version (its annotation survived)
    assert live["metadata"]["annotations"] == {"touched-by": "someone-else"}


def test_create_race_already_exists_is_retried(make_api: Any, apiserver: ApiServerProcess,
                                               api_admin: KubeClient, ns: str) -> None:
    api, _ = make_api(apiserver.url)
    collection = f"/api/v1/namespaces/{ns}/configmaps"

    def someone_else_creates() -> None:
        api_admin.create(collection, config_map(ns, "born", {"k": "theirs"}))

    calls = record_requests(api, before={("POST", collection): someone_else_creates})
    result = api.apply(ApiObject(config_map(ns, "born", {"k": "mine"})))
    assert result.action == "updated"
    assert writes(calls) == [("POST", collection, 409), ("PUT", cm_path(ns, "born"), 200)]
    live = api_admin.get(cm_path(ns, "born"))
    assert live is not None and live["data"] == {"k": "mine"}


def test_patch_conflict_is_retried(make_api: Any, apiserver: ApiServerProcess,
                                   api_admin: KubeClient, node: str) -> None:
    """The patch carries the resourceVersion it was computed from, so a Node the kubelet
    updated in between is patched again from its new state."""
    api, _ = make_api(apiserver.url)
    api_admin.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})

    def kubelet_writes() -> None:
        live = api_admin.get(f"/api/v1/nodes/{node}")
        assert live is not None
        live["metadata"]["labels"] = {"kubernetes.io/hostname": node}
        api_admin.replace(f"/api/v1/nodes/{node}", live)

    calls = record_requests(api, before={("PATCH", f"/api/v1/nodes/{node}"): kubelet_writes})
    wanted = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"role": "cp"}}}
    assert api.apply(ApiObject(wanted, strategy="patch")).action == "patched"
    assert [c[2] for c in writes(calls)] == [409, 200]
    live = api_admin.get(f"/api/v1/nodes/{node}")
    assert live is not None and live["metadata"]["labels"] == {"kubernetes.io/hostname": node, "role": "cp"}


def test_endless_conflicts_end_in_a_conflict_error(make_api: Any, apiserver: ApiServerProcess,
                                                   api_admin: KubeClient, ns: str) -> None:
    api, sleeps = make_api(apiserver.url, timeout=1.0)
    api.apply(ApiObject(config_map(ns, "hot", {"k": "0"})))
    counter = iter(range(1, 1000))

    def busy_writer() -> None:
        live = api_admin.get(cm_path(ns, "hot"))
        assert live is not None
        live["data"] = {"k": str(next(counter))}
        api_admin.replace(cm_path(ns, "hot"), live)

    calls = record_requests(api, before={("PUT", cm_path(ns, "hot")): busy_writer}, times=math.inf)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(config_map(ns, "hot", {"k": "mine"})))
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0, elapsed
    assert len(writes(calls)) >= 3 and {c[2] for c in writes(calls)} == {409}
    assert len(sleeps) == len(writes(calls)) - 1
    problem = info.value.problem
    assert problem.startswith(f"ConfigMap {ns}/hot: Operation cannot be fulfilled on configmaps \"hot\"")
    assert problem.endswith("(HTTP 409)")


def test_kubeadm_certs_conflict_converges(make_api: Any, apiserver: ApiServerProcess,
                                          api_admin: KubeClient, ns: str) -> None:
    api, _ = make_api(apiserver.url, timeout=1.5)
    secrets = f"/api/v1/namespaces/{ns}/secrets"
    key = "c" * 64
    first, _ = kubeadm_certs_step(ns, {"ca.crt": b"old"}, key)
    assert api.apply(first).action == "created"

    def someone_else_writes() -> None:
        live = api_admin.get(f"{secrets}/kubeadm-certs")
        assert live is not None
        live["metadata"]["annotations"] = {"touched": "yes"}
        api_admin.replace(f"{secrets}/kubeadm-certs", live)

    # new certificates (the live Secret decrypts to other files): new owner token, then the
    # Secret is replaced; someone writes the Secret between Api's read and its write.
    rerun, new_owner = kubeadm_certs_step(ns, {"ca.crt": b"new"}, key)
    record_requests(api, before={("PUT", f"{secrets}/kubeadm-certs"): someone_else_writes})
    assert api.apply(rerun).action == "updated"
    token = api_admin.get(f"{secrets}/{new_owner}")
    certs = api_admin.get(f"{secrets}/kubeadm-certs")
    assert token is not None and certs is not None
    assert bootstrap.decrypt_kubeadm_certs(certs, key) == {"ca.crt": b"new"}
    assert certs["metadata"]["ownerReferences"][0]["uid"] == token["metadata"]["uid"]


# ---------------------------------------------------------------------------- transient failures
@pytest.mark.parametrize("code", [500, 503, 429])
def test_transient_answers_then_success(code: int, make_api: Any, fronts: Any, api_admin: KubeClient,
                                        ns: str) -> None:
    front = fronts(code=code, fail=2)
    api, sleeps = make_api(front.url)
    result = api.apply(ApiObject(config_map(ns, f"after-{code}", {"k": "v"})))
    assert result.action == "created"
    assert [c[2] for c in front.seen] == [code, code, 404, 201]  # GET x3 (the last one forwarded), POST
    assert len(sleeps) == 2 and 0 < sleeps[0] <= sleeps[1] <= 2.0  # a growing, bounded backoff
    live = api_admin.get(cm_path(ns, f"after-{code}"))
    assert live is not None and live["data"] == {"k": "v"}
    assert front.errors == []


def test_transient_answers_on_the_write_are_retried(make_api: Any, fronts: Any, api_admin: KubeClient,
                                                    ns: str) -> None:
    api_admin.create(f"/api/v1/namespaces/{ns}/configmaps", config_map(ns, "w", {"k": "old"}))
    front = fronts(code=503, fail=2, when=lambda method, path: method == "PUT")
    api, sleeps = make_api(front.url)
    assert api.apply(ApiObject(config_map(ns, "w", {"k": "new"}))).action == "updated"
    assert [(m, c) for m, _, c in front.seen] == [("GET", 200), ("PUT", 503), ("PUT", 503), ("PUT", 200)]
    assert len(sleeps) == 2
    live = api_admin.get(cm_path(ns, "w"))
    assert live is not None and live["data"] == {"k": "new"}


def test_connection_refused_while_the_api_server_starts(make_api: Any, api_pki: LabPki,
                                                        api_etcd: EtcdProcess, apiserver: ApiServerProcess,
                                                        api_tmp: Any, api_admin: KubeClient,
                                                        ns: str) -> None:
    """Nothing listens on the port when Api starts; a second kube-apiserver (same etcd) starts
    there a second later, as a kube-apiserver static pod comes up after kubelet starts it.
    Whatever the starting server answers before it is ready is Api's to cope with."""
    port = free_port()
    ready_at: list[float] = []

    def second_server() -> ApiServerProcess:
        srv = start_apiserver(api_pki, [api_etcd.url], api_tmp, port=port)
        ready_at.append(time.monotonic())
        return srv

    thread, box = later(1.0, second_server)
    api, sleeps = make_api(f"https://127.0.0.1:{port}", timeout=APISERVER_READY_SECONDS)
    try:
        started = time.monotonic()
        result = api.apply(ApiObject(config_map(ns, "early", {"k": "v"})))
        finished = time.monotonic()
    finally:
        thread.join(APISERVER_READY_SECONDS + 10)
        if "result" in box:
            box["result"].stop()
    assert "error" not in box, f"the second kube-apiserver did not start: {box.get('error')}"
    assert result.action == "created"
    assert sleeps, "the first attempts must have been refused and retried"
    assert max(sleeps) <= 2.0, sleeps
    assert finished - started >= 1.0, finished - started
    # The backoff is capped at 2 s: Api is done soon after the server is ready, not at its timeout.
    assert ready_at and finished <= ready_at[0] + 3.0, (finished - started, ready_at[0] - started)
    live = api_admin.get(cm_path(ns, "early"))
    assert live is not None and live["data"] == {"k": "v"}


# ---------------------------------------------------------------------------- giving up
def test_always_503_reports_the_last_answer(make_api: Any, fronts: Any, ns: str) -> None:
    front = fronts(code=503, fail=math.inf)
    api, sleeps = make_api(front.url, timeout=2.0)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(config_map(ns, "never", {"k": "v"})))
    elapsed = time.monotonic() - started
    err = info.value
    assert isinstance(err, KubefabError)
    assert 1.0 <= elapsed < 3.5, elapsed
    assert front.failed >= 3 and len(sleeps) == front.failed - 1, "each retry is a real request"
    # the last real answer, not the first one and not "timed out"
    assert err.problem == f"ConfigMap {ns}/never: flaky front refuses this one (answer {front.failed}) (HTTP 503)"
    assert err.fix == "re-run the command; it converges from where it stopped"
    assert err.__cause__ is None and err.__suppress_context__, "the CLI shows no chained traceback"


def test_refused_then_503_reports_503(make_api: Any, fronts: Any, ns: str) -> None:
    """The API is down at first (refused), then up but answering 503 until the end: the error
    names the 503, the last real error, not the refusals."""
    port = free_port()
    thread, box = later(0.5, lambda: fronts(code=503, fail=math.inf, port=port))
    api, _ = make_api(f"https://127.0.0.1:{port}", timeout=2.5)
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(config_map(ns, "late", {"k": "v"})))
    thread.join(5)
    assert "error" not in box, box.get("error")
    front = box["result"]
    assert front.failed >= 1
    assert info.value.problem.endswith(f"(answer {front.failed}) (HTTP 503)"), info.value.problem


def test_always_refused_gives_up_in_time(make_api: Any, ns: str) -> None:
    api, sleeps = make_api(dead_url(), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(config_map(ns, "nowhere", {"k": "v"})))
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.5, elapsed
    assert len(sleeps) >= 2
    assert info.value.fix == "check that the API server is up and reachable from this machine"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_server_of_another_ca_is_refused_at_once(apiserver: ApiServerProcess, tmp_path: Any,
                                                   ns: str) -> None:
    """A server whose certificate the CA we hold does not sign is not "starting up": no retry
    loop, an error that says so and what to check."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from kubernetes import client as k8s

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another-cluster")])
    now = dt.datetime.now(dt.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (tmp_path / "other-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    conf = k8s.Configuration()
    conf.host, conf.ssl_ca_cert = apiserver.url, str(tmp_path / "other-ca.crt")
    sleeps = Sleeps()
    api = Api(k8s.ApiClient(conf), timeout=20, sleep=sleeps)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(config_map(ns, "elsewhere", {"k": "v"})))
    assert time.monotonic() - started < 5 and not sleeps, "a certificate mismatch is not retried"
    assert "certificate verify failed" in info.value.problem, info.value.problem
    assert "cluster CA" in (info.value.fix or "")
    api.client.close()


def test_always_refused_names_connection_refused(make_api: Any, ns: str) -> None:
    api, _ = make_api(dead_url(), timeout=0.5)
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(config_map(ns, "nowhere", {"k": "v"})))
    assert "connection refused" in info.value.problem.lower(), info.value.problem


# A kubefab task as tasks/cli.py wraps it, run in a fresh interpreter; what invoke does with
# Exit (message on stderr, exit code) is done by hand.
CLI_SCRIPT = r"""
import sys
from invoke import Context, Exit
from kubernetes import client as k8s
from tasks.api import Api
from tasks.cli import kubefab_task
from tasks.core import bootstrap
from tasks.core.plan import ApiObject, SameKubeadmCerts
from tasks.core.secrets import Secret

url, ca, crt, key, what = sys.argv[1:6]
conf = k8s.Configuration()
conf.host, conf.ssl_ca_cert, conf.cert_file, conf.key_file = url, ca, crt, key
api = Api(k8s.ApiClient(conf), timeout=0.5)

@kubefab_task()
def run(c):
    if what == "apply":
        api.apply(ApiObject({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "x", "namespace": "default"}, "data": {"k": "v"}}))
    else:  # as tasks/cluster.py and tasks/tokens.py use it
        api.request("GET", "/api/v1/nodes")

try:
    run.body(Context())
except Exit as exc:
    print(exc.message, file=sys.stderr)
    sys.exit(exc.code)
"""


@pytest.mark.parametrize("what", [
    "apply",
    "request",
])
def test_giving_up_prints_no_traceback(what: str, api_pki: LabPki) -> None:
    crt, key = api_pki.client_cert("kubernetes-admin", MASTERS)
    proc = subprocess.run([sys.executable, "-c", CLI_SCRIPT, dead_url(), api_pki.path("ca.crt"), crt, key, what],
                          cwd=REPO, capture_output=True, text=True, timeout=30, check=False)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "the API server did not answer" in lines[0], proc.stderr
    assert "connection refused" in lines[0].lower(), proc.stderr
    assert lines[1] == "  fix: check that the API server is up and reachable from this machine"


# ---------------------------------------------------------------------------- not retried
@pytest.mark.parametrize("case", ["forbidden", "invalid"])
def test_client_errors_are_reported_at_once(case: str, make_api: Any, apiserver: ApiServerProcess,
                                            api_admin: KubeClient, ns: str, monkeypatch: Any) -> None:
    """A 422 at once; a 403 once the short window in which a just-started API server may still
    answer one has passed (tasks.api.AUTH_SETTLE_SECONDS, 10 s; 1 s here)."""
    import tasks.api

    monkeypatch.setattr(tasks.api, "AUTH_SETTLE_SECONDS", 1.0)
    if case == "forbidden":  # a user no RBAC rule lets in
        api, sleeps = make_api(apiserver.url, timeout=20, user="nobody", groups=[])
        obj = config_map(ns, "denied", {"k": "v"})
        want = (f'ConfigMap {ns}/denied: configmaps "denied" is forbidden: User "nobody" cannot get resource '
                f'"configmaps" in API group "" in the namespace "{ns}" (HTTP 403)')
        fix = "check that admin.conf in the state dir belongs to this cluster (its CA and client certificate)"
    else:  # the server's validation rejects the name
        api, sleeps = make_api(apiserver.url, timeout=20)
        obj = config_map(ns, "Not_Valid", {"k": "v"})
        want = f'ConfigMap {ns}/Not_Valid: ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid"'
        fix = "the object was rejected as invalid; check the kubeadm config values it came from"
    calls = record_requests(api)
    started = time.monotonic()
    with pytest.raises(ApiError) as info:
        api.apply(ApiObject(obj))
    took = time.monotonic() - started
    if case == "forbidden":  # asked again within the window (backing off), then the answer
        assert 1.0 <= took < 3.0 and len(sleeps) >= 2 and len(calls) == 1, (took, sleeps, calls)
    else:
        assert took < 1.0 and sleeps == [] and len(calls) == 2  # no second attempt
    assert info.value.problem.startswith(want), info.value.problem
    assert info.value.problem.endswith(f"(HTTP {403 if case == 'forbidden' else 422})")
    assert info.value.fix == fix
    assert api_admin.get(cm_path(ns, obj["metadata"]["name"])) is None


def test_a_control_plane_join_reads_the_etcd_endpoints_with_the_official_client(
        make_api: Any, apiserver: ApiServerProcess, api_admin: KubeClient) -> None:
    """tasks.cluster.etcd_endpoints (a control-plane join's check-etcd input) lists the etcd
    mirror Pods through tasks.api.Api, and names a Pod without the annotation."""
    from tasks.cluster import etcd_endpoints

    api, _ = make_api(apiserver.url)
    pods = "/api/v1/namespaces/kube-system/pods"
    try:
        api_admin.create("/api/v1/namespaces/kube-system/serviceaccounts",
                         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
    except Exception:  # noqa: BLE001 - it exists already (a controller manager made it)
        pass
    suffix = uuid.uuid4().hex[:8]

    def etcd_pod(name: str, url: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": {"component": "etcd", "tier": "control-plane"}}
        if url:
            meta["annotations"] = {"kubeadm.kubernetes.io/etcd.advertise-client-urls": url}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"automountServiceAccountToken": False,
                         "containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.6.8-0"}]}}

    created = [f"etcd-a-{suffix}"]
    try:
        api_admin.create(pods, etcd_pod(created[0], "https://10.0.0.1:2379"))
        assert etcd_endpoints(api, host="m2") == ("https://10.0.0.1:2379",)
        created.append(f"etcd-b-{suffix}")
        api_admin.create(pods, etcd_pod(created[1], None))
        with pytest.raises(KubefabError, match=f"without the .* annotation: etcd-b-{suffix}") as exc:
            etcd_endpoints(api, host="m2")
        assert exc.value.host == "m2" and exc.value.phase == "check-etcd"
    finally:
        for name in created:
            api_admin.delete(f"{pods}/{name}?gracePeriodSeconds=0")
