"""The one way kubefab reaches a cluster's API: the official client, direct or through a tunnel.

:func:`api_session` opens an :class:`tasks.api.Api` from a kubeconfig: directly when the server
answers from this machine, else through the host transport's :meth:`forward` (an SSH tunnel via
a control-plane host). :func:`cluster_api` does it for the commands that act on a running
cluster (token.*, cluster-up's Node checks) with the first control plane's admin.conf from the
state dir; a control-plane join reads the etcd mirror Pods with it too. Join discovery is the one
documented exception (``tasks/discovery.py``): before trust is established it reads
``cluster-info`` without verifying TLS and checks the answer with the token's JWS and the CA pin,
which the official client cannot do; the same small reader then fetches, with the bootstrap
token and the CA it verified, the ConfigMaps kubeadm's join preflight reads.
"""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack, contextmanager
from typing import Callable

import yaml

from . import output
from .core.endpoints import split_host_port
from .core.errors import ApiError, KubefabError


def reachable(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# kubeconfig fields whose data the official client writes to temp files (in $TMPDIR, deleted
# only at a clean exit: a killed run left the cluster-admin key in /tmp)
_DATA_FIELDS = (("clusters", "cluster", "certificate-authority"), ("users", "user", "client-certificate"),
                ("users", "user", "client-key"))


def in_memory_files(cfg: dict, stack: ExitStack) -> None:
    """Point the kubeconfig's ``*-data`` fields at anonymous memory files (Linux ``memfd``,
    ``/proc/self/fd/N``, open until ``stack`` closes) so the client writes no file; nothing
    outlives the process, however it ends. Elsewhere the client's own temp files stay."""
    import base64
    import os

    if not hasattr(os, "memfd_create"):  # pragma: no cover - not Linux
        return
    for section, inner, field_name in _DATA_FIELDS:
        for entry in cfg.get(section) or []:
            body = (entry or {}).get(inner) or {}
            data = body.get(field_name + "-data")
            if not data:
                continue
            fd = os.memfd_create("kubefab-" + field_name, getattr(os, "MFD_CLOEXEC", 0))
            stack.callback(os.close, fd)
            view = memoryview(base64.b64decode(data))
            while view:
                view = view[os.write(fd, view):]
            body[field_name] = f"/proc/self/fd/{fd}"
            del body[field_name + "-data"]


@contextmanager
def api_session(kubeconfig: bytes, *, timeout: float, transport=None, via: tuple[str, int] | None = None,
                host: str = ""):
    """An :class:`tasks.api.Api` for the kubeconfig's server.

    :param transport: the host's transport, or a callable that opens one (only called when a
        tunnel is needed, so a reachable API costs no SSH connection).
    :param via: ``(address, port)`` of the API server as the host sees it, for the tunnel.
    """
    from kubernetes import client as kclient
    from kubernetes.config import kube_config

    from .api import Api

    cfg = yaml.safe_load(kubeconfig)
    server = cfg["clusters"][0]["cluster"]["server"]
    address, port = split_host_port(server.removeprefix("https://"))
    configuration = kclient.Configuration()
    with ExitStack() as stack:
        in_memory_files(cfg, stack)
        kube_config.KubeConfigLoader(cfg).load_and_set(configuration)
        if not reachable(address, int(port or 443)) and transport is not None and via is not None:
            output.info(f"{server} is not reachable from here: tunnelling through SSH to "
                        f"{via[0]}:{via[1]}", host=host)
            if callable(transport) and not hasattr(transport, "run"):
                transport = transport()
                stack.callback(transport.close)
            local_host, local_port = stack.enter_context(transport.forward(*via))
            configuration.host = f"https://{local_host}:{local_port}"
            configuration.tls_server_name = "kubernetes"  # a SAN of every kubeadm apiserver cert
        api_client = kclient.ApiClient(configuration)
        stack.callback(api_client.close)
        yield Api(api_client, timeout=timeout)


@contextmanager
def cluster_api(inv, state, *, connect: Callable):
    """``(context, Api)`` for the inventory's cluster, through its first control plane.

    :param connect: ``connect(host) -> transport``, called only when a tunnel is needed.
    """
    from .core import constants as K
    from .phases.context import Options, RunContext

    host = inv.first_control_plane
    ctx = RunContext(config=inv.kubeadm_config(host), host_name=host.name, state=state, options=Options())
    admin = ctx.node_state_dir / K.ADMIN_KUBECONFIG
    if not admin.exists():
        raise KubefabError(f"no admin.conf for {host.name} in {state.root}",
                           fix=f"run `fab -H {host.name} init` first, or pass --state-dir of this cluster")
    with api_session(admin.read_bytes(), timeout=ctx.timeouts.kubernetes_api_call.total_seconds(),
                     transport=lambda: connect(host), via=(ctx.advertise_address, ctx.bind_port),
                     host=ctx.host_name) as api:
        yield ctx, api


def wait_api_ready(api, path: str, timeout: float, *, host: str, phase: str) -> None:
    """Poll ``path`` (``/readyz``) until it answers 200, reporting the last real answer."""
    from .api import ApiStatus
    from .core.poll import poll

    def ready():
        try:
            api.request("GET", path, raw=True)
            return True, ""
        except (ApiStatus, ApiError) as exc:
            return False, str(exc)

    with output.waiting(f"the API server's {path}", [host]):
        ok, last = poll(ready, timeout)
    if not ok:
        raise ApiError(f"the API server did not become ready within {int(timeout)}s (last: {last or 'no answer'})",
                       host=host, phase=phase,
                       fix="check the kube-apiserver and etcd logs on the host; re-run init to continue")


def node_state(node: dict) -> tuple[bool, str]:
    """``(Ready condition is True, the kubelet version it reports)`` of a Node object."""
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or [])
    return ready, ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")


def wait_node_ready(api, path: str, timeout: float, *, version: str = "", host: str, phase: str) -> None:
    """Poll the Node at ``path`` until it is Ready (and its kubelet reports ``version``)."""
    from .api import ApiStatus
    from .core.poll import poll

    name = path.rstrip("/").rsplit("/", 1)[-1]
    last = ["no answer"]

    def ready():
        try:
            ok, running = node_state(api.request("GET", path))
        except (ApiStatus, ApiError) as exc:
            last[0] = str(exc)
            return False, None
        last[0] = f"Ready={ok}, kubelet {running or 'unknown'}"
        return ok and (not version or running == version), None

    what = f"Node {name} Ready" + (f" with kubelet {version}" if version else "")
    with output.waiting(what, [host]):
        done, _ = poll(ready, timeout)
    if not done:
        raise ApiError(f"{what}: not within {int(timeout)}s (last: {last[0]})", host=host, phase=phase,
                       fix=f"look at the kubelet on {host} (journalctl -u kubelet); once it runs, re-run to continue")


def wait_mirror_pods(api, node: str, images: dict[str, str], timeout: float, *, host: str) -> bool:
    """Poll until the mirror Pod of each static Pod of ``node`` (``{component: image}``) shows
    the image its manifest names, as kubeadm's upgrade waits for the mirror Pod to change: the
    next reader of the cluster (``upgrade.plan``, a re-run of ``upgrade.apply``) sees what runs.
    A kubelet that has not replaced them in time gets a warning, not a failure (what runs is
    already checked healthy)."""
    from .api import ApiStatus
    from .core.poll import poll

    def current():
        stale = []
        for component, image in images.items():
            try:
                pod = api.request("GET", f"/api/v1/namespaces/kube-system/pods/{component}-{node}")
            except (ApiStatus, ApiError) as exc:
                stale.append(f"{component}: {exc}")
                continue
            shown = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("image", "")
            if shown != image:
                stale.append(f"{component}: {shown or 'no image'}")
        return not stale, stale

    with output.waiting(f"the mirror Pods of {node} showing their new images", [host]):
        done, stale = poll(current, timeout)
    if not done:
        output.info(f"WARNING: the kubelet has not updated the mirror Pods within {int(timeout)}s "
                    f"({'; '.join(stale)}): `upgrade.plan` may show the old version until it does", host=host)
    return done


def ready_nodes(api) -> set[str]:
    """Names of the Nodes whose Ready condition is True."""
    return {n["metadata"]["name"] for n in api.request("GET", "/api/v1/nodes")["items"] if node_state(n)[0]}


def wait_nodes_ready(api, node_names: list[str], timeout: float) -> None:
    from .core.poll import poll

    if not node_names:
        return
    output.stage(f"waiting for {len(node_names)} Node(s) to be Ready")

    def all_ready():
        missing = [n for n in node_names if n not in ready_nodes(api)]
        return not missing, missing

    with output.waiting("Nodes Ready", node_names):
        ok, missing = poll(all_ready, timeout)
    if not ok:
        raise KubefabError(f"Nodes not Ready after {int(timeout)}s: {', '.join(missing)}",
                           fix="look at the kubelet logs on those hosts")


__all__ = ["api_session", "cluster_api", "wait_api_ready", "ready_nodes", "wait_nodes_ready", "reachable",
           "time"]
