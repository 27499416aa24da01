"""Host facts: ONE shell probe, ONE round trip, parsed by pure functions.

The probe (``probe.sh``, POSIX sh; ``probe.py`` in one process where the host has python3) prints a JSON object of mostly raw
text: ``ss`` output, ``/proc`` files, ``stat`` lines. Everything clever happens here, in pure
parsers that are tested from raw-output fixtures (``tests/fixtures/facts/*.json``, pyinfra
style), so a new distribution quirk is a new fixture, not a change to the shell.

Example::

    facts = gather_facts(transport, ["/etc/kubernetes/pki/ca.crt", "/var/lib/etcd"])
    facts.paths["/var/lib/etcd"].get("nonempty")
    facts.listening_ports.get(6443)      # "pid 812 (kube-apiserver)" or "" if hidden
"""

from __future__ import annotations

import json
import re
import shlex

from importlib import resources
from typing import Any, Iterable, Mapping, Protocol

from ..core.errors import RemoteError
from ..core.facts import HostFacts, Listener, PathFact  # noqa: F401 - the types live in the pure layer

PROBE_VERSION = 1

# Binaries kubeadm's preflight looks up on PATH (reference §10.3) plus the ones kubefab's
# own plans call. Callers may add more.
DEFAULT_BINARIES: tuple[str, ...] = (
    "kubelet", "kubectl", "mount", "nsenter", "touch", "cp", "systemctl", "etcd", "etcdctl", "etcdutl",
    "ip", "iptables", "ethtool", "tc", "crictl", "conntrack", "socat", "sha256sum", "openssl",
)

# CRI sockets kubeadm's auto-detection knows (containerd, CRI-O, cri-dockerd), in both the
# /var/run and /run spellings, because the configured criSocket is compared as written.
DEFAULT_CRI_SOCKETS: tuple[str, ...] = (
    "/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock", "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock", "/run/cri-dockerd.sock",
)

# The optional CA directories kubeadm mounts into the apiserver/KCM when they exist on the
# host at generation time (reference §5.x "ca-certs" volumes). /etc/ssl/certs is always mounted.
CA_DIRS: tuple[str, ...] = (
    "/etc/ssl/certs", "/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates",
    "/usr/share/ca-certificates", "/usr/local/share/ca-certificates",
)

_NAME_RE = re.compile(r"^[A-Za-z0-9._+-]+$")


class Runner(Protocol):
    """The one thing :func:`gather_facts` needs from a transport."""

    host: str

    def run(self, command: str, *, check: bool = True, timeout: float | None = None) -> Any: ...


# ---- building the probe ------------------------------------------------------------------

def _probe_body() -> str:
    return resources.files(__package__).joinpath("probe.sh").read_text()


def _probe_python() -> str:
    """probe.py without its comment lines, zlib-compressed, base64: 3.5 KB on the command line
    instead of 7.5 (it is sent to every host)."""
    import base64
    import zlib

    text = resources.files(__package__).joinpath("probe.py").read_text()
    code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")) + "\n"
    return base64.b64encode(zlib.compress(code.encode(), 9)).decode()


def build_probe(
    paths: Iterable[str] = (),
    *,
    binaries: Iterable[str] = DEFAULT_BINARIES,
    cri_sockets: Iterable[str] = DEFAULT_CRI_SOCKETS,
    python: bool = True,
) -> str:
    """The probe script for these paths: a POSIX sh program that prints one JSON object.

    :param paths: absolute paths to stat/hash on the host.
    :param binaries: command names to look up on PATH.
    :param cri_sockets: socket paths to test (the configured criSocket should be among them).
    :param python: let a host with python3 run ``probe.py`` (one process for every fact)
        instead of the sh code (about 17 processes per path); the same object either way.
    :raises RemoteError: a path that is not absolute or holds a newline, a bad binary name.
    """
    paths = list(dict.fromkeys(paths))
    bad = [p for p in paths if not p.startswith("/") or "\n" in p or "\0" in p]
    bad += [b for b in binaries if not _NAME_RE.match(b)]
    bad += [s for s in cri_sockets if not s.startswith("/") or any(c.isspace() for c in s)]
    if bad:
        raise RemoteError("cannot probe these names: " + ", ".join(repr(b) for b in bad),
                          fix="paths and sockets must be absolute (no spaces in sockets); binaries plain names")
    head = [
        f"KF_BINARIES={shlex.quote(' '.join(binaries))}",
        f"KF_SOCKETS={shlex.quote(' '.join(cri_sockets))}",
        f"KF_PY={shlex.quote(_probe_python()) if python else ''}",
        "set --" + "".join(" " + shlex.quote(p) for p in paths),
    ]
    return "\n".join(head) + "\n" + _probe_body()


def probe_command(script: str) -> str:
    """Run ``script`` with sh whatever the login shell is (fish, csh...)."""
    return "sh -c " + shlex.quote(script)


def facts_command(
    paths: Iterable[str] = (),
    *,
    binaries: Iterable[str] = DEFAULT_BINARIES,
    cri_sockets: Iterable[str] = DEFAULT_CRI_SOCKETS,
) -> str:
    """The shell command that prints a host's facts (what :func:`read_facts` reads)."""
    extra = [s.removeprefix("unix://") for s in cri_sockets]
    return probe_command(build_probe(paths, binaries=binaries, cri_sockets=extra))


def read_facts(host: str, exit_code: int, stdout: str, stderr: str = "") -> HostFacts:
    """The facts from the probe's exit code and output.

    :raises RemoteError: the probe failed or printed something unreadable.
    """
    if exit_code != 0:
        raise RemoteError(
            f"the facts probe failed with exit code {exit_code}", host=host,
            details=_tail(stderr or stdout),
            fix="check that /bin/sh works for the login user (and sudo, when not root)")
    try:
        return parse_probe(stdout)
    except RemoteError as exc:
        raise exc.with_context(host=host)


def gather_facts(
    transport: Runner,
    paths: Iterable[str] = (),
    *,
    binaries: Iterable[str] = DEFAULT_BINARIES,
    cri_sockets: Iterable[str] = DEFAULT_CRI_SOCKETS,
) -> HostFacts:
    """Read a host's facts in exactly one round trip.

    :param transport: an open transport (root or sudo, as the transport is set up).
    :param paths: paths whose state the phases need (see ``preflight.paths_to_probe``).
    :raises RemoteError: the probe failed to run or printed something unreadable.
    """
    result = transport.run(facts_command(paths, binaries=binaries, cri_sockets=cri_sockets), check=False,
                           timeout=60)
    return read_facts(transport.host, result.exit_code, result.stdout, result.stderr)


def _tail(text: str, lines: int = 10) -> list[str]:
    return [ln for ln in text.strip().splitlines()[-lines:]]


# ---- parsing (pure) ----------------------------------------------------------------------

def parse_probe(stdout: str) -> HostFacts:
    """Turn the probe's output into :class:`HostFacts`.

    Text before the JSON object (a noisy login banner, a motd printed by the shell rc) is
    ignored: the object starts at the first line that begins with ``{"probe":``.

    :raises RemoteError: no probe object, or one that is not valid JSON.
    """
    start = stdout.find('{"probe":')
    if start < 0:
        raise RemoteError("the facts probe printed no result", details=_tail(stdout, 5),
                          fix="check that the login shell prints nothing on stdout for non-interactive sessions")
    try:
        raw = json.loads(stdout[start:])
    except ValueError as exc:
        raise RemoteError(f"the facts probe output is not valid JSON ({exc})",
                          fix="report this with the output of the probe (--debug)") from None
    if raw.get("probe") != PROBE_VERSION:
        raise RemoteError(f"unknown facts probe version {raw.get('probe')!r}")
    os_release = parse_os_release(raw.get("os_release") or "")
    systemctl = raw.get("systemctl")
    default_iface, default_ip = parse_default_address(
        raw.get("ip_route4") or "", raw.get("ip_route6") or "", raw.get("ip_addr") or "")
    listeners = raw.get("listeners") or {}
    return HostFacts(
        hostname=(raw.get("hostname") or "").strip(),
        uid=_int(raw.get("uid"), -1),
        user=(raw.get("user") or "").strip(),
        os_id=os_release.get("ID", ""),
        os_version=os_release.get("VERSION_ID", ""),
        os_pretty=os_release.get("PRETTY_NAME", ""),
        kernel=(raw.get("kernel") or "").strip(),
        arch=(raw.get("arch") or "").strip(),
        cpus=_int(raw.get("nproc"), 0),
        mem_mb=parse_mem_mb(raw.get("meminfo") or ""),
        swap_on=parse_swap_on(raw.get("swaps") or ""),
        ip_forward=_first_line(raw.get("ip_forward")),
        ipv6_forwarding=_first_line(raw.get("ipv6_forwarding")),
        ipv6_forwarding_all=_first_line(raw.get("ipv6_forwarding_all")),
        cgroup_version=_int(raw.get("cgroup_version"), 0) or None,
        listeners=parse_listeners(listeners.get("tool", ""), listeners.get("out") or ""),
        binaries=dict(raw.get("binaries") or {}),
        path_env=raw.get("path") or "",
        kubelet_version=(raw.get("kubelet_version") or "").strip(),
        kubelet_active=_state(systemctl, "kubelet_active"),
        kubelet_enabled=_state(systemctl, "kubelet_enabled"),
        firewalld_active=_state(systemctl, "firewalld_active") == "active",
        systemd_resolved_active=_state(systemctl, "systemd_resolved_active") == "active",
        default_interface=default_iface,
        default_ip=default_ip,
        proxy_env=parse_proxy_env(raw.get("proxy_env") or ""),
        ca_dirs=tuple(d for d, present in (raw.get("ca_dirs") or {}).items() if present),
        cri_sockets=tuple(s for s, present in (raw.get("cri_sockets") or {}).items() if present),
        paths={entry["path"]: parse_path_entry(entry) for entry in raw.get("paths") or []},
    )


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _first_line(value: str | None) -> str | None:
    if value is None:
        return None
    lines = value.strip().splitlines()
    return lines[0].strip() if lines else ""


def _state(systemctl: Mapping[str, str] | None, key: str) -> str | None:
    """systemctl's answer: ``None`` without systemctl, ``unknown`` when it printed nothing
    (no running systemd, or is-enabled on a unit file that does not exist)."""
    if systemctl is None:
        return None
    return (systemctl.get(key) or "").strip() or "unknown"


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines of os-release, shell quoting removed."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            parts = shlex.split(value)
            out[key] = parts[0] if parts else ""
        except ValueError:
            out[key] = value.strip("\"'")
    return out


def parse_mem_mb(meminfo: str) -> int:
    """MemTotal in MiB (kubeadm's Mem check divides total RAM by 1024*1024)."""
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", meminfo, re.M)
    return int(m.group(1)) // 1024 if m else 0


def parse_swap_on(swaps: str) -> bool:
    """/proc/swaps lists one active swap area per line after its header."""
    lines = [ln for ln in swaps.splitlines() if ln.strip()]
    return len(lines) > 1


_SS_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


def _split_addr(text: str) -> tuple[str, int] | None:
    addr, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    addr = addr.strip("[]")
    if "%" in addr:  # ss prints 127.0.0.53%lo for interface-bound sockets
        addr = addr.split("%", 1)[0]
    return addr, int(port)


def parse_listeners(tool: str, out: str) -> tuple[Listener, ...]:
    """Listening TCP sockets from ``ss -tlnp``, ``netstat -tlnp`` or ``/proc/net/tcp{,6}``."""
    found: list[Listener] = []
    for line in out.splitlines():
        cols = line.split()
        if not cols:
            continue
        if tool == "ss":
            if cols[0] != "LISTEN" or len(cols) < 5:
                continue
            where = _split_addr(cols[3])
            users = _SS_USERS.search(line)
            pid, name = (int(users.group(2)), users.group(1)) if users else (None, None)
        elif tool == "netstat":
            if not cols[0].startswith("tcp") or "LISTEN" not in cols:
                continue
            where = _split_addr(cols[3])
            owner = cols[cols.index("LISTEN") + 1] if cols.index("LISTEN") + 1 < len(cols) else "-"
            pid_s, _, name = owner.partition("/")
            pid, name = (int(pid_s), name or None) if pid_s.isdigit() else (None, None)
        elif tool == "proc":
            # "  0: 0100007F:0CEA 00000000:0000 0A ...": state 0A is LISTEN
            if len(cols) < 4 or cols[3] != "0A" or ":" not in cols[1]:
                continue
            hex_addr, hex_port = cols[1].split(":")
            where = (_proc_addr(hex_addr), int(hex_port, 16))
            pid = name = None
        else:
            raise RemoteError(f"unknown listener tool {tool!r} in the facts probe output")
        if where is None:
            continue
        found.append(Listener(where[0], where[1], pid, name))
    return tuple(found)


def _proc_addr(hex_addr: str) -> str:
    """/proc/net/tcp addresses are little-endian 32-bit words."""
    import ipaddress

    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def parse_default_address(route4: str, route6: str, addrs: str) -> tuple[str | None, str | None]:
    """The IP kubeadm would advertise: the default route's interface address.

    Like kubeadm's host-interface choice: IPv4 default route first (its ``src`` if given, else
    the first global IPv4 address of its device), then IPv6, then the first global address
    of any interface (IPv4 preferred). Returns ``(interface, ip)``.
    """
    by_dev: dict[str, list[tuple[int, str]]] = {}
    for line in addrs.splitlines():
        cols = line.replace("\\", " ").split()
        # "4: eth0    inet 192.0.2.2/24 brd ... scope global eth0"
        if len(cols) < 4 or cols[2] not in ("inet", "inet6"):
            continue
        dev = cols[1].split("@", 1)[0]
        by_dev.setdefault(dev, []).append((4 if cols[2] == "inet" else 6, cols[3].split("/", 1)[0]))
    for family, routes in ((4, route4), (6, route6)):
        for line in routes.splitlines():
            cols = line.split()
            if not cols or cols[0] != "default" or "dev" not in cols:
                continue
            dev = cols[cols.index("dev") + 1]
            if "src" in cols:
                return dev, cols[cols.index("src") + 1]
            for fam, ip in by_dev.get(dev, []):
                if fam == family:
                    return dev, ip
    for family in (4, 6):
        for dev, entries in by_dev.items():
            for fam, ip in entries:
                if fam == family:
                    return dev, ip
    return None, None


def parse_proxy_env(text: str) -> dict[str, str]:
    """Every ``*_proxy``/``*_PROXY`` variable with a non-empty value (kubeadm copies them
    into the static pod manifests, reference §5 ``env``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and value and name.lower().endswith("_proxy"):
            out[name] = value
    return out


_TYPES = {
    "regular file": "file", "regular empty file": "file", "directory": "directory",
    "symbolic link": "symlink", "socket": "socket", "fifo": "fifo",
    "character special file": "char", "block special file": "block",
}


def parse_path_entry(entry: Mapping[str, Any]) -> PathFact:
    """One ``paths`` entry: ``stat -c '%F|%a|%u|%g|%U|%G|%s'`` plus sha256/nonempty/link."""
    path = entry["path"]
    if "stat" not in entry:
        return PathFact(path)
    cols = (entry.get("stat") or "").strip().split("|")
    if len(cols) != 7:
        # stat missing or unusable: the path exists, its details are unknown
        return PathFact(path, exists=True, sha256=entry.get("sha256") or None,
                        nonempty=entry.get("nonempty"), link_target=entry.get("link"))
    kind, mode, uid, gid, owner, group, size = cols
    return PathFact(
        path=path, exists=True, type=_TYPES.get(kind, "other"), mode=int(mode, 8),
        uid=_int(uid, -1), gid=_int(gid, -1), owner=owner, group=group, size=_int(size, 0),
        sha256=entry.get("sha256") or None, nonempty=entry.get("nonempty"),
        link_target=entry.get("link"),
    )

