"""Plans: what a phase wants on a host, as data.

A phase never opens a connection; it returns a :class:`Plan` — an ordered list of steps:
:class:`FileWrite`, :class:`FileRemove`, :class:`Command`, :class:`ApiObject` and :class:`Wait`.
Dry-run prints or writes the plan; apply hands it to a transport (files, commands) and to the
API helper (objects). Secret contents are carried as :class:`~tasks.core.secrets.Secret` and
never appear in :func:`Plan.to_json` or :func:`render_plan` unless explicitly asked for.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Union

from .secrets import Secret


def _bytes(content: bytes | str | Secret) -> bytes:
    raw = content.reveal() if isinstance(content, Secret) else content
    return raw.encode() if isinstance(raw, str) else raw


@dataclass(frozen=True)
class FileWrite:
    """Write ``content`` to ``path`` atomically with ``mode`` (and create parents ``dir_mode``)."""

    path: str
    content: bytes | Secret
    mode: int = 0o644
    dir_mode: int = 0o755
    reason: str = ""

    @property
    def secret(self) -> bool:
        return isinstance(self.content, Secret)

    def data(self) -> bytes:
        return _bytes(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data()).hexdigest()

    def describe(self) -> str:
        return f"write {self.path} (mode {self.mode:04o}, {len(self.data())} bytes)"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "file", "path": self.path, "mode": f"{self.mode:04o}", "sha256": self.sha256,
                "size": len(self.data()), "secret": self.secret}


@dataclass(frozen=True)
class FileRemove:
    """Remove ``path`` (a file, or with ``recursive`` a directory's contents)."""

    path: str
    recursive: bool = False
    reason: str = ""

    def describe(self) -> str:
        return f"remove {self.path}" + (" (recursively)" if self.recursive else "")

    def to_json(self) -> dict[str, Any]:
        return {"kind": "remove", "path": self.path, "recursive": self.recursive}


@dataclass(frozen=True)
class Command:
    """Run ``argv`` on the host (no shell unless argv says so)."""

    argv: tuple[str, ...]
    description: str = ""
    ignore_failure: bool = False
    # skip when this path already exists on the host (ansible's ``creates``)
    creates: str = ""
    # run only when a file of the same plan changed (restart a service after new config)
    on_change: bool = False

    def describe(self) -> str:
        return "run " + shlex.join(self.argv) + (f"  # {self.description}" if self.description else "")

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": "command", "argv": list(self.argv), "description": self.description}
        if self.creates:
            entry["creates"] = self.creates
        if self.on_change:
            entry["on_change"] = True
        return entry


@dataclass(frozen=True)
class ApiObject:
    """Create or update one Kubernetes object (``obj`` is its full manifest as a dict).

    ``strategy``: ``apply`` (create or update to match), ``retain`` (create if missing, keep an
    existing one), ``merge`` (create, or update only the keys given, keeping others: cluster-info
    whose ``jws-kubeconfig-*`` keys belong to the controller manager), ``patch`` (add labels,
    annotations and taints to an existing object: the Node), ``cordon``, ``drain`` and ``delete``
    (reset's node removal: mark the Node unschedulable, evict its pods as ``drain`` says, delete
    it; an object already gone is unchanged; ``cordon`` also sets the object's annotations, and
    ``uncordon`` acts only on a Node that carries them and removes them: an upgrade's mark),
    ``kubeadm-certs`` (create the
    ``related`` owner token first, then the Secret; unchanged when ``compare`` says so).
    """

    obj: dict[str, Any]
    strategy: str = "apply"
    secret: bool = False
    # objects created first, when this one has to change (kubeadm-certs' owner token)
    related: tuple[dict[str, Any], ...] = ()
    # how to tell that the live object is already as wanted where the wanted bytes are not
    # comparable (AES-GCM ciphertext with a fresh nonce): data, read by tasks.api
    compare: "SameKubeadmCerts | None" = None
    # the node kubeconfig to retry with when the API answers 403 Forbidden (kubeadm creates
    # the kubeadm:cluster-admins binding with super-admin.conf when admin.conf has no rights yet)
    fallback_kubeconfig: str = ""
    # strategy "drain": kubectl drain's options (reset's node removal)
    drain: "DrainSpec | None" = None

    @property
    def api_version(self) -> str:
        return self.obj["apiVersion"]

    @property
    def kind(self) -> str:
        return self.obj["kind"]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.obj["metadata"].get("namespace", "")

    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"

    def describe(self) -> str:
        if self.drain is not None:
            d = self.drain
            opts = [o for o, on in (("--force", d.force), ("--delete-emptydir-data", d.delete_emptydir_data)) if on]
            opts.append(f"--timeout {int(d.timeout_seconds)}s" if d.timeout_seconds else "no timeout")
            return f"{self.strategy} {self.ref()} ({', '.join(opts)})"
        return f"{self.strategy} {self.ref()}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "api", "apiVersion": self.api_version, "objectKind": self.kind,
                "namespace": self.namespace, "name": self.name, "strategy": self.strategy}


@dataclass(frozen=True)
class DrainSpec:
    """kubectl drain's options: ``force`` deletes pods without a controller, ``timeout_seconds``
    bounds the whole drain (0: no limit); ``host`` prefixes its progress lines."""

    force: bool = False
    delete_emptydir_data: bool = False
    timeout_seconds: float = 0.0
    host: str = ""


@dataclass(frozen=True)
class SameKubeadmCerts:
    """The live ``kubeadm-certs`` Secret is as wanted when it decrypts with ``certificate_key``
    to files of these sha256 sums (relative path -> hex)."""

    certificate_key: Secret
    files_sha256: tuple[tuple[str, str], ...]
    external_etcd: bool = False


@dataclass(frozen=True)
class Wait:
    """Wait until ``check`` holds (``kubelet-healthz``, ``api-readyz``, ``etcd-healthy``...).

    ``on``: ``host`` polls ``target`` on the host itself (a loopback URL, or a file that must
    exist and not be empty); ``api`` polls the API server's ``target`` path from the operator
    machine through the API client. ``node-ready`` (``on="api"``, ``target`` a Node's path)
    waits for the Node's Ready condition, and for the kubelet version ``expect`` when given.
    """

    check: str
    target: str
    timeout: timedelta = timedelta(minutes=4)
    on: str = "host"
    expect: str = ""

    def describe(self) -> str:
        return f"wait for {self.check} {self.target} (up to {int(self.timeout.total_seconds())}s)"

    def to_json(self) -> dict[str, Any]:
        entry = {"kind": "wait", "check": self.check, "target": self.target,
                 "timeout_seconds": int(self.timeout.total_seconds())}
        if self.on != "host":
            entry["on"] = self.on
        if self.expect:
            entry["expect"] = self.expect
        return entry


@dataclass(frozen=True)
class Message:
    """Words for the operator once the host's plans are applied (kubeadm's closing words).

    ``text`` is a :class:`Secret` when it carries one (the join command with its token);
    ``stream`` is ``out`` (data: the join commands) or ``err`` (progress, warnings).
    """

    text: str | Secret
    stream: str = "err"
    reveal: bool = False
    description: str = ""

    def describe(self) -> str:
        return "print " + (self.description or (str(self.text).splitlines() or [""])[0])

    def to_json(self) -> dict[str, Any]:
        return {"kind": "message", "stream": self.stream, "description": self.description,
                "secret": isinstance(self.text, Secret)}


Step = Union[FileWrite, FileRemove, Command, ApiObject, Wait, Message]


@dataclass
class Plan:
    """The steps one phase wants on one host (``host`` is ``""`` for cluster-scope phases)."""

    phase: str
    host: str = ""
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *steps: Step) -> "Plan":
        self.steps.extend(steps)
        return self

    def files(self) -> list[FileWrite]:
        return [s for s in self.steps if isinstance(s, FileWrite)]

    @property
    def actions(self) -> list[Step]:
        """The steps that act on the host or the cluster (not the closing words)."""
        return [s for s in self.steps if not isinstance(s, Message)]

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "host": self.host, "steps": [s.to_json() for s in self.steps],
                "notes": list(self.notes)}


def render_plan(plans: Iterable[Plan], *, show_secrets: bool = False) -> str:
    """A readable listing of plans, secret file contents and objects redacted."""
    lines: list[str] = []
    for plan in plans:
        where = f"[{plan.host}] " if plan.host else ""
        lines.append(f"{where}[{plan.phase}]")
        for note in plan.notes:
            lines.append(f"    # {note}")
        for step in plan.steps:
            lines.append("    " + step.describe())
            if show_secrets and isinstance(step, FileWrite) and step.secret:
                lines.extend("      | " + ln for ln in step.data().decode(errors="replace").splitlines())
    return "\n".join(lines)


def plans_to_json(plans: Iterable[Plan]) -> str:
    """``plan.json``: per host, ordered steps; never secret values (only their sha256)."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for plan in plans:
        for step in plan.steps:
            entry = step.to_json()
            entry["phase"] = plan.phase
            by_host.setdefault(plan.host or "(cluster)", []).append(entry)
    return json.dumps({"hosts": by_host}, indent=2, sort_keys=True) + "\n"


# --- plans as plain data: JSON out and back -------------------------------------------------------
_TYPES = {cls.__name__: cls for cls in (FileWrite, FileRemove, Command, ApiObject, Wait, Message,
                                        SameKubeadmCerts, DrainSpec, Plan)}


def _encode(value: Any, reveal: bool) -> Any:
    import base64
    import dataclasses

    if isinstance(value, Secret):
        if not reveal:
            raw = value.reveal()
            digest = hashlib.sha256(raw.encode() if isinstance(raw, str) else raw).hexdigest()
            return {"$secret": value.kind, "sha256": digest}
        return {"$secret": value.kind, "value": _encode(value.reveal(), reveal)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, timedelta):
        return {"$seconds": value.total_seconds()}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, reveal) for v in value]}
    if isinstance(value, list):
        return [_encode(v, reveal) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v, reveal) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        return {"$type": type(value).__name__,
                **{f.name: _encode(getattr(value, f.name), reveal) for f in dataclasses.fields(value)}}
    return value


def _decode(value: Any) -> Any:
    import base64

    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$secret" in value:
        if "value" not in value:
            raise ValueError(f"a redacted {value['$secret']} cannot be read back (write the plan with reveal=True)")
        return Secret(_decode(value["value"]), kind=value["$secret"])
    if "$bytes" in value:
        return base64.b64decode(value["$bytes"])
    if "$seconds" in value:
        return timedelta(seconds=value["$seconds"])
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$type" in value:
        cls = _TYPES[value["$type"]]
        return cls(**{k: _decode(v) for k, v in value.items() if k != "$type"})
    return {k: _decode(v) for k, v in value.items()}


def plan_to_data(plans: Iterable[Plan], *, reveal: bool = False) -> list[dict[str, Any]]:
    """Plans as JSON-ready data, every step and field. Secret values are replaced by their
    sha256 unless ``reveal`` (then :func:`plan_from_data` gives back equal plans)."""
    return [_encode(p, reveal) for p in plans]


def plan_from_data(data: list[dict[str, Any]]) -> list[Plan]:
    """The inverse of :func:`plan_to_data` (``reveal=True``).

    :raises ValueError: on a redacted secret.
    """
    return [_decode(d) for d in data]
