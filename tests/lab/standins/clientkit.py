"""Shared pieces of the controller-manager, scheduler and lab-kubelet stand-ins.

These stand in for kube-controller-manager, kube-scheduler and the kubelet's API side, binaries
these machines cannot run. This module holds what they share: a small HTTPS REST client built
from a kubeconfig (client certificates or bearer token, as client-go reads them), a pflag-style
flag parser that rejects unknown flags as the real binaries do, and the self-signed HTTPS health
server the real components expose (10257, 10259).

Test infrastructure only: never imported by the shipped tool.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import sys
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "ApiStatusError", "KubeClient", "Kubeconfig", "load_kubeconfig", "FlagError", "parse_flags",
    "HealthServer", "start_health_server", "utc_now", "rfc3339", "parse_rfc3339", "parse_go_duration",
]


# ---------------------------------------------------------------------------- time helpers
def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(t: dt.datetime) -> str:
    """Kubernetes' metav1.Time wire form: second precision, UTC, trailing ``Z``."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> dt.datetime:
    """Parse an RFC 3339 time as Go's time.RFC3339 does (``Z`` or a numeric offset).

    :raises ValueError: when the value is not RFC 3339.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None or "T" not in value.upper():
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    return parsed


def parse_go_duration(value: str) -> dt.timedelta:
    """A Go ``time.Duration`` string (``8760h0m0s``, ``90m``, ``1.5s``, ``250ms``).

    :raises ValueError: on anything else.
    """
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {value!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return dt.timedelta(seconds=sum(float(n) * scale[u] for n, u in parts))


# ---------------------------------------------------------------------------- kubeconfig
@dataclass(frozen=True)
class Kubeconfig:
    """The resolved current context of a kubeconfig: where to go and who to be."""

    path: str
    server: str
    ca_pem: bytes | None
    insecure: bool
    # Credentials stay out of repr(): a logged or raised Kubeconfig must not leak them.
    cert_pem: bytes | None = field(repr=False)
    key_pem: bytes | None = field(repr=False)
    token: str | None = field(repr=False)
    cluster_name: str = ""
    user_name: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: the cluster CA (or none when insecure) and the client cert."""
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem:
            ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        if self.cert_pem and self.key_pem:
            _load_cert_chain(ctx, self.cert_pem, self.key_pem)
        return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # The ssl module only loads client credentials from files: use a private temp file that is
    # unlinked right after loading, so no key material stays on disk.
    fd, name = tempfile.mkstemp(prefix=".kubefab-cred-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        ctx.load_cert_chain(name)
    finally:
        os.unlink(name)


def _named(items: Any, name: str, what: str, path: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise ValueError(f"{path}: {what} {name!r} not found")


def _read_ref(base: Path, data: str | None, file: str | None) -> bytes | None:
    if data:
        return base64.b64decode(data)
    if file:
        p = Path(file)
        return (p if p.is_absolute() else base / p).read_bytes()
    return None


def load_kubeconfig(path: str | os.PathLike[str]) -> Kubeconfig:
    """Resolve a kubeconfig's current context the way client-go does.

    Supports embedded ``*-data`` fields and file references (relative to the kubeconfig's
    directory), ``token`` and ``tokenFile``, ``insecure-skip-tls-verify``.

    :raises ValueError: when the file is not a usable kubeconfig.
    :raises OSError: when it or a file it references cannot be read.
    """
    path = str(path)
    base = Path(path).resolve().parent
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a kubeconfig")
    ctx_name = doc.get("current-context") or ""
    if not ctx_name:
        raise ValueError(f"{path}: no current-context")
    context = _named(doc.get("contexts"), ctx_name, "context", path)
    cluster_name = context.get("cluster", "")
    user_name = context.get("user", "")
    cluster = _named(doc.get("clusters"), cluster_name, "cluster", path)
    user = _named(doc.get("users"), user_name, "user", path) if user_name else {}
    server = cluster.get("server") or ""
    if not server.startswith("https://"):
        raise ValueError(f"{path}: cluster {cluster_name!r} has no https server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read_ref(base, None, user["tokenFile"]).decode().strip()  # type: ignore[union-attr]
    return Kubeconfig(
        path=path,
        server=server.rstrip("/"),
        ca_pem=_read_ref(base, cluster.get("certificate-authority-data"), cluster.get("certificate-authority")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_pem=_read_ref(base, user.get("client-certificate-data"), user.get("client-certificate")),
        key_pem=_read_ref(base, user.get("client-key-data"), user.get("client-key")),
        token=token or None,
        cluster_name=cluster_name,
        user_name=user_name,
    )


# ---------------------------------------------------------------------------- REST client
class ApiStatusError(Exception):
    """A non-2xx answer from the API server, with the Status reason kept for callers."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


class KubeClient:
    """A minimal, thread-safe JSON client for the Kubernetes REST API.

    One persistent HTTPS connection per client (re-opened on failure); each request has a
    timeout so a stand-in loop can never hang on a dead server.
    """

    def __init__(self, server: str, context: ssl.SSLContext, *, token: str | None = None,
                 timeout: float = 5.0, user_agent: str = "kubefab-lab-standin") -> None:
        url = urllib.parse.urlsplit(server)
        self.server = server
        self._host = url.hostname or ""
        self._port = url.port or 443
        self._prefix = url.path.rstrip("/")
        self._ctx = context
        self._token = token
        self._timeout = timeout
        self._agent = user_agent
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], **kwargs: Any) -> "KubeClient":
        cfg = load_kubeconfig(path)
        return cls(cfg.server, cfg.ssl_context(), token=cfg.token, **kwargs)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json",
                params: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON body or raw text)."""
        if params:
            path = path + "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json", "User-Agent": self._agent}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = http.client.HTTPSConnection(self._host, self._port, context=self._ctx,
                                                             timeout=self._timeout)
                try:
                    self._conn.request(method, self._prefix + path, body=payload, headers=headers)
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    status = resp.status
                    if resp.will_close:
                        self._conn.close()
                        self._conn = None
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # A kept-alive connection the server closed: retry once on a fresh one.
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
                except Exception:
                    self._conn.close()
                    self._conn = None
                    raise
        try:
            data: Any = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")
        return status, data

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Like :meth:`request` but raise :class:`ApiStatusError` on a non-2xx status."""
        status, data = self.request(method, path, body, **kwargs)
        if status >= 300:
            if isinstance(data, dict):
                raise ApiStatusError(status, str(data.get("reason", "")), str(data.get("message", "")))
            raise ApiStatusError(status, "", str(data)[:300])
        return data

    def get(self, path: str) -> dict[str, Any] | None:
        """GET an object; None when it does not exist."""
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if status >= 300:
            reason = data.get("reason", "") if isinstance(data, dict) else ""
            message = data.get("message", "") if isinstance(data, dict) else str(data)[:300]
            raise ApiStatusError(status, reason, message)
        return data

    def list(self, path: str, **params: str) -> list[dict[str, Any]]:
        data = self.call("GET", path, params=params or None)
        return list(data.get("items") or [])

    def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", path, obj)

    def replace(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", path, obj)

    def delete(self, path: str, *, uid: str | None = None, resource_version: str | None = None) -> bool:
        """DELETE with optional preconditions; False when already gone (or precondition failed)."""
        body = None
        if uid or resource_version:
            pre: dict[str, str] = {}
            if uid:
                pre["uid"] = uid
            if resource_version:
                pre["resourceVersion"] = resource_version
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": pre}
        status, data = self.request("DELETE", path, body)
        if status in (404, 409):
            return False
        if status >= 300:
            reason = data.get("reason", "") if isinstance(data, dict) else ""
            message = data.get("message", "") if isinstance(data, dict) else str(data)[:300]
            raise ApiStatusError(status, reason, message)
        return True


# ---------------------------------------------------------------------------- flags
class FlagError(Exception):
    """A command line the real binary would refuse (unknown flag, missing value)."""


def parse_flags(argv: Iterable[str], known: Mapping[str, bool], program: str) -> dict[str, str]:
    """Parse ``--name=value`` / ``--name value`` / ``--bool`` flags as spf13/pflag does.

    :param known: flag name -> True when it is a boolean flag.
    :returns: name -> value (last occurrence wins, as pflag does for scalar flags).
    :raises FlagError: for an unknown flag, a positional argument or a missing value; the real
        component exits with "unknown flag" in that case, so kubefab mistakes surface here too.
    """
    args = list(argv)
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--") or arg == "--":
            raise FlagError(f"{program}: unexpected argument {arg!r} (only --flags are accepted)")
        name, eq, value = arg[2:].partition("=")
        if name not in known:
            raise FlagError(f"{program}: unknown flag: --{name}")
        if not eq:
            if known[name]:
                value = "true"
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise FlagError(f"{program}: flag needs an argument: --{name}")
        if known[name] and value.lower() not in ("true", "false", "1", "0", "t", "f"):
            raise FlagError(f"{program}: invalid argument {value!r} for --{name}: not a boolean")
        out[name] = value
    return out


def flag_true(flags: Mapping[str, str], name: str, default: bool = False) -> bool:
    if name not in flags:
        return default
    return flags[name].lower() in ("true", "1", "t")


# ---------------------------------------------------------------------------- health server
def _self_signed(host: str) -> tuple[bytes, bytes]:
    """A self-signed serving cert like the one the real components make when given no
    --tls-cert-file: CN ``<host>@<unix time>``, SANs for the bind address and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = utc_now()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{int(now.timestamp())}")])
    sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for ip in {host, "127.0.0.1"}:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            sans.append(x509.DNSName(ip))
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class HealthServer:
    """An HTTPS server answering health paths with ``ok`` (200) or the failing check (500)."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_health_server(bind: str, port: int, checks: Mapping[str, Callable[[], str | None]],
                        log: logging.Logger) -> HealthServer:
    """Serve ``checks`` (path -> function returning None when healthy, else why) over HTTPS.

    :raises OSError: when the port cannot be bound (the real component exits then too).
    """
    host = bind if bind not in ("", "0.0.0.0", "::") else "0.0.0.0"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            path = urllib.parse.urlsplit(self.path).path
            check = checks.get(path)
            if check is None:
                code, body = 404, b"404 page not found\n"
            else:
                problem = check()
                code, body = (200, b"ok") if problem is None else (500, f"[-]{problem} failed\n".encode())
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("health: " + fmt, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        def handle_error(self, request: Any, client_address: Any) -> None:
            # One line, as Go's server logs "http: TLS handshake error from ...": a client that
            # rejects our self-signed certificate is normal, not a crash.
            log.info("http: TLS handshake error from %s: %s", client_address[0], sys.exc_info()[1])

    server = Server((host, port), Handler)
    cert_pem, key_pem = _self_signed(bind or "127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_cert_chain(ctx, cert_pem, key_pem)
    # Handshake in the handler thread, not in accept(): a silent client must not block others.
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name=f"health-{port}", daemon=True)
    thread.start()
    return HealthServer(server, thread)


def setup_logging(name: str, verbosity: str | None) -> logging.Logger:
    """klog-ish stderr logging; ``--v`` >= 4 turns on debug lines."""
    level = logging.DEBUG if verbosity and verbosity.isdigit() and int(verbosity) >= 4 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname).1s %(name)s] %(message)s")
    return logging.getLogger(name)


# Flags every Kubernetes control-plane component binary accepts (secure serving, delegated
# authn/authz, leader election, API client, logging, metrics): the stand-ins accept them as the
# real binaries do. True = a boolean flag (``--name`` alone is allowed).
GENERIC_COMPONENT_FLAGS: dict[str, bool] = {
    **{name: False for name in (
        "kubeconfig", "master", "authentication-kubeconfig", "authorization-kubeconfig", "bind-address",
        "secure-port", "cert-dir", "tls-cert-file", "tls-private-key-file", "tls-cipher-suites",
        "tls-min-version", "tls-sni-cert-key", "http2-max-streams-per-connection", "client-ca-file",
        "requestheader-client-ca-file", "requestheader-allowed-names", "requestheader-extra-headers-prefix",
        "requestheader-group-headers", "requestheader-username-headers", "requestheader-uid-headers",
        "authentication-token-webhook-cache-ttl", "authorization-always-allow-paths",
        "authorization-webhook-cache-authorized-ttl", "authorization-webhook-cache-unauthorized-ttl",
        "leader-elect-lease-duration", "leader-elect-renew-deadline", "leader-elect-resource-lock",
        "leader-elect-resource-name", "leader-elect-resource-namespace", "leader-elect-retry-period",
        "kube-api-burst", "kube-api-qps", "kube-api-content-type", "feature-gates", "v", "vmodule",
        "logging-format", "log-flush-frequency", "log-text-split-stream", "log-json-split-stream",
        "log-json-info-buffer-size", "log-text-info-buffer-size", "show-hidden-metrics-for-version",
        "allow-metric-labels", "allow-metric-labels-manifest", "disabled-metrics",
    )},
    **{name: True for name in (
        "leader-elect", "profiling", "contention-profiling", "authentication-skip-lookup",
        "authentication-tolerate-lookup-failure", "permit-address-sharing", "permit-port-sharing",
    )},
}
