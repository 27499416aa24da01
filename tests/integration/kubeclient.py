"""A small JSON client for the Kubernetes REST API, for tests that look behind kubefab's back.

Tests use it to read what kubefab wrote, and to play "someone else" (the kubelet, the bootstrap
signer, another run) writing between kubefab's read and its write. It is deliberately not the
``kubernetes`` package kubefab itself uses: a bug in how kubefab drives that client must not be
hidden by the test's own reads going through the same code.

Also here: bootstrap-token helpers (``new_token``, ``token_secret``) that build objects as
kubeadm writes them.

Test infrastructure only: never imported by the shipped tool.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import secrets
import ssl
import string
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = [
    "ApiStatusError", "KubeClient", "Kubeconfig", "load_kubeconfig", "rfc3339", "new_token",
    "token_secret", "BOOTSTRAP_GROUP",
]


def rfc3339(t: dt.datetime) -> str:
    """Kubernetes' metav1.Time wire form: second precision, UTC, trailing ``Z``."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _raise_for(status: int, data: Any) -> None:
    if isinstance(data, dict):
        raise ApiStatusError(status, str(data.get("reason", "")), str(data.get("message", "")))
    raise ApiStatusError(status, "", str(data)[:300])


class KubeClient:
    """A minimal, thread-safe JSON client for the Kubernetes REST API.

    One persistent HTTPS connection per client (re-opened on failure); each request has a
    timeout so a test can never hang on a dead server.
    """

    def __init__(self, server: str, context: ssl.SSLContext, *, token: str | None = None,
                 timeout: float = 10.0, user_agent: str = "kubefab-tests") -> None:
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
            _raise_for(status, data)
        return data

    def get(self, path: str) -> dict[str, Any] | None:
        """GET an object; None when it does not exist."""
        status, data = self.request("GET", path)
        if status == 404:
            return None
        if status >= 300:
            _raise_for(status, data)
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
            _raise_for(status, data)
        return True


# ---------------------------------------------------------------------------- bootstrap tokens
BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> tuple[str, str]:
    """A random bootstrap token (id, secret) in kubeadm's format (reference §6)."""
    return ("".join(secrets.choice(_ALPHABET) for _ in range(6)),
            "".join(secrets.choice(_ALPHABET) for _ in range(16)))


def token_secret(token_id: str, token_secret_value: str, *, expires: dt.datetime | None,
                 usages: tuple[str, ...] = ("signing", "authentication"),
                 groups: str | None = BOOTSTRAP_GROUP, description: str | None = None) -> dict[str, Any]:
    """A bootstrap token Secret as kubeadm writes it (reference §6)."""
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    data = {"token-id": b64(token_id), "token-secret": b64(token_secret_value)}
    if expires is not None:
        data["expiration"] = b64(rfc3339(expires))
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = b64("true")
    if groups:
        data["auth-extra-groups"] = b64(groups)
    if description:
        data["description"] = b64(description)
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"}, "data": data}
