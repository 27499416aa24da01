"""Token/file discovery and kubeadm-certs download against a tiny local HTTPS API server."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from tasks import discovery
from tasks.core import bootstrap, pki
from tasks.core import kubeconfig as kc
from tasks.core.errors import KubefabError, PKIError
from tasks.core.secrets import Secret
from tasks.core.spec import Discovery

TOKEN = "abcdef.0123456789abcdef"
OTHER_ID = "zzzzzz.0123456789abcdef"
WRONG_SECRET = "abcdef.ffffffffffffffff"
CERT_KEY = "11" * 32


@pytest.fixture(scope="module")
def cluster_ca(tmp_path_factory):
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    ca = pki.build_ca("kubernetes", algorithm="ECDSA-P256", now=now, validity=timedelta(days=1))
    other = pki.build_ca("kubernetes", algorithm="ECDSA-P256", now=now, validity=timedelta(days=1))
    server = pki.build_signed(ca, cn="kube-apiserver", usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
                              alt_names=pki.AltNames.build(["localhost"], [ipaddress.ip_address("127.0.0.1")]),
                              algorithm="ECDSA-P256", not_before=now - timedelta(minutes=5),
                              not_after=now + timedelta(days=1))
    d = tmp_path_factory.mktemp("tls")
    (d / "server.pem").write_bytes(server.cert_pem + server.key_pem)
    return {"ca": ca, "other": other, "server_pem": d / "server.pem"}


class FakeApi:
    """Objects by path; a bearer token must be TOKEN for everything but cluster-info."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.requests: list[tuple[str, str | None]] = []


@pytest.fixture
def api(cluster_ca):
    state = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            auth = self.headers.get("Authorization")
            state.requests.append((self.path, auth))
            if not self.path.startswith(discovery.CLUSTER_INFO_PATH) and auth != f"Bearer {TOKEN}":
                return self._send(401, {"kind": "Status", "code": 401})
            obj = state.objects.get(self.path)
            if obj is None:
                return self._send(404, {"kind": "Status", "code": 404})
            self._send(200, obj)

        def _send(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cluster_ca["server_pem"]))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.endpoint = f"127.0.0.1:{httpd.server_address[1]}"
    state.ca = cluster_ca["ca"]
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def publish_cluster_info(api: FakeApi, *, sign_with: str = TOKEN, tamper: bool = False) -> str:
    content = kc.cluster_info_kubeconfig(f"https://{api.endpoint}", api.ca.cert_pem)
    token_id, secret = bootstrap.parse_token(sign_with)
    jws = bootstrap.compute_detached_jws(content, token_id, secret)
    served = content.replace("server: https://", "server: https://evil.") if tamper else content
    api.objects[discovery.CLUSTER_INFO_PATH] = {
        "kind": "ConfigMap", "data": {"kubeconfig": served, f"jws-kubeconfig-{token_id}": jws}}
    return content


def publish_config(api: FakeApi, *, node_ready: bool | None = None, cpe: str = "lb.example:6443") -> None:
    api.objects[discovery._cm_path("kubeadm-config")] = {"data": {"ClusterConfiguration": (
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\n"
        + (f"controlPlaneEndpoint: {cpe}\n" if cpe else ""))}}
    api.objects[discovery._cm_path("kubelet-config")] = {"data": {"kubelet": "kind: KubeletConfiguration\n"}}
    if node_ready is not None:
        api.objects["/api/v1/nodes/w1"] = {"kind": "Node", "status": {"conditions": [
            {"type": "Ready", "status": "True" if node_ready else "False"}]}}


def pin(api: FakeApi) -> str:
    return bootstrap.ca_pin(api.ca.cert_pem)


def test_good_token_and_pin(api):
    content = publish_cluster_info(api)
    found = discovery.discover_token(api.endpoint, Secret(TOKEN), ca_pins=[pin(api)], timeout=2, interval=0.05)
    assert found.ca_pem == api.ca.cert_pem
    assert found.server == f"https://{api.endpoint}"  # taken from inside cluster-info
    assert found.kubeconfig == content
    # the first fetch is anonymous, the second verified by the CA (two fetches)
    assert [p for p, _ in api.requests].count(discovery.CLUSTER_INFO_PATH) == 2
    assert all(auth is None for _, auth in api.requests)


def test_unsafe_skip_accepts_without_pin(api):
    publish_cluster_info(api)
    found = discovery.discover_token(api.endpoint, TOKEN, unsafe_skip_ca_verification=True, timeout=2, interval=0.05)
    assert found.ca_pem == api.ca.cert_pem
    assert len(api.requests) == 1  # no pin: no verified re-fetch


def test_pin_required_unless_unsafe_skip(api):
    publish_cluster_info(api)
    with pytest.raises(KubefabError, match="CA pin") as exc:
        discovery.discover_token(api.endpoint, TOKEN, timeout=1, host="w1")
    assert exc.value.host == "w1" and exc.value.fix


def test_wrong_token_id_times_out_with_fix(api):
    publish_cluster_info(api)  # signed for abcdef only
    with pytest.raises(KubefabError) as exc:
        discovery.discover_token(api.endpoint, Secret(OTHER_ID), ca_pins=[pin(api)], timeout=0.3, interval=0.05,
                                 host="w1")
    err = exc.value
    assert "zzzzzz" in err.problem and "not accepted" in err.problem
    assert err.host == "w1" and err.phase == "preflight" and "token.create" in err.fix
    assert "0123456789abcdef" not in str(err)  # the secret part is never echoed


def test_wrong_token_secret_fails_signature(api):
    publish_cluster_info(api)
    with pytest.raises(KubefabError, match="signature") as exc:
        discovery.discover_token(api.endpoint, WRONG_SECRET, ca_pins=[pin(api)], timeout=1, interval=0.05)
    assert "ffffffffffffffff" not in str(exc.value)


def test_tampered_kubeconfig_fails_signature(api):
    publish_cluster_info(api, tamper=True)
    with pytest.raises(KubefabError, match="signature"):
        discovery.discover_token(api.endpoint, TOKEN, ca_pins=[pin(api)], timeout=1, interval=0.05)


def test_wrong_pin(api, cluster_ca):
    publish_cluster_info(api)
    with pytest.raises(PKIError, match="does not match") as exc:
        discovery.discover_token(api.endpoint, TOKEN, ca_pins=[bootstrap.ca_pin(cluster_ca["other"].cert_pem)],
                                 timeout=1, interval=0.05, host="w1")
    assert exc.value.host == "w1" and "ca-hash" in exc.value.fix


def test_any_of_several_pins_matches(api, cluster_ca):
    publish_cluster_info(api)
    found = discovery.discover_token(api.endpoint, TOKEN, timeout=1, interval=0.05,
                                     ca_pins=[bootstrap.ca_pin(cluster_ca["other"].cert_pem), pin(api)])
    assert found.ca_pem == api.ca.cert_pem


def test_more_than_one_cluster_rejected(api):
    content = kc.cluster_info_kubeconfig(f"https://{api.endpoint}", api.ca.cert_pem)
    cfg = kc.parse_kubeconfig(content)
    cfg["clusters"].append({"name": "x", "cluster": dict(cfg["clusters"][0]["cluster"])})
    content = kc.render_kubeconfig(cfg).decode()
    api.objects[discovery.CLUSTER_INFO_PATH] = {"data": {
        "kubeconfig": content, "jws-kubeconfig-abcdef": bootstrap.compute_detached_jws(content, "abcdef",
                                                                                       "0123456789abcdef")}}
    with pytest.raises(KubefabError, match="exactly one cluster"):
        discovery.discover_token(api.endpoint, TOKEN, ca_pins=[pin(api)], timeout=1, interval=0.05)


def test_discover_reads_cluster_config(api):
    publish_cluster_info(api)
    publish_config(api, node_ready=False)
    data = discovery.discover(Discovery(token=Secret(TOKEN), api_server_endpoint=api.endpoint,
                                        ca_cert_hashes=(pin(api),)), node_name="w1", timeout=2, host="w1")
    assert data.cluster_name == "prod"
    assert data.kubelet_config == b"kind: KubeletConfiguration\n"
    assert data.kube_proxy_config is None  # optional: 404 tolerated
    assert data.control_plane_endpoint == "lb.example:6443"
    assert data.shared_certs is None
    assert TOKEN not in repr(data)


def test_ready_node_of_same_name_refused(api):
    publish_cluster_info(api)
    publish_config(api, node_ready=True)
    with pytest.raises(KubefabError, match="already exists") as exc:
        discovery.discover(Discovery(token=Secret(TOKEN), api_server_endpoint=api.endpoint,
                                     ca_cert_hashes=(pin(api),)), node_name="w1", timeout=2, host="w1")
    assert exc.value.host == "w1" and "reset" in exc.value.fix


def test_workers_of_one_command_share_one_discovery(api):
    """cluster-up and `join -H w1,...` ask cluster-info and the ConfigMaps once, however many
    workers ask at once; each worker still gets its own Ready-Node check (kubeadm's)."""
    from concurrent.futures import ThreadPoolExecutor

    publish_cluster_info(api)
    publish_config(api, node_ready=True)  # a Ready Node "w1"; the others have no Node
    cache = discovery.WorkerDiscoveryCache()
    settings = Discovery(token=Secret(TOKEN), api_server_endpoint=api.endpoint, ca_cert_hashes=(pin(api),))

    def join(name):
        try:
            return discovery.discover(settings, node_name=name, timeout=2, host=name, cache=cache)
        except KubefabError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        got = dict(zip([f"w{i}" for i in range(1, 9)], pool.map(join, [f"w{i}" for i in range(1, 9)])))
    assert isinstance(got["w1"], KubefabError) and "already exists" in str(got["w1"])
    assert all(d.cluster_name == "prod" for n, d in got.items() if n != "w1")
    paths = [p for p, _ in api.requests]
    assert cache.fetches == 1
    assert paths.count(discovery._cm_path("kubeadm-config")) == 1 and paths.count(discovery.CLUSTER_INFO_PATH) == 2
    assert sorted(p for p in paths if p.startswith("/api/v1/nodes/")) == [f"/api/v1/nodes/w{i}" for i in range(1, 9)]
    other = Discovery(token=Secret(TOKEN), api_server_endpoint=api.endpoint, ca_cert_hashes=(pin(api),),
                      unsafe_skip_ca_verification=True)
    discovery.discover(other, node_name="w9", timeout=2, host="w9", cache=cache)  # other settings: asked again
    assert cache.fetches == 2


def test_control_plane_join_needs_endpoint(api):
    publish_cluster_info(api)
    publish_config(api, cpe="")
    with pytest.raises(KubefabError, match="controlPlaneEndpoint"):
        discovery.discover(Discovery(token=Secret(TOKEN), api_server_endpoint=api.endpoint,
                                     ca_cert_hashes=(pin(api),)), node_name="m2", control_plane=True, timeout=2)


def test_state_dir_supplies_token_and_pin(api, tmp_path):
    from tasks.core.state import ClusterState

    state = ClusterState(tmp_path / "state").ensure()
    state.remember(token=Secret(TOKEN))
    (state.pki_dir / "ca.crt").write_bytes(api.ca.cert_pem)
    resolved = discovery.resolve_discovery(Discovery(), state, endpoint=api.endpoint)
    assert resolved.token.reveal() == TOKEN and resolved.ca_cert_hashes == (pin(api),)
    publish_cluster_info(api)
    publish_config(api)
    data = discovery.discover(Discovery(), node_name="w1", state=state, endpoint=api.endpoint, timeout=2)
    assert data.ca_pem == api.ca.cert_pem


# --- kubeadm-certs ---------------------------------------------------------------------------------
def _certs_secret(api: FakeApi, key: str) -> dict[str, bytes]:
    files = {"ca.crt": api.ca.cert_pem, "ca.key": api.ca.key_pem, "front-proxy-ca.crt": b"-----BEGIN CERTIFICATE-----x",
             "front-proxy-ca.key": b"k", "sa.pub": b"pub", "sa.key": b"-----BEGIN PRIVATE KEY-----s",
             "etcd/ca.crt": b"e", "etcd/ca.key": b"ek"}
    api.objects["/api/v1/namespaces/kube-system/secrets/kubeadm-certs"] = bootstrap.kubeadm_certs_secret(
        files, key, owner_name="bootstrap-token-owner1", owner_uid="u")
    return files


def _reader(api):
    return discovery.ApiReader(f"https://{api.endpoint}", ca_pem=api.ca.cert_pem, token=Secret(TOKEN))


def test_download_certs_right_key(api):
    files = _certs_secret(api, CERT_KEY)
    got = discovery.download_certs(_reader(api), Secret(CERT_KEY))
    assert got == files


def test_download_certs_wrong_key_returns_nothing(api):
    _certs_secret(api, CERT_KEY)
    with pytest.raises(PKIError, match="does not match") as exc:
        discovery.download_certs(_reader(api), Secret("22" * 32), host="m2")
    assert exc.value.host == "m2" and exc.value.phase == "control-plane-prepare/download-certs"
    assert "22" * 32 not in str(exc.value)


def test_download_certs_missing_secret_says_how_to_refresh(api):
    with pytest.raises(KubefabError, match="not found") as exc:
        discovery.download_certs(_reader(api), CERT_KEY, host="m2")
    assert "upload-certs" in exc.value.fix


def test_control_plane_discover_downloads_certs(api):
    publish_cluster_info(api)
    publish_config(api)
    files = _certs_secret(api, CERT_KEY)
    data = discovery.discover(Discovery(token=Secret(TOKEN), api_server_endpoint=api.endpoint,
                                        ca_cert_hashes=(pin(api),)), node_name="m2", control_plane=True,
                              certificate_key=Secret(CERT_KEY), timeout=2)
    assert data.shared_certs == files
    assert "PRIVATE" not in repr(data)


def test_file_discovery(tmp_path, cluster_ca):
    ca = cluster_ca["ca"]
    cfg = kc.build_kubeconfig(cluster_name="prod", server="https://10.0.0.1:6443", ca_pem=ca.cert_pem,
                              user="tls-bootstrap-token-user", token=Secret(TOKEN))
    path = tmp_path / "discovery.conf"
    path.write_bytes(kc.render_kubeconfig(cfg))
    found, user = discovery.discover_file(f"file://{path}")
    assert found.server == "https://10.0.0.1:6443" and found.ca_pem == ca.cert_pem
    assert user["token"] == TOKEN
    with pytest.raises(KubefabError, match="cannot read"):
        discovery.discover_file(str(tmp_path / "missing.conf"), host="w1")


def test_etcd_endpoints_from_pods_and_members():
    from tasks.phases.joindata import EtcdMember, etcd_endpoints_from_pods, initial_cluster, parse_member_list

    pods = {"items": [{"metadata": {"name": "etcd-m1", "annotations": {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://10.0.0.1:2379"}}}]}
    assert etcd_endpoints_from_pods(pods) == ("https://10.0.0.1:2379",)
    with pytest.raises(KubefabError, match="without"):
        etcd_endpoints_from_pods({"items": [{"metadata": {"name": "etcd-m2"}}]})
    members = parse_member_list(json.dumps({"members": [
        {"ID": 11, "name": "m1", "peerURLs": ["https://10.0.0.1:2380"], "clientURLs": ["https://10.0.0.1:2379"]},
        {"ID": 255, "peerURLs": ["https://10.0.0.3:2380"], "isLearner": True}]}))
    assert members[1] == EtcdMember(255, "", ("https://10.0.0.3:2380",), (), True)
    assert initial_cluster(members, "m2", "https://10.0.0.2:2380") == [
        ("m1", "https://10.0.0.1:2380"), ("ff", "https://10.0.0.3:2380"), ("m2", "https://10.0.0.2:2380")]
    # a re-run: the peer URL already is a member, named after the joining node
    assert initial_cluster(members, "m3", "https://10.0.0.3:2380") == [
        ("m1", "https://10.0.0.1:2380"), ("m3", "https://10.0.0.3:2380")]


def test_join_config_takes_the_cluster_configuration():
    from tasks.core.spec import ClusterConfiguration, JoinConfiguration, KubeadmConfig, NodeRegistration
    from tasks.phases.joindata import JoinData

    local = KubeadmConfig(cluster=ClusterConfiguration(kubernetes_version="v1.33.0"),
                          join=JoinConfiguration(NodeRegistration("w1")))
    uploaded = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\n"
                "kubernetesVersion: v1.36.1\ncontrolPlaneEndpoint: lb.example:6443\n")
    got = discovery.join_config(local, JoinData(server="https://x", ca_pem=b"", cluster_configuration=uploaded))
    assert got.cluster.kubernetes_version == "v1.36.1" and got.cluster.cluster_name == "prod"
    assert got.cluster.control_plane_endpoint == "lb.example:6443" and got.join is local.join
    with pytest.raises(KubefabError) as exc:
        discovery.join_config(local, JoinData(server="https://x", ca_pem=b"", cluster_configuration="kind: Nope\n"),
                              host="w1")
    assert exc.value.host == "w1"


def test_an_endpoint_that_refuses_connections_is_named_early(capsys):
    """Nothing listens: said at the first refusal, and discovery stops after the grace period
    instead of blaming the token after the whole discovery timeout (issue 16)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # a free port: connections are refused
    now = [0.0]
    with pytest.raises(KubefabError) as exc:
        discovery.discover_token(f"127.0.0.1:{port}", TOKEN, unsafe_skip_ca_verification=True, timeout=300,
                                 host="w1", sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0],
                                 refused_grace=30)
    err = exc.value
    assert "refused every connection" in err.problem and "token" not in err.problem
    assert err.host == "w1" and "--endpoint" in err.fix
    assert 30 <= now[0] < 60  # not the 300 s discovery timeout
    assert f"127.0.0.1:{port} refuses connections" in capsys.readouterr().err


def test_what_discovery_waits_for_is_said_once_when_it_appears(api, capsys):
    publish_cluster_info(api)  # signed for abcdef only
    with pytest.raises(KubefabError):
        discovery.discover_token(api.endpoint, Secret(OTHER_ID), ca_pins=[pin(api)], timeout=0.3, interval=0.05,
                                 host="w1")
    err = capsys.readouterr().err
    assert err.count("cluster-info has no jws-kubeconfig-zzzzzz signature; retrying") == 1, err


def test_a_dropped_connection_is_tried_again_briefly_an_answer_is_not():
    """Right after init a load balancer may close a request (SSLEOFError, found on the lab when
    workers discover while the control planes join): the GETs after cluster-info retry for a few
    seconds, as kubeadm's GetConfigMapWithShortRetry does; an HTTP answer is never retried."""
    from tasks.core.errors import ApiError

    class Flaky:
        def __init__(self, failures):
            self.failures, self.calls = failures, 0

        def get(self, path):
            self.calls += 1
            if self.calls <= self.failures:
                raise ApiError("cannot reach https://lb:6443: SSLEOFError: EOF occurred in violation of protocol")
            return discovery.Response(403, b"{}")

    now = [0.0]
    kw = dict(sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0], seconds=10, interval=0.5)
    reader = Flaky(3)
    assert discovery.get_with_short_retry(reader, "/x", **kw).status == 403 and reader.calls == 4
    with pytest.raises(ApiError, match="SSLEOFError"):
        discovery.get_with_short_retry(Flaky(1000), "/x", **kw)
    assert now[0] >= 10
