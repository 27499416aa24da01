"""The ``certs renew`` workflow: kubeadm's ``certs renew`` for a control plane, from the operator.

kubeadm renews on the host, from the host's own files, and leaves the restarts to the operator.
kubefab holds every control plane's leaves and kubeconfigs in the state dir, so it renews
there and then brings each control plane in line, one at a time:

- ``certs``: the renewed leaf certificates (``<pki>/apiserver.crt``...), written over the old ones;
- ``kubeconfig``: the renewed kubeconfigs (``/etc/kubernetes/admin.conf``...);
- ``restart``: the static pods that read a renewed file, restarted the way kubeadm's upgrade
  does it without changing their manifests: the manifest is moved out of the kubelet's
  directory until the pod has stopped (its ports free) and moved back, then its health URL is
  polled on the host. The API server of the host is kept out while its etcd restarts (it talks
  to the local member only), so through a load balancer the other API servers answer.

A renewal (:func:`build_renewal`) takes the old certificate's subject, usages and SANs, adds the
SANs the config requires now, keeps the key (``--new-keys``: new keys, as kubeadm does) and gives
a new validity from ``certificateValidityPeriod``; it is made through the run's pending store, so
a dry-run writes nothing and an apply writes the state dir before the host.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass, field
from datetime import timedelta

from ..core import constants as K
from ..core.errors import ConfigError
from ..core.plan import Command, FileWrite, Plan, Wait
from ..core.poll import ports_free_script
from ..core.secrets import Secret
from .workflow import OPERATOR, Phase, Workflow

KUBECONFIG_NAMES = (K.ADMIN_KUBECONFIG, K.SUPER_ADMIN_KUBECONFIG, K.CONTROLLER_MANAGER_KUBECONFIG,
                    K.SCHEDULER_KUBECONFIG)
# which static pod reads which renewed file (etcd-healthcheck-client and admin.conf: none)
READERS = {
    "apiserver": K.KUBE_APISERVER, "apiserver-kubelet-client": K.KUBE_APISERVER,
    "front-proxy-client": K.KUBE_APISERVER, "apiserver-etcd-client": K.KUBE_APISERVER,
    "etcd-server": K.ETCD, "etcd-peer": K.ETCD,
    K.CONTROLLER_MANAGER_KUBECONFIG: K.KUBE_CONTROLLER_MANAGER, K.SCHEDULER_KUBECONFIG: K.KUBE_SCHEDULER,
}
STOP_WAIT_SECONDS = 90          # an API server finishes its requests in flight before it exits
LB_SETTLE_SECONDS = 5           # a load balancer's health check sees the API server ready again,
                                # or gone: a stopped one is kept out at least this long


def renewable_names(cluster) -> list[str]:
    """kubeadm's ``certs renew`` sub-commands, in its order (etcd ones only with local etcd)."""
    from ..core import pki

    return [s.name for s in pki.LEAF_SPECS if s.applies_to(cluster)] + list(KUBECONFIG_NAMES)


def resolve_names(names: list[str], cluster) -> list[str]:
    """``all`` or certificate names -> the names, in kubeadm's order.

    :raises ConfigError: naming every unknown name and listing the valid ones.
    """
    valid = renewable_names(cluster)
    if not names:
        raise ConfigError("certs.renew needs what to renew: all, or certificate names",
                          fix=f"run `fab certs.renew all`, or name some of: {', '.join(valid)}")
    if "all" in names:
        if len(names) > 1:
            raise ConfigError("certs.renew: `all` goes alone", fix="run `fab certs.renew all`")
        return valid
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"certs.renew: unknown certificate name(s): {', '.join(unknown)}",
                          fix=f"use all, or some of: {', '.join(valid)}")
    return [n for n in valid if n in names]


@dataclass(frozen=True)
class Renewal:
    """What a renewal made for one control plane (in the run's pending store already).

    :param leaves: name -> (path under ``<pki>``, certificate PEM, key PEM when new).
    :param kubeconfigs: file name -> bytes.
    :param added_sans: name -> SANs the config required and the old certificate lacked.
    :param skipped: name -> why it was not renewed (external CA, a file this node lacks).
    """

    leaves: dict = field(default_factory=dict)
    kubeconfigs: dict = field(default_factory=dict)
    added_sans: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    @property
    def restarts(self) -> list[str]:
        """The static pods to restart, in the order they are restarted."""
        read = {READERS[n] for n in list(self.leaves) + list(self.kubeconfigs) if n in READERS}
        return [c for c in (K.ETCD, K.KUBE_APISERVER, K.KUBE_CONTROLLER_MANAGER, K.KUBE_SCHEDULER) if c in read]


def build_renewal(ctx, names: list[str], *, new_keys: bool = False, keygen=None) -> Renewal:
    """Renew ``names`` of the context's node in the state dir (through ``ctx.store``).

    :raises KubefabError: a file that does not load (named, with its fix).
    """
    from ..core import kubeconfig as kc
    from ..core import pki
    from ..core.statestore import PendingStore

    cluster = ctx.cluster
    cluster_pki = pki.ensure_cluster_pki(ctx.state.pki_dir, cluster, now=ctx.now, store=PendingStore(ctx.state))
    reader = PendingStore(ctx.state)  # never committed: reading what is there
    node_pki = pki.ensure_node_pki(cluster_pki, ctx.node_state_dir, cluster, node_name=ctx.node_name,
                                   advertise_address=ctx.advertise_address, now=ctx.now, store=reader,
                                   strict_sans=False)
    lacking = dict(node_pki.lacking_sans)
    out = Renewal()
    for name in names:
        if name in KUBECONFIG_NAMES:
            path = ctx.node_state_dir / name
            data = ctx.store.read(path)
            if data is None:
                out.skipped[name] = "not on this node (init writes super-admin.conf on the first control plane only)"
                continue
            if cluster_pki.external_ca:
                out.skipped[name] = "external CA: ca.key is not available"
                continue
            new = kc.renew_kubeconfig(data, cluster_pki.ca, cluster, now=ctx.now, new_key=new_keys, what=str(path),
                                      keygen=keygen)
            ctx.store.write(path, new, kc.KUBECONFIG_MODE, what="kubeconfig")
            out.kubeconfigs[name] = new
            continue
        spec = pki.spec(name)
        ca = cluster_pki.cas.get(spec.ca or "")
        old = node_pki.leaves.get(name)
        if name in node_pki.created or old is None:
            out.skipped[name] = "not in the state dir for this node"
            continue
        if ca is None or ca.key is None:
            out.skipped[name] = f"external CA: the {spec.ca} key is not available"
            continue
        required = spec.sans(cluster, ctx.node_name, ctx.advertise_address)[0] if spec.sans else None
        new = pki.renew_signed(old, ca, cluster, now=ctx.now, required=required, new_key=new_keys, keygen=keygen)
        crt, key = spec.files
        ctx.store.write(ctx.node_state_dir / "pki" / crt, new.cert_pem, pki.CERT_MODE, what="certificate")
        if new_keys:
            ctx.store.write(ctx.node_state_dir / "pki" / key, new.key_pem, pki.KEY_MODE, what="private key")
        out.leaves[name] = (crt, new.cert_pem, new.key_pem if new_keys else None)
        if name in lacking:
            out.added_sans[name] = lacking[name]
    return out


def _renewal(ctx) -> Renewal:
    return ctx.renewal


def plan_renew_preflight(ctx) -> Plan:
    plan = Plan("preflight", ctx.host_name)
    r = _renewal(ctx)
    for name, why in r.skipped.items():
        plan.notes.append(f"{name} not renewed: {why}")
    for name, sans in r.added_sans.items():
        plan.notes.append(f"{name}: adds the SAN(s) the config requires: {', '.join(sans)}")
    return plan


def plan_renew_certs(ctx) -> Plan:
    plan = Plan("certs", ctx.host_name)
    for name, (crt, cert_pem, key_pem) in _renewal(ctx).leaves.items():
        if key_pem is not None:
            key = posixpath.join(ctx.pki_dir, crt.rsplit(".", 1)[0] + ".key")
            plan.add(FileWrite(key, Secret(key_pem, kind="private key"), 0o600, reason=f"renewed {name} key"))
        plan.add(FileWrite(posixpath.join(ctx.pki_dir, crt), cert_pem, 0o644, reason=f"renewed {name}"))
    return plan


def plan_renew_kubeconfigs(ctx) -> Plan:
    plan = Plan("kubeconfig", ctx.host_name)
    for name, data in _renewal(ctx).kubeconfigs.items():
        plan.add(FileWrite(posixpath.join(K.KUBERNETES_DIR, name), Secret(data, kind="kubeconfig"), 0o600,
                           reason=f"renewed {name}"))
    return plan


PORTS = {K.ETCD: (K.ETCD_CLIENT_PORT, K.ETCD_PEER_PORT), K.KUBE_APISERVER: (),
         K.KUBE_CONTROLLER_MANAGER: (K.KUBE_CONTROLLER_MANAGER_PORT,), K.KUBE_SCHEDULER: (K.KUBE_SCHEDULER_PORT,)}
PARKED_DIR = posixpath.join(K.KUBERNETES_DIR, "tmp", "kubefab-restart")


def _ports(ctx, component: str) -> tuple[int, ...]:
    return (ctx.bind_port,) if component == K.KUBE_APISERVER else PORTS[component]


def cri_endpoint(ctx) -> str:
    return ctx.node_registration.cri_socket or "unix:///var/run/containerd/containerd.sock"


def stop_lingering_api_server(ctx) -> str:
    """Shell: stop at once the API server container that still runs once it stopped listening.

    An API server stops listening once its in-flight requests are drained, and then waits for
    the watches still open on it (up to 60 s, so until the kubelet's 30 s grace period kills
    it), and its local etcd waits for those watches too; the kubelet starts a static Pod again
    only after the old one is gone. What it still waits for is only watches, which their clients
    open again elsewhere, so a restart need not wait the 30 s (measured: 42 s -> 12 s for
    ``certs.renew apiserver``)."""
    cri = shlex.quote(cri_endpoint(ctx))
    return (f"ids=$(crictl -r {cri} ps --name '^{K.KUBE_APISERVER}$' -q 2>/dev/null); "
            f"[ -z \"$ids\" ] || crictl -r {cri} stop --timeout 0 $ids >/dev/null 2>&1")


API_DRAIN_SECONDS = 10  # how long an API server stopped with the rest may finish its requests in flight


def api_server_out_first(ctx, move: str) -> str:
    """Shell, for stopping every static Pod of a host (etcd restore, reset): ``move`` (a command
    on ``$api``, the API server's manifest) takes the API server out first, while its etcd may
    still answer its requests in flight; after at most API_DRAIN_SECONDS it is stopped (its
    etcd may be going away too: the requests would only wait for it)."""
    api = shlex.quote(posixpath.join(K.MANIFESTS_DIR, f"{K.KUBE_APISERVER}.yaml"))
    port = ctx.bind_port if ctx.is_control_plane else K.DEFAULT_API_BIND_PORT  # as static_pod_ports has it
    return (f"api={api}\n"
            f"if [ -e \"$api\" ]; then {move}\n"
            f"  busy=$({ports_free_script((port,), API_DRAIN_SECONDS, on_timeout='exit 1')}); "
            f"{stop_lingering_api_server(ctx)}\nfi\n")


def _stop_script(ctx, component: str) -> str:
    """Move the manifest out of the kubelet's directory and wait until the pod's ports are free
    (an API server's container is then stopped: see :func:`stop_lingering_api_server`)."""
    q = shlex.quote
    manifest = posixpath.join(K.MANIFESTS_DIR, f"{component}.yaml")
    parked = posixpath.join(PARKED_DIR, f"{component}.yaml")
    done = "exit 0"
    if component == K.KUBE_APISERVER:
        # out for at least LB_SETTLE_SECONDS, so that a load balancer's health check sees it gone
        # before a new one listens (the 30 s it used to linger gave it that time)
        done = f"{{ {stop_lingering_api_server(ctx)}; sleep {LB_SETTLE_SECONDS}; exit 0; }}"
    return (f"mkdir -p {q(PARKED_DIR)} && chmod 0700 {q(PARKED_DIR)}\n"
            f"if [ -f {q(manifest)} ]; then mv -f {q(manifest)} {q(parked)}; "
            f"elif [ ! -f {q(parked)} ]; then echo 'no {component} manifest' >&2; exit 1; fi\n"
            # the wait prints what still holds on ("port 6443") when it gives up
            + f"busy=$({ports_free_script(_ports(ctx, component), STOP_WAIT_SECONDS, on_timeout='echo $out; exit 1')}) "
            f"&& {done}\n"
            f"mv -f {q(parked)} {q(manifest)}\n"
            f"echo \"{component} did not stop within {STOP_WAIT_SECONDS}s ($busy in use): "
            "its manifest is back in place\" >&2; exit 1")


def _start_script(component: str) -> str:
    q = shlex.quote
    manifest = posixpath.join(K.MANIFESTS_DIR, f"{component}.yaml")
    parked = posixpath.join(PARKED_DIR, f"{component}.yaml")
    return f"[ -f {q(parked)} ] && mv -f {q(parked)} {q(manifest)}; test -f {q(manifest)}"


def _health(ctx, component: str) -> Wait:
    from ..core.endpoints import join_host_port

    timeout = ctx.timeouts.control_plane_component_health_check
    target = {
        K.ETCD: f"http://127.0.0.1:{K.ETCD_METRICS_PORT}/readyz",
        K.KUBE_APISERVER: "https://" + join_host_port(ctx.advertise_address, ctx.bind_port) + "/readyz",
        K.KUBE_CONTROLLER_MANAGER: f"https://127.0.0.1:{K.KUBE_CONTROLLER_MANAGER_PORT}/healthz",
        K.KUBE_SCHEDULER: f"https://127.0.0.1:{K.KUBE_SCHEDULER_PORT}/livez",
    }[component]
    return Wait(f"{component}-healthy", target, timeout)


def plan_restart(ctx) -> Plan:
    """Restart the static pods that read a renewed file: etcd, then the API server, each healthy
    before the next; then the controller manager and the scheduler together (they serve no
    client and hold their leases by election, so one host's two restarting at once costs nothing
    a restart of either alone does not)."""
    plan = Plan("restart", ctx.host_name)
    restarts = _renewal(ctx).restarts
    if not restarts:
        plan.notes.append("no static pod reads a renewed file: nothing to restart")
        return plan
    api_out = K.KUBE_APISERVER in restarts or K.ETCD in restarts
    if api_out:  # the local API server talks to the local etcd only: keep it out while etcd restarts
        plan.add(Command(("sh", "-c", _stop_script(ctx, K.KUBE_APISERVER)),
                         f"stop {K.KUBE_APISERVER}: move its manifest out, wait until it has exited"))
    if K.ETCD in restarts:
        plan.add(Command(("sh", "-c", _stop_script(ctx, K.ETCD)), f"stop {K.ETCD}"),
                 Command(("sh", "-c", _start_script(K.ETCD)), f"start {K.ETCD}: its manifest back"),
                 _health(ctx, K.ETCD))
    if api_out:
        plan.add(Command(("sh", "-c", _start_script(K.KUBE_APISERVER)), f"start {K.KUBE_APISERVER}: its manifest back"),
                 _health(ctx, K.KUBE_APISERVER),
                 Command(("sleep", str(LB_SETTLE_SECONDS)),
                         "let a load balancer's health check see the API server ready before the next host"))
    elected = [c for c in (K.KUBE_CONTROLLER_MANAGER, K.KUBE_SCHEDULER) if c in restarts]
    plan.add(*(Command(("sh", "-c", _stop_script(ctx, c)), f"stop {c}") for c in elected),
             *(Command(("sh", "-c", _start_script(c)), f"start {c}: its manifest back") for c in elected),
             *(_health(ctx, c) for c in elected))
    return plan


def _probes(ctx) -> list[str]:
    r = _renewal(ctx)
    paths = [posixpath.join(ctx.pki_dir, crt) for crt, _, _ in r.leaves.values()]
    paths += [posixpath.join(ctx.pki_dir, crt.rsplit(".", 1)[0] + ".key") for crt, _, key in r.leaves.values() if key]
    return paths + [posixpath.join(K.KUBERNETES_DIR, n) for n in r.kubeconfigs]


RENEW = Workflow(
    "certs-renew",
    (
        Phase("preflight", "Say what is renewed and what is not", run=plan_renew_preflight, where=OPERATOR),
        Phase("certs", "Write the renewed certificates", run=plan_renew_certs, probes=_probes),
        Phase("kubeconfig", "Write the renewed kubeconfigs", run=plan_renew_kubeconfigs, probes=_probes),
        Phase("restart", "Restart the static pods that read them, one at a time", run=plan_restart),
    ),
    summary="Renews certificates on a control plane and restarts what uses them",
)

__all__ = ["RENEW", "Renewal", "build_renewal", "resolve_names", "renewable_names", "timedelta"]
