"""etcd snapshots and restores of a kubeadm-style control plane (pure: names, archives, plans).

``fab etcd.snapshot`` follows kubeadm's "Backing up an etcd cluster" docs: ``etcdctl snapshot
save`` against one healthy member, on its host, with the healthcheck-client identity kubeadm's
etcd client uses; the file is then copied to the operator machine, its sha256 compared with the
host's, and etcd's own integrity hash (the sha256 the snapshot API appends) checked. The backup
is one archive, mode 0600: the snapshot, a ``kubefab-backup.json`` record (cluster, member,
revision, sha256, the CA's pin) and the state dir's ``pki/``.

``fab etcd.restore`` restores the whole control plane as k0sctl's ``--restore-from`` does, in
stages run on every control plane (the :data:`RESTORE` table; each stage is a pipeline run):

- ``preflight``: root, ``etcdutl`` on the PATH (etcd 3.6 restores only with etcdutl), the etcd
  static pod manifest there.
- ``stage``: the snapshot uploaded beside the data (``<data-dir>/kubefab-restore-<time>/``),
  its sha256 checked on the host, the manifest checked to run this member's name, peer URL and
  data dir, and ``etcdutl snapshot restore`` run into a new directory with the member's name,
  peer URL and the whole ``--initial-cluster``. etcd still runs: a bad snapshot, a missing
  etcdutl or a wrong manifest stops the restore before anything was stopped.
- ``stop-control-plane``: the static pod manifests moved to ``/etc/kubernetes/tmp/…``, and a
  wait until the kubelet stopped them (their ports free, no etcd process).
- ``swap-data``: ``member/`` renamed aside (kept as ``old-member``), the restored one renamed in
  (renames inside the data dir: atomic, and undone by ``rollback-data``).
- ``start-control-plane``: the manifests moved back; ``wait-etcd``: each member healthy (it
  answers only once a quorum has formed).

The restore bumps the revision by :data:`BUMP_REVISION` and marks it compacted (etcd's advice
for a restore under running clients): every watch of the API servers, kubelets and controllers
sees a compaction and lists again instead of missing what the restore changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import shlex
import tarfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

from ..core import constants as K
from ..core.errors import ConfigError, KubefabError, PreflightError
from ..core.plan import Command, FileWrite, Message, Plan, Wait
from ..core.poll import ports_free_script
from .etcdutil import data_dir, etcd_manifest, etcdctl_argv, static_pod_ports
from .joindata import client_url, peer_url
from .renew import api_server_out_first
from .workflow import OPERATOR, Phase, Workflow

ETCDUTL = "etcdutl"
BACKUP_FORMAT = 1
BACKUP_SUFFIX = ".tar.gz"
SNAPSHOT_MEMBER = "snapshot.db"
META_MEMBER = "kubefab-backup.json"
PKI_PREFIX = "pki/"
# etcd's advice for a restore while clients (API servers, kubelets) may still watch: bump the
# revision well past anything they saw and mark it compacted, so every watch lists again
BUMP_REVISION = 1_000_000_000
STOP_WAIT_SECONDS = 120
SNAPSHOT_TIMEOUT = "600s"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_BACKUP_RE = re.compile(r"^(?P<cluster>.+)-etcd-(?P<stamp>\d{8}T\d{6}Z)" + re.escape(BACKUP_SUFFIX) + "$")


# --- names ------------------------------------------------------------------------------------
def stamp(now: datetime) -> str:
    """``20261206T091654Z``: the time in backup names and restore directories (UTC)."""
    return now.strftime(_STAMP_FORMAT)


def backup_name(cluster_name: str, now: datetime) -> str:
    """``<cluster>-etcd-<time>.tar.gz``, sorting by time."""
    return f"{cluster_name}-etcd-{stamp(now)}{BACKUP_SUFFIX}"


def backups_to_prune(names: Iterable[str], cluster_name: str, keep: int) -> list[str]:
    """The backup names of ``cluster_name`` beyond the ``keep`` newest (oldest first); other
    files are never touched."""
    if keep < 1:
        raise ConfigError(f"--keep {keep}: keep at least one backup", fix="pass --keep 1 or more, or leave it out")
    ours = sorted((m.group("stamp"), n) for n in names if (m := _BACKUP_RE.match(n)) and m.group("cluster") == cluster_name)
    return [n for _, n in ours[:-keep]] if len(ours) > keep else []


def output_path(output: str, default_dir: Path, cluster_name: str, now: datetime) -> Path:
    """Where the backup goes: ``--output-file`` as a file, or inside it when it is a directory (or
    ends with ``/``); without it, ``<state>/backups/``."""
    if not output:
        return default_dir / backup_name(cluster_name, now)
    path = Path(output).expanduser()
    if output.endswith("/") or path.is_dir():
        return path / backup_name(cluster_name, now)
    return path


# --- the snapshot file ----------------------------------------------------------------------------
def snapshot_hash_ok(data: bytes) -> bool | None:
    """etcd's integrity hash: the snapshot API appends the sha256 of the database, which makes
    the size 32 more than a multiple of 512 (etcdutl checks it the same way on restore).

    :returns: True/False when the hash is there, None for a file without one (a ``db`` copied
        from a data directory).
    """
    if len(data) < 512 or len(data) % 512 != hashlib.sha256().digest_size:
        return None
    return hashlib.sha256(data[:-32]).digest() == data[-32:]


def snapshot_script(pki_dir: str, endpoint: str, path: str) -> str:
    """On the host: check the member's health, save a snapshot to ``path`` (0600), print its
    sha256, size and the member's status (``key=value`` lines; etcdctl's chatter on stderr)."""
    ec = shlex.join(etcdctl_argv(pki_dir, [endpoint]))
    q = shlex.quote(path)
    return ("umask 077\n"
            f"mkdir -p {shlex.quote(posixpath.dirname(path))}\n"
            f"{ec} endpoint health >&2 || {{ echo 'unhealthy=1'; exit 3; }}\n"
            f"{ec} snapshot save {q} --command-timeout={SNAPSHOT_TIMEOUT} >&2\n"
            f"echo \"sha256=$(sha256sum {q} | cut -d' ' -f1)\"\n"
            f"echo \"size=$(wc -c < {q})\"\n"
            f"echo \"status=$({ec} endpoint status -w json | tr -d '\\n')\"\n")


@dataclass(frozen=True)
class SnapshotTaken:
    """What the host said about the snapshot it saved."""

    sha256: str
    size: int
    revision: int = 0
    cluster_id: str = ""
    member_id: str = ""
    etcd_version: str = ""


def parse_snapshot_output(text: str, *, host: str = "") -> SnapshotTaken:
    """The ``key=value`` lines of :func:`snapshot_script`.

    :raises KubefabError: when the sha256 or size is missing (the script did not finish).
    """
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    sha = values.get("sha256", "").strip()
    size = values.get("size", "").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", sha) or not size.isdigit():
        raise KubefabError("the snapshot's checksum and size were not reported", host=host, phase="snapshot",
                           details=text.strip().splitlines()[-5:], fix="check etcdctl and sha256sum on the host")
    info = SnapshotTaken(sha, int(size))
    try:
        status = json.loads(values.get("status") or "[]")[0]["Status"]
        header = status.get("header") or {}
        return SnapshotTaken(sha, int(size), revision=int(header.get("revision") or 0),
                             cluster_id=format(int(header.get("cluster_id") or 0), "x"),
                             member_id=format(int(header.get("member_id") or 0), "x"),
                             etcd_version=str(status.get("version") or ""))
    except (ValueError, LookupError, TypeError, AttributeError):
        return info  # the status is for the record only


# --- the backup archive --------------------------------------------------------------------------
@dataclass(frozen=True)
class Backup:
    """A backup read from disk: the snapshot, its record and the PKI it was taken with.

    ``kind`` is ``kubefab`` (an archive of ``fab etcd.snapshot``) or ``etcd`` (a bare snapshot
    file, from ``etcdctl snapshot save``: no record, no PKI).
    """

    path: Path
    snapshot: bytes = field(repr=False)
    kind: str = "kubefab"
    meta: dict[str, Any] = field(default_factory=dict)
    pki: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.snapshot).hexdigest()

    @property
    def has_hash(self) -> bool:
        return snapshot_hash_ok(self.snapshot) is not None


def build_backup(snapshot: bytes, meta: dict[str, Any], pki_files: dict[str, bytes]) -> bytes:
    """The archive (gzip'd tar) of a backup: the record first, then the snapshot, then ``pki/``;
    every member mode 0600, owned by nobody in particular (uid/gid 0, no names)."""
    buf = io.BytesIO()
    mtime = int(datetime.fromisoformat(meta["created"]).timestamp()) if meta.get("created") else 0
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, mtime
            tar.addfile(info, io.BytesIO(data))

        add(META_MEMBER, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
        add(SNAPSHOT_MEMBER, snapshot)
        for rel, data in sorted(pki_files.items()):
            add(PKI_PREFIX + rel, data)
    return buf.getvalue()


def read_backup(path: Path) -> Backup:
    """A backup archive of ``fab etcd.snapshot``, or a bare etcd snapshot file, checked.

    :raises ConfigError: missing or unreadable file, not a backup, a checksum that does not
        match its record, a snapshot whose integrity hash is wrong.
    """
    fix = "give a file made by `fab etcd.snapshot` (or by `etcdctl snapshot save`)"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"backup {path} not found", fix=fix) from None
    except OSError as exc:
        raise ConfigError(f"cannot read backup {path}: {exc.strerror}", fix=fix) from None
    if raw[:2] != b"\x1f\x8b":
        ok = snapshot_hash_ok(raw)
        if ok is False:
            raise ConfigError(f"{path}: the etcd snapshot's integrity hash does not match its content "
                              "(damaged or truncated)", fix="use another copy of the backup")
        if ok is None and not _looks_like_bbolt(raw):
            raise ConfigError(f"{path} is neither a kubefab backup nor an etcd snapshot", fix=fix)
        return Backup(path, raw, kind="etcd")
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            if META_MEMBER not in members or SNAPSHOT_MEMBER not in members:
                raise ConfigError(f"{path} is an archive without {META_MEMBER} and {SNAPSHOT_MEMBER}: "
                                  "not a kubefab backup", fix=fix)
            meta = json.loads(tar.extractfile(members[META_MEMBER]).read())
            snapshot = tar.extractfile(members[SNAPSHOT_MEMBER]).read()
            pki = {name[len(PKI_PREFIX):]: tar.extractfile(m).read() for name, m in members.items()
                   if name.startswith(PKI_PREFIX) and ".." not in name.split("/")}
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable backup archive ({exc.__class__.__name__})", fix=fix) from None
    if not isinstance(meta, dict) or meta.get("format") != BACKUP_FORMAT:
        raise ConfigError(f"{path}: {META_MEMBER} is not a kubefab backup record of format {BACKUP_FORMAT}", fix=fix)
    backup = Backup(path, snapshot, meta=meta, pki=pki)
    if backup.sha256 != meta.get("sha256"):
        raise ConfigError(f"{path}: checksum mismatch: the snapshot's sha256 is {backup.sha256[:16]}…, its record "
                          f"says {str(meta.get('sha256'))[:16]}…", fix="the archive is damaged: use another copy")
    if snapshot_hash_ok(snapshot) is False:
        raise ConfigError(f"{path}: the etcd snapshot's integrity hash does not match its content",
                          fix="the archive is damaged: use another copy")
    return backup


def _looks_like_bbolt(data: bytes) -> bool:
    """A bolt database's first page holds its magic 0xED0CDAED (little-endian) at byte 16."""
    return len(data) >= 4096 and data[16:20] == bytes.fromhex("edda0ced")


def check_same_cluster(backup: Backup, ca_pin: str | None, *, state_root: Path) -> list[str]:
    """Refuse a backup of another cluster (its CA is not the state dir's); warnings otherwise.

    :raises ConfigError: when the backup's CA pin differs from the state dir's.
    """
    warnings: list[str] = []
    theirs = backup.meta.get("ca_pin")
    if backup.kind == "etcd":
        warnings.append(f"{backup.path} is a bare etcd snapshot: kubefab cannot tell which cluster it is from")
        if not backup.has_hash:
            warnings.append("it has no integrity hash (copied from a data directory?): restored with "
                            "--skip-hash-check")
    elif not ca_pin:
        warnings.append(f"{state_root} holds no CA: kubefab cannot check that the backup is of this cluster")
    elif theirs and theirs != ca_pin:
        raise ConfigError(f"{backup.path} is a backup of another cluster ({backup.meta.get('cluster') or '?'}): "
                          f"its CA is not the CA in {state_root}",
                          fix="restore it with that cluster's state dir (--state-dir) and inventory, or pick a "
                              "backup of this cluster")
    return warnings


# --- restore ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestoreData:
    """What every host's restore plans read (``ctx.etcd_restore``).

    :param stamp: the run's time, naming the restore and stash directories on every host.
    :param snapshot: the snapshot's bytes (uploaded to each member).
    :param members: ``(name, peer URL)`` of every member of the restored cluster, in order.
    """

    stamp: str
    snapshot: bytes = field(repr=False)
    members: tuple[tuple[str, str], ...] = ()
    skip_hash_check: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.snapshot).hexdigest()

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{name}={url}" for name, url in self.members)


def restore_data(ctx) -> RestoreData:
    data = getattr(ctx, "etcd_restore", None)
    if data is None:
        raise KubefabError("no snapshot to restore was given to this run", host=ctx.host_name,
                           fix="a kubefab bug: etcd.restore prepares the snapshot first")
    return data


def restore_dir(ctx) -> str:
    """``<data-dir>/kubefab-restore-<time>``: inside the data dir, so the swap is two renames on
    one file system (the data dir may itself be a mount point)."""
    return posixpath.join(data_dir(ctx), f"kubefab-restore-{restore_data(ctx).stamp}")


def stash_dir(ctx) -> str:
    """Where the static pod manifests wait while the control plane is stopped."""
    return posixpath.join(K.KUBERNETES_DIR, "tmp", f"kubefab-etcd-restore-{restore_data(ctx).stamp}")


def member_flags(ctx) -> dict[str, str]:
    """The flags this member's etcd manifest runs with (kubeadm's): name, peer URL, data dir."""
    return {"name": ctx.node_name, "initial-advertise-peer-urls": peer_url(ctx.advertise_address),
            "data-dir": data_dir(ctx)}


def plan_restore_preflight(ctx) -> Plan:
    plan = Plan("preflight", ctx.host_name)
    if ctx.facts is None:
        plan.notes.append("offline: host checks need facts and were not run")
        return plan
    problems = []
    if ctx.fact("uid", 0) != 0:
        problems.append("the restore must run as root")
    if not (ctx.fact("binaries") or {}).get(ETCDUTL):
        problems.append("etcdutl is not installed (etcd 3.6 restores snapshots only with etcdutl)")
    manifest = (ctx.fact("paths") or {}).get(etcd_manifest())
    if not (manifest and manifest.get("exists")):
        problems.append(f"{etcd_manifest()} does not exist: this host runs no local etcd member "
                        "(or a restore stopped half-way: see /etc/kubernetes/tmp/kubefab-etcd-restore-*)")
    if problems:
        raise PreflightError("cannot restore etcd on this host", host=ctx.host_name, phase="preflight",
                             details=problems,
                             fix="install etcdutl of the cluster's etcd version next to etcdctl, and run the restore "
                                 "on the control planes kubefab set up")
    member = (ctx.fact("paths") or {}).get(posixpath.join(data_dir(ctx), "member"))
    if not (member and member.get("exists")):
        plan.notes.append(f"{data_dir(ctx)}/member does not exist: nothing to keep, the restored data goes in")
    return plan


def _manifest_check_script(ctx) -> str:
    """Fail unless the etcd manifest runs this member's name, peer URL and data dir."""
    lines = []
    for flag, value in member_flags(ctx).items():
        pattern = "^[[:space:]]*- --" + re.escape(f"{flag}={value}").replace("\\-", "-") + "[[:space:]]*$"
        lines.append(f"grep -qE -- {shlex.quote(pattern)} {shlex.quote(etcd_manifest())} || "
                     f"{{ echo {shlex.quote(f'{etcd_manifest()} does not run --{flag}={value}')} >&2; exit 1; }}")
    return "\n".join(lines)


def plan_stage(ctx) -> Plan:
    """Upload and check the snapshot, restore it into a new directory (etcd still runs)."""
    data = restore_data(ctx)
    plan = Plan("stage", ctx.host_name)
    rdir = restore_dir(ctx)
    snap = posixpath.join(rdir, SNAPSHOT_MEMBER)
    new = posixpath.join(rdir, "new")
    plan.add(FileWrite(snap, data.snapshot, mode=0o600, dir_mode=0o700, reason="the snapshot to restore"))
    check = (f"echo {shlex.quote(data.sha256 + '  ' + snap)} | sha256sum -c --status || "
             f"{{ echo {shlex.quote(f'checksum mismatch: {snap} is not the snapshot sent (sha256 {data.sha256})')} "
             ">&2; exit 1; }\n" + _manifest_check_script(ctx))
    plan.add(Command(("sh", "-c", check), "check the snapshot's sha256 on the host and the etcd manifest's member"))
    argv = [ETCDUTL, "snapshot", "restore", snap, "--name", ctx.node_name,
            "--initial-cluster", data.initial_cluster, "--initial-advertise-peer-urls", peer_url(ctx.advertise_address),
            "--data-dir", new, "--bump-revision", str(BUMP_REVISION), "--mark-compacted"]
    if data.skip_hash_check:
        argv.append("--skip-hash-check")
    plan.add(Command(("sh", "-c", f"rm -rf {shlex.quote(new)} && {shlex.join(argv)}"),
                     f"restore the snapshot into {new} as member {ctx.node_name}"))
    return plan


def stop_script(ctx) -> str:
    q = shlex.quote
    stash = q(stash_dir(ctx))
    return (f"mkdir -p -m 0700 {stash}\n"
            + api_server_out_first(ctx, f"mv -f \"$api\" {stash}/")
            + f"for f in {q(K.MANIFESTS_DIR)}/*.yaml; do [ -e \"$f\" ] && mv -f \"$f\" {stash}/; done\n"
            + ports_free_script(static_pod_ports(ctx), STOP_WAIT_SECONDS,
                                also="grep -qx etcd /proc/[0-9]*/comm 2>/dev/null && echo 'etcd still runs'",
                                on_timeout=f"echo \"the static pods did not stop within {STOP_WAIT_SECONDS}s ($out)\" >&2; "
                                           "exit 1"))


def plan_stop(ctx) -> Plan:
    plan = Plan("stop-control-plane", ctx.host_name)
    plan.add(Command(("sh", "-c", stop_script(ctx)),
                     f"move the static pod manifests to {stash_dir(ctx)} and wait until the kubelet stopped them"))
    return plan


def plan_swap(ctx) -> Plan:
    q = shlex.quote
    d, r = q(data_dir(ctx)), q(restore_dir(ctx))
    script = (f"[ -d {r}/new/member ] || {{ echo 'no restored data in '{r}/new >&2; exit 1; }}\n"
              f"if [ -e {d}/member ]; then rm -rf {r}/old-member; mv {d}/member {r}/old-member; "
              f"else touch {r}/no-old-member; fi\n"
              f"mv {r}/new/member {d}/member\n"
              f"rm -rf {r}/new {r}/{SNAPSHOT_MEMBER}")
    return Plan("swap-data", ctx.host_name, [Command(("sh", "-c", script),
                                                     f"put the restored member/ in {data_dir(ctx)} (the old one kept "
                                                     f"in {restore_dir(ctx)}/old-member)")])


def plan_start(ctx) -> Plan:
    q = shlex.quote
    stash = q(stash_dir(ctx))
    script = (f"[ -d {stash} ] || exit 0\n"
              f"for f in {stash}/*.yaml; do [ -e \"$f\" ] && mv -f \"$f\" {q(K.MANIFESTS_DIR)}/; done\n"
              f"rmdir {stash}")
    return Plan("start-control-plane", ctx.host_name,
                [Command(("sh", "-c", script), "move the static pod manifests back: the kubelet starts the pods")])


def plan_wait_etcd(ctx) -> Plan:
    from ..core.endpoints import loopback_for

    plan = Plan("wait-etcd", ctx.host_name)
    timeout = max(ctx.timeouts.etcd_api_call, timedelta(minutes=3))
    plan.add(Wait("etcd-healthz", f"http://{loopback_for(ctx.advertise_address)}:{K.ETCD_METRICS_PORT}/health",
                  timeout))
    kept = posixpath.join(restore_dir(ctx), "old-member")
    plan.add(Message(f"etcd restored; the data it had before is kept in {kept}: remove it once the cluster is fine"))
    return plan


def plan_rollback_data(ctx) -> Plan:
    """Undo ``swap-data`` (the old member/ back) and drop the staged files."""
    q = shlex.quote
    d, r = q(data_dir(ctx)), q(restore_dir(ctx))
    script = (f"[ -d {r} ] || exit 0\n"
              f"if [ -d {r}/old-member ]; then rm -rf {d}/member; mv {r}/old-member {d}/member; "
              f"elif [ -e {r}/no-old-member ]; then rm -rf {d}/member; fi\n"
              f"rm -rf {r}")
    return Plan("rollback-data", ctx.host_name, [Command(("sh", "-c", script),
                                                         "put the data etcd had back, remove the staged snapshot")])


def _probes(ctx) -> list[str]:
    paths = [etcd_manifest(), posixpath.join(data_dir(ctx), "member")]
    if getattr(ctx, "etcd_restore", None) is not None:
        paths.append(posixpath.join(restore_dir(ctx), SNAPSHOT_MEMBER))
    return paths


RESTORE = Workflow(
    "etcd-restore",
    (
        Phase("preflight", "Check root, etcdutl and the etcd manifest", run=plan_restore_preflight, where=OPERATOR,
              probes=_probes),
        Phase("stage", "Upload the snapshot, check it and restore it into a new directory", run=plan_stage,
              probes=_probes),
        Phase("stop-control-plane", "Move the static pod manifests out and wait until the pods stopped",
              run=plan_stop),
        Phase("swap-data", "Put the restored data in place, keeping the old", run=plan_swap),
        Phase("start-control-plane", "Move the static pod manifests back", run=plan_start),
        Phase("wait-etcd", "Wait until the etcd member is healthy (a quorum formed)", run=plan_wait_etcd),
        Phase("rollback-data", "Undo swap-data and remove the staged files (after a failure)",
              run=plan_rollback_data, hidden=True),
    ),
    summary="Restore every control plane's etcd from a snapshot",
)

# the stages of a restore, each run on every control plane before the next begins
STAGES: tuple[tuple[str, ...], ...] = (("preflight", "stage"), ("stop-control-plane",), ("swap-data",),
                                       ("start-control-plane",), ("wait-etcd",))


def member_list_matches(members: list[dict], expected: Iterable[tuple[str, str]]) -> list[str]:
    """Problems of an ``etcdctl member list -w json`` after a restore: every expected member
    there, started, voting, with its peer URL; nothing else."""
    want = dict(expected)
    have = {m.get("name") or format(int(m.get("ID", 0)), "x"): m for m in members}
    problems = [f"member {n} is missing" for n in want if n not in have]
    problems += [f"unexpected member {n}" for n in have if n not in want]
    for name, m in have.items():
        if name in want and want[name] not in (m.get("peerURLs") or []):
            problems.append(f"member {name} has peer URLs {m.get('peerURLs')}, not {want[name]}")
        if m.get("isLearner"):
            problems.append(f"member {name} is a learner")
    return problems


def host_endpoint(ctx) -> str:
    return client_url(ctx.advertise_address)
