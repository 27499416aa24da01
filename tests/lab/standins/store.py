"""etcd v3 storage for the kube-apiserver stand-in, through etcd's JSON gateway.

Stands in for the storage layer of kube-apiserver (a binary these machines cannot run). It
talks to the real etcd (3.4 serves the gateway at ``/v3/...``) over HTTPS with the
``--etcd-certfile``/``--etcd-keyfile`` client pair, like the real server. The
compatibility facts it protects: objects live at ``/registry/<resource>/<ns>/<name>``,
``metadata.resourceVersion`` is the etcd ``mod_revision``, create is a transaction on
``create_revision == 0`` and update one on ``mod_revision == <resourceVersion>``, so several
stand-ins sharing one etcd stay consistent.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any


class StoreError(Exception):
    """etcd could not be reached or answered with an error."""


@dataclass(frozen=True)
class KV:
    """One stored key: its raw value and etcd revisions."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int

    def obj(self) -> dict[str, Any]:
        """Decode the stored JSON object and stamp its resourceVersion."""
        data = json.loads(self.value)
        # resourceVersion = etcd mod_revision (what clients send back for compare-and-swap).
        data.setdefault("metadata", {})["resourceVersion"] = str(self.mod_revision)
        return data


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def prefix_end(prefix: str) -> str:
    """The etcd ``range_end`` covering every key that starts with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return raw.decode()


class EtcdStore:
    """A small etcd v3 client over the JSON gateway (range, txn, deleterange).

    :param endpoints: ``https://host:port`` URLs from ``--etcd-servers`` (tried in order).
    :param cafile: ``--etcd-cafile``; ``certfile``/``keyfile``: ``--etcd-certfile``/``--etcd-keyfile``.
    """

    def __init__(
        self,
        endpoints: list[str],
        *,
        cafile: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if not endpoints:
            raise StoreError("no --etcd-servers given")
        self.endpoints = [urllib.parse.urlsplit(e) for e in endpoints]
        self.timeout = timeout
        self._ctx: ssl.SSLContext | None = None
        if any(e.scheme == "https" for e in self.endpoints):
            # Without --etcd-cafile the real server trusts the system roots; so does this.
            # kubeadm's etcd server certs carry 127.0.0.1/::1 and the advertise address as IP
            # SANs, which is what the --etcd-servers URLs name.
            ctx = ssl.create_default_context(cafile=cafile or None)
            if certfile:
                ctx.load_cert_chain(certfile, keyfile)
            self._ctx = ctx
        self._local = threading.local()
        self._preferred = 0

    # -- transport -------------------------------------------------------------------------
    def open_connection(self, ep: urllib.parse.SplitResult, timeout: float | None) -> http.client.HTTPConnection:
        """A new connection to one endpoint (``timeout=None`` for long-lived watch streams)."""
        if ep.scheme == "https":
            return http.client.HTTPSConnection(ep.hostname, ep.port, timeout=timeout, context=self._ctx)
        return http.client.HTTPConnection(ep.hostname, ep.port, timeout=timeout)

    def _conn(self, idx: int) -> http.client.HTTPConnection:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(idx)
        if conn is None:
            conn = conns[idx] = self.open_connection(self.endpoints[idx], self.timeout)
        return conn

    def _drop(self, idx: int) -> None:
        conn = getattr(self._local, "conns", {}).pop(idx, None)
        if conn is not None:
            conn.close()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one gateway request, failing over across endpoints."""
        payload = json.dumps(body).encode()
        errors: list[str] = []
        order = list(range(self._preferred, len(self.endpoints))) + list(range(self._preferred))
        for idx in order:
            for attempt in range(2):  # a kept-alive connection may have been closed by etcd
                try:
                    conn = self._conn(idx)
                    conn.request("POST", path, payload, {"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    raw = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    self._drop(idx)
                    if attempt == 0:
                        continue
                    errors.append(f"{self.endpoints[idx].geturl()}: {exc}")
                    break
                if resp.status != 200:
                    errors.append(f"{self.endpoints[idx].geturl()}: HTTP {resp.status} {raw[:200]!r}")
                    break
                self._preferred = idx
                return json.loads(raw or b"{}")
        raise StoreError("etcd unavailable: " + "; ".join(errors))

    # -- operations ------------------------------------------------------------------------
    @staticmethod
    def _kv(raw: dict[str, Any]) -> KV:
        return KV(
            key=base64.b64decode(raw["key"]).decode(),
            value=base64.b64decode(raw.get("value", "")),
            mod_revision=int(raw.get("mod_revision", 0)),
            create_revision=int(raw.get("create_revision", 0)),
        )

    def get(self, key: str) -> KV | None:
        """Read one key (None when absent)."""
        out = self.call("/v3/kv/range", {"key": _b64(key)})
        kvs = out.get("kvs") or []
        return self._kv(kvs[0]) if kvs else None

    def list(self, prefix: str) -> tuple[list[KV], int]:
        """Read every key under ``prefix``; returns them and the store revision."""
        out = self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        rev = int(out.get("header", {}).get("revision", 0))
        return [self._kv(k) for k in out.get("kvs") or []], rev

    def revision(self) -> int:
        """The current store revision (what a list's resourceVersion reports)."""
        out = self.call("/v3/kv/range", {"key": _b64("/registry/health"), "count_only": True})
        return int(out.get("header", {}).get("revision", 0))

    def txn(
        self,
        compares: list[dict[str, Any]],
        puts: dict[str, bytes],
        deletes: list[str] = (),  # type: ignore[assignment]
    ) -> tuple[bool, int]:
        """Apply puts/deletes only if every compare holds; returns (succeeded, revision)."""
        success: list[dict[str, Any]] = [
            {"request_put": {"key": _b64(k), "value": _b64(v)}} for k, v in puts.items()
        ]
        success += [{"request_delete_range": {"key": _b64(k)}} for k in deletes]
        out = self.call("/v3/kv/txn", {"compare": compares, "success": success})
        # The gateway omits false booleans: a missing "succeeded" means the compare failed.
        return bool(out.get("succeeded")), int(out.get("header", {}).get("revision", 0))

    @staticmethod
    def absent(key: str) -> dict[str, Any]:
        """Compare: the key does not exist (create_revision == 0)."""
        return {"key": _b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": "0"}

    @staticmethod
    def unchanged(key: str, mod_revision: int) -> dict[str, Any]:
        """Compare: the key was last written at ``mod_revision``."""
        return {"key": _b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": str(mod_revision)}

    def create(self, key: str, value: bytes, extra_absent: dict[str, bytes] | None = None) -> tuple[bool, int]:
        """Put ``key`` (and ``extra_absent`` keys) only if none exists yet."""
        puts = {key: value, **(extra_absent or {})}
        return self.txn([self.absent(k) for k in puts], puts)

    def update(self, key: str, value: bytes, mod_revision: int) -> tuple[bool, int]:
        """Put ``key`` only if it is still at ``mod_revision``."""
        return self.txn([self.unchanged(key, mod_revision)], {key: value})

    def delete(self, key: str, mod_revision: int, also: list[str] = ()) -> bool:  # type: ignore[assignment]
        """Delete ``key`` (and ``also``) only if it is still at ``mod_revision``."""
        ok, _ = self.txn([self.unchanged(key, mod_revision)], {}, [key, *also])
        return ok

    def healthy(self) -> bool:
        """True when etcd answers a read."""
        try:
            self.revision()
            return True
        except StoreError:
            return False
