"""etcd on a control-plane host, the helpers join, reset and etcd.restore share: ``etcdctl`` with
the identity kubeadm's etcd client uses, kubeadm's retries of etcd calls, the etcd manifest and
data directory, and the ports of the static pods (:func:`tasks.core.poll.ports_free_script`
waits until they are free).
"""

from __future__ import annotations

import posixpath

from ..core import constants as K
from ..core.poll import poll_script

ETCDCTL = "etcdctl"


def etcdctl_argv(pki_dir: str, endpoints: list[str] | tuple[str, ...], *args: str) -> list[str]:
    """``etcdctl`` with the healthcheck-client identity kubeadm's etcd client uses (§9.4).

    Also what the command layer runs on an existing control plane before planning a control-plane
    join: ``etcdctl_argv(pki, endpoints, "member", "list", "-w", "json")``, parsed by
    :func:`tasks.phases.joindata.parse_member_list`.
    """
    etcd_dir = posixpath.join(pki_dir, "etcd")
    return ["env", "ETCDCTL_API=3", ETCDCTL, "--endpoints=" + ",".join(endpoints),
            "--cacert=" + posixpath.join(etcd_dir, "ca.crt"),
            "--cert=" + posixpath.join(etcd_dir, "healthcheck-client.crt"),
            "--key=" + posixpath.join(etcd_dir, "healthcheck-client.key"),
            "--dial-timeout=5s", "--command-timeout=30s", *args]


def retry_script(body: str, timeout_s: int, ok_patterns: tuple[str, ...] = ()) -> str:
    """Retry ``body`` every second until it succeeds or ``timeout_s`` passes (kubeadm retries
    every etcd call for timeouts.etcdAPICall); output matching ``ok_patterns`` counts as done."""
    return poll_script(body, timeout_s, ok_patterns=ok_patterns)


def etcd_manifest() -> str:
    return posixpath.join(K.MANIFESTS_DIR, f"{K.ETCD}.yaml")


def data_dir(ctx) -> str:
    return ctx.cluster.etcd_local.data_dir if ctx.cluster.etcd_local is not None else K.DEFAULT_ETCD_DATA_DIR


def static_pod_ports(ctx) -> list[int]:
    """The ports kubeadm's static pods listen on, on this host (the API server's bind port
    from the config when this is a control plane)."""
    api_port = K.DEFAULT_API_BIND_PORT
    if ctx.is_control_plane:
        api_port = ctx.bind_port
    return sorted({K.ETCD_CLIENT_PORT, K.ETCD_PEER_PORT, api_port, K.KUBE_CONTROLLER_MANAGER_PORT,
                   K.KUBE_SCHEDULER_PORT})
