"""Join discovery against a live API server (reference §7, §5.1 notes, §8.4).

Token discovery, step by step as kubeadm: fetch ``kube-public/cluster-info`` anonymously with TLS
verification off, poll until ``jws-kubeconfig-<id>`` appears, verify the detached JWS with the
token, parse the kubeconfig (exactly one cluster), check the CA pins (unless unsafe-skip), then
fetch again with TLS verified by that CA and require the same bytes. File discovery reads a
kubeconfig instead. Then, with the bootstrap token, read ``kubeadm-config``, ``kubelet-config``,
``kube-proxy`` (optional), the Node (a Ready Node of the same name stops the join) and, for a
control-plane join, ``kubeadm-certs``. The result is a :class:`~tasks.phases.joindata.JoinData`
the join phases plan from. Every failure is a :class:`KubefabError` with host, phase and fix;
the token and the certificate key never appear in a message.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from .core import bootstrap
from .core import constants as K
from .core import kubeconfig as kc
from .core.errors import ApiError, ConfigError, KubefabError, PKIError
from .core.secrets import Secret
from .core.spec import Discovery
from .core.yamlload import load_document
from .phases.joindata import JoinData, etcd_endpoints_from_pods, parse_member_list

PHASE = "preflight"  # kubeadm fetches the cluster's configuration in join's preflight
CLUSTER_INFO_PATH = f"/api/v1/namespaces/{K.KUBE_PUBLIC_NAMESPACE}/configmaps/{K.CLUSTER_INFO_CONFIGMAP}"
DISCOVERY_INTERVAL = 5.0  # kubeadm polls cluster-info every 5 s
# kubeadm retries a refused connection for the whole discovery timeout (5 min by default); an
# endpoint that refuses for this long has nothing listening: say so instead of blaming the token
REFUSED_GRACE = 30.0
REQUEST_TIMEOUT = 10.0


def _cm_path(name: str, namespace: str = K.KUBE_SYSTEM_NAMESPACE) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


# --- a tiny HTTPS client -------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class ApiReader:
    """GETs against one API server: anonymous or with a token or client certificate.

    :param server: ``https://host:port``.
    :param ca_pem: verify the server with this CA; None = no verification (discovery's first
        fetch only, whose answer is authenticated by the JWS and the pin instead).
    """

    def __init__(self, server: str, *, ca_pem: bytes | None = None, token: Secret | None = None,
                 client_cert_pem: bytes | None = None, client_key: Secret | None = None,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        url = urllib.parse.urlsplit(server if "://" in server else "https://" + server)
        if url.scheme != "https" or not url.hostname:
            raise ConfigError(f"API server endpoint {server!r} is not an https://host:port address", phase=PHASE,
                              fix="pass the control-plane endpoint as host:port (e.g. 10.0.0.10:6443)")
        self.host = url.hostname
        self.port = url.port or K.DEFAULT_API_BIND_PORT
        self.server = server
        self.token = token
        self.timeout = timeout
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca_pem is None:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        else:
            try:
                self.context.load_verify_locations(cadata=ca_pem.decode())
            except (ssl.SSLError, ValueError, UnicodeDecodeError):
                raise PKIError("the cluster CA from discovery cannot be loaded", phase=PHASE,
                               fix="check certificate-authority-data in cluster-info") from None
        if client_cert_pem is not None and client_key is not None:
            self._load_client_cert(client_cert_pem, client_key)

    def _load_client_cert(self, cert_pem: bytes, key: Secret) -> None:
        raw = key.reveal()
        pem = cert_pem + b"\n" + (raw if isinstance(raw, bytes) else raw.encode())
        # ssl only loads a chain from a path. On Linux that path is an anonymous memory file
        # (memfd): the key never touches a disk or /tmp, and nothing outlives a killed run.
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("kubefab-client", getattr(os, "MFD_CLOEXEC", 0))
            try:
                view = memoryview(pem)
                while view:
                    view = view[os.write(fd, view):]
                self.context.load_cert_chain(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
            return
        # elsewhere: a private 0700 temp dir, removed at once
        with tempfile.TemporaryDirectory(prefix="kubefab-") as tmp:  # pragma: no cover - not Linux
            path = Path(tmp) / "client.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            self.context.load_cert_chain(str(path))

    def get(self, path: str) -> Response:
        """One GET.

        :raises ApiError: when the server cannot be reached or TLS fails (the cause is kept).
        """
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        headers = {"Accept": "application/json", "User-Agent": "kubefab"}
        if self.token is not None:
            raw = self.token.reveal() if isinstance(self.token, Secret) else self.token
            headers["Authorization"] = "Bearer " + (raw.decode() if isinstance(raw, bytes) else raw)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, resp.read())
        except ssl.SSLCertVerificationError as exc:
            raise ApiError(f"TLS verification of {self.server} failed: {exc.verify_message}", phase=PHASE,
                           fix="the API server's certificate is not signed by the discovered CA: check the "
                               "endpoint and the CA pin") from None
        except (OSError, http.client.HTTPException) as exc:
            err = ApiError(f"cannot reach {self.server}: {exc.__class__.__name__}: {exc}", phase=PHASE,
                           fix="check the endpoint address and that the API server is running and reachable "
                               "from this machine")
            err.refused = isinstance(exc, ConnectionRefusedError)
            raise err from None
        finally:
            conn.close()


# --- token discovery -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Discovered:
    """What discovery established: the server and CA from cluster-info."""

    server: str
    ca_pem: bytes
    kubeconfig: str


def _single_cluster(text: str, *, what: str) -> dict[str, Any]:
    try:
        cfg = load_document(text, source=what)  # bounded: cluster-info is read before it is verified
    except ConfigError:
        cfg = None
    clusters = cfg.get("clusters") if isinstance(cfg, dict) else None
    if (not isinstance(clusters, list) or len(clusters) != 1 or not isinstance(clusters[0], dict)
            or not isinstance(clusters[0].get("cluster"), dict)):
        n = len(clusters) if isinstance(clusters, list) else 0
        raise KubefabError(f"{what} must hold exactly one cluster, found {n}", phase=PHASE,
                           fix='re-run "fab -H <init host> init --only bootstrap-token" to rewrite cluster-info')
    return clusters[0]["cluster"]


def _ca_of(cluster: dict[str, Any], *, what: str) -> bytes:
    data = cluster.get("certificate-authority-data")
    try:
        ca = base64.b64decode(data or "", validate=True)
    except (ValueError, TypeError):
        ca = b""
    if b"BEGIN CERTIFICATE" not in ca:
        raise PKIError(f"{what} has no usable certificate-authority-data", phase=PHASE,
                       fix='re-run "fab -H <init host> init --only bootstrap-token" to rewrite cluster-info')
    return ca


def _token_parts(token: Secret | str) -> tuple[str, Secret]:
    try:
        return bootstrap.parse_token(token)
    except ConfigError as exc:
        raise exc.with_context(phase=PHASE)


def discover_token(endpoint: str, token: Secret | str, *, ca_pins: Iterable[str] = (),
                   unsafe_skip_ca_verification: bool = False, timeout: float = 300.0,
                   interval: float = DISCOVERY_INTERVAL, host: str | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic,
                   refused_grace: float = REFUSED_GRACE) -> Discovered:
    """kubeadm's token discovery (reference §7.2).

    :param endpoint: ``host:port`` of an API server (``https://`` optional).
    :param ca_pins: ``sha256:<hex>`` values; at least one, unless ``unsafe_skip_ca_verification``.
    :param refused_grace: how long an endpoint may refuse connections (nothing listening) before
        discovery stops with that, rather than retrying until ``timeout``; the first refusal is
        reported at once.
    :raises KubefabError: unknown/expired token (no signature appears before ``timeout``), a bad
        signature, a pin mismatch, a changed answer over verified TLS, or an endpoint refusing
        connections for ``refused_grace`` seconds.
    """
    from . import output

    pins = [p for p in ca_pins if p]
    try:
        pins = [bootstrap.parse_ca_pin(p) for p in pins]
    except ConfigError as exc:
        raise exc.with_context(host=host, phase=PHASE)
    if not pins and not unsafe_skip_ca_verification:
        raise ConfigError("token discovery needs the CA pin (--discovery-token-ca-cert-hash)", host=host, phase=PHASE,
                          fix='get it with "fab certs.ca-hash" on the operator machine, or (unsafe) pass '
                              "--discovery-token-unsafe-skip-ca-verification")
    token_id, token_secret = _token_parts(token)
    server = endpoint if endpoint.startswith("https://") else "https://" + endpoint
    insecure = ApiReader(server, timeout=min(REQUEST_TIMEOUT, max(timeout, 1.0)))
    jws_key = K.JWS_KUBECONFIG_PREFIX + token_id
    deadline = clock() + timeout
    last = "no answer yet"
    refused_since: float | None = None
    said = ""
    with output.waiting(f"cluster-info from {endpoint} signed for token {token_id}", [host or ""]):
        while True:
            try:
                resp = insecure.get(CLUSTER_INFO_PATH)
                refused_since = None
                if resp.status == 200:
                    data = (resp.json() or {}).get("data") or {}
                    if jws_key in data and "kubeconfig" in data:
                        break
                    last = f"cluster-info has no {jws_key} signature"
                else:
                    last = f"HTTP {resp.status} for cluster-info"
            except KubefabError as exc:
                last = exc.problem
                if getattr(exc, "refused", False):
                    if refused_since is None:
                        refused_since = clock()
                        output.info(f"{endpoint} refuses connections: nothing listens there; retrying for up to "
                                    f"{int(min(refused_grace, timeout))}s", host=host or "", phase=PHASE)
                    elif clock() - refused_since >= refused_grace:
                        raise KubefabError(
                            f"{endpoint} refused every connection for {int(clock() - refused_since)}s: no API "
                            f"server listens there", host=host, phase=PHASE,
                            fix="check the endpoint (--endpoint, the JoinConfiguration's apiServerEndpoint or "
                                "controlPlaneEndpoint in the kubeadm config) and that the API server, or the load "
                                "balancer in front of it, is up: `fab cluster-up` brings the control plane up")
                else:
                    refused_since = None
            if last != said and refused_since is None and clock() < deadline:
                # what stands in the way, said when it first appears (not after the whole timeout)
                said = last
                output.info(f"{last}; retrying every {interval:g}s for up to {int(deadline - clock())}s",
                            host=host or "", phase=PHASE)
            if clock() >= deadline:
                if refused_since is not None:
                    raise KubefabError(f"{endpoint} refused every connection within {int(timeout)}s: no API server "
                                       "listens there", host=host, phase=PHASE,
                                       fix="check the endpoint and that the API server is up")
                raise KubefabError(
                    f"the bootstrap token {token_id!r} was not accepted by {endpoint} within {int(timeout)}s ({last})",
                    host=host, phase=PHASE,
                    fix='the token is unknown or expired: create one with "fab token.create" on the operator '
                        "machine (or kubeadm token create on a control plane) and join with it")
            sleep(min(interval, max(deadline - clock(), 0)))
    content = data["kubeconfig"]
    if not bootstrap.verify_detached_jws(data[jws_key], content, token_id, token_secret):
        raise KubefabError(f"the cluster-info signature for token {token_id!r} does not verify", host=host, phase=PHASE,
                           fix="the token secret is wrong or cluster-info was tampered with: check the full token "
                               "(<id>.<secret>) and that you are talking to the right API server")
    cluster = _single_cluster(content, what="cluster-info kubeconfig")
    ca = _ca_of(cluster, what="cluster-info kubeconfig")
    inside_server = str(cluster.get("server") or server)
    if pins:
        if not bootstrap.pin_matches(ca, pins):
            raise PKIError(f"the cluster CA of {endpoint} does not match the given CA pin "
                           f"(its pin is {bootstrap.ca_pin(ca)})", host=host, phase=PHASE,
                           fix="check --discovery-token-ca-cert-hash against \"fab certs.ca-hash\"; a mismatch can "
                               "mean a different cluster or a man in the middle")
        again = ApiReader(server, ca_pem=ca, timeout=REQUEST_TIMEOUT)
        try:
            resp = again.get(CLUSTER_INFO_PATH)
        except KubefabError as exc:
            raise exc.with_context(host=host, phase=PHASE)
        if resp.status != 200:
            raise KubefabError(f"the CA-verified fetch of cluster-info from {endpoint} answered HTTP {resp.status}",
                               host=host, phase=PHASE,
                               fix="an API server behind the endpoint is not ready (a load balancer that checks "
                                   "only TCP sends requests to a starting API server): make its health check "
                                   "GET /readyz over TLS, then re-run")
        second = ((resp.json() or {}).get("data") or {}).get("kubeconfig")
        if second != content:
            raise KubefabError("cluster-info changed between the unverified and the CA-verified fetch", host=host,
                               phase=PHASE, fix="retry; if it persists, something between you and the API server "
                                                "is rewriting answers")
    return Discovered(server=inside_server, ca_pem=ca, kubeconfig=content)


def discover_file(path_or_url: str, *, host: str | None = None) -> tuple[Discovered, dict[str, Any]]:
    """File discovery (reference §7.4): a kubeconfig with at least one cluster and a current one.

    Returns the discovery and the current user's credentials (may be empty). A ``file://`` URL is
    a path; an ``https://`` URL is downloaded first without credentials.

    :raises KubefabError: unreadable file, no current cluster, no CA.
    """
    if path_or_url.startswith("https://"):
        url = urllib.parse.urlsplit(path_or_url)
        resp = ApiReader(f"https://{url.netloc}").get(url.path or "/")
        if resp.status != 200:
            raise KubefabError(f"cannot download the discovery file {path_or_url} (HTTP {resp.status})",
                               host=host, phase=PHASE, fix="check the URL")
        raw = resp.body
        base = None
    else:
        path = Path(path_or_url.removeprefix("file://"))
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the discovery file {path}: {exc.strerror}", host=host, phase=PHASE,
                              fix="pass the path of a kubeconfig holding the cluster's server and CA") from None
        base = path.parent
    try:
        cfg = kc.parse_kubeconfig(raw, what="discovery file")
        cluster, user, _ = kc.current_entries(cfg, what="discovery file")
    except KubefabError as exc:
        raise exc.with_context(host=host, phase=PHASE)
    if not cluster.get("certificate-authority-data") and cluster.get("certificate-authority") and base is not None:
        try:
            ca_bytes = (base / cluster["certificate-authority"]).read_bytes()
        except OSError:
            raise PKIError(f"the discovery file's CA {cluster['certificate-authority']} cannot be read", host=host,
                           phase=PHASE, fix="put the CA next to the file or inline certificate-authority-data") from None
        cluster = {**cluster, "certificate-authority-data": base64.b64encode(ca_bytes).decode()}
    ca = _ca_of(cluster, what="discovery file")
    return Discovered(server=str(cluster.get("server") or ""), ca_pem=ca, kubeconfig=raw.decode()), user


# --- the cluster's configuration, read with the bootstrap token ---------------------------------
def _get_object(client: ApiReader, path: str, what: str, *, host: str | None, optional: bool = False) -> dict | None:
    try:
        resp = client.get(path)
    except KubefabError as exc:
        raise exc.with_context(host=host, phase=PHASE)
    if resp.status == 200:
        return resp.json() or {}
    if optional and resp.status in (403, 404):  # kubeadm tolerates both for kube-proxy
        return None
    if resp.status == 401:
        raise KubefabError(f"the bootstrap token was refused reading {what} (401 Unauthorized)", host=host, phase=PHASE,
                           fix='the token is unknown or expired: create one with "fab token.create" and join with it')
    if resp.status == 403:
        raise KubefabError(f"the bootstrap token may not read {what} (403 Forbidden)", host=host, phase=PHASE,
                           fix='re-run "fab -H <init host> init --only upload-config,bootstrap-token" to restore '
                               "kubeadm's RBAC for joining nodes")
    if resp.status == 404:
        raise KubefabError(f"{what} does not exist", host=host, phase=PHASE,
                           fix='re-run "fab -H <init host> init --only upload-config"')
    raise KubefabError(f"reading {what} failed with HTTP {resp.status}", host=host, phase=PHASE,
                       fix="check the API server's health and logs")


def _cm_key(obj: dict, key: str, what: str, *, host: str | None) -> str:
    value = (obj.get("data") or {}).get(key)
    if value is None:
        raise KubefabError(f"{what} has no {key!r} key", host=host, phase=PHASE,
                           fix='re-run "fab -H <init host> init --only upload-config"')
    return value


def node_is_ready(node: dict) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def download_certs(client: ApiReader, certificate_key: Secret | str, *, external_etcd: bool = False,
                   host: str | None = None) -> dict[str, bytes]:
    """Decrypt ``kube-system/kubeadm-certs`` (reference §8.4); nothing is returned on any failure.

    :raises KubefabError: missing Secret (with how to refresh it), wrong key, malformed Secret.
    """
    phase = "control-plane-prepare/download-certs"
    try:
        bootstrap.parse_certificate_key(certificate_key)
    except ConfigError as exc:
        raise exc.with_context(host=host, phase=phase)
    resp = client.get(f"/api/v1/namespaces/{K.KUBE_SYSTEM_NAMESPACE}/secrets/{K.KUBEADM_CERTS_SECRET}")
    if resp.status == 404:
        raise KubefabError("the kubeadm-certs Secret was not found in kube-system (it expires 2 hours after "
                           "upload-certs)", host=host, phase=phase,
                           fix='run "fab -H <init host> init --only upload-certs --upload-certs" and join with the '
                               "certificate key it prints")
    if resp.status != 200:
        raise KubefabError(f"reading kubeadm-certs failed with HTTP {resp.status}", host=host, phase=phase,
                           fix='re-run "fab -H <init host> init --only upload-certs --upload-certs" to restore the '
                               "Secret and its RBAC")
    try:
        return bootstrap.decrypt_kubeadm_certs(resp.json() or {}, certificate_key, external_etcd=external_etcd)
    except KubefabError as exc:
        exc.phase = phase  # the full path of kubeadm's phase (core says only "download-certs")
        raise exc.with_context(host=host)


def fetch_join_data(discovered: Discovered, tls_bootstrap_token: Secret | None, *, node_name: str,
                    control_plane: bool = False, certificate_key: Secret | None = None,
                    external_etcd: bool = False, source: str = "token", host: str | None = None,
                    reader: ApiReader | None = None) -> JoinData:
    """Read what a join needs with the bootstrap token (reference §5.1 notes, §9.2).

    :raises KubefabError: missing kubeadm-config/kubelet-config, a Ready Node of the same name,
        a control-plane join without controlPlaneEndpoint, kubeadm-certs problems.
    """
    if tls_bootstrap_token is None:
        raise ConfigError("no bootstrap token to read the cluster's configuration with", host=host, phase=PHASE,
                          fix="pass --token (or discovery.tlsBootstrapToken)")
    client = reader or ApiReader(discovered.server, ca_pem=discovered.ca_pem, token=tls_bootstrap_token)
    kubeadm_cm = _get_object(client, _cm_path(K.KUBEADM_CONFIG_CONFIGMAP), "ConfigMap kube-system/kubeadm-config",
                             host=host)
    cluster_yaml = _cm_key(kubeadm_cm, K.CLUSTER_CONFIGURATION_KEY, "kubeadm-config", host=host)
    kubelet_cm = _get_object(client, _cm_path(K.KUBELET_CONFIG_CONFIGMAP), "ConfigMap kube-system/kubelet-config",
                             host=host)
    kubelet_yaml = _cm_key(kubelet_cm, K.KUBELET_CONFIG_KEY, "kubelet-config", host=host)
    proxy_cm = _get_object(client, _cm_path(K.KUBE_PROXY_CONFIGMAP), "ConfigMap kube-system/kube-proxy",
                           host=host, optional=True)
    proxy = ((proxy_cm or {}).get("data") or {}).get("config.conf")
    node = _get_object(client, f"/api/v1/nodes/{urllib.parse.quote(node_name)}", f"Node {node_name}",
                       host=host, optional=True)
    if node is not None and node_is_ready(node):
        raise KubefabError(f"a Node with name {node_name!r} and status \"Ready\" already exists in the cluster",
                           host=host, phase=PHASE,
                           fix="reset that node first and delete it (kubectl delete node), or give this host "
                               "another node name")
    try:
        doc = load_document(cluster_yaml, source="kubeadm-config ConfigMap") or {}
    except ConfigError:
        doc = {}
    cluster_name = str(doc.get("clusterName") or K.DEFAULT_CLUSTER_NAME) if isinstance(doc, dict) else K.DEFAULT_CLUSTER_NAME
    data = JoinData(server=discovered.server, ca_pem=discovered.ca_pem, tls_bootstrap_token=tls_bootstrap_token,
                    cluster_name=cluster_name, cluster_configuration=cluster_yaml,
                    kubelet_config=kubelet_yaml.encode(), kube_proxy_config=proxy, source=source)
    if control_plane:
        if not data.control_plane_endpoint:
            raise ConfigError("unable to add a new control plane instance to a cluster that doesn't have a stable "
                              "controlPlaneEndpoint address", host=host, phase=PHASE,
                              fix="set controlPlaneEndpoint in the ClusterConfiguration (kubeadm-config) first")
        if certificate_key is not None:
            data = replace(data, shared_certs=download_certs(client, certificate_key, external_etcd=external_etcd,
                                                             host=host))
    return data


def resolve_discovery(discovery: Discovery, state=None, *, endpoint: str = "") -> Discovery:
    """kubeadm's flags, completed from the operator's state dir when it holds the cluster:
    its token and the pin of its ``pki/ca.crt`` (so ``fab join`` needs no flags after ``fab init``)."""
    token = discovery.token
    pins = tuple(discovery.ca_cert_hashes)
    if state is not None:
        token = token or state.token()
        ca = state.pki_dir / "ca.crt"
        if not pins and not discovery.unsafe_skip_ca_verification and ca.exists():
            pins = (bootstrap.ca_pin(ca.read_bytes()),)
    return replace(discovery, token=token, ca_cert_hashes=pins,
                   api_server_endpoint=discovery.api_server_endpoint or endpoint)


def discover(discovery: Discovery, *, node_name: str, control_plane: bool = False,
             certificate_key: Secret | None = None, external_etcd: bool = False, timeout: float = 300.0,
             host: str | None = None, state=None, endpoint: str = "") -> JoinData:
    """Everything a join needs, from kubeadm's discovery settings (token or file).

    :raises KubefabError: see :func:`discover_token`, :func:`discover_file`, :func:`fetch_join_data`.
    """
    d = resolve_discovery(discovery, state, endpoint=endpoint)
    if d.file_kubeconfig_path:
        found, user = discover_file(d.file_kubeconfig_path, host=host)
        token = d.tls_bootstrap_token or (Secret(user["token"], kind="bootstrap token") if user.get("token") else None)
        return fetch_join_data(found, token, node_name=node_name, control_plane=control_plane,
                               certificate_key=certificate_key, external_etcd=external_etcd, source="file", host=host)
    if not d.token:
        raise ConfigError("no bootstrap token for discovery", host=host, phase=PHASE,
                          fix="pass --token <id>.<secret> (from the init output or \"fab token.create\")")
    if not d.api_server_endpoint:
        raise ConfigError("no API server endpoint for discovery", host=host, phase=PHASE,
                          fix="pass the control-plane endpoint (host:port) as kubeadm join's argument")
    found = discover_token(d.api_server_endpoint, d.token, ca_pins=d.ca_cert_hashes,
                           unsafe_skip_ca_verification=d.unsafe_skip_ca_verification, timeout=timeout, host=host)
    return fetch_join_data(found, d.tls_bootstrap_token or d.token, node_name=node_name, control_plane=control_plane,
                           certificate_key=certificate_key, external_etcd=external_etcd, host=host)


# --- etcd members (control-plane joins) ---------------------------------------------------------------
def etcd_endpoints(admin: ApiReader, *, host: str | None = None) -> tuple[str, ...]:
    """Client URLs from the etcd mirror Pods (needs an admin identity, as kubeadm uses admin.conf)."""
    resp = admin.get(f"/api/v1/namespaces/{K.KUBE_SYSTEM_NAMESPACE}/pods?labelSelector="
                     + urllib.parse.quote("component=etcd,tier=control-plane"))
    if resp.status != 200:
        raise ApiError(f"listing the etcd Pods failed with HTTP {resp.status}", host=host, phase="check-etcd",
                       fix="check admin.conf and the API server")
    try:
        return etcd_endpoints_from_pods(resp.json() or {})
    except KubefabError as exc:
        raise exc.with_context(host=host)


def with_etcd_members(data: JoinData, member_list_json: str | bytes, endpoints: Iterable[str] = ()) -> JoinData:
    """``data`` plus the members from ``etcdctl member list -w json`` run on an existing control plane."""
    return replace(data, etcd_members=parse_member_list(member_list_json), etcd_endpoints=tuple(endpoints))


def join_config(config, data: JoinData, *, host: str | None = None):
    """The joining node's KubeadmConfig with the cluster's ClusterConfiguration (from kubeadm-config).

    kubeadm join takes the ClusterConfiguration from the cluster and overlays only the node's
    JoinConfiguration (nodeRegistration, localAPIEndpoint), so the joining node's manifests and
    certificates follow what init uploaded, not a possibly stale local file.

    :raises ConfigError: when the uploaded ClusterConfiguration does not parse.
    """
    if not data.cluster_configuration:
        return config
    from .core import config as kubeadm_config

    try:
        cluster = kubeadm_config.parse_cluster_configuration(data.cluster_configuration)
    except KubefabError as exc:
        raise exc.with_context(host=host, phase=PHASE)
    return replace(config, cluster=cluster)
