"""kube-scheduler stand-in for the test lab.

The machines kubefab is tested on cannot run the real kube-scheduler. This module stands in for
it: the lab kubelet starts it from kubefab's static pod manifest as
``<python> -m tests.lab.standins.scheduler <kube-scheduler flags>``. It reads the same flags
(reference §3.3: ``--kubeconfig``, ``--authentication-kubeconfig``, ``--authorization-kubeconfig``,
``--bind-address``, ``--leader-elect``), rejects unknown ones as the real binary does, and serves
``/livez``, ``/readyz`` and ``/healthz`` over HTTPS on ``--bind-address``:10259 (``--secure-port``)
with a self-signed certificate, which is what kubeadm's probes and wait-control-plane check.

It schedules nothing: the lab runs no workloads (static pods are placed by the kubelet, and the
addons' Deployments/DaemonSets are only stored). ``/readyz`` turns ok once the ``--kubeconfig``
identity has listed nodes through the API server, as the real scheduler is ready only after its
informers synced; ``/livez`` and ``/healthz`` are ok while the process runs.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from tests.lab.standins.clientkit import (
    GENERIC_COMPONENT_FLAGS,
    ApiStatusError,
    FlagError,
    KubeClient,
    parse_flags,
    setup_logging,
    start_health_server,
)

PROGRAM = "kube-scheduler"

_VAL = False  # a flag that takes a value
KNOWN_FLAGS: dict[str, bool] = {
    **GENERIC_COMPONENT_FLAGS,
    **{name: _VAL for name in (
        "config", "pod-max-in-unschedulable-pods-duration", "write-config-to",
    )},
}


class Readiness:
    """Becomes ready after one successful list of nodes with the scheduler's identity."""

    def __init__(self, client: KubeClient, log: object) -> None:
        self._client = client
        self._log = log
        self._synced = threading.Event()
        self._last_error = ""

    def check(self) -> str | None:
        return None if self._synced.is_set() else f"sched-handler-sync ({self._last_error or 'not synced yet'})"

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.is_set() and not self._synced.is_set():
            try:
                self._client.call("GET", "/api/v1/nodes", params={"limit": "1"})
                self._synced.set()
                self._log.info("informers synced: ready")  # type: ignore[attr-defined]
            except (OSError, ApiStatusError) as exc:
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:
                    self._log.info("waiting for the API server: %s", text)  # type: ignore[attr-defined]
                self._last_error = text
                stop.wait(interval)


def main(argv: list[str] | None = None) -> int:
    """Run like kube-scheduler: exit 1 on bad flags, 0 on SIGTERM/SIGINT."""
    args = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_flags(args, KNOWN_FLAGS, PROGRAM)
        kubeconfig = flags.get("kubeconfig", "")
        if not kubeconfig:
            raise FlagError(f"{PROGRAM} stand-in: --kubeconfig is required (no in-cluster config in the lab)")
        for name in ("kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "config"):
            if flags.get(name) and not Path(flags[name]).is_file():
                raise FlagError(f"{PROGRAM}: --{name}={flags[name]}: no such file")
        port = int(flags.get("secure-port", "10259"))
    except (FlagError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    log = setup_logging(PROGRAM, flags.get("v"))
    log.info("kube-scheduler stand-in (test lab; the real binary cannot run here) starting; "
             "it schedules nothing, it only serves health endpoints")
    try:
        client = KubeClient.from_kubeconfig(kubeconfig, user_agent="kube-scheduler-standin")
    except (OSError, ValueError) as exc:
        print(f"Error: {PROGRAM}: invalid kubeconfig {kubeconfig}: {exc}", file=sys.stderr)
        return 1
    readiness = Readiness(client, log)
    bind = flags.get("bind-address", "0.0.0.0")
    try:
        health = start_health_server(bind, port, {"/livez": lambda: None, "/healthz": lambda: None,
                                                  "/readyz": readiness.check}, log)
    except OSError as exc:
        print(f"Error: {PROGRAM}: failed to listen on {bind}:{port}: {exc}", file=sys.stderr)
        return 1
    log.info("serving /livez, /readyz, /healthz securely on %s:%d", bind, health.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    readiness.run(stop)
    stop.wait()
    health.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
