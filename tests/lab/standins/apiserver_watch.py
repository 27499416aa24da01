"""``?watch=true`` for the kube-apiserver stand-in, backed by etcd's own watch.

Stands in for kube-apiserver's watch (the binary cannot run here). As upstream: a watch
without ``resourceVersion`` (or ``0``) starts with an ADDED event per existing object, then
streams ADDED/MODIFIED/DELETED events from etcd (``/v3/watch`` on the gateway, from the
revision after the given one, so nothing between list and watch is lost); a compacted
revision yields an ERROR event with a 410 Expired Status; ``timeoutSeconds`` ends the stream.
Events are newline-delimited JSON ``{"type": ..., "object": ...}`` in a chunked response.
"""

from __future__ import annotations

import base64
import http.client
import json
import queue
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable

from .apiserver_resources import Resource
from .store import EtcdStore, StoreError, prefix_end

Emit = Callable[[dict[str, Any]], None]


class EtcdWatch:
    """One etcd watch stream read by a background thread into a queue."""

    def __init__(self, store: EtcdStore, prefix: str, start_revision: int) -> None:
        self.events: queue.Queue[dict[str, Any] | Exception] = queue.Queue()
        self._conn: http.client.HTTPConnection | None = None
        body = {"create_request": {"key": base64.b64encode(prefix.encode()).decode(),
                                   "range_end": base64.b64encode(prefix_end(prefix).encode()).decode(),
                                   "start_revision": str(start_revision), "prev_kv": True}}
        errors = []
        for ep in store.endpoints:
            try:
                conn = store.open_connection(ep, timeout=None)
                conn.request("POST", "/v3/watch", json.dumps(body), {"Content-Type": "application/json"})
                resp = conn.getresponse()
                if resp.status == 200:
                    self._conn, self._resp = conn, resp
                    break
                errors.append(f"{ep.geturl()}: HTTP {resp.status}")
                conn.close()
            except OSError as exc:
                errors.append(f"{ep.geturl()}: {exc}")
        if self._conn is None:
            raise StoreError("etcd watch unavailable: " + "; ".join(errors))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                line = self._resp.readline()
                if not line:
                    raise StoreError("etcd closed the watch stream")
                msg = json.loads(line)
                if "error" in msg:
                    raise StoreError(f"etcd watch error: {msg['error']}")
                self.events.put(msg.get("result") or {})
        except Exception as exc:  # noqa: BLE001 - handed to the serving thread, which decides
            self.events.put(exc)

    def close(self) -> None:
        """End the stream: shutting the socket down unblocks the reader thread's read (closing
        the response here would wait for the lock that blocked read holds)."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _obj(raw: dict[str, Any], rev: int) -> dict[str, Any]:
    data = json.loads(base64.b64decode(raw.get("value", "")))
    data.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return data


def translate(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """etcd watch events -> (type, object) pairs, as the real watch cache reports them."""
    out = []
    for ev in result.get("events") or []:
        kv = ev.get("kv") or {}
        mod = int(kv.get("mod_revision", 0))
        if ev.get("type") == "DELETE":
            prev = ev.get("prev_kv")
            if prev:
                out.append(("DELETED", _obj(prev, mod)))
        elif int(kv.get("create_revision", 0)) == mod:
            out.append(("ADDED", _obj(kv, mod)))
        else:
            out.append(("MODIFIED", _obj(kv, mod)))
    return out


def client_gone(sock: Any) -> bool:
    """True when the client closed its side (a watch client never sends more data)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    before = sock.gettimeout()
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ssl.SSLWantReadError):
        return False  # a TLS record without application data: still connected
    except OSError:
        return True
    finally:
        sock.settimeout(before)


def serve_watch(store: EtcdStore, res: Resource, prefix: str, params: dict[str, str],
                matches: Callable[[dict[str, Any]], bool], initial: Callable[[], tuple[list[dict[str, Any]], int]],
                emit: Emit, sock: Any) -> None:
    """Stream watch events for ``prefix`` until the timeout or the client leaves."""
    rv = params.get("resourceVersion", "")
    deadline = time.monotonic() + float(params.get("timeoutSeconds") or 1800)
    if rv in ("", "0") or params.get("sendInitialEvents") == "true":
        objs, rev = initial()
        for o in objs:
            if matches(o):
                emit({"type": "ADDED", "object": o})
        start = rev + 1
    else:
        try:
            start = int(rv) + 1
        except ValueError:
            emit({"type": "ERROR", "object": _status(400, "BadRequest", f"invalid resource version: {rv}")})
            return
    watch = EtcdWatch(store, prefix, start)
    try:
        while time.monotonic() < deadline:
            try:
                item = watch.events.get(timeout=0.5)
            except queue.Empty:
                if client_gone(sock):
                    return
                continue
            if isinstance(item, Exception):
                raise item
            if item.get("compact_revision") and int(item["compact_revision"]) >= start:
                emit({"type": "ERROR", "object": _status(
                    410, "Expired", f"too old resource version: {start - 1} ({item['compact_revision']})")})
                return
            for kind, obj in translate(item):
                if matches(obj):
                    obj.setdefault("apiVersion", res.group_version)
                    obj.setdefault("kind", res.kind)
                    emit({"type": kind, "object": obj})
    finally:
        watch.close()


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
