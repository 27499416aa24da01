"""Is the cluster there to serve? Asked before a command changes an existing cluster.

:func:`check_cluster_serves` costs one anonymous GET of ``cluster-info`` on the control-plane
endpoint when all is well. When the API does not answer it, the etcd member on every control plane of the
inventory is asked (over SSH, in parallel, ``etcdctl endpoint status`` against its own
``127.0.0.1:2379``) whether it sees a leader: when some member answers and none sees a leader,
etcd has lost its quorum and no command can change the cluster, so the command stops before
it changes anything, naming the control planes that are down. (Without the check, joins and
re-runs waited minutes for the API and then blamed the bootstrap token.)
"""

from __future__ import annotations

import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .core.errors import KubefabError

API_PROBE_SECONDS = 10.0
# a member that has just restarted needs a moment to elect a leader: ask again once after this
LEADER_RECHECK_SECONDS = 5.0


def api_ready(inv, state) -> str | None:
    """None when the control-plane endpoint serves a read that needs etcd (the public
    ``cluster-info`` ConfigMap, anonymously, TLS verified with the state dir's CA; ``/readyz``
    stays ok for seconds after the quorum is gone), else what it said. None too when the state
    dir has no CA (nothing to verify) or anonymous reads are refused (the API is there)."""
    from . import discovery
    from .cluster import discovery_endpoint

    ca = state.pki_dir / "ca.crt"
    if not ca.is_file():
        return None
    endpoint = discovery_endpoint(inv, inv.kubeadm_config(inv.first_control_plane))
    try:
        resp = discovery.ApiReader("https://" + endpoint, ca_pem=ca.read_bytes(), timeout=API_PROBE_SECONDS) \
            .get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
    except KubefabError as exc:
        return exc.problem
    if resp.status in (200, 401, 403):
        return None
    return f"reading cluster-info answered {resp.status}"


def _status_argv(pki_dir: str) -> str:
    from .phases.join import etcdctl_argv

    return shlex.join(etcdctl_argv(pki_dir, ["https://127.0.0.1:2379"], "endpoint", "status", "-w", "json"))


def member_leader(inv, host, connect: Callable) -> tuple[str, str]:
    """``("leader"|"no-leader"|"no-etcd"|"unreachable", detail)`` for ``host``'s etcd member."""
    cfg = inv.kubeadm_config(host)
    try:
        transport = connect(host)
        try:
            r = transport.run(_status_argv(cfg.cluster.certificates_dir), check=False, timeout=60)
        finally:
            transport.close()
    except KubefabError as exc:
        return "unreachable", exc.problem
    if r.exit_code != 0:
        tail = (r.stdout + r.stderr).strip().splitlines()
        return "no-etcd", (tail[-1] if tail else f"etcdctl exit code {r.exit_code}")[:200]
    try:
        # Go's JSON of the protobuf omits a zero: no "leader" key is no leader
        leader = int(json.loads(r.stdout)[0]["Status"].get("leader") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "no-etcd", "etcdctl endpoint status gave no status"
    return ("leader", "") if leader else ("no-leader", "its etcd member sees no leader")


def etcd_quorum_lost(inv, connect: Callable) -> KubefabError | None:
    """The error to stop with when etcd has no quorum, else None (quorum there, or nothing
    answers at all: then the command's own steps say what is wrong)."""
    cfg = inv.kubeadm_config(inv.first_control_plane)
    if cfg.cluster.etcd_external is not None:
        return None
    hosts = list(inv.control_planes)
    for attempt in (1, 2):
        with ThreadPoolExecutor(max_workers=min(len(hosts), 10)) as pool:
            answers = dict(zip((h.name for h in hosts), pool.map(lambda h: member_leader(inv, h, connect), hosts)))
        kinds = [kind for kind, _ in answers.values()]
        if "leader" in kinds or "no-leader" not in kinds:
            return None
        if attempt == 1:
            time.sleep(LEADER_RECHECK_SECONDS)
    n = len(hosts)
    need = n // 2 + 1
    alive = [name for name, (kind, _) in answers.items() if kind == "no-leader"]
    down = [name for name, (kind, _) in answers.items() if kind != "no-leader"]
    return KubefabError(
        f"etcd has lost its quorum: {len(alive)} of {n} control planes run etcd ({', '.join(alive)}), "
        f"a majority needs {need}; down: {', '.join(down)}. Nothing was changed",
        phase="check-etcd", details=[f"{name}: {kind}" + (f" ({detail})" if detail else "")
                                     for name, (kind, detail) in answers.items()],
        fix=f"bring back {need - len(alive)} of {', '.join(down)} with its etcd data, then re-run; if they are "
            f"lost for good, restore the control plane from a snapshot: fab etcd.restore FILE")


def check_cluster_serves(inv, state, connect: Callable) -> None:
    """Stop with a clear error when etcd has lost its quorum (see the module's docstring).

    :raises KubefabError: the quorum is gone; nothing was changed.
    """
    if api_ready(inv, state) is None:
        return
    lost = etcd_quorum_lost(inv, connect)
    if lost is not None:
        raise lost
