"""Read kubeadm's own configuration files into the frozen model of :mod:`tasks.core.spec`.

A kubeadm config file is multi-document YAML: ``InitConfiguration``, ``ClusterConfiguration``,
``JoinConfiguration`` (``kubeadm.k8s.io/v1beta4``; ``v1beta3`` is converted first, as kubeadm
does, reference §11.8), plus the component configs ``KubeletConfiguration`` and
``KubeProxyConfiguration``, kept as plain dicts (the manifest renderer fills their defaults).

Loading follows kubeadm's rules: decoding is strict (an unknown field is an error naming it),
kubeadm's defaults are applied (§11), and the result is validated. Every problem found is
collected and reported in one :class:`~tasks.core.errors.ConfigError` whose ``details`` hold one
``"<file>: <field.path>: <problem>"`` line each, so a user fixes all of them in one pass.
Secret values (bootstrap tokens, the certificate key) become :class:`Secret` at load time and
are never echoed in a message.

The inverse direction, :func:`cluster_configuration_v1beta4` / :func:`render_cluster_configuration`,
produces what kubeadm uploads to the ``kubeadm-config`` ConfigMap (§5.2), and
:func:`parse_cluster_configuration` reads it back (also when real kubeadm wrote it).

Public API:

- :func:`load_config_text`, :func:`load_config_file`, :func:`default_config`
- :func:`cluster_configuration_v1beta4`, :func:`render_cluster_configuration`,
  :func:`parse_cluster_configuration`
- :func:`parse_go_duration`, :func:`format_go_duration`
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from . import constants as K
from .errors import ConfigError, KubefabError
from .secrets import Secret
from .spec import (
    APIEndpoint,
    APIServer,
    Arg,
    BootstrapToken,
    ClusterConfiguration,
    ControlPlaneComponent,
    Discovery,
    DNS,
    EnvVar,
    ExternalEtcd,
    HostPathMount,
    InitConfiguration,
    JoinConfiguration,
    JoinControlPlane,
    KubeadmConfig,
    LocalEtcd,
    Networking,
    NodeRegistration,
    Taint,
    Timeouts,
)
from .versions import for_version, normalize_version
from .yamlload import Document, load_documents, read_file, shown

__all__ = [
    "KUBEADM_GROUP",
    "SUPPORTED_KUBEADM_VERSIONS",
    "load_config_text",
    "load_config_file",
    "default_config",
    "cluster_configuration_v1beta4",
    "render_cluster_configuration",
    "parse_cluster_configuration",
    "parse_go_duration",
    "format_go_duration",
    "render_yaml",
    "split_endpoint",
    "is_ip",
    "is_dns1123_subdomain",
]

KUBEADM_GROUP = "kubeadm.k8s.io"
V1BETA4 = f"{KUBEADM_GROUP}/v1beta4"
V1BETA3 = f"{KUBEADM_GROUP}/v1beta3"
SUPPORTED_KUBEADM_VERSIONS = (V1BETA4, V1BETA3)
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY_API = "kubeproxy.config.k8s.io/v1alpha1"

# kind -> the apiVersions kubefab reads it in. Reset/Upgrade are kubeadm kinds of other
# commands: accepted (kubeadm accepts them in the same file) and kept as plain dicts.
_KINDS: dict[str, tuple[str, ...]] = {
    "InitConfiguration": (V1BETA4, V1BETA3),
    "ClusterConfiguration": (V1BETA4, V1BETA3),
    "JoinConfiguration": (V1BETA4, V1BETA3),
    "ResetConfiguration": (V1BETA4,),
    "UpgradeConfiguration": (V1BETA4,),
    "KubeletConfiguration": (KUBELET_API,),
    "KubeProxyConfiguration": (KUBE_PROXY_API,),
}


def _supported_text() -> str:
    return "; ".join(f"{kind} ({', '.join(apis)})" for kind, apis in _KINDS.items())


# --- formats ---------------------------------------------------------------------------------
# Bootstrap token format, cluster-bootstrap's BootstrapTokenPattern (reference §6).
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
# auth-extra-groups entries, cluster-bootstrap's BootstrapGroupPattern (reference §6).
TOKEN_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
TOKEN_USAGES = ("signing", "authentication")
CERTIFICATE_KEY_RE = re.compile(r"^[0-9a-fA-F]{64}$")  # AES-256 key, hex (reference §8.1)
CA_CERT_HASH_RE = re.compile(r"^sha256:[0-9a-fA-F]{64}$", re.I)  # discovery pins (§7.1)
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                    "CharDevice", "BlockDevice")


def is_dns1123_subdomain(text: str) -> bool:
    """RFC-1123 subdomain as Kubernetes validates it (lower case, at most 253 characters)."""
    return 0 < len(text) <= 253 and bool(_DNS1123_SUBDOMAIN.match(text))


def is_ip(text: str) -> bool:
    """An IPv4 or IPv6 address as Go's net.ParseIP reads it: no IPv6 zone (``fe80::1%eth0``)."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _san_ok(text: str) -> bool:
    # kubeadm's ValidateCertSANs: an IP, a DNS-1123 subdomain or a wildcard subdomain.
    return is_ip(text) or is_dns1123_subdomain(text) or (
        text.startswith("*.") and is_dns1123_subdomain(text[2:]))


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """Split ``host[:port]`` (IPv6 in brackets, or a bare IPv6 address) into host and port."""
    if endpoint.startswith("["):
        host, sep, rest = endpoint[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else rest
    if endpoint.count(":") == 1:
        host, port = endpoint.split(":")
        return host, port
    return endpoint, ""


# --- Go durations ------------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9,
            "m": 60 * 10**9, "h": 3600 * 10**9}


# Go's time.Duration is an int64 of nanoseconds: ParseDuration refuses anything longer (~292 years)
MAX_DURATION_NS = (1 << 63) - 1


def parse_go_duration(text: str) -> timedelta:
    """Parse a Go ``time.Duration`` string (``"8760h"``, ``"4m0s"``, ``"1h30m"``, ``"1.5s"``).

    kubeadm's duration fields are ``metav1.Duration``, which only accept this form, and hold at
    most Go's ``int64`` nanoseconds (about 292 years), as here.

    :raises ValueError: when ``text`` is not a Go duration, or is out of that range.
    """
    raw = text.strip()
    sign = -1 if raw.startswith("-") else 1
    body = raw[1:] if raw[:1] in "+-" else raw
    if body == "0":
        return timedelta(0)
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, Fraction(0)
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            break
        whole, _, frac = m.group(1).partition(".")
        if len(whole.lstrip("0")) > 19:  # more than any int64 holds (Go: "invalid duration")
            raise ValueError(f"duration {text[:40]!r} is out of range")
        # Go ignores fraction digits past its precision; so do we (and never parse thousands)
        total += (Fraction(int(whole or "0")) + Fraction(f"0.{frac[:20] or '0'}")) * _UNIT_NS[m.group(2)]
        if total > MAX_DURATION_NS:
            raise ValueError(f"duration {text[:40]!r} is out of range")
        pos = m.end()
    if pos != len(body):
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(microseconds=round(sign * total / 1000))


def format_go_duration(value: timedelta) -> str:
    """Format like Go's ``Duration.String()``: ``8760h0m0s``, ``4m0s``, ``30s``, ``1.5s``, ``500ms``.

    This is how kubeadm serializes durations in ``kubeadm-config`` (reference §5.2).
    """
    us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    if us == 0:
        return "0s"
    sign, us = ("-", -us) if us < 0 else ("", us)
    if us < 1_000_000:
        if us < 1_000:
            return f"{sign}{us}µs"
        return f"{sign}{_frac(us, 1_000)}ms"
    hours, rest = divmod(us, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = _frac(rest, 1_000_000)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _frac(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# --- YAML (bounded; duplicate keys are errors) ---------------------------------------------------
def _load_documents(text: str, source: str, issues: list[str]) -> list[Document]:
    """The file's documents; a file that cannot be read adds its problem(s) to ``issues``."""
    try:
        return load_documents(text, source=source)
    except ConfigError as exc:
        issues.extend(exc.details or [exc.problem])
        return []


# --- field reader (collects problems) ------------------------------------------------------------
_MISSING = object()


class _Reader:
    """Typed access to a YAML mapping that records every problem under its field path."""

    def __init__(self, source: str, issues: list[str], *, inline_source: str = "",
                 inline_paths: Iterable[str] = ()) -> None:
        self.source = source
        self.issues = issues
        self.inline_source = inline_source
        self.inline_paths = tuple(inline_paths)

    def err(self, path: str, problem: str) -> None:
        for p in self.inline_paths:
            if path == p or path.startswith(p + ".") or path.startswith(p + "["):
                # a value given inline in the inventory's ``cluster:`` section
                self.issues.append(f"{self.inline_source}: cluster{path[len('ClusterConfiguration'):]}: {problem}")
                return
        self.issues.append(f"{self.source}: {path}: {problem}")

    # structure
    def mapping(self, value: Any, path: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping, got {_type_name(value)}")
            return {}
        return value

    def fields(self, node: Mapping, path: str, allowed: Iterable[str]) -> None:
        known = tuple(allowed)
        for key in node:
            if key not in known:
                self.err(f"{path}.{key}", f"unknown field {str(key)!r} ({suggest(str(key), known)})")

    def sub(self, node: Mapping, key: str, path: str, allowed: Iterable[str]) -> dict:
        child = self.mapping(node.get(key), f"{path}.{key}")
        self.fields(child, f"{path}.{key}", allowed)
        return child

    # scalars
    def string(self, node: Mapping, key: str, path: str, default: str = "", *, secret: bool = False) -> str:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str):
            echo = "" if secret else f" {shown(value)}"  # a credential is never echoed
            self.err(f"{path}.{key}", f"must be a string, got {_type_name(value)}{echo} (quote it)")
            return default
        return value

    def boolean(self, node: Mapping, key: str, path: str, default: bool = False) -> bool:
        value = node.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.err(f"{path}.{key}", f"must be true or false, got {_type_name(value)}")
            return default
        return value

    def integer(self, node: Mapping, key: str, path: str, default: int) -> int:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(f"{path}.{key}", f"must be an integer, got {_type_name(value)}")
            return default
        return value

    def strings(self, node: Mapping, key: str, path: str) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.err(f"{path}.{key}", f"must be a list of strings, got {_type_name(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.err(f"{path}.{key}[{i}]", f"must be a string, got {_type_name(item)}")
        return tuple(out)

    def duration(self, node: Mapping, key: str, path: str, default: timedelta | None) -> timedelta | None:
        value = node.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.err(f"{path}.{key}", f"must be a duration string such as \"8760h\", \"4m0s\" or \"1h30m\", "
                                      f"got {_type_name(value)} {shown(value)}")
            return default
        try:
            parsed = parse_go_duration(value)
        except ValueError as exc:
            if "out of range" in str(exc):
                self.err(f"{path}.{key}", f"duration {shown(value)} is out of range: Go durations hold at most "
                                          f"2562047h (about 292 years)")
            else:
                self.err(f"{path}.{key}", f"invalid duration {shown(value)}: use Go form such as \"8760h\", "
                                          f"\"4m0s\" or \"1h30m\"")
            return default
        if parsed < timedelta(0):
            self.err(f"{path}.{key}", f"duration {value!r} must not be negative")
            return default
        return parsed

    def args(self, node: Mapping, key: str, path: str) -> tuple[Arg, ...]:
        """v1beta4 ``extraArgs``: a list of ``{name, value}`` (duplicates allowed, order kept)."""
        value = node.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            hint = " (v1beta4 uses a list of {name, value}; maps are v1beta3)" if isinstance(value, dict) else ""
            self.err(f"{path}.{key}", f"must be a list of {{name, value}}, got {_type_name(value)}{hint}")
            return ()
        out = []
        for i, item in enumerate(value):
            p = f"{path}.{key}[{i}]"
            item = self.mapping(item, p)
            self.fields(item, p, ("name", "value"))
            name = self.string(item, "name", p)
            if not name:
                self.err(f"{p}.name", "required")
                continue
            if name.startswith("-"):
                self.err(f"{p}.name", f"give the flag name without leading dashes ({name.lstrip('-')!r})")
            out.append(Arg(name, self.string(item, "value", p)))
        return tuple(out)


def suggest(key: str, known: Iterable[str]) -> str:
    """``did you mean 'x'?`` for a near miss, else the list of known names."""
    names = [k for k in known if k not in ("apiVersion", "kind")]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(names)}"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, datetime):
        return "timestamp"
    return type(value).__name__


# --- v1beta3 -> v1beta4 conversion (reference §11.8) ---------------------------------------------
_V1BETA4_ONLY: dict[str, tuple[str, ...]] = {
    # kind -> dotted paths that v1beta3 does not have (an error when given in a v1beta3 file)
    "ClusterConfiguration": ("encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod",
                             "proxy", "dns.disabled", "apiServer.extraEnvs", "controllerManager.extraEnvs",
                             "scheduler.extraEnvs", "etcd.local.extraEnvs", "etcd.external.httpEndpoints"),
    "InitConfiguration": ("dryRun", "timeouts", "nodeRegistration.imagePullSerial"),
    "JoinConfiguration": ("dryRun", "timeouts", "nodeRegistration.imagePullSerial"),
}


def _dig(doc: Any, dotted: str) -> tuple[dict | None, str]:
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), parts[-1]


def _map_to_args(value: Any, path: str, r: _Reader) -> Any:
    """v1beta3 ``extraArgs`` map -> v1beta4 list, sorted by name as kubeadm's converter does."""
    if value is None:
        return None
    if not isinstance(value, dict):
        r.err(path, f"must be a mapping of flag name to value in v1beta3, got {_type_name(value)}")
        return None
    out = []
    for name in sorted(value, key=str):
        v = value[name]
        if not isinstance(v, str):
            r.err(f"{path}.{name}", f"must be a string, got {_type_name(v)} {shown(v)} (quote it)")
            continue
        out.append({"name": str(name), "value": v})
    return out


def _convert_v1beta3(kind: str, doc: dict, r: _Reader, extra: dict[str, Any]) -> dict:
    """Turn a v1beta3 document into its v1beta4 form; moved values land in ``extra``."""
    doc = _deepcopy(doc)
    for dotted in _V1BETA4_ONLY.get(kind, ()):
        parent, leaf = _dig(doc, dotted)
        if parent is not None and leaf in parent:
            r.err(f"{kind}.{dotted}", f"unknown field {leaf!r} in {V1BETA3} (it exists only in {V1BETA4})")
            parent.pop(leaf)
    if kind == "ClusterConfiguration":
        for comp in ("apiServer", "controllerManager", "scheduler"):
            c = doc.get(comp)
            if isinstance(c, dict) and "extraArgs" in c:
                c["extraArgs"] = _map_to_args(c["extraArgs"], f"{kind}.{comp}.extraArgs", r)
        etcd = doc.get("etcd")
        local = etcd.get("local") if isinstance(etcd, dict) else None
        if isinstance(local, dict) and "extraArgs" in local:
            local["extraArgs"] = _map_to_args(local["extraArgs"], f"{kind}.etcd.local.extraArgs", r)
        api = doc.get("apiServer")
        if isinstance(api, dict) and "timeoutForControlPlane" in api:
            # v1beta3 apiServer.timeoutForControlPlane -> {Init,Join}Configuration.timeouts
            value = api.pop("timeoutForControlPlane")
            if value is not None:
                got = r.duration({"timeoutForControlPlane": value}, "timeoutForControlPlane",
                                 f"{kind}.apiServer", None)
                if got is not None:
                    extra["controlPlaneComponentHealthCheck"] = got
        gates = doc.get("featureGates")
        if isinstance(gates, dict) and "PublicKeysECDSA" in gates:
            # v1beta3's PublicKeysECDSA gate became encryptionAlgorithm ECDSA-P256
            if gates.pop("PublicKeysECDSA") is True:
                doc["encryptionAlgorithm"] = "ECDSA-P256"
            if not gates:
                doc.pop("featureGates")
    if kind in ("InitConfiguration", "JoinConfiguration"):
        reg = doc.get("nodeRegistration")
        if isinstance(reg, dict) and "kubeletExtraArgs" in reg:
            reg["kubeletExtraArgs"] = _map_to_args(reg["kubeletExtraArgs"], f"{kind}.nodeRegistration.kubeletExtraArgs", r)
    if kind == "JoinConfiguration":
        disc = doc.get("discovery")
        if isinstance(disc, dict) and "timeout" in disc:
            # v1beta3 discovery.timeout -> JoinConfiguration.timeouts.discovery
            value = disc.pop("timeout")
            if value is not None:
                got = r.duration({"timeout": value}, "timeout", f"{kind}.discovery", None)
                if got is not None:
                    extra["discovery"] = got
    return doc


def _deepcopy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value


def _merge(base: dict, over: Mapping, prefix: str, paths: list[str]) -> dict:
    """Deep-merge ``over`` onto ``base`` (mappings merge, anything else replaces); record leaves."""
    out = dict(base)
    for key, value in over.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, path, paths)
        else:
            out[key] = _deepcopy(value)
            paths.append(path)
    return out


# --- ClusterConfiguration ----------------------------------------------------------------------
_CLUSTER_FIELDS = ("apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint",
                   "apiServer", "controllerManager", "scheduler", "dns", "proxy", "certificatesDir",
                   "imageRepository", "featureGates", "clusterName", "encryptionAlgorithm",
                   "certificateValidityPeriod", "caCertificateValidityPeriod")
_COMPONENT_FIELDS = ("extraArgs", "extraVolumes", "extraEnvs")


def _read_envs(r: _Reader, node: Mapping, path: str) -> tuple[EnvVar, ...]:
    value = node.get("extraEnvs")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.err(f"{path}.extraEnvs", f"must be a list of {{name, value}}, got {_type_name(value)}")
        return ()
    out = []
    for i, item in enumerate(value):
        p = f"{path}.extraEnvs[{i}]"
        item = r.mapping(item, p)
        if "valueFrom" in item:
            r.err(f"{p}.valueFrom", "not supported by kubefab (static pods get literal values); use value")
        r.fields({k: v for k, v in item.items() if k != "valueFrom"}, p, ("name", "value"))
        name = r.string(item, "name", p)
        if not name:
            r.err(f"{p}.name", "required")
            continue
        out.append(EnvVar(name, r.string(item, "value", p)))
    return tuple(out)


def _read_volumes(r: _Reader, node: Mapping, path: str) -> tuple[HostPathMount, ...]:
    value = node.get("extraVolumes")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.err(f"{path}.extraVolumes", f"must be a list, got {_type_name(value)}")
        return ()
    out = []
    for i, item in enumerate(value):
        p = f"{path}.extraVolumes[{i}]"
        item = r.mapping(item, p)
        r.fields(item, p, ("name", "hostPath", "mountPath", "readOnly", "pathType"))
        name, host_path, mount_path = (r.string(item, k, p) for k in ("name", "hostPath", "mountPath"))
        for key, got in (("name", name), ("hostPath", host_path), ("mountPath", mount_path)):
            if not got:
                r.err(f"{p}.{key}", "required")
        path_type = r.string(item, "pathType", p)
        if path_type not in _HOST_PATH_TYPES:
            r.err(f"{p}.pathType", f"unknown pathType {path_type!r} (one of: {', '.join(t for t in _HOST_PATH_TYPES if t)})")
        out.append(HostPathMount(name, host_path, mount_path, r.boolean(item, "readOnly", p), path_type))
    return tuple(out)


def _read_component(r: _Reader, node: Mapping, key: str, path: str) -> ControlPlaneComponent:
    c = r.sub(node, key, path, _COMPONENT_FIELDS)
    p = f"{path}.{key}"
    return ControlPlaneComponent(r.args(c, "extraArgs", p), _read_volumes(r, c, p), _read_envs(r, c, p))


def _check_sans(r: _Reader, values: tuple[str, ...], path: str) -> None:
    for i, san in enumerate(values):
        if not _san_ok(san):
            r.err(f"{path}[{i}]", f"{san!r} is not an IP address, a DNS-1123 subdomain or a wildcard (*.example.com)")


def _check_absolute(r: _Reader, value: str, path: str) -> None:
    if value and not value.startswith("/"):
        r.err(path, f"{value!r} must be an absolute path")


# kubeadm constants: MinimumAddressesInServiceSubnet, MinimumAddressesInPodSubnet,
# PodSubnetNodeMaskMaxDiff; default node CIDR masks of kube-controller-manager
MIN_SERVICE_SUBNET_ADDRESSES = 10
MIN_POD_SUBNET_ADDRESSES = 254
POD_SUBNET_NODE_MASK_MAX_DIFF = 16
DEFAULT_NODE_MASK = {4: 24, 6: 64}

# image references as the container "reference" grammar has them (domain[:port]/path...)
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_NAME_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*$")


def _check_image_repository(r: _Reader, value: str, path: str) -> None:
    # kubeadm ValidateImageRepository: "<repo>/name:tag" must be a valid image reference
    if value and not _IMAGE_NAME_RE.match(value + "/name"):
        r.err(path, f"{value!r} is not a valid image repository (e.g. registry.k8s.io or registry.example.com:5000/k8s)")


def _check_pod_subnet_node_mask(r: _Reader, value: str, path: str, controller_manager: ControlPlaneComponent) -> None:
    """kubeadm ValidatePodSubnetNodeMask: the pod subnet must hold whole node subnets."""
    args = {a.name: a.value for a in controller_manager.extra_args}  # last one wins, as flags do
    if args.get("allocate-node-cidrs") == "false":
        return
    for part in value.split(","):
        try:
            net = ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            return  # already reported
        flag = f"node-cidr-mask-size-ipv{net.version}"
        raw = args.get(flag)
        if raw is None:
            node_mask = DEFAULT_NODE_MASK[net.version]
        elif raw.isdigit():
            node_mask = int(raw)
        else:
            r.err("ClusterConfiguration.controllerManager.extraArgs", f"{flag} {raw!r} is not an integer")
            continue
        if net.prefixlen > node_mask:
            r.err(path, f"{part.strip()}: the pod subnet (/{net.prefixlen}) is smaller than one node's subnet "
                        f"(/{node_mask}, kube-controller-manager {flag})")
        elif node_mask - net.prefixlen > POD_SUBNET_NODE_MASK_MAX_DIFF:
            r.err(path, f"{part.strip()}: the pod subnet mask /{net.prefixlen} and the node mask /{node_mask} "
                        f"differ by more than {POD_SUBNET_NODE_MASK_MAX_DIFF} (set {flag} in controllerManager.extraArgs)")


# one CIDR as Go's net.ParseCIDR takes it: <address>/<prefix length>, nothing around it
_CIDR_RE = re.compile(r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$")


def _check_cidrs(r: _Reader, value: str, path: str, *, service: bool) -> bool:
    """kubeadm ValidateIPNetFromString (+ ValidateServiceSubnetSize); True when the value is usable."""
    parts = value.split(",")
    nets: list[tuple[str, Any]] = []
    for part in parts:
        if part != part.strip():
            # kubeadm splits on "," and parses each piece as it is; so do the control-plane flags
            r.err(path, f"{value!r}: no spaces around the ',' between CIDRs (write {','.join(p.strip() for p in parts)!r})")
            continue
        if "/" not in part and is_ip(part):
            r.err(path, f"{part!r} is an address, not a CIDR: add the prefix length (e.g. 10.96.0.0/12)")
            continue
        try:
            if not _CIDR_RE.match(part):
                raise ValueError(part)
            # kubeadm parses sloppily (host bits may be set), like Go's net.ParseCIDR
            nets.append((part, ipaddress.ip_network(part, strict=False)))
        except ValueError:
            r.err(path, f"{part!r} is not a valid CIDR (e.g. 10.96.0.0/12)")
    if len(nets) != len(parts):
        return False
    if len(nets) > 2 or (len(nets) == 2 and nets[0][1].version == nets[1][1].version):
        r.err(path, f"{value!r}: give one CIDR, or two of different IP families for dual-stack")
        return False
    ok = True
    minimum = MIN_SERVICE_SUBNET_ADDRESSES if service else MIN_POD_SUBNET_ADDRESSES
    for text, net in nets:
        # kubeadm ValidateIPNetFromString: room for the service IPs kubeadm picks (.1, .10)
        if net.num_addresses < minimum:
            what = "service" if service else "pod"
            r.err(path, f"{text} is too small: a {what} subnet needs at least {minimum} addresses")
            ok = False
        # kube-apiserver's service CIDR limit (kubeadm ValidateServiceSubnetSize): at most
        # 20 host bits (/12 IPv4, /108 IPv6)
        elif service and net.max_prefixlen - net.prefixlen > 20:
            limit = "/12" if net.version == 4 else "/108"
            r.err(path, f"{text} is too large: the service subnet can be at most {limit}")
            ok = False
    return ok


def _check_endpoint(r: _Reader, value: str, path: str, *, what: str, require_port: bool = False) -> None:
    """kubeadm ParseHostPort (``host[:port]``); ``require_port`` as net.SplitHostPort (``host:port``)."""
    if value.startswith("[") and "]" not in value:
        r.err(path, f"{what} {value!r} has an unclosed '['")
        return
    host, port = split_endpoint(value)
    if not (is_ip(host) or is_dns1123_subdomain(host)):
        r.err(path, f"{what} host {host!r} must be an IP address or a DNS-1123 subdomain (lower case)")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        r.err(path, f"{what} port {port!r} must be a number from 1 to 65535")
    elif not port:
        if require_port:
            r.err(path, f"{what} {value!r} has no port: give host:port, with an IPv6 address in brackets "
                        f"(192.0.2.10:6443, [2001:db8::10]:6443)")
        elif value.startswith("[") and value.endswith("]"):
            # kubeadm reads "[addr]" without a port as a host name, which it is not
            r.err(path, f"{what} {value!r}: an IPv6 address in brackets needs a port ({value}:6443); "
                        f"without a port write it bare ({host})")


# kubeadm's own feature gates (features.InitFeatureGates) that its validation accepts, per minor.
# A deprecated gate counts as unknown there: PublicKeysECDSA (v1beta3 only; kubefab converts it).
_KUBEADM_FEATURE_GATES: dict[int, tuple[str, ...]] = {
    33: ("ControlPlaneKubeletLocalMode", "NodeLocalCRISocket", "RootlessControlPlane",
         "WaitForAllControlPlaneComponents"),
    34: ("ControlPlaneKubeletLocalMode", "NodeLocalCRISocket", "RootlessControlPlane",
         "WaitForAllControlPlaneComponents"),
    35: ("ControlPlaneKubeletLocalMode", "NodeLocalCRISocket", "RootlessControlPlane"),
    36: ("NodeLocalCRISocket", "RootlessControlPlane"),
}
# gate -> the first minor in which the feature is GA and always on (true accepted, false refused)
_KUBEADM_GATES_REMOVED = {"EtcdLearnerMode": 33, "WaitForAllControlPlaneComponents": 35,
                          "ControlPlaneKubeletLocalMode": 36}
# gate values kubeadm accepts but kubefab does not implement: the cluster would silently differ
_KUBEFAB_UNSUPPORTED_GATES = {
    ("RootlessControlPlane", True): "kubefab runs the control-plane static Pods as root (kubeadm's default)",
    ("ControlPlaneKubeletLocalMode", False): "kubefab always points a control plane's kubelet at its local "
                                             "API server (kubeadm's default since v1.33)",
}


def _check_feature_gates(r: _Reader, gates: Iterable[tuple[str, bool]], path: str, version: str) -> None:
    """kubeadm ValidateFeatureGates: only kubeadm's own gates, by name, for the chosen version."""
    minor = for_version(version).minor
    known = _KUBEADM_FEATURE_GATES.get(minor, ())
    for name, value in gates:
        p = f"{path}.{name}"
        if name not in known:
            if name == "PublicKeysECDSA":
                r.err(p, "not accepted in v1beta4 (kubeadm deprecated it); set encryptionAlgorithm: ECDSA-P256 "
                         "instead")
            elif minor >= _KUBEADM_GATES_REMOVED.get(name, 1 << 30):
                # GA: kubeadm keeps such a gate locked on for a while before deleting it, so
                # "true" is accepted (it changes nothing); "false" cannot be honoured
                if value is not True:
                    r.err(p, f"the feature is always on in kubeadm v1.{minor} (the gate went GA); remove the gate")
            else:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
                hint = f"did you mean {close[0]!r}?" if close else f"kubeadm v1.{minor} knows: {', '.join(known)}"
                r.err(p, f"unknown kubeadm feature gate {name!r} ({hint}); gates of the Kubernetes components "
                         f"go in their extraArgs (feature-gates) or the KubeletConfiguration")
        elif (name, value) in _KUBEFAB_UNSUPPORTED_GATES:
            r.err(p, f"{str(value).lower()} is not supported: {_KUBEFAB_UNSUPPORTED_GATES[(name, value)]}; "
                     f"remove the gate")


def _read_cluster(r: _Reader, doc: Mapping, path: str = "ClusterConfiguration", *,
                  from_cluster: bool = False) -> ClusterConfiguration:
    """``from_cluster``: the document is a cluster's ``kubeadm-config`` (already accepted by
    whoever wrote it), not the user's file: feature gates are then taken as they are."""
    r.fields(doc, path, _CLUSTER_FIELDS)

    raw_version = doc.get("kubernetesVersion")
    version = ""
    version_ok = True  # version-dependent checks are skipped when the version itself is wrong
    if raw_version is not None and not isinstance(raw_version, str):
        r.err(f"{path}.kubernetesVersion", f"must be a string such as \"v1.34.2\", got {_type_name(raw_version)} "
                                           f"{shown(raw_version)} (quote it)")
        raw_version, version_ok = None, False
    try:
        version = normalize_version(raw_version or "")
    except KubefabError as exc:
        problem = exc.problem.removeprefix("kubernetesVersion ")
        r.err(f"{path}.kubernetesVersion", problem + (f"; {exc.fix}" if exc.fix else ""))
        version, version_ok = normalize_version(""), False

    cpe = r.string(doc, "controlPlaneEndpoint", path)
    if cpe:
        _check_endpoint(r, cpe, f"{path}.controlPlaneEndpoint", what="controlPlaneEndpoint")

    net = r.sub(doc, "networking", path, ("serviceSubnet", "podSubnet", "dnsDomain"))
    np = f"{path}.networking"
    networking = Networking(
        service_subnet=r.string(net, "serviceSubnet", np) or K.DEFAULT_SERVICE_SUBNET,
        pod_subnet=r.string(net, "podSubnet", np),
        dns_domain=r.string(net, "dnsDomain", np) or K.DEFAULT_DNS_DOMAIN,
    )
    _check_cidrs(r, networking.service_subnet, f"{np}.serviceSubnet", service=True)
    controller_manager = _read_component(r, doc, "controllerManager", path)
    if networking.pod_subnet and _check_cidrs(r, networking.pod_subnet, f"{np}.podSubnet", service=False):
        _check_pod_subnet_node_mask(r, networking.pod_subnet, f"{np}.podSubnet", controller_manager)
    if not is_dns1123_subdomain(networking.dns_domain):
        r.err(f"{np}.dnsDomain", f"{networking.dns_domain!r} is not a DNS-1123 subdomain")

    etcd = r.sub(doc, "etcd", path, ("local", "external"))
    ep = f"{path}.etcd"
    etcd_local: LocalEtcd | None = None
    etcd_external: ExternalEtcd | None = None
    if etcd.get("local") is not None and etcd.get("external") is not None:
        r.err(ep, "local and external are mutually exclusive; set only one")
    if etcd.get("external") is not None:
        ext = r.sub(etcd, "external", ep, ("endpoints", "caFile", "certFile", "keyFile", "httpEndpoints"))
        xp = f"{ep}.external"
        endpoints = r.strings(ext, "endpoints", xp)
        if not endpoints:
            r.err(f"{xp}.endpoints", "required: at least one etcd client URL (https://host:2379)")
        files = {k: r.string(ext, k, xp) for k in ("caFile", "certFile", "keyFile")}
        http_endpoints = r.strings(ext, "httpEndpoints", xp)
        # kubeadm ValidateEtcd: with any TLS file given, every etcd URL must be https://
        tls = [k for k, v in files.items() if v]
        for key, urls in (("endpoints", endpoints), ("httpEndpoints", http_endpoints)):
            for i, url in enumerate(urls):
                if not re.match(r"^https?://[^/\s]+", url):
                    r.err(f"{xp}.{key}[{i}]", f"{url!r} is not an http(s):// URL")
                elif tls and not url.startswith("https://"):
                    r.err(f"{xp}.{key}[{i}]", f"{url!r}: {'/'.join(tls)} {'is' if len(tls) == 1 else 'are'} "
                                               f"set, so etcd must be reached over https://; use https:// or "
                                               f"remove the TLS files")
        for k, v in files.items():
            _check_absolute(r, v, f"{xp}.{k}")
            if any(u.startswith("https://") for u in endpoints) and not v:
                r.err(f"{xp}.{k}", "required with https:// endpoints")
        etcd_external = ExternalEtcd(endpoints, files["caFile"], files["certFile"], files["keyFile"],
                                     http_endpoints=http_endpoints)
    else:
        # kubeadm defaults etcd.local when neither local nor external is set (§11.2)
        loc = r.sub(etcd, "local", ep, ("imageRepository", "imageTag", "dataDir", "extraArgs", "extraEnvs",
                                        "serverCertSANs", "peerCertSANs"))
        lp = f"{ep}.local"
        etcd_local = LocalEtcd(
            image_repository=r.string(loc, "imageRepository", lp),
            image_tag=r.string(loc, "imageTag", lp),
            data_dir=r.string(loc, "dataDir", lp) or K.DEFAULT_ETCD_DATA_DIR,
            extra_args=r.args(loc, "extraArgs", lp),
            extra_envs=_read_envs(r, loc, lp),
            server_cert_sans=r.strings(loc, "serverCertSANs", lp),
            peer_cert_sans=r.strings(loc, "peerCertSANs", lp),
        )
        _check_absolute(r, etcd_local.data_dir, f"{lp}.dataDir")
        _check_sans(r, etcd_local.server_cert_sans, f"{lp}.serverCertSANs")
        _check_sans(r, etcd_local.peer_cert_sans, f"{lp}.peerCertSANs")

    api = r.sub(doc, "apiServer", path, (*_COMPONENT_FIELDS, "certSANs"))
    ap = f"{path}.apiServer"
    # kubeadm lower-cases apiServer.certSANs before validating them (load balancer names such as
    # ELBs may have capitals), and stores them lower-cased
    api_server = APIServer(extra_args=r.args(api, "extraArgs", ap), extra_volumes=_read_volumes(r, api, ap),
                           extra_envs=_read_envs(r, api, ap),
                           cert_sans=tuple(s.lower() for s in r.strings(api, "certSANs", ap)))
    _check_sans(r, api_server.cert_sans, f"{ap}.certSANs")

    dns = r.sub(doc, "dns", path, ("imageRepository", "imageTag", "disabled"))
    proxy = r.sub(doc, "proxy", path, ("disabled",))

    gates_raw = r.mapping(doc.get("featureGates"), f"{path}.featureGates")
    gates = []
    for name, value in gates_raw.items():
        if not isinstance(value, bool):
            r.err(f"{path}.featureGates.{name}", f"must be true or false, got {_type_name(value)}")
        else:
            gates.append((str(name), value))
    if version_ok and not from_cluster:
        _check_feature_gates(r, gates, f"{path}.featureGates", version)

    algorithm = r.string(doc, "encryptionAlgorithm", path) or K.DEFAULT_ENCRYPTION_ALGORITHM
    if algorithm not in K.ENCRYPTION_ALGORITHMS:
        r.err(f"{path}.encryptionAlgorithm", f"unknown algorithm {algorithm!r} (one of: {', '.join(K.ENCRYPTION_ALGORITHMS)})")
        algorithm = K.DEFAULT_ENCRYPTION_ALGORITHM
    elif algorithm == "ECDSA-P384" and for_version(version).minor < 34:
        # kubeadm added ECDSA-P384 in v1.34 (reference §1.3)
        r.err(f"{path}.encryptionAlgorithm", f"ECDSA-P384 needs Kubernetes v1.34 or later (kubernetesVersion is {version})")

    image_repository = r.string(doc, "imageRepository", path) or K.DEFAULT_IMAGE_REPOSITORY
    _check_image_repository(r, image_repository, f"{path}.imageRepository")
    for sub, node in (("dns", dns), ("etcd.local", etcd.get("local") if isinstance(etcd.get("local"), dict) else {})):
        repo = node.get("imageRepository")
        if isinstance(repo, str):
            _check_image_repository(r, repo, f"{path}.{sub}.imageRepository")
    certs_dir = r.string(doc, "certificatesDir", path) or K.DEFAULT_CERTIFICATES_DIR
    _check_absolute(r, certs_dir, f"{path}.certificatesDir")
    cluster_name = r.string(doc, "clusterName", path) or K.DEFAULT_CLUSTER_NAME
    leaf = r.duration(doc, "certificateValidityPeriod", path, K.DEFAULT_CERT_VALIDITY) or K.DEFAULT_CERT_VALIDITY
    ca = r.duration(doc, "caCertificateValidityPeriod", path, K.DEFAULT_CA_CERT_VALIDITY) or K.DEFAULT_CA_CERT_VALIDITY

    return ClusterConfiguration(
        kubernetes_version=version,
        control_plane_endpoint=cpe,
        cluster_name=cluster_name,
        certificates_dir=certs_dir,
        image_repository=image_repository,
        networking=networking,
        etcd_local=etcd_local,
        etcd_external=etcd_external,
        api_server=api_server,
        controller_manager=controller_manager,
        scheduler=_read_component(r, doc, "scheduler", path),
        dns=DNS(r.string(dns, "imageRepository", f"{path}.dns"), r.string(dns, "imageTag", f"{path}.dns"),
                r.boolean(dns, "disabled", f"{path}.dns")),
        proxy_disabled=r.boolean(proxy, "disabled", f"{path}.proxy"),
        feature_gates=tuple(sorted(gates)),
        encryption_algorithm=algorithm,
        certificate_validity_period=leaf,
        ca_certificate_validity_period=ca,
    )


# --- node-local documents ------------------------------------------------------------------------
_NODE_REG_FIELDS = ("name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors",
                    "imagePullPolicy", "imagePullSerial")
_TIMEOUT_FIELDS = {
    "controlPlaneComponentHealthCheck": "control_plane_component_health_check",
    "kubeletHealthCheck": "kubelet_health_check",
    "kubernetesAPICall": "kubernetes_api_call",
    "etcdAPICall": "etcd_api_call",
    "tlsBootstrap": "tls_bootstrap",
    "discovery": "discovery",
    "upgradeManifests": "upgrade_manifests",
}


def _read_node_registration(r: _Reader, doc: Mapping, path: str, node_name: str) -> NodeRegistration:
    reg = r.sub(doc, "nodeRegistration", path, _NODE_REG_FIELDS)
    p = f"{path}.nodeRegistration"
    # kubeadm trims and lower-cases the node name, given or detected (nodeutil.GetHostname)
    name = (r.string(reg, "name", p).strip() or node_name.strip()).lower()
    if not name:
        r.err(f"{p}.name", "required (no node name given and no inventory fallback)")
    elif not is_dns1123_subdomain(name):
        r.err(f"{p}.name", f"{name!r} is not a valid node name (DNS-1123 subdomain: lower case letters, digits, '-', '.')")
    cri = r.string(reg, "criSocket", p) or K.DEFAULT_CRI_SOCKET
    if "://" not in cri:
        if cri.startswith("/"):
            cri = "unix://" + cri  # kubeadm adds the scheme to a bare path (§11.7)
        else:
            r.err(f"{p}.criSocket", f"{cri!r} must be a unix:// URL or an absolute socket path")
    elif not cri.startswith("unix://"):
        # kubeadm ValidateSocketPath: only the unix scheme
        r.err(f"{p}.criSocket", f"{cri!r}: only unix:// sockets are supported")
    taints: tuple[Taint, ...] | None = None
    raw = reg.get("taints")
    if raw is not None:
        # kubeadm: taints unset (nil) -> the control-plane taint; [] -> no taints (§11.1)
        if not isinstance(raw, list):
            r.err(f"{p}.taints", f"must be a list, got {_type_name(raw)}")
        else:
            out = []
            for i, item in enumerate(raw):
                tp = f"{p}.taints[{i}]"
                item = r.mapping(item, tp)
                r.fields(item, tp, ("key", "value", "effect", "timeAdded"))
                key, effect = r.string(item, "key", tp), r.string(item, "effect", tp)
                if not key:
                    r.err(f"{tp}.key", "required")
                if effect not in _TAINT_EFFECTS:
                    r.err(f"{tp}.effect", f"{effect!r} is not one of {', '.join(_TAINT_EFFECTS)}")
                out.append(Taint(key, effect, r.string(item, "value", tp)))
            taints = tuple(out)
    policy = r.string(reg, "imagePullPolicy", p) or "IfNotPresent"
    if policy not in _PULL_POLICIES:
        r.err(f"{p}.imagePullPolicy", f"{policy!r} is not one of {', '.join(_PULL_POLICIES)}")
    ignore = r.strings(reg, "ignorePreflightErrors", p)
    if "all" in (i.lower() for i in ignore) and len(ignore) > 1:
        r.err(f"{p}.ignorePreflightErrors", "'all' ignores every check; do not combine it with other names")
    return NodeRegistration(
        name=name,
        cri_socket=cri,
        taints=taints,
        kubelet_extra_args=r.args(reg, "kubeletExtraArgs", p),
        ignore_preflight_errors=tuple(i.lower() for i in ignore),  # kubeadm compares lower-cased (§10.4)
        image_pull_policy=policy,
        image_pull_serial=r.boolean(reg, "imagePullSerial", p, True),
    )


def _read_endpoint(r: _Reader, node: Mapping, key: str, path: str, advertise_address: str) -> APIEndpoint:
    ep = r.sub(node, key, path, ("advertiseAddress", "bindPort"))
    p = f"{path}.{key}"
    given = r.string(ep, "advertiseAddress", p)
    # kubeadm reads 0.0.0.0 / :: as "detect the host's address": the inventory's, here
    unspecified = is_ip(given) and ipaddress.ip_address(given).is_unspecified
    address = advertise_address if unspecified else (given or advertise_address)
    if not address:
        r.err(f"{p}.advertiseAddress", f"{given!r} asks for the host's own address, and the inventory gives none: "
                                       f"set it here or in the inventory" if unspecified
              else "required (no address given and no inventory fallback)")
    elif not is_ip(address):
        r.err(f"{p}.advertiseAddress", f"{address!r} is not an IP address")
    elif address == given and ipaddress.ip_address(given).is_loopback:
        # kubeadm would look for a global address on the host's loopback interface instead
        r.err(f"{p}.advertiseAddress", f"{given!r} is a loopback address, which other nodes cannot reach; give "
                                       f"the host's own address, or leave it empty to use the inventory's")
    port = r.integer(ep, "bindPort", p, 0) or K.DEFAULT_API_BIND_PORT
    if not 0 < port < 65536:
        r.err(f"{p}.bindPort", f"{port} is not a port number (1-65535)")
    return APIEndpoint(address, port)


def _read_timeouts(r: _Reader, doc: Mapping, path: str, extra: Mapping[str, timedelta]) -> Timeouts:
    t = r.sub(doc, "timeouts", path, tuple(_TIMEOUT_FIELDS))
    base = Timeouts()
    values = {}
    for key, attr in _TIMEOUT_FIELDS.items():
        default = extra.get(key, getattr(base, attr))
        values[attr] = r.duration(t, key, f"{path}.timeouts", default) or default
    return Timeouts(**values)


def _read_patches(r: _Reader, doc: Mapping, path: str) -> str:
    patches = r.sub(doc, "patches", path, ("directory",))
    directory = r.string(patches, "directory", f"{path}.patches")
    # kubeadm would resolve a relative directory against its working directory on the node;
    # kubefab has none there (and kubeadm requires it absolute in UpgradeConfiguration)
    _check_absolute(r, directory, f"{path}.patches.directory")
    return directory


def _token_secret(r: _Reader, node: Mapping, key: str, path: str) -> Secret | None:
    value = r.string(node, key, path, secret=True)
    if not value:
        return None
    if not TOKEN_RE.match(value):
        # never echo the value: it is a credential
        r.err(f"{path}.{key}", "invalid token: must be <id>.<secret>, 6 and 16 lower-case letters or digits "
                              "(regexp [a-z0-9]{6}\\.[a-z0-9]{16})")
    return Secret(value, kind="bootstrap token")


def _certificate_key(r: _Reader, node: Mapping, path: str) -> Secret | None:
    value = r.string(node, "certificateKey", path, secret=True)
    if not value:
        return None
    if not CERTIFICATE_KEY_RE.match(value):
        r.err(f"{path}.certificateKey", f"invalid certificate key: must be 64 hexadecimal characters "
                                        f"(got {len(value)} characters)")
    return Secret(value.lower(), kind="certificate key")


def _read_bootstrap_tokens(r: _Reader, doc: Mapping, path: str) -> tuple[BootstrapToken, ...]:
    raw = doc.get("bootstrapTokens")
    if raw is not None and not isinstance(raw, list):
        r.err(f"{path}.bootstrapTokens", f"must be a list, got {_type_name(raw)}")
        raw = None
    if not raw:
        # kubeadm defaults one token (its value generated at init, §11.1); an empty Secret
        # tells the init phases to mint or reuse one
        return (BootstrapToken(token=Secret("", kind="bootstrap token")),)
    out = []
    for i, item in enumerate(raw):
        p = f"{path}.bootstrapTokens[{i}]"
        item = r.mapping(item, p)
        r.fields(item, p, ("token", "description", "ttl", "expires", "usages", "groups"))
        token = _token_secret(r, item, "token", p) or Secret("", kind="bootstrap token")
        ttl = r.duration(item, "ttl", p, K.DEFAULT_TOKEN_TTL)
        expires = None
        raw_exp = item.get("expires")
        if isinstance(raw_exp, datetime):
            expires = raw_exp if raw_exp.tzinfo else raw_exp.replace(tzinfo=timezone.utc)
        elif isinstance(raw_exp, str):
            try:
                expires = datetime.fromisoformat(raw_exp.replace("Z", "+00:00"))
            except ValueError:
                r.err(f"{p}.expires", f"{raw_exp!r} is not an RFC 3339 time (2006-01-02T15:04:05Z)")
        elif raw_exp is not None:
            r.err(f"{p}.expires", f"must be an RFC 3339 time, got {_type_name(raw_exp)}")
        if expires is not None and item.get("ttl") is not None:
            r.err(p, "ttl and expires are mutually exclusive")
        usages = r.strings(item, "usages", p) or ("signing", "authentication")
        for j, usage in enumerate(usages):
            if usage not in TOKEN_USAGES:
                r.err(f"{p}.usages[{j}]", f"unknown usage {usage!r} (known: {', '.join(TOKEN_USAGES)})")
        groups = r.strings(item, "groups", p) or (K.DEFAULT_BOOTSTRAP_GROUP,)
        for j, group in enumerate(groups):
            if not TOKEN_GROUP_RE.match(group):
                r.err(f"{p}.groups[{j}]", f"{group!r} must match {TOKEN_GROUP_RE.pattern}")
        if "authentication" not in usages:
            # kubeadm ValidateTokenGroups: groups (always set: defaulted when empty) need the
            # authentication usage, which is also what a joining kubelet's TLS bootstrap uses
            r.err(f"{p}.usages", f"[{', '.join(usages)}] must include 'authentication': the token's groups "
                                 f"({', '.join(groups)}) only apply when it authenticates, and a joining node "
                                 f"authenticates with it")
        out.append(BootstrapToken(token=token, description=r.string(item, "description", p),
                                  ttl=ttl, expires=expires, usages=usages, groups=groups))
    return tuple(out)


_INIT_FIELDS = ("apiVersion", "kind", "bootstrapTokens", "dryRun", "nodeRegistration", "localAPIEndpoint",
                "certificateKey", "skipPhases", "patches", "timeouts")
_JOIN_FIELDS = ("apiVersion", "kind", "dryRun", "nodeRegistration", "caCertPath", "discovery", "controlPlane",
                "skipPhases", "patches", "timeouts")


def _read_init(r: _Reader, doc: Mapping, *, node_name: str, advertise_address: str,
               extra: Mapping[str, timedelta]) -> InitConfiguration:
    path = "InitConfiguration"
    r.fields(doc, path, _INIT_FIELDS)
    return InitConfiguration(
        node_registration=_read_node_registration(r, doc, path, node_name),
        local_api_endpoint=_read_endpoint(r, doc, "localAPIEndpoint", path, advertise_address),
        bootstrap_tokens=_read_bootstrap_tokens(r, doc, path),
        certificate_key=_certificate_key(r, doc, path),
        skip_phases=r.strings(doc, "skipPhases", path),
        timeouts=_read_timeouts(r, doc, path, extra),
        dry_run=r.boolean(doc, "dryRun", path),
        patches_directory=_read_patches(r, doc, path),
    )


def _read_join(r: _Reader, doc: Mapping, *, node_name: str, advertise_address: str,
               extra: Mapping[str, timedelta]) -> JoinConfiguration:
    path = "JoinConfiguration"
    r.fields(doc, path, _JOIN_FIELDS)
    disc = r.sub(doc, "discovery", path, ("bootstrapToken", "file", "tlsBootstrapToken"))
    dp = f"{path}.discovery"
    bt_raw = disc.get("bootstrapToken")
    bt = r.sub(disc, "bootstrapToken", dp, ("token", "apiServerEndpoint", "caCertHashes", "unsafeSkipCAVerification"))
    bp = f"{dp}.bootstrapToken"
    fl_raw = disc.get("file")
    fl = r.sub(disc, "file", dp, ("kubeConfigPath",))
    if bt_raw is not None and fl_raw is not None:
        r.err(dp, "bootstrapToken and file are mutually exclusive; set only one")
    token = _token_secret(r, bt, "token", bp)
    endpoint = r.string(bt, "apiServerEndpoint", bp)
    if endpoint:
        _check_endpoint(r, endpoint, f"{bp}.apiServerEndpoint", what="apiServerEndpoint", require_port=True)
    hashes = r.strings(bt, "caCertHashes", bp)
    for i, pin in enumerate(hashes):
        if not CA_CERT_HASH_RE.match(pin):
            r.err(f"{bp}.caCertHashes[{i}]", f"{pin!r} must be sha256:<64 hex characters>")
    kubeconfig_path = r.string(fl, "kubeConfigPath", f"{dp}.file")
    if fl_raw is not None and not kubeconfig_path:
        r.err(f"{dp}.file.kubeConfigPath", "required when discovery.file is set")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", kubeconfig_path)
    if scheme and scheme.group(1).lower() not in ("https", "file"):
        # kubeadm ValidateDiscoveryKubeConfigPath: a file path, or an https:// URL
        r.err(f"{dp}.file.kubeConfigPath", f"{kubeconfig_path!r}: a discovery URL must be https:// (the file "
                                           f"carries the cluster's CA); or give a path to the file")
    # tlsBootstrapToken defaults to the discovery token (§11.3)
    tls_token = _token_secret(r, disc, "tlsBootstrapToken", dp) or token
    discovery = Discovery(
        token=token, api_server_endpoint=endpoint,
        ca_cert_hashes=tuple(h.lower() for h in hashes),  # kubeadm stores pins lower-cased (§7.1)
        unsafe_skip_ca_verification=r.boolean(bt, "unsafeSkipCAVerification", bp),
        file_kubeconfig_path=kubeconfig_path.removeprefix("file://"),
        tls_bootstrap_token=tls_token,
    )
    control_plane = None
    if doc.get("controlPlane") is not None:
        cp = r.sub(doc, "controlPlane", path, ("localAPIEndpoint", "certificateKey"))
        cpp = f"{path}.controlPlane"
        control_plane = JoinControlPlane(
            local_api_endpoint=_read_endpoint(r, cp, "localAPIEndpoint", cpp, advertise_address),
            certificate_key=_certificate_key(r, cp, cpp),
        )
    ca_cert_path = r.string(doc, "caCertPath", path) or f"{K.DEFAULT_CERTIFICATES_DIR}/ca.crt"
    _check_absolute(r, ca_cert_path, f"{path}.caCertPath")
    if not ca_cert_path.endswith(".crt"):
        # kubeadm ValidateJoinConfiguration
        r.err(f"{path}.caCertPath", f"{ca_cert_path!r} must name a .crt file (e.g. /etc/kubernetes/pki/ca.crt)")
    return JoinConfiguration(
        node_registration=_read_node_registration(r, doc, path, node_name),
        discovery=discovery,
        ca_cert_path=ca_cert_path,
        control_plane=control_plane,
        skip_phases=r.strings(doc, "skipPhases", path),
        timeouts=_read_timeouts(r, doc, path, extra),
        dry_run=r.boolean(doc, "dryRun", path),
        patches_directory=_read_patches(r, doc, path),
    )


# --- component configs ----------------------------------------------------------------------------
# The fields of KubeletConfiguration and KubeProxyConfiguration that kubefab reads or fills in
# (manifests.kubelet_config_dict, kube_proxy_config_dict); the documents are otherwise passed on
# as they are. kubeadm decodes them strictly into their Go types: a wrong type is its error too.
_COMPONENT_FIELD_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "KubeletConfiguration": (
        ("authentication", "mapping"), ("authentication.anonymous", "mapping"),
        ("authentication.anonymous.enabled", "boolean"), ("authentication.webhook", "mapping"),
        ("authentication.webhook.enabled", "boolean"), ("authentication.x509", "mapping"),
        ("authentication.x509.clientCAFile", "string"), ("authorization", "mapping"), ("authorization.mode", "string"),
        ("staticPodPath", "string"), ("clusterDNS", "list of strings"), ("clusterDomain", "string"),
        ("healthzBindAddress", "string"), ("healthzPort", "integer"), ("rotateCertificates", "boolean"),
        ("cgroupDriver", "string"), ("featureGates", "mapping of booleans"), ("resolvConf", "string"),
        ("containerRuntimeEndpoint", "string"),
    ),
    "KubeProxyConfiguration": (
        ("bindAddress", "string"), ("clusterCIDR", "string"), ("clientConnection", "mapping"),
        ("clientConnection.kubeconfig", "string"),
    ),
}
_TYPE_CHECKS = {
    "mapping": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "list of strings": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "mapping of booleans": lambda v: isinstance(v, dict) and all(isinstance(i, bool) for i in v.values()),
}


def _check_component_fields(r: _Reader, kind: str, doc: Mapping) -> None:
    for dotted, want in _COMPONENT_FIELD_TYPES.get(kind, ()):
        parent, leaf = _dig(doc, dotted)  # None when a parent is missing or already reported
        value = parent.get(leaf) if parent is not None else None
        if value is not None and not _TYPE_CHECKS[want](value):
            r.err(f"{kind}.{dotted}", f"must be a {want}, got {_type_name(value)}")


# --- command-line values ------------------------------------------------------------------------
def check_command_line(*, token: Secret | None = None, ca_cert_hashes: Iterable[str] = (), endpoint: str = "",
                       certificate_key: Secret | None = None) -> None:
    """The checks a config file's token, CA pins, endpoint and certificate key get, for the flags
    that carry them (kubeadm validates its flags the same way), before anything is written.

    :raises ConfigError: naming every bad flag (credentials are never echoed).
    """
    issues: list[str] = []
    r = _Reader("command line", issues)
    if token is not None and not TOKEN_RE.match(token.reveal()):
        r.err("--token", "invalid token: must be <id>.<secret>, 6 and 16 lower-case letters or digits")
    for i, pin in enumerate(ca_cert_hashes):
        if not CA_CERT_HASH_RE.match(pin):
            r.err(f"--discovery-token-ca-cert-hash[{i}]", f"{shown(pin)} must be sha256:<64 hex characters>")
    if endpoint:
        _check_endpoint(r, endpoint, "--endpoint", what="endpoint", require_port=True)
    if certificate_key is not None and not CERTIFICATE_KEY_RE.match(certificate_key.reveal()):
        r.err("--certificate-key", f"invalid certificate key: must be 64 hexadecimal characters "
                                   f"(got {len(certificate_key.reveal())} characters)")
    if issues:
        n = len(issues)
        raise ConfigError(f"{n} invalid command-line value{'s' if n != 1 else ''}", details=issues,
                          fix="correct each flag listed: a token is <6>.<16> lower-case letters and digits, a CA "
                              "pin is what `fab certs.ca-hash` prints, a certificate key is the 64-hex key "
                              "`fab init --upload-certs` printed")


# --- loading -------------------------------------------------------------------------------------
def _raise(source: str, issues: list[str], what: str = "kubeadm configuration") -> None:
    if issues:
        n = len(issues)
        raise ConfigError(
            f"{source}: {n} problem{'s' if n != 1 else ''} in the {what}",
            details=issues,
            fix="correct each field listed (kubeadm's v1beta4 reference: "
                "https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/)",
        )


def load_config_text(
    text: str,
    *,
    source: str,
    node_name: str,
    advertise_address: str,
    inline_cluster: Mapping[str, Any] | None = None,
    inline_source: str = "inventory",
    for_join: str | None = None,
) -> KubeadmConfig:
    """Load, convert, default and validate a kubeadm config file's text.

    :param text: the multi-document YAML (may be empty: all defaults).
    :param source: the file name, used in every message.
    :param node_name: ``nodeRegistration.name`` when the file leaves it empty.
    :param advertise_address: ``advertiseAddress`` when the file leaves it empty.
    :param inline_cluster: ClusterConfiguration fields from the inventory (v1beta4 camelCase),
        deep-merged over the file's (lists and scalars replace).
    :param inline_source: the inventory file name, for messages about inline fields.
    :param for_join: None (default) reads what the file holds; ``"worker"`` or
        ``"control-plane"`` reads it as ``kubeadm join`` would for that kind of node: the
        InitConfiguration is ignored, ``join`` is always set (kubeadm's defaults when the file
        has no JoinConfiguration) and ``join.control_plane`` is set exactly for control planes.
    :returns: the defaulted configuration. With neither an Init nor a Join document (and
        ``for_join`` None), a default InitConfiguration is made (what ``kubeadm init`` does).
    :raises ConfigError: listing every problem found.
    """
    if for_join not in (None, "worker", "control-plane"):
        raise ValueError(f"for_join must be None, 'worker' or 'control-plane', not {for_join!r}")
    issues: list[str] = []
    docs = _load_documents(text, source, issues)
    r = _Reader(source, issues)
    by_kind: dict[str, tuple[str, dict, Document]] = {}
    extra: dict[str, timedelta] = {}
    for doc in docs:
        where = f"document {doc.index} (line {doc.line})"
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            issues.append(f"{source}: {where}: must be a mapping with apiVersion and kind, got {_type_name(doc.data)}")
            continue
        api, kind = doc.data.get("apiVersion"), doc.data.get("kind")
        if not api or not kind:
            missing = " and ".join(k for k, v in (("apiVersion", api), ("kind", kind)) if not v)
            issues.append(f"{source}: {where}: {missing} missing (supported: {_supported_text()})")
            continue
        if not isinstance(api, str) or not isinstance(kind, str):
            for key, value in (("apiVersion", api), ("kind", kind)):
                if not isinstance(value, str):
                    issues.append(f"{source}: {where}: {key} must be a string, got {_type_name(value)}")
            continue
        if kind not in _KINDS:
            issues.append(f"{source}: {where}: unknown kind {kind!r} (supported: {_supported_text()})")
            continue
        if api not in _KINDS[kind]:
            hint = ""
            if isinstance(api, str) and api.startswith(KUBEADM_GROUP + "/"):
                hint = "; older kubeadm APIs must be migrated (kubeadm config migrate)"
            issues.append(f"{source}: {where}: unsupported apiVersion {api!r} for {kind} "
                          f"(supported: {', '.join(_KINDS[kind])}){hint}")
            continue
        if kind in by_kind:
            issues.append(f"{source}: {where}: a second {kind} document (the first is document "
                          f"{by_kind[kind][2].index}); give each kind once")
            continue
        by_kind[kind] = (api, doc.data, doc)

    converted: dict[str, dict] = {}
    for kind in ("ClusterConfiguration", "InitConfiguration", "JoinConfiguration"):
        if kind in by_kind:
            api, data, _ = by_kind[kind]
            converted[kind] = _convert_v1beta3(kind, data, r, extra) if api == V1BETA3 else data

    cluster_doc = converted.get("ClusterConfiguration", {})
    inline_paths: list[str] = []
    if inline_cluster:
        cluster_doc = _merge(cluster_doc, inline_cluster, "ClusterConfiguration", inline_paths)
    cr = _Reader(source, issues, inline_source=inline_source, inline_paths=inline_paths)
    cluster = _read_cluster(cr, cluster_doc)

    init = join = None
    if for_join is None:
        if "InitConfiguration" in converted or "JoinConfiguration" not in converted:
            # v1beta3's discovery.timeout belongs to the JoinConfiguration only
            init_extra = {k: v for k, v in extra.items() if k != "discovery"}
            init = _read_init(r, converted.get("InitConfiguration", {}), node_name=node_name,
                              advertise_address=advertise_address, extra=init_extra)
        if "JoinConfiguration" in converted:
            join = _read_join(r, converted["JoinConfiguration"], node_name=node_name,
                              advertise_address=advertise_address, extra=extra)
    else:
        # kubeadm join ignores an InitConfiguration and defaults a missing JoinConfiguration;
        # whether the node joins as a control plane is the caller's (the inventory role's) call
        doc = dict(converted.get("JoinConfiguration", {}))
        if for_join == "control-plane":
            doc["controlPlane"] = doc.get("controlPlane") or {}
        else:
            doc.pop("controlPlane", None)
        join = _read_join(r, doc, node_name=node_name, advertise_address=advertise_address, extra=extra)

    components: dict[str, dict] = {}
    for kind in ("KubeletConfiguration", "KubeProxyConfiguration", "ResetConfiguration", "UpgradeConfiguration"):
        if kind in by_kind:
            components[kind] = _deepcopy(by_kind[kind][1])
            _check_component_fields(r, kind, components[kind])
    _raise(source, issues)
    return KubeadmConfig(
        cluster=cluster,
        init=init,
        join=join,
        kubelet=components.get("KubeletConfiguration", {}),
        kube_proxy=components.get("KubeProxyConfiguration", {}),
        reset=components.get("ResetConfiguration", {}),
        upgrade=components.get("UpgradeConfiguration", {}),
        source=source,
    )


def read_text_file(path: str | Path, *, what: str, missing_fix: str) -> str:
    """A UTF-8 file's text, or a ConfigError naming it (missing, unreadable, too large, not UTF-8)."""
    return read_file(path, what=what, missing_fix=missing_fix)


def load_config_file(path: str | Path, **kwargs: Any) -> KubeadmConfig:
    """:func:`load_config_text` on a file (``source`` defaults to the path as given).

    :raises ConfigError: the file is missing or unreadable, or its content is invalid.
    """
    text = read_text_file(path, what="kubeadm config file",
                          missing_fix="create it, or fix the path (cluster.config in the inventory is relative to "
                                      "the inventory file)")
    kwargs.setdefault("source", str(path))
    return load_config_text(text, **kwargs)


def default_config(*, node_name: str, advertise_address: str,
                   kubernetes_version: str | None = None) -> KubeadmConfig:
    """kubeadm's defaults for one node (``kubeadm init`` with no config file)."""
    inline = {"kubernetesVersion": kubernetes_version} if kubernetes_version else None
    return load_config_text("", source="(defaults)", node_name=node_name,
                            advertise_address=advertise_address, inline_cluster=inline,
                            inline_source="(defaults)")


# --- kubeadm-config ConfigMap (reference §5.2) ---------------------------------------------------
def _args_out(args: Iterable[Arg]) -> list[dict[str, str]]:
    return [{"name": a.name, "value": a.value} for a in args]


def _envs_out(envs: Iterable[EnvVar]) -> list[dict[str, str]]:
    return [{"name": e.name, "value": e.value} for e in envs]


def _volumes_out(volumes: Iterable[HostPathMount]) -> list[dict[str, Any]]:
    out = []
    for v in volumes:
        item: dict[str, Any] = {"hostPath": v.host_path, "mountPath": v.mount_path, "name": v.name}
        if v.path_type:
            item["pathType"] = v.path_type
        if v.read_only:
            item["readOnly"] = True
        out.append(item)
    return out


def _component_out(c: ControlPlaneComponent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.extra_args:
        out["extraArgs"] = _args_out(c.extra_args)
    if c.extra_envs:
        out["extraEnvs"] = _envs_out(c.extra_envs)
    if c.extra_volumes:
        out["extraVolumes"] = _volumes_out(c.extra_volumes)
    return out


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def cluster_configuration_v1beta4(cluster: ClusterConfiguration) -> dict[str, Any]:
    """The ClusterConfiguration as kubeadm serializes it into ``kubeadm-config`` (§5.2).

    Keys alphabetical at every level, empty structs as ``{}``, empty optional values omitted,
    durations in Go form (``8760h0m0s``). ``etcd.local.dataDir`` and the external etcd file
    fields have no ``omitempty`` in kubeadm's types, so they are always present.
    """
    api = _component_out(cluster.api_server)
    if cluster.api_server.cert_sans:
        api["certSANs"] = list(cluster.api_server.cert_sans)
    etcd: dict[str, Any] = {}
    if cluster.etcd_external is not None:
        x = cluster.etcd_external
        ext: dict[str, Any] = {"caFile": x.ca_file, "certFile": x.cert_file, "endpoints": list(x.endpoints),
                               "keyFile": x.key_file}
        # kubeadm 1.35+ defaults httpEndpoints to endpoints; 1.34 and older have no such field
        http = x.http_endpoints or (x.endpoints if cluster.minor >= 35 else ())
        if http:
            ext["httpEndpoints"] = list(http)
        etcd["external"] = ext
    elif cluster.etcd_local is not None:
        e = cluster.etcd_local
        local: dict[str, Any] = {"dataDir": e.data_dir}
        for key, value in (("imageRepository", e.image_repository), ("imageTag", e.image_tag)):
            if value:
                local[key] = value
        if e.extra_args:
            local["extraArgs"] = _args_out(e.extra_args)
        if e.extra_envs:
            local["extraEnvs"] = _envs_out(e.extra_envs)
        if e.server_cert_sans:
            local["serverCertSANs"] = list(e.server_cert_sans)
        if e.peer_cert_sans:
            local["peerCertSANs"] = list(e.peer_cert_sans)
        etcd["local"] = local
    dns: dict[str, Any] = {}
    if cluster.dns.image_repository:
        dns["imageRepository"] = cluster.dns.image_repository
    if cluster.dns.image_tag:
        dns["imageTag"] = cluster.dns.image_tag
    if cluster.dns.disabled:
        dns["disabled"] = True
    networking: dict[str, Any] = {"dnsDomain": cluster.networking.dns_domain,
                                  "serviceSubnet": cluster.networking.service_subnet}
    if cluster.networking.pod_subnet:
        networking["podSubnet"] = cluster.networking.pod_subnet
    out: dict[str, Any] = {
        "apiServer": api,
        "apiVersion": V1BETA4,
        "caCertificateValidityPeriod": format_go_duration(cluster.ca_certificate_validity_period),
        "certificateValidityPeriod": format_go_duration(cluster.certificate_validity_period),
        "certificatesDir": cluster.certificates_dir,
        "clusterName": cluster.cluster_name,
        "controllerManager": _component_out(cluster.controller_manager),
        "dns": dns,
        "encryptionAlgorithm": cluster.encryption_algorithm,
        "etcd": etcd,
        "imageRepository": cluster.image_repository,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": cluster.kubernetes_version,
        "networking": networking,
        "proxy": {"disabled": True} if cluster.proxy_disabled else {},
        "scheduler": _component_out(cluster.scheduler),
    }
    if cluster.control_plane_endpoint:
        out["controlPlaneEndpoint"] = cluster.control_plane_endpoint
    if cluster.feature_gates:
        out["featureGates"] = dict(cluster.feature_gates)
    return _sorted(out)


class _GoStyleDumper(yaml.SafeDumper):
    """Quote like go-yaml (double quotes) so output resembles kubeadm's, byte-stable."""

    def choose_scalar_style(self):  # type: ignore[override]
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def render_yaml(data: Any) -> str:
    """Block-style YAML with keys in the given order, no line wrapping (byte-stable)."""
    return yaml.dump(data, Dumper=_GoStyleDumper, default_flow_style=False, sort_keys=False,
                     allow_unicode=True, width=1 << 30)


def render_cluster_configuration(cluster: ClusterConfiguration) -> str:
    """The ``ClusterConfiguration`` key of the ``kubeadm-config`` ConfigMap (§5.2)."""
    return render_yaml(cluster_configuration_v1beta4(cluster))


def parse_cluster_configuration(text: str, *, source: str = "kubeadm-config ConfigMap") -> ClusterConfiguration:
    """Read a ``kubeadm-config`` ClusterConfiguration (v1beta4, or v1beta3 from older clusters).

    A joining node reads the cluster's configuration this way, whoever wrote it (kubefab or
    kubeadm). Extra documents of other kinds are not allowed here.

    :raises ConfigError: listing every problem found.
    """
    issues: list[str] = []
    docs = [d for d in _load_documents(text, source, issues) if d.data is not None]
    r = _Reader(source, issues)
    if not issues and len(docs) != 1:
        issues.append(f"{source}: expected exactly one ClusterConfiguration document, found {len(docs)}")
    cluster = None
    if not issues:
        data = docs[0].data
        api = data.get("apiVersion") if isinstance(data, dict) else None
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind != "ClusterConfiguration" or api not in SUPPORTED_KUBEADM_VERSIONS:
            issues.append(f"{source}: document 1: expected kind ClusterConfiguration with apiVersion "
                          f"{' or '.join(SUPPORTED_KUBEADM_VERSIONS)}, got {shown(kind)} {shown(api)}")
        else:
            if api == V1BETA3:
                data = _convert_v1beta3("ClusterConfiguration", data, r, {})
            cluster = _read_cluster(r, data, from_cluster=True)
    _raise(source, issues, "ClusterConfiguration")
    assert cluster is not None
    return cluster
