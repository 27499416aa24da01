"""``fab etcd.snapshot`` and ``fab etcd.restore``: etcd backups of the control plane, and restores.

The snapshot is taken on one healthy member's host with ``etcdctl`` (the first control plane of
``-H``, else of the inventory, that answers healthy), copied here with its sha256 compared, and
written with the state dir's PKI into one archive, mode 0600 (:mod:`tasks.phases.etcd`).

The restore runs the :data:`~tasks.phases.etcd.RESTORE` table on every control plane, stage by
stage through the host pipeline (each stage on all hosts before the next), and undoes what it did
when a stage fails before the control plane is started again; then it checks the member list,
the API server's ``/readyz`` and that every Node is Ready.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from . import output
from .core import constants as K
from .core.errors import ConfigError, KubefabError, RemoteError
from .phases import etcd as E
from .phases.context import Options, RunContext
from .pipeline import HostResult, Run, report, run_hosts, run_workflow, ssh_connector


def _context(inv, host, state, options: Options, **kw) -> RunContext:
    """A control plane's context: its join-side config (node name, advertise address, data dir);
    the config's skipPhases are for kubeadm's join, not for these tables."""
    cfg = inv.kubeadm_config(host, join=True)
    if cfg.join is not None:
        cfg = replace(cfg, join=replace(cfg.join, skip_phases=()))
    if cfg.init is not None:
        cfg = replace(cfg, init=replace(cfg.init, skip_phases=()))
    return RunContext(config=cfg, host_name=host.name, state=state, options=options, **kw)


def _control_planes(inv, names: list[str], what: str):
    hosts = inv.resolve(names) if names else list(inv.control_planes)
    bad = [h.name for h in hosts if not h.is_control_plane]
    if bad:
        raise ConfigError(f"{what} runs on control planes; {', '.join(bad)} "
                          f"{'is a worker' if len(bad) == 1 else 'are workers'} in the inventory",
                          fix="name control-plane hosts with -H, or leave -H out")
    if not hosts:
        raise ConfigError("the inventory has no control-plane host", fix="give a host roles: [control-plane]")
    return hosts


def _pki_files(state) -> dict[str, bytes]:
    root = state.pki_dir
    if not (root / "ca.crt").exists():
        raise KubefabError(f"no cluster PKI in {state.root}",
                           fix="run the snapshot with the state dir of this cluster (--state-dir)")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _ca_pin(state) -> str | None:
    from .core import bootstrap

    ca = state.pki_dir / "ca.crt"
    return bootstrap.ca_pin(ca.read_bytes()) if ca.exists() else None


def _prune(directory: Path, cluster: str, keep: int, *, dry_run: bool, extra: str = "") -> None:
    names = [p.name for p in directory.iterdir()] if directory.is_dir() else []
    if extra and extra not in names:
        names.append(extra)
    for name in E.backups_to_prune(names, cluster, keep):
        if dry_run:
            output.info(f"would remove {directory / name} (--keep {keep})", phase="etcd.snapshot")
        else:
            (directory / name).unlink(missing_ok=True)
            output.info(f"removed {directory / name} (--keep {keep})", phase="etcd.snapshot")


# --- snapshot -----------------------------------------------------------------------------------
def snapshot(inv, state, names: list[str], *, output_file: str = "", keep: int = 0, dry_run: bool = False,
             accept_new_host_keys: bool = False) -> Path | None:
    """``fab etcd.snapshot``: see the module doc. Returns the backup's path (None on a dry-run)."""
    if keep < 0:
        raise ConfigError(f"--keep {keep}: keep at least one backup", fix="pass --keep 1 or more, or leave it out")
    hosts = _control_planes(inv, names, "etcd.snapshot")
    state.check()
    pki_files = _pki_files(state)
    now = datetime.now(timezone.utc)
    cluster = inv.kubeadm_config(hosts[0]).cluster
    if cluster.etcd_local is None or cluster.etcd_external is not None:
        raise ConfigError("the cluster uses an external etcd: back it up where it runs",
                          fix="use etcdctl snapshot save against the external etcd")
    target = E.output_path(output_file, state.root / "backups", cluster.cluster_name, now)
    if target.exists():
        raise ConfigError(f"{target} already exists", fix="give another --output-file, or move that file away")
    contexts = [_context(inv, h, state, Options(dry_run=dry_run)) for h in hosts]
    if dry_run:
        output.out("[etcd.snapshot] would save a snapshot from the first healthy member of: "
                   + ", ".join(f"{c.host_name} ({E.host_endpoint(c)})" for c in contexts))
        output.out(f"[etcd.snapshot] would write {target} (mode 0600): {E.SNAPSHOT_MEMBER}, {E.META_MEMBER} and "
                   f"{len(pki_files)} files of {state.pki_dir}")
        if keep:
            _prune(target.parent, cluster.cluster_name, keep, dry_run=True, extra=target.name)
        return None
    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)
    started = time.monotonic()
    failures: list[str] = []
    for host, ctx in zip(hosts, contexts):
        output.stage(f"Connecting to {host.name} ({host.address})")
        try:
            got = _snapshot_from(host, ctx, connect)
        except KubefabError as exc:
            exc.with_context(host=host.name, phase="snapshot")
            output.err(exc.render())
            failures.append(f"{host.name}: {exc.problem}")
            continue
        if got is None:
            failures.append(f"{host.name}: etcd member not healthy")
            continue
        taken, data, seconds = got
        meta = {"format": E.BACKUP_FORMAT, "cluster": cluster.cluster_name, "created": now.isoformat(),
                "host": host.name, "member": ctx.node_name, "endpoint": E.host_endpoint(ctx),
                "revision": taken.revision, "cluster_id": taken.cluster_id, "member_id": taken.member_id,
                "etcd_version": taken.etcd_version, "kubernetes_version": cluster.kubernetes_version,
                "sha256": taken.sha256, "size": taken.size, "ca_pin": _ca_pin(state)}
        from .core.state import write_atomic

        write_atomic(target, E.build_backup(data, meta, pki_files), 0o600, dir_mode=0o700)
        os.chmod(target, 0o600)
        output.err(output.table([("HOST", "MEMBER", "REVISION", "SIZE", "SHA256", "TIME"),
                                 (host.name, ctx.node_name, str(taken.revision), f"{taken.size}",
                                  taken.sha256[:16] + "…", f"{seconds:.1f}s")], sep="  "))
        output.stage(f"Snapshot of {cluster.cluster_name} (revision {taken.revision}) with {len(pki_files)} PKI files "
                     f"written in {time.monotonic() - started:.1f}s")
        output.out(str(target))
        if keep:
            _prune(target.parent, cluster.cluster_name, keep, dry_run=False)
        return target
    raise KubefabError("no etcd member gave a snapshot", details=failures,
                       fix="check etcd on the control planes (`fab etcd.snapshot -H <host>` picks one)")


def _snapshot_from(host, ctx, connect):
    """(taken, bytes, seconds) from the member on ``host``; None when it is not healthy."""
    t0 = time.monotonic()
    tmp = f"{K.KUBERNETES_DIR}/tmp/kubefab-snapshot-{secrets.token_hex(6)}.db"
    transport = connect(host)
    try:
        result = transport.run(["sh", "-c", E.snapshot_script(ctx.pki_dir, E.host_endpoint(ctx), tmp)],
                               check=False, timeout=900)
        if result.exit_code == 3 and "unhealthy=1" in result.stdout:
            output.info("WARNING: the etcd member is not healthy; trying the next control plane", host=host.name,
                        phase="snapshot")
            for line in result.tail(5):
                output.info(f"  {line}", host=host.name, phase="snapshot")
            return None
        if result.exit_code != 0:
            raise RemoteError(f"etcdctl snapshot save failed (exit code {result.exit_code})", host=host.name,
                              phase="snapshot", details=result.tail(),
                              fix="check etcdctl and the member's health on the host")
        taken = E.parse_snapshot_output(result.stdout, host=host.name)
        output.info(f"saved revision {taken.revision} ({taken.size} bytes) from {E.host_endpoint(ctx)}; copying it here",
                    host=host.name, phase="snapshot")
        data = transport.get(tmp)
    finally:
        try:
            transport.run(f"rm -f -- {shlex.quote(tmp)} {shlex.quote(tmp + '.part')}", check=False, timeout=60)
        finally:
            transport.close()
    got = hashlib.sha256(data).hexdigest()
    if got != taken.sha256 or len(data) != taken.size:
        raise RemoteError(f"checksum mismatch: the copy has sha256 {got[:16]}… and {len(data)} bytes, the host's "
                          f"file {taken.sha256[:16]}… and {taken.size} bytes", host=host.name, phase="snapshot",
                          fix="re-run the snapshot; nothing was written")
    if E.snapshot_hash_ok(data) is not True:
        raise RemoteError("the snapshot's etcd integrity hash is missing or wrong", host=host.name, phase="snapshot",
                          fix="re-run the snapshot; nothing was written")
    output.info(f"copied, sha256 {got[:16]}… verified on both ends, etcd integrity hash ok", host=host.name,
                phase="snapshot")
    return taken, data, time.monotonic() - t0


# --- restore ------------------------------------------------------------------------------------
def confirm(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower() if sys.stdin is not None and not sys.stdin.closed else ""
    return answer in ("y", "yes")


def restore(inv, state, file: str, names: list[str], *, yes: bool = False, dry_run: bool = False,
            accept_new_host_keys: bool = False, wait_ready_seconds: float = 300) -> None:
    """``fab etcd.restore <file>``: see the module doc."""
    from .locks import run_lock

    with run_lock(state, dry_run=dry_run):
        _restore(inv, state, file, names, yes=yes, dry_run=dry_run, accept_new_host_keys=accept_new_host_keys,
                 wait_ready_seconds=wait_ready_seconds)


def _restore(inv, state, file: str, names: list[str], *, yes: bool, dry_run: bool, accept_new_host_keys: bool,
             wait_ready_seconds: float) -> None:
    from .phases.joindata import peer_url

    if not file:
        raise ConfigError("etcd.restore needs the backup file", fix="e.g. fab etcd.restore <backup file>")
    if names:
        raise ConfigError("etcd.restore restores every control plane of the inventory; -H is not used",
                          fix="leave -H out (the inventory's control planes are the restored cluster's members)")
    state.check()
    backup = E.read_backup(Path(file).expanduser())
    hosts = _control_planes(inv, [], "etcd.restore")
    options = Options(dry_run=dry_run)
    contexts = {h.name: _context(inv, h, state, options) for h in hosts}
    first = contexts[hosts[0].name]
    if first.cluster.etcd_local is None or first.cluster.etcd_external is not None:
        raise ConfigError("the cluster uses an external etcd: restore it where it runs",
                          fix="use etcdutl snapshot restore on the external etcd members")
    admin = first.node_state_dir / K.ADMIN_KUBECONFIG
    if not admin.exists():  # the checks after the restore read the API with it: known before anything starts
        raise ConfigError(f"no admin.conf for {first.host_name} in {state.root}",
                          fix="run the restore with the state dir of this cluster (--state-dir)")
    for warning in E.check_same_cluster(backup, _ca_pin(state), state_root=state.root):
        output.info(f"WARNING: {warning}", phase="etcd.restore")
    if backup.meta:
        output.info(f"backup of {backup.meta.get('cluster')} taken {backup.meta.get('created')} from "
                    f"{backup.meta.get('member')} (revision {backup.meta.get('revision')}), sha256 "
                    f"{backup.sha256[:16]}… verified", phase="etcd.restore")
    members = tuple((c.node_name, peer_url(c.advertise_address)) for c in contexts.values())
    data = E.RestoreData(E.stamp(datetime.now(timezone.utc)), backup.snapshot, members,
                         skip_hash_check=not backup.has_hash)
    if not yes and not dry_run:
        output.err(f"[etcd.restore] WARNING: etcd on {', '.join(contexts)} will be replaced by {backup.path}: "
                   "every change made to the cluster since the snapshot is lost, and the API is down meanwhile.")
        if not confirm("[etcd.restore] Are you sure you want to proceed?"):
            raise KubefabError("restore aborted: not confirmed", fix="answer y, or pass --yes")
    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)
    started = time.monotonic()
    totals = {h.name: HostResult(h.name, "control-plane") for h in hosts}

    def stage(phases: tuple[str, ...], label: str, hosts_=hosts) -> list[HostResult]:
        def one(h) -> HostResult:
            ctx = replace(contexts[h.name], etcd_restore=data)
            return run_workflow(h, Run(E.RESTORE, "control-plane", lambda: ctx, only=phases, table=False),
                                connect=connect, options=options)

        output.stage(f"{label} on {', '.join(h.name for h in hosts_)}")
        results = run_hosts(hosts_, one, parallel=len(hosts_), role=lambda h: "control-plane")
        for r in results:
            total = totals[r.host]
            total.phases += r.phases
            total.changed += r.changed
            total.seconds += r.seconds
            total.timer.rows.extend(r.timer.rows)
            total.error = total.error or r.error
        return results

    if dry_run:
        stage(tuple(p for st in E.STAGES for p in st), "dry-run: the restore, every stage")
        return
    labels = ("Staging and checking the snapshot", "Stopping the control plane", "Putting the restored data in place",
              "Starting the control plane", "Waiting for etcd")
    for i, (phases, label) in enumerate(zip(E.STAGES, labels)):
        results = stage(phases, label)
        if all(r.ok for r in results):
            continue
        if i <= 2:
            output.stage("A stage failed: undoing the restore on every control plane")
            if i >= 1:
                stage(("rollback-data",), "Putting the previous data back")
                stage(("start-control-plane",), "Starting the control plane again")
            else:
                stage(("rollback-data",), "Removing the staged snapshot")
            _finish(totals, "nothing was restored: every control plane runs on the data it had")
        stash = E.stash_dir(replace(first, etcd_restore=data))
        _finish(totals, f"the restored data is in place; the static pod manifests of a host that did not start "
                        f"may still be in {stash}: move them back to {K.MANIFESTS_DIR}. The previous data of each "
                        f"member is in {E.restore_dir(replace(first, etcd_restore=data))}/old-member")
    _check_cluster(inv, state, hosts[0], contexts[hosts[0].name], members, connect, wait_ready_seconds)
    output.err(_timer_table(totals))
    output.stage(f"etcd restored from {backup.path} on {len(hosts)} control planes in "
                 f"{time.monotonic() - started:.1f}s")
    report(list(totals.values()))


def _timer_table(totals: dict[str, HostResult]) -> str:
    from .output import Timer

    timer = Timer()
    for r in totals.values():
        timer.rows.extend(r.timer.rows)
    return timer.table()


def _finish(totals: dict[str, HostResult], why: str) -> None:
    output.err(_timer_table(totals))
    output.info(why, phase="etcd.restore")
    report(list(totals.values()))  # raises: a host failed
    raise KubefabError("the restore stopped", fix=why)  # pragma: no cover - report raised


def _check_cluster(inv, state, host, ctx, members, connect, wait_ready_seconds: float) -> None:
    """Quorum with exactly the restored members, the API server ready, every Node Ready."""
    import json

    from .core.poll import poll
    from .phases.etcdutil import etcdctl_argv
    from .session import cluster_api, wait_api_ready, wait_nodes_ready

    output.stage("Checking the etcd members, the API server and the Nodes")
    endpoints = [E.host_endpoint(ctx)]
    transport = connect(host)
    try:
        def listed():
            r = transport.run(etcdctl_argv(ctx.pki_dir, endpoints, "member", "list", "-w", "json"), check=False,
                              timeout=60)
            if r.exit_code != 0:
                return False, r.tail(3)
            problems = E.member_list_matches(json.loads(r.stdout).get("members") or [], members)
            return not problems, problems

        ok, last = poll(listed, 120, interval=2)
    finally:
        transport.close()
    if not ok:
        raise KubefabError("the restored etcd cluster does not have the expected members", host=host.name,
                           phase="etcd.restore", details=[str(x) for x in last],
                           fix="look at the etcd logs on the control planes")
    output.info(f"etcd has {len(members)} voting members: {', '.join(n for n, _ in members)}", phase="etcd.restore")
    with cluster_api(inv, state, connect=connect) as (cctx, api):
        wait_api_ready(api, "/readyz", 300, host=host.name, phase="etcd.restore")
        output.info("the API server is ready", phase="etcd.restore")
        wait_nodes_ready(api, [h.node_name for h in inv.hosts], wait_ready_seconds)
