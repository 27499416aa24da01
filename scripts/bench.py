"""kubefab's benchmark: time and SSH round trips of init on the lab (root needed).

Runs, on a lab of its own (``KUBEFAB_LAB_DIR``-independent, torn down at the end):
  1. an offline dry-run plan of init (no connection: PKI + rendering cost),
  2. ``fab -H node1 init --upload-certs`` on a fresh host,
  3. the same again (the converged re-run: "0 changed"),
  4. ``fab cluster-up`` of 3 control planes and 2 workers behind the load balancer, twice,
and prints wall time, per-phase time and round trips as kubefab's own summary reports them.
Usage: ``make bench`` or ``.venv/bin/python scripts/bench.py [--json]``.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab.fixtures import fresh_lab  # noqa: E402

ROW = re.compile(r"^(\S+)\s+(.+?)\s+(\d+\.\d+)s\s+(\d+)\s+(\d+)\s+(\d+)$")


def fab(lab, *args: str) -> tuple[float, str, str]:
    t0 = time.monotonic()
    r = lab.sw([sys.executable, "-m", "fabric", "-r", str(ROOT), *args], timeout=600)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"bench: fab {' '.join(args)} failed:\n{r.stderr.decode()}")
    return dt, r.stdout.decode(), r.stderr.decode()


def summary_rows(stderr: str) -> list[dict]:
    rows = []
    for line in stderr.splitlines():
        m = ROW.match(line.strip())
        if m and m.group(1) != "HOST":
            rows.append({"host": m.group(1), "phase": m.group(2), "seconds": float(m.group(3)),
                         "round_trips": int(m.group(4)), "changed": int(m.group(5)), "unchanged": int(m.group(6))})
    return rows


CLUSTER_ROW = re.compile(r"^(\S+)\s+(control-plane \(init\)|control-plane|worker)\s+(\d+)\s+(\d+)\s+(\d+\.\d+)s\s+(\S+)$")


def bench_cluster_up() -> dict:
    """`fab cluster-up` of 3 control planes + 2 workers behind the load balancer, then again."""
    lab = fresh_lab(tempfile.mkdtemp(prefix="kubefab-bench-ha-"))
    out = {}
    try:
        status = lab.up(5, lb=True)
        with tempfile.TemporaryDirectory() as tmp:
            for label in ("fresh", "rerun"):
                dt, _, err = fab(lab, "cluster-up", "--inventory", status["inventory"],
                                 "--state-dir", str(Path(tmp) / "state"))
                hosts = [{"host": m.group(1), "role": m.group(2), "changed": int(m.group(4)),
                          "seconds": float(m.group(5))} for m in map(CLUSTER_ROW.match, err.splitlines()) if m]
                out[label] = {"wall_seconds": round(dt, 2), "hosts": hosts}
    finally:
        lab.down()
    return out


def main() -> None:
    lab = fresh_lab(tempfile.mkdtemp(prefix="kubefab-bench-"))
    results = {}
    try:
        t0 = time.monotonic()
        status = lab.up(2)
        results["lab_up_seconds"] = round(time.monotonic() - t0, 2)
        inv = status["inventory"]
        with tempfile.TemporaryDirectory() as tmp:
            state = str(Path(tmp) / "state")
            dt, _, _ = fab(lab, "-H", "node1", "init", "--dry-run", "--offline", "--inventory", inv,
                           "--state-dir", state, "--output-dir", str(Path(tmp) / "out"))
            results["offline_plan_seconds"] = round(dt, 2)
            for label in ("init_fresh", "init_rerun"):
                dt, _, err = fab(lab, "-H", "node1", "init", "--upload-certs", "--inventory", inv, "--state-dir", state)
                rows = summary_rows(err)
                results[label] = {"wall_seconds": round(dt, 2),
                                  "round_trips": sum(r["round_trips"] for r in rows),
                                  "changed": sum(r["changed"] for r in rows), "phases": rows}
    finally:
        lab.down()
    results["cluster_up"] = bench_cluster_up()
    if "--json" in sys.argv:
        print(json.dumps(results, indent=2))
        return
    print(f"lab up (2 hosts):          {results['lab_up_seconds']:.2f}s")
    print(f"offline init plan:         {results['offline_plan_seconds']:.2f}s")
    for label in ("init_fresh", "init_rerun"):
        r = results[label]
        print(f"{label:<26} {r['wall_seconds']:.2f}s wall, {r['round_trips']} SSH round trips, {r['changed']} changed")
        for row in r["phases"]:
            print(f"    {row['phase']:<62} {row['seconds']:6.2f}s  {row['round_trips']} rt")
    for label, r in results["cluster_up"].items():
        print(f"cluster-up {label:<15} {r['wall_seconds']:.2f}s wall (3 control planes + 2 workers, load balancer)")
        for h in r["hosts"]:
            print(f"    {h['host']:<8} {h['role']:<22} {h['seconds']:6.2f}s  {h['changed']} changed")


if __name__ == "__main__":
    main()
