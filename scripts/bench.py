"""kubefab's benchmark at scale on the real lab (root needed; a script, not a timed test).

For each N of ``--sizes`` (default 5,20), ``--repeat`` times (default 1; fresh lab each time):
  1. a lab of N hosts (3 control planes + N-3 workers, real kubelets and containerd) behind an
     haproxy load balancer,
  2. ``fab cluster-up`` (fresh), then again (the converged re-run),
  3. with ``--join-new K`` (default 10, on the first repetition of the first size): the lab grown
     by K hosts, the same files a worker join writes pushed to them with plain ``ssh ... tar``
     (the floor), with ``--ansible`` by Ansible's ``copy`` too, then ``fab -H <the K new hosts> join``.
Each kubefab run is measured from outside (wall time, operator-side CPU seconds and peak
RSS of its process, load averages before and after: other work on the machine counts) and from its own
``-o json`` summary (per host: seconds, SSH round trips, bytes sent, per-phase timings); after a
fresh run the Nodes' Ready times are read from the API (lastTransitionTime of Ready, 1 s
resolution) relative to the start.

Usage: ``make bench`` or ``.venv/bin/python scripts/bench.py [--json] [--sizes 5,20,50]
[--repeat 3] [--join-new 10] [--parallel N] [--lab-dir DIR] [--init] [--ansible]``. The lab lives in
``--lab-dir`` (default ``$KUBEFAB_BENCH_LAB_DIR``, else ``/var/tmp/kubefab-bench``) and is torn
down at the end. ``--init`` adds the single-host numbers (offline plan, init, its re-run).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab.fixtures import fresh_lab  # noqa: E402

LAB_DIR_ENV = "KUBEFAB_BENCH_LAB_DIR"
DEFAULT_LAB_DIR = "/var/tmp/kubefab-bench"
FAB_TIMEOUT = 1800
# What a worker join writes, for the ssh+tar floor (kubelet.conf stands for bootstrap-kubelet.conf,
# which the join removes once the kubelet has bootstrapped: the same kind of file, the same size).
WORKER_FILES = ("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml",
                "/var/lib/kubelet/kubeadm-flags.env", "/var/lib/kubelet/instance-config.yaml",
                "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf")


def fab(lab, *args: str) -> dict:
    """Run ``fab <args> -o json`` in the lab's switch namespace; measure it from outside."""
    argv = lab.sw_argv([sys.executable, "-m", "fabric", "-r", str(ROOT), *args, "-o", "json"])
    load0 = os.getloadavg()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(FAB_TIMEOUT, lambda: os.kill(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this process's own rusage: CPU and peak RSS
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"bench: fab {' '.join(args)} failed (exit {proc.returncode}):\n{stderr[-4000:]}")
    summary = json.loads(stdout)
    hosts = summary.get("hosts") or []
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "groups": phase_groups(hosts),
        "hosts": [{"host": h["host"], "role": h["role"], "seconds": h["seconds"], "changed": h["changed"],
                   "round_trips": h.get("roundTrips", 0), "bytes_sent": h.get("bytesSent", 0),
                   "wait_seconds": round(sum(t["seconds"] for t in h.get("timings", []) if is_wait(t)), 2),
                   "timings": h.get("timings", [])} for h in hosts],
    }


def is_wait(timing: dict) -> bool:
    """A phase spent waiting on the host or the cluster (etcd learner, kubelet, API server)."""
    return "wait" in timing["phase"] or timing["phase"].endswith(("/etcd", "mark-control-plane"))


def phase_groups(hosts: list[dict]) -> dict:
    """init, the serial control-plane joins, the workers (parallel: the longest), per role: the
    round trips and bytes per host (max), and the time spent in host-side waits."""
    def by(role):
        return [h for h in hosts if h["role"] == role]

    init, cps, workers = by("control-plane (init)"), by("control-plane"), by("worker")
    out = {"init_seconds": round(sum(h["seconds"] for h in init), 2),
           "control_plane_joins_seconds": round(sum(h["seconds"] for h in cps), 2),
           "workers_longest_seconds": round(max((h["seconds"] for h in workers), default=0.0), 2),
           "waits_seconds_serial": round(sum(t["seconds"] for h in init + cps for t in h.get("timings", [])
                                             if is_wait(t)), 2)}
    for name, group in (("init", init), ("control_plane", cps), ("worker", workers)):
        if group:
            out[f"{name}_round_trips_max"] = max(h.get("roundTrips", 0) for h in group)
            out[f"{name}_bytes_sent_max"] = max(h.get("bytesSent", 0) for h in group)
    return out


def node_ready_times(lab, state: Path, started_epoch: float) -> dict[str, float]:
    """Seconds from the start of cluster-up to each Node's Ready (its condition's lastTransitionTime)."""
    r = lab.sw(["kubectl", "--kubeconfig", str(state / "admin.conf"), "get", "nodes", "-o", "json"], timeout=120)
    if r.returncode != 0:
        return {}
    out = {}
    for node in json.loads(r.stdout)["items"]:
        for c in node.get("status", {}).get("conditions", []):
            if c.get("type") == "Ready" and c.get("status") == "True":
                at = datetime.fromisoformat(c["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
                out[node["metadata"]["name"]] = round(at - started_epoch, 1)
    return out


def worker_files(lab, source: str) -> dict[str, bytes]:
    """What a worker join wrote on ``source`` (:data:`WORKER_FILES`), by path."""
    out = {}
    for path in WORKER_FILES:
        r = lab.exec(source, ["cat", path], check=False)
        if r.returncode == 0:
            out[path] = r.stdout
    return out


def tar_floor(lab, source: str, targets: list[str], parallel: int) -> dict:
    """Push what a worker join writes to ``targets`` with plain ``ssh host tar -x``, in parallel:
    the floor for a join's file transfer (one ssh connection and one command per host)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in worker_files(lab, source).items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    payload = buf.getvalue()

    def push(name):
        r = lab.ssh(name, "mkdir -p /tmp/kubefab-floor && tar -x -C /tmp/kubefab-floor", input=payload, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"ssh tar to {name} failed: {r.stderr.decode()[-300:]}")

    t0 = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(push, targets))
    return {"wall_seconds": round(time.monotonic() - t0, 2), "hosts": len(targets), "tar_bytes": len(payload)}


ANSIBLE_CORE = "2.19.14"  # pinned: the comparison is with one known Ansible


def ansible_bin() -> Path:
    """ansible-playbook in a venv of its own in the lab's cache (made once, outside the repo:
    Ansible is only the benchmark's yardstick, not a kubefab dependency)."""
    cache = Path(os.environ.get("KUBEFAB_LAB_CACHE", "/var/cache/kubefab-lab"))
    venv = cache / f"ansible-core-{ANSIBLE_CORE}"
    playbook = venv / "bin" / "ansible-playbook"
    if not playbook.exists():
        print(f"bench: installing ansible-core {ANSIBLE_CORE} into {venv}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"ansible-core=={ANSIBLE_CORE}"], check=True)
    return playbook


def ansible_copy(lab, source: str, targets: list[str], parallel: int) -> dict:
    """The same files pushed to ``targets`` by Ansible (``copy`` module, ``--forks`` as kubefab's
    parallelism, its default settings otherwise: how Kubespray-style tools move a join's files)."""
    playbook_bin = ansible_bin()
    files = worker_files(lab, source)
    with tempfile.TemporaryDirectory(prefix="kubefab-bench-ansible-") as tmp:
        src = Path(tmp) / "files"
        for path, data in files.items():
            (src / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (src / path.lstrip("/")).write_bytes(data)
        dirs = sorted({str(Path("/tmp/kubefab-ansible") / Path(p).parent.relative_to("/")) for p in files})
        tasks = [{"name": "directories", "ansible.builtin.file": {"path": "{{ item }}", "state": "directory",
                                                                   "mode": "0700"}, "loop": dirs}]
        tasks += [{"name": f"copy {p}", "ansible.builtin.copy": {"src": str(src / p.lstrip("/")),
                                                                  "dest": f"/tmp/kubefab-ansible{p}", "mode": "0600"}}
                  for p in files]
        play = [{"hosts": "all", "gather_facts": False, "tasks": tasks}]
        (Path(tmp) / "play.yml").write_text(json.dumps(play))
        (Path(tmp) / "hosts.ini").write_text("\n".join(targets) + "\n")
        env = [f"ANSIBLE_SSH_ARGS=-F {lab.ssh_config}", "ANSIBLE_HOST_KEY_CHECKING=False",
               f"ANSIBLE_LOCAL_TEMP={tmp}/local", "ANSIBLE_NOCOLOR=1"]
        t0 = time.monotonic()
        r = lab.sw(["env", *env, str(playbook_bin), "-i", str(Path(tmp) / "hosts.ini"), "--forks", str(parallel),
                    str(Path(tmp) / "play.yml")], timeout=FAB_TIMEOUT)
        wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"ansible-playbook failed: {r.stdout.decode()[-1500:]}{r.stderr.decode()[-500:]}")
    return {"wall_seconds": round(wall, 2), "hosts": len(targets), "files": len(files),
            "ansible_core": ANSIBLE_CORE}


def lab_up(lab, n: int, attempts: int = 3) -> dict:
    """``lab.up``, tried again when a host's sshd did not answer in time: on a loaded machine the
    lab's banner probe (one host after another, 30 s for all) misses hosts of a big lab; ``up``
    keeps the hosts that run and starts the rest again."""
    from tests.lab.hosts import LabError

    for attempt in range(attempts):
        try:
            return lab.up(n, lb=True)
        except LabError as exc:
            if attempt == attempts - 1:
                raise
            print(f"bench: lab up {n}: {str(exc).splitlines()[0]}; again", file=sys.stderr, flush=True)
    raise AssertionError("unreachable")


def bench_size(n: int, lab_dir: str, *, join_new: int, parallel: int | None, ansible: bool = False) -> dict:
    lab = fresh_lab(lab_dir)
    result: dict = {"n": n, "control_planes": 3, "workers": n - 3}
    extra = ["--parallel", str(parallel)] if parallel else []
    try:
        t0 = time.monotonic()
        status = lab_up(lab, n)
        result["lab_up_seconds"] = round(time.monotonic() - t0, 2)
        with tempfile.TemporaryDirectory(prefix="kubefab-bench-state-") as tmp:
            state = Path(tmp) / "state"
            common = ["--inventory", status["inventory"], "--state-dir", str(state)]
            started = time.time()
            result["fresh"] = fab(lab, "cluster-up", *common, *extra)
            result["fresh"]["node_ready_seconds"] = node_ready_times(lab, state, started)
            result["rerun"] = fab(lab, "cluster-up", *common, *extra)
            if join_new:
                status = lab_up(lab, n + join_new)
                new = [f"node{i}" for i in range(n + 1, n + join_new + 1)]
                result["floor_ssh_tar"] = tar_floor(lab, f"node{n}", new, parallel or 30)
                if ansible:
                    result["ansible_copy"] = ansible_copy(lab, f"node{n}", new, parallel or 30)
                started = time.time()
                result["join_new"] = fab(lab, "-H", ",".join(new), "join", *common, *extra)
                ready = node_ready_times(lab, state, started)
                result["join_new"]["node_ready_seconds"] = {k: v for k, v in ready.items() if k in new}
    finally:
        lab.down()
    return result


def bench_init(lab_dir: str) -> dict:
    """The single-host numbers: offline init plan, init on a fresh host, the converged re-run."""
    lab = fresh_lab(lab_dir)
    out: dict = {}
    try:
        status = lab.up(1)
        with tempfile.TemporaryDirectory() as tmp:
            common = ["--inventory", status["inventory"], "--state-dir", str(Path(tmp) / "state")]
            out["offline_plan"] = fab(lab, "-H", "node1", "init", "--dry-run", "--offline", *common,
                                      "--output-dir", str(Path(tmp) / "out"))
            out["init_fresh"] = fab(lab, "-H", "node1", "init", "--upload-certs", *common)
            out["init_rerun"] = fab(lab, "-H", "node1", "init", "--upload-certs", *common)
    finally:
        lab.down()
    return out


def stats(values: list[float]) -> dict:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2), "runs": len(values)}


def summarize(runs: list[dict]) -> dict:
    out: dict = {}
    for n in sorted({r["n"] for r in runs}):
        mine = [r for r in runs if r["n"] == n]
        out[str(n)] = {kind: {key: stats([r[kind][key] for r in mine])
                              for key in ("wall_seconds", "cpu_seconds", "peak_rss_mib")}
                       for kind in ("fresh", "rerun")}
    return out


def print_text(results: dict) -> None:
    m = results["machine"]
    print(f"machine: {m['cpus']} CPUs, {m['mem_gib']} GiB; load at start {m['load_start']}, at end {m['load_end']}")
    print(f"{'run':<26}{'wall s':>8}{'cpu s':>7}{'RSS MiB':>8}{'init s':>8}{'CP joins s':>11}{'workers s':>10}"
          f"{'RT/worker':>10}{'KiB/worker':>11}{'all Ready s':>12}  load before→after")
    for r in results["runs"]:
        for kind in ("fresh", "rerun", "join_new"):
            if kind not in r:
                continue
            x, g = r[kind], r[kind]["groups"]
            ready = max(x.get("node_ready_seconds", {}).values(), default=float("nan"))
            label = f"N={r['n']} {kind}" if kind != "join_new" else f"N={r['n']} +{r['join_new_count']} join"
            print(f"{label:<26}{x['wall_seconds']:>8.1f}{x['cpu_seconds']:>7.1f}{x['peak_rss_mib']:>8.0f}"
                  f"{g['init_seconds']:>8.1f}{g['control_plane_joins_seconds']:>11.1f}"
                  f"{g['workers_longest_seconds']:>10.1f}{g.get('worker_round_trips_max', 0):>10}"
                  f"{g.get('worker_bytes_sent_max', 0) / 1024:>11.1f}{ready:>12.1f}  "
                  f"{x['load_before'][0]:.1f}→{x['load_after'][0]:.1f}")
        if "floor_ssh_tar" in r:
            f = r["floor_ssh_tar"]
            print(f"{'  floor: ssh … tar':<26}{f['wall_seconds']:>8.1f}  ({f['hosts']} hosts, {f['tar_bytes']} bytes each)")
        if "ansible_copy" in r:
            a = r["ansible_copy"]
            print(f"{'  ansible copy':<26}{a['wall_seconds']:>8.1f}  ({a['hosts']} hosts, {a['files']} files, "
                  f"ansible-core {a['ansible_core']})")
    for n, kinds in results.get("summary", {}).items():
        for kind, keys in kinds.items():
            w = keys["wall_seconds"]
            print(f"N={n} {kind}: wall min {w['min']} s, median {w['median']} s over {w['runs']} run(s)")
    for label, x in results.get("init", {}).items():
        print(f"{label:<26}{x['wall_seconds']:>8.1f}{x['cpu_seconds']:>7.1f}{x['peak_rss_mib']:>8.0f}  "
              f"{sum(h['round_trips'] for h in x['hosts'])} round trips")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the results as one JSON document")
    ap.add_argument("--sizes", default="5,20", help="comma list of N (hosts, 3 of them control planes)")
    ap.add_argument("--repeat", type=int, default=1, help="fresh labs per size (min and median reported)")
    ap.add_argument("--join-new", type=int, default=10, help="new hosts joined afterwards by the join task, all at once (0: none)")
    ap.add_argument("--parallel", type=int, default=0, help="pass --parallel N to fab (default: fab's own)")
    ap.add_argument("--lab-dir", default=os.environ.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR)
    ap.add_argument("--init", action="store_true", help="also the single-host init numbers")
    ap.add_argument("--ansible", action="store_true",
                    help="with --join-new: also push the join's files with Ansible (ansible-core, installed once "
                         "into the lab cache)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(n < 4 for n in sizes):
        sys.exit("bench: every N must be at least 4 (3 control planes and a worker)")
    results: dict = {"machine": {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE")
                                                                        * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                                 "load_start": [round(x, 2) for x in os.getloadavg()],
                                 "started": datetime.now().astimezone().isoformat(timespec="seconds")},
                     "runs": []}
    if args.init:
        results["init"] = bench_init(args.lab_dir)
    for i, n in enumerate(sizes):
        for rep in range(args.repeat):
            join_new = args.join_new if (i == 0 and rep == 0) else 0
            run = bench_size(n, args.lab_dir, join_new=join_new, parallel=args.parallel or None, ansible=args.ansible)
            run["repetition"] = rep + 1
            run["join_new_count"] = join_new
            results["runs"].append(run)
            print(f"bench: N={n} #{rep + 1}: fresh {run['fresh']['wall_seconds']} s, "
                  f"rerun {run['rerun']['wall_seconds']} s", file=sys.stderr, flush=True)
    results["summary"] = summarize(results["runs"])
    results["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_text(results)


if __name__ == "__main__":
    main()
