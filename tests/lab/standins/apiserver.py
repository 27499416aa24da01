"""A strict kube-apiserver stand-in for the kubefab test lab.

The lab machines cannot run the real kube-apiserver binary, so the lab kubelet starts this
instead, from the kube-apiserver static pod manifest kubefab writes::

    python -m tests.lab.standins.apiserver --advertise-address=... --secure-port=6443 ...

It is test infrastructure, never part of the shipped tool. It serves HTTPS with
``--tls-cert-file``/``--tls-private-key-file``, authenticates client certificates
(``--client-ca-file``), bootstrap tokens and service-account tokens, authorizes with
``--authorization-mode`` (Node,RBAC), stores objects in etcd (``--etcd-servers`` and the
``--etcd-*`` client certs) exactly where and how the real server does, and answers with the
real server's status codes and Status bodies. Every other kube-apiserver flag is accepted,
logged and ignored.

Known deviations from the real server (each chosen because kubefab does not depend on it):

- JSON (and YAML) bodies only: protobuf bodies get 415, so kubectl's typed writes
  (``create configmap ...``, ``certificate approve``, ``auth can-i``) fail; ``get``,
  ``label``, ``taint``, ``describe``, ``apply -f``/``create -f`` (server-side field
  validation, advertised through ``/openapi/v3``) and ``get --raw`` work. No
  server-side apply (415), no ``/openapi/v2`` (404), no ``limit``/``continue`` paging.
  Watch is served from etcd's watch (no bookmarks, no watch cache, no ``/api/v1/watch/...``).
- A client certificate not signed by ``--client-ca-file`` (or expired) is refused in the TLS
  handshake, where the real server answers 401: Python's ``ssl`` cannot request a client
  certificate without verifying it.
- The Node authorizer and NodeRestriction are simplified (see ``rbac``/``apiserver_admission``);
  admin/edit/view are flattened instead of aggregated; no managedFields.
- Namespace deletion removes the contents at once (no namespace controller), and pods are
  deleted immediately (no graceful period).

Logs one line per request (code, verb, path, user: never a credential) to stderr.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from . import apiserver_auth as auth
from . import apiserver_openapi as openapi
from . import rbac
from .apiserver_admission import node_restriction
from .apiserver_registry import ApiError, Registry, bad_request, not_found
from .apiserver_resources import BY_PATH, RESOURCES, Resource, first_service_ip, groups
from .apiserver_tables import to_table
from .apiserver_watch import serve_watch
from .store import EtcdStore, StoreError

log = logging.getLogger("standin.apiserver")

DEFAULT_VERSION = "v1.36.0"
VERSION_ENV = "KUBEFAB_STANDIN_VERSION"

SERVED_FLAGS = {
    "advertise-address", "secure-port", "bind-address", "tls-cert-file", "tls-private-key-file",
    "client-ca-file", "enable-bootstrap-token-auth", "authorization-mode", "etcd-servers", "etcd-cafile",
    "etcd-certfile", "etcd-keyfile", "service-cluster-ip-range", "service-account-key-file",
    "service-account-signing-key-file", "service-account-issuer", "anonymous-auth", "enable-admission-plugins",
}


# ---------------------------------------------------------------------------- flags
@dataclass
class Config:
    """The kube-apiserver flags the stand-in acts on."""

    advertise_address: str = "127.0.0.1"
    bind_address: str = ""
    secure_port: int = 6443
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    enable_bootstrap_token_auth: bool = False
    anonymous_auth: bool = True
    authorization_modes: list[str] = field(default_factory=lambda: ["AlwaysAllow"])
    etcd_servers: list[str] = field(default_factory=list)
    etcd_cafile: str = ""
    etcd_certfile: str = ""
    etcd_keyfile: str = ""
    service_cluster_ip_range: str = "10.0.0.0/24"
    service_account_key_files: list[str] = field(default_factory=list)
    service_account_signing_key_file: str = ""
    service_account_issuers: list[str] = field(default_factory=list)
    admission_plugins: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _bool(value: str) -> bool:
    return value.lower() in ("", "true", "1", "yes")


def parse_flags(argv: list[str]) -> Config:
    """Parse ``--name=value`` / ``--name value`` flags the way the real binary accepts them."""
    cfg = Config()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--"):
            cfg.ignored.append(arg)
            continue
        name, eq, value = arg[2:].partition("=")
        if not eq and name in SERVED_FLAGS and i < len(argv) and not argv[i].startswith("--"):
            value = argv[i]
            i += 1
        if name == "advertise-address":
            cfg.advertise_address = value
        elif name == "bind-address":
            cfg.bind_address = value
        elif name == "secure-port":
            cfg.secure_port = int(value)
        elif name == "tls-cert-file":
            cfg.tls_cert_file = value
        elif name == "tls-private-key-file":
            cfg.tls_private_key_file = value
        elif name == "client-ca-file":
            cfg.client_ca_file = value
        elif name == "enable-bootstrap-token-auth":
            cfg.enable_bootstrap_token_auth = _bool(value)
        elif name == "anonymous-auth":
            cfg.anonymous_auth = _bool(value)
        elif name == "authorization-mode":
            cfg.authorization_modes = [m.strip() for m in value.split(",") if m.strip()]
        elif name == "etcd-servers":
            cfg.etcd_servers = [s.strip() for s in value.split(",") if s.strip()]
        elif name == "etcd-cafile":
            cfg.etcd_cafile = value
        elif name == "etcd-certfile":
            cfg.etcd_certfile = value
        elif name == "etcd-keyfile":
            cfg.etcd_keyfile = value
        elif name == "service-cluster-ip-range":
            cfg.service_cluster_ip_range = value
        elif name == "service-account-key-file":
            cfg.service_account_key_files.append(value)
        elif name == "service-account-signing-key-file":
            cfg.service_account_signing_key_file = value
        elif name == "enable-admission-plugins":
            cfg.admission_plugins = [p.strip() for p in value.split(",") if p.strip()]
        elif name == "service-account-issuer":
            cfg.service_account_issuers.append(value)
        else:
            cfg.ignored.append(arg)
    return cfg


# ---------------------------------------------------------------------------- the server
class StandinApiServer:
    """State shared by request handlers: config, store, registry, keys."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.store = EtcdStore(cfg.etcd_servers, cafile=cfg.etcd_cafile or None,
                               certfile=cfg.etcd_certfile or None, keyfile=cfg.etcd_keyfile or None)
        self.registry = Registry(self.store, cfg.service_cluster_ip_range)
        if "NodeRestriction" in cfg.admission_plugins:
            self.registry.admission.append(node_restriction)
        self.version = os.environ.get(VERSION_ENV, DEFAULT_VERSION)
        self.sa_public_keys = [self._load_public(p) for p in cfg.service_account_key_files]
        self.sa_signing_key = None
        if cfg.service_account_signing_key_file:
            self.sa_signing_key = serialization.load_pem_private_key(
                open(cfg.service_account_signing_key_file, "rb").read(), password=None)
        self.bootstrapped = threading.Event()
        self._rbac_cache: dict[tuple[str, str | None], list[dict[str, Any]]] = {}

    @staticmethod
    def _load_public(path: str) -> Any:
        data = open(path, "rb").read()
        try:
            return serialization.load_pem_public_key(data)
        except ValueError:
            return serialization.load_pem_private_key(data, password=None).public_key()

    def resource(self, plural: str, group: str = "") -> Resource:
        return next(r for r in RESOURCES if r.plural == plural and r.group == group)

    # -- bootstrap policy -----------------------------------------------------------------
    def bootstrap(self) -> None:
        """Create what a real API server creates at first start (create-if-missing)."""
        ns = self.resource("namespaces")
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.registry.ensure(ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for plural, obj in rbac.default_policy_objects():
            self.registry.ensure(self.resource(plural, "rbac.authorization.k8s.io"), obj)
        ip = first_service_ip(self.cfg.service_cluster_ip_range)
        self.registry.ensure(self.resource("services"), {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                                 "targetPort": self.cfg.secure_port}],
                     "sessionAffinity": "None", "type": "ClusterIP"}})
        self.registry.ensure(self.resource("endpoints"), {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": self.cfg.advertise_address}],
                         "ports": [{"name": "https", "port": self.cfg.secure_port, "protocol": "TCP"}]}]})
        self.bootstrapped.set()

    # -- authn / authz --------------------------------------------------------------------
    def authenticate(self, peer_cert: dict[str, Any] | None, authorization: str | None) -> rbac.User:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise auth.Unauthorized("unsupported authorization scheme")
            token = token.strip()
            user = None
            if self.cfg.enable_bootstrap_token_auth:
                user = auth.user_from_bootstrap_token(token, self._secret)
            if user is None and self.sa_public_keys:
                user = auth.user_from_sa_token(token, self.sa_public_keys, self._issuers(), self._sa_exists)
            if user is None:
                raise auth.Unauthorized("invalid bearer token")
            return user
        user = auth.user_from_cert(peer_cert)
        if user is not None:
            return user
        if not self.cfg.anonymous_auth:
            raise auth.Unauthorized("anonymous requests are disabled")
        return auth.anonymous()

    def _issuers(self) -> list[str]:
        return self.cfg.service_account_issuers or ["https://kubernetes.default.svc.cluster.local"]

    def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.registry.find(self.resource("secrets"), namespace, name)

    def _sa_exists(self, namespace: str, name: str, uid: str) -> bool:
        sa = self.registry.find(self.resource("serviceaccounts"), namespace, name)
        return sa is not None and (not uid or sa["metadata"].get("uid") == uid)

    def _rbac_lister(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Read RBAC objects; if etcd is down, the last ones read (like upstream's informer cache)."""
        key = (plural, namespace)
        try:
            objs, _ = self.registry.list_objects(self.resource(plural, "rbac.authorization.k8s.io"), namespace)
        except StoreError:
            if key not in self._rbac_cache:
                raise
            return self._rbac_cache[key]
        self._rbac_cache[key] = objs
        return objs

    def allowed(self, a: rbac.Attributes) -> bool:
        return rbac.authorize(a, self._rbac_lister, self.cfg.authorization_modes)

    def authorize(self, a: rbac.Attributes) -> None:
        if not self.allowed(a):
            details: dict[str, Any] = {}
            if a.resource_request:
                details = {"kind": a.resource}
                if a.name:
                    details["name"] = a.name
                if a.group:
                    details["group"] = a.group
            raise ApiError(403, "Forbidden", rbac.forbidden_message(a), details)


# ---------------------------------------------------------------------------- discovery
def resource_list(group: str, version: str) -> dict[str, Any]:
    """``/api/v1`` or ``/apis/<g>/<v>``: APIResourceList with subresources."""
    res_out: list[dict[str, Any]] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry: dict[str, Any] = {
            "name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        res_out.append(entry)
        for sub in r.subresources:
            if sub == "token":
                res_out.append({"name": f"{r.plural}/token", "singularName": "", "namespaced": True,
                                "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                                "verbs": ["create"]})
            else:
                res_out.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                "kind": r.kind, "verbs": ["get", "patch", "update"]})
    for g, v, name, kind, namespaced in REVIEWS:
        if g == group and v == version:
            res_out.append({"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind,
                            "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": res_out}


REVIEWS = (
    ("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False),
    ("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
    ("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False),
)


def all_groups() -> dict[str, list[str]]:
    g = groups()
    for group, version, *_ in REVIEWS:
        g.setdefault(group, [])
        if version not in g[group]:
            g[group].append(version)
    return g


def api_group_list() -> dict[str, Any]:
    out = []
    for group, versions in all_groups().items():
        if not group:
            continue
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        out.append({"name": group, "versions": vs, "preferredVersion": vs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}


# ---------------------------------------------------------------------------- HTTP
class Handler(http.server.BaseHTTPRequestHandler):
    """One HTTPS request: authenticate, route, authorize, act, answer."""

    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-standin"
    api: StandinApiServer  # set on the subclass

    def log_message(self, fmt: str, *args: Any) -> None:  # one line per request, no secrets
        log.debug("%s - " + fmt, self.address_string(), *args)

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, code: int, body: Any, warnings: list[str] = (), ctype: str = "application/json") -> None:  # type: ignore[assignment]
        raw = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", os.urandom(8).hex())
        for w in warnings:
            self.send_header("Warning", '299 - ' + json.dumps(w))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        """The request body, read once up front so keep-alive stays in sync on early errors."""
        return self._raw_body

    def _read_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._raw_body = self.rfile.read(length) if length > 0 else b""

    def _json_body(self) -> Any:
        raw = self._body()
        if not raw:
            return None
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if ctype not in ("application/json", "application/yaml", "*/*", ""):
            # Upstream speaks protobuf (and CBOR) too; the stand-in only JSON/YAML. 415 makes
            # clients that can fall back do so, and names the problem for those that cannot.
            raise ApiError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                           f'accepted media types include: application/json, application/yaml (got "{ctype}")')
        try:
            return json.loads(raw)
        except ValueError:
            try:
                import yaml
                return yaml.safe_load(raw)
            except Exception:  # noqa: BLE001 - any decoding failure is the client's 400
                raise bad_request("the body of the request was in an unknown format")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        user_name = "-"
        code = 500
        self._read_body()
        try:
            try:
                cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
                user = self.api.authenticate(cert, self.headers.get("Authorization"))
            except auth.Unauthorized as exc:
                log.info("401 %s %s: %s", method, url.path, exc)
                code = 401
                self._send(401, ApiError(401, "Unauthorized", "Unauthorized").status())
                return
            user_name = user.name
            code = self._route(method, url.path.rstrip("/") or "/", params, user)
        except ApiError as exc:
            code = exc.code
            self._send(exc.code, exc.status())
        except StoreError as exc:
            code = 503
            log.warning("etcd error: %s", exc)
            self._send(503, ApiError(503, "ServiceUnavailable", f"etcd unavailable: {exc}").status())
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must answer 500, not hang the client
            log.exception("internal error on %s %s", method, self.path)
            code = 500
            self._send(500, ApiError(500, "InternalError", f"Internal error occurred: {exc}").status())
        finally:
            log.info("%s %s %s user=%s", code, method, self.path, user_name)

    # -- routing ----------------------------------------------------------------------------
    def _route(self, method: str, path: str, params: dict[str, str], user: rbac.User) -> int:
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2 and parts[1] == "v1" and len(parts) > 2:
            return self._resource(method, "", "v1", parts[2:], params, user)
        if parts[:1] == ["apis"] and len(parts) > 3:
            return self._resource(method, parts[1], parts[2], parts[3:], params, user)
        return self._non_resource(method, path, parts, user)

    def _non_resource(self, method: str, path: str, parts: list[str], user: rbac.User) -> int:
        verb = "get" if method in ("GET", "HEAD") else method.lower()
        self.api.authorize(rbac.Attributes(user, verb, False, path=path))
        if parts and parts[0] in ("livez", "readyz", "healthz"):
            if parts[0] == "livez" or (self.api.store.healthy() and self.api.bootstrapped.is_set()):
                self._send(200, b"ok", ctype="text/plain; charset=utf-8")
                return 200
            self._send(500, b"[-]etcd failed: reason withheld\n" + parts[0].encode() + b" check failed\n",
                       ctype="text/plain; charset=utf-8")
            return 500
        if parts == ["version"]:
            v = self.api.version.lstrip("v").split(".")
            self._send(200, {"major": v[0], "minor": v[1] if len(v) > 1 else "0", "emulationMajor": v[0],
                             "emulationMinor": v[1] if len(v) > 1 else "0", "gitVersion": self.api.version,
                             "gitCommit": "standin", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                             "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"})
            return 200
        if parts[:2] == ["openapi", "v3"]:
            doc = openapi.index() if len(parts) == 2 else openapi.document("/".join(parts[2:]))
            if doc is not None:
                self._send(200, doc)
                return 200
        if parts == ["api"]:
            self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.api.cfg.advertise_address}:"
                                                             f"{self.api.cfg.secure_port}"}]})
            return 200
        if parts == ["api", "v1"]:
            self._send(200, resource_list("", "v1"))
            return 200
        if parts == ["apis"]:
            self._send(200, api_group_list())
            return 200
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in all_groups():
            lst = api_group_list()["groups"]
            self._send(200, {"kind": "APIGroup", "apiVersion": "v1", **next(g for g in lst if g["name"] == parts[1])})
            return 200
        if len(parts) == 3 and parts[0] == "apis" and parts[2] in all_groups().get(parts[1], []):
            self._send(200, resource_list(parts[1], parts[2]))
            return 200
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _resource(self, method: str, group: str, version: str, rest: list[str], params: dict[str, str],
                  user: rbac.User) -> int:
        if group in ("authorization.k8s.io", "authentication.k8s.io") and len(rest) in (1, 3):
            return self._review(method, group, version, rest, user)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in BY_PATH and \
                BY_PATH[(group, version, rest[2])].namespaced:
            namespace, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0]))
        if res is None or len(rest) > 3 or (len(rest) == 3 and rest[2] not in res.subresources):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if res.namespaced and not namespace and method not in ("GET",):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                           "resource", {})
        verb = {"GET": "get" if name else ("watch" if params.get("watch") in ("1", "true") else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", "method not allowed", {})
        if method == "POST" and name and not sub:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                           "resource", {})
        self.api.authorize(rbac.Attributes(user, verb, True, group=group, resource=res.plural, subresource=sub,
                                           namespace=namespace, name=name))
        if verb == "watch":
            return self._watch(res, namespace, params)
        reg = self.api.registry
        strict = params.get("fieldValidation", "") == "Strict"
        dry_run = params.get("dryRun") == "All"
        if sub == "token":
            return self._token_request(namespace, name, user)
        if verb == "get":
            obj = reg.get(res, namespace, name)
            if sub and sub not in ("status", "approval"):
                raise not_found(res, name)
            return self._reply(200, res, obj, [], table=[obj])
        if verb == "list":
            lst = reg.list(res, namespace or None, params.get("labelSelector", ""), params.get("fieldSelector", ""))
            return self._reply(200, res, lst, [], table=lst["items"], list_meta=lst["metadata"])
        if verb == "create":
            body = self._json_body()
            obj, warnings = reg.create(res, namespace, body, user, strict=strict, dry_run=dry_run)
            return self._reply(201, res, obj, warnings)
        if verb == "update":
            body = self._json_body()
            if sub == "approval":
                self._authorize_signer(user, res, namespace, name, "approve")
            if sub == "status" and res.kind == "CertificateSigningRequest" and \
                    ((body or {}).get("status") or {}).get("certificate"):
                self._authorize_signer(user, res, namespace, name, "sign")
            obj, warnings, created = reg.update(res, namespace, name, body, user, subresource=sub, strict=strict,
                                                dry_run=dry_run)
            return self._reply(201 if created else 200, res, obj, warnings)
        if verb == "patch":
            raw = self._body()
            if sub == "approval":
                self._authorize_signer(user, res, namespace, name, "approve")
            obj, warnings = reg.patch(res, namespace, name, self.headers.get("Content-Type", ""), raw, user,
                                      subresource=sub, strict=strict, dry_run=dry_run)
            return self._reply(200, res, obj, warnings)
        if verb == "delete":
            options = self._json_body() or {}
            obj = reg.delete(res, namespace, name, options, dry_run=dry_run)
            if res.kind == "Namespace" and not dry_run:
                reg.delete_namespace_contents(name)
                obj.setdefault("status", {})["phase"] = "Terminating"
                return self._reply(200, res, obj, [])
            # Like upstream: pods (graceful), services and service accounts return the deleted
            # object, as does anything held by finalizers; other kinds return a Success Status.
            if res.kind in ("Pod", "Service", "ServiceAccount") or obj["metadata"].get("deletionTimestamp"):
                return self._reply(200, res, obj, [])
            self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": name, **({"group": res.group} if res.group else {}),
                                         "kind": res.plural, "uid": obj["metadata"].get("uid")}})
            return 200
        # deletecollection
        options = self._json_body() or {}
        lst = reg.list(res, namespace or None, params.get("labelSelector", ""), params.get("fieldSelector", ""))
        for item in lst["items"]:
            try:
                reg.delete(res, item["metadata"].get("namespace", ""), item["metadata"]["name"], options,
                           dry_run=dry_run)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return self._reply(200, res, lst, [])

    def _watch(self, res: Resource, namespace: str, params: dict[str, str]) -> int:
        """Stream watch events (chunked, one JSON event per line) until timeout or hang-up."""
        reg = self.api.registry
        matches = reg.matcher(res, params.get("labelSelector", ""), params.get("fieldSelector", ""))
        prefix = reg.prefix(res, namespace or None)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        # The connection ends with the stream: say so, or a pooling client (urllib3) reuses the
        # closed socket for its next request and fails it with RemoteDisconnected.
        self.send_header("Connection", "close")
        self.end_headers()

        def emit(event: dict[str, Any]) -> None:
            data = (json.dumps(event) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        try:
            serve_watch(self.api.store, res, prefix, params, matches,
                        lambda: reg.list_objects(res, namespace or None), emit, self.connection)
        except StoreError as exc:
            emit({"type": "ERROR", "object": ApiError(500, "InternalError", str(exc)).status()})
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True
        return 200

    def _authorize_signer(self, user: rbac.User, res: Resource, namespace: str, name: str, verb: str) -> None:
        """Approving/signing a CSR also needs ``approve``/``sign`` on its signer (upstream admission)."""
        csr = self.api.registry.get(res, namespace, name)
        signer = (csr.get("spec") or {}).get("signerName", "")
        for candidate in (signer, signer.split("/", 1)[0] + "/*"):
            if self.api.allowed(rbac.Attributes(user, verb, True, group="certificates.k8s.io", resource="signers",
                                                name=candidate)):
                return
        raise ApiError(403, "Forbidden", f'certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: '
                       f'user not permitted to {verb} requests with signerName "{signer}"',
                       {"name": name, "group": "certificates.k8s.io", "kind": "certificatesigningrequests"})

    def _reply(self, code: int, res: Resource, body: dict[str, Any], warnings: list[str],
               table: list[dict[str, Any]] | None = None, list_meta: dict[str, Any] | None = None) -> int:
        accept = self.headers.get("Accept", "")
        if table is not None and "as=Table" in accept:
            meta = list_meta or {"resourceVersion": body.get("metadata", {}).get("resourceVersion", "")}
            self._send(code, to_table(res, table, meta), warnings)
        else:
            self._send(code, body, warnings)
        return code

    # -- reviews and token requests ---------------------------------------------------------
    def _review(self, method: str, group: str, version: str, rest: list[str], user: rbac.User) -> int:
        if len(rest) == 3:  # namespaces/<ns>/localsubjectaccessreviews
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        kind_by_name = {name: kind for g, v, name, kind, _ in REVIEWS if g == group and v == version}
        if rest[0] not in kind_by_name or method != "POST":
            raise ApiError(404 if rest[0] not in kind_by_name else 405, "NotFound" if rest[0] not in kind_by_name
                           else "MethodNotAllowed", "the server could not find the requested resource", {})
        self.api.authorize(rbac.Attributes(user, "create", True, group=group, resource=rest[0]))
        body = self._json_body() or {}
        kind = kind_by_name[rest[0]]
        if kind == "SelfSubjectReview":
            self._send(201, {"kind": kind, "apiVersion": f"{group}/{version}", "metadata": {"creationTimestamp": None},
                             "status": {"userInfo": {"username": user.name, "groups": list(user.groups),
                                                     **({"uid": user.uid} if user.uid else {})}}})
            return 201
        spec = body.get("spec") or {}
        if kind == "SubjectAccessReview":
            subject = rbac.User(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""))
            if not subject.name and not subject.groups:
                raise ApiError(422, "Invalid", 'SubjectAccessReview.authorization.k8s.io "" is invalid: '
                               "spec.user: Invalid value: \"\": at least one of user or group must be specified",
                               {"group": group, "kind": kind})
        else:
            subject = user
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if ra:
            attrs = rbac.Attributes(subject, ra.get("verb", ""), True, group=ra.get("group", ""),
                                    resource=ra.get("resource", ""), subresource=ra.get("subresource", ""),
                                    namespace=ra.get("namespace", ""), name=ra.get("name", ""))
        elif nra:
            attrs = rbac.Attributes(subject, nra.get("verb", ""), False, path=nra.get("path", ""))
        else:
            raise ApiError(422, "Invalid", f"{kind}.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: "
                           "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes "
                           "must be specified", {"group": group, "kind": kind})
        allowed = self.api.allowed(attrs)
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = "allowed by the stand-in's Node,RBAC authorizers"
        self._send(201, {"kind": kind, "apiVersion": f"{group}/{version}", "metadata": {"creationTimestamp": None},
                         "spec": spec, "status": status})
        return 201

    def _token_request(self, namespace: str, name: str, user: rbac.User) -> int:
        body = self._json_body() or {}
        sa = self.api.registry.get(self.api.resource("serviceaccounts"), namespace, name)
        if self.api.sa_signing_key is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        spec = body.get("spec") or {}
        ttl = int(spec.get("expirationSeconds") or 3600)
        if ttl < 600:
            raise ApiError(422, "Invalid", 'TokenRequest.authentication.k8s.io "" is invalid: '
                           "spec.expirationSeconds: Invalid value: %d: may not specify a duration less than 10 "
                           "minutes" % ttl, {"group": "authentication.k8s.io", "kind": "TokenRequest"})
        issuer = self.api._issuers()[0]
        audiences = spec.get("audiences") or [issuer]
        token, exp = auth.sign_sa_token(self.api.sa_signing_key, issuer, namespace, name, sa["metadata"]["uid"],
                                        ttl, audiences)
        self._send(201, {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                         "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
                         "spec": {"audiences": audiences, "expirationSeconds": ttl, "boundObjectRef": None},
                         "status": {"token": token, "expirationTimestamp": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}})
        return 201


class TLSServer(http.server.ThreadingHTTPServer):
    """Threaded HTTPS server doing the TLS handshake in the worker thread, not in accept()."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], handler: type[Handler], ctx: ssl.SSLContext) -> None:
        self.ssl_ctx = ctx
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            # An idle keep-alive connection is kept for 10 minutes: closing it sooner races with
            # clients that pool connections (urllib3 then fails a POST with RemoteDisconnected,
            # which it does not retry), and the real server does not close them that fast either.
            request.settimeout(600)
            # Headers and body go out in separate writes: without NODELAY, Nagle plus the
            # client's delayed ACK would add ~40 ms to every response.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake from %s failed: %s", client_address, exc)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def make_ssl_context(cfg: Config) -> ssl.SSLContext:
    """Server TLS with optional client certs verified against ``--client-ca-file``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg.tls_cert_file, cfg.tls_private_key_file)
    if cfg.client_ca_file:
        ctx.load_verify_locations(cfg.client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def serve(cfg: Config) -> TLSServer:
    """Bootstrap the store and return a bound (not yet serving) server."""
    api = StandinApiServer(cfg)
    handler = type("BoundHandler", (Handler,), {"api": api})
    host = cfg.bind_address or ("::" if ":" in cfg.advertise_address else "0.0.0.0")
    server = TLSServer((host, cfg.secure_port), handler, make_ssl_context(cfg))
    return server


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m tests.lab.standins.apiserver <kube-apiserver flags>``."""
    logging.basicConfig(level=os.environ.get("KUBEFAB_STANDIN_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    cfg = parse_flags(sys.argv[1:] if argv is None else argv)
    for flag in cfg.ignored:
        log.info("accepted and ignored flag %s", flag.split("=", 1)[0])
    missing = [n for n, v in (("--tls-cert-file", cfg.tls_cert_file), ("--tls-private-key-file",
                                                                         cfg.tls_private_key_file),
                              ("--etcd-servers", cfg.etcd_servers)) if not v]
    if missing:
        log.error("kube-apiserver stand-in needs %s", ", ".join(missing))
        return 2
    try:
        server = serve(cfg)
    except (OSError, ssl.SSLError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    api: StandinApiServer = server.RequestHandlerClass.api  # type: ignore[attr-defined]

    def bootstrap_loop() -> None:
        # Like the real server, keep serving (readyz false) until etcd answers, then bootstrap.
        while True:
            try:
                api.bootstrap()
                log.info("bootstrap policy in place")
                return
            except (StoreError, ApiError) as exc:
                log.warning("bootstrap waiting for etcd: %s", exc)
                threading.Event().wait(1.0)

    threading.Thread(target=bootstrap_loop, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("serving on %s:%d (etcd %s)", cfg.bind_address or "*", cfg.secure_port, ",".join(cfg.etcd_servers))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
