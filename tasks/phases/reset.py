"""The ``reset`` workflow: kubeadm reset's phases (reference §12), as plans only.

- ``preflight``: reset runs as root; says what will be removed.
- ``remove-etcd-member`` (control planes with a local etcd): ``etcdctl member remove`` of this
  node's member, found by its peer URL, run on the host with its healthcheck-client
  certificate; skipped when it is the last member; a failure only warns, as in kubeadm. Then
  the *contents* of the etcd data dir are deleted.
- ``cleanup-node``: stop the kubelet, unmount what is mounted under ``/var/lib/kubelet``,
  remove the CRI's pods when ``crictl`` is there, delete the contents (not the directories) of
  ``/etc/kubernetes/manifests``, ``/var/lib/kubelet`` and ``<pki>``, and the kubeconfig files.

kubeadm removes the containers through the CRI API. kubefab has only a shell on the host, and
hosts without kubeadm often lack ``crictl``, so it first lets the running kubelet stop the
static pods: it removes their manifests and waits until the control-plane ports are free
(before the etcd data is deleted, so a restarted etcd cannot write into a cleaned directory).
``crictl rmp --all --force`` then removes whatever else the runtime runs, when crictl exists.

Like kubeadm, reset leaves iptables/nftables/IPVS rules, the CNI configuration in
``/etc/cni/net.d`` and ``$HOME/.kube/config`` alone.

Node removal (the default; ``--keep-node`` is kubeadm reset alone): kubeadm documents removing a
node as ``kubectl drain``, ``kubeadm reset``, ``kubectl delete node``, so the workflow adds
``drain`` before and ``delete-node`` after kubeadm's phases, both through the API with the state
dir's admin.conf. ``preflight`` refuses, from what the command read before planning
(:class:`Removal`), to remove the last control plane, to break etcd's quorum (unless
``--force``) and to drain pods kubectl drain would refuse. With ``--unreachable`` the host is
gone: drain and cleanup-node are skipped, and the member is removed by ``etcdctl`` on another
control plane (the pipeline connects there instead).
"""

from __future__ import annotations

import posixpath
import shlex

from ..core import constants as K
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import PreflightError
from ..core.plan import ApiObject, Command, DrainSpec, FileRemove, Message, Plan
from ..core.poll import ports_free_script
from .etcdutil import data_dir, etcd_manifest, etcdctl_argv, retry_script, static_pod_ports
from .joindata import client_url, peer_url
from .renew import api_server_out_first
from .workflow import API, OPERATOR, Phase, Workflow


@dataclass(frozen=True)
class Removal:
    """What reset read from the cluster before planning a node removal (no facts: the command's
    prepare step asks the API and an etcd member; phases only read this).

    :param node_exists: the Node object is there.
    :param pods: the Pods bound to the node (for drain's filters and the dry-run).
    :param control_plane_nodes: Nodes labelled as control planes.
    :param etcd_members: ``etcdctl member list -w json``'s members ({} when not asked).
    :param healthy_urls: client URLs that answered ``etcdctl endpoint health --cluster``.
    :param etcd_error: why the members could not be read ("" = they were).
    :param via: the control plane the pipeline connects to instead of the host (``--unreachable``).
    """

    force: bool = False
    delete_emptydir_data: bool = False
    timeout_seconds: float = 0.0
    unreachable: bool = False
    node_exists: bool = True
    pods: tuple[dict[str, Any], ...] = ()
    control_plane_nodes: tuple[str, ...] = ()
    etcd_members: tuple[dict[str, Any], ...] = ()
    healthy_urls: frozenset[str] = field(default_factory=frozenset)
    etcd_error: str = ""
    via: str = ""


def removing(ctx) -> bool:
    return ctx.removal is not None


def reachable(ctx) -> bool:
    return ctx.removal is None or not ctx.removal.unreachable


def _node_ref(ctx) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": ctx.node_name}}


def etcd_member_of(ctx) -> bool:
    """The node is (by the config) a control plane with a local etcd member."""
    return ctx.is_control_plane and ctx.cluster.etcd_local is not None and ctx.cluster.etcd_external is None


def removal_problems(ctx) -> list[tuple[str, str, bool]]:
    """(problem, fix, overridable by --force) that keep the node from being removed."""
    r = ctx.removal
    out: list[tuple[str, str, bool]] = []
    if r is None:
        return out
    name = ctx.node_name
    if name in r.control_plane_nodes and set(r.control_plane_nodes) == {name}:
        out.append((f"{name} is the last control plane of the cluster: removing it would leave no API server "
                    "and no etcd", f"join another control plane first, or tear the cluster down host by host with "
                    f"`fab -H {ctx.host_name} reset --keep-node`", False))
    if etcd_member_of(ctx):
        from ..drain import quorum_problem

        if r.etcd_error:
            out.append((f"cannot check etcd's quorum before removing {name}'s member: {r.etcd_error}",
                        "bring a control plane's etcd back, or pass --force to remove it unchecked", True))
        else:
            why = quorum_problem(list(r.etcd_members), set(r.healthy_urls), peer_url(ctx.advertise_address))
            if why:
                out.append((f"removing {name}'s etcd member would break etcd's quorum: {why}",
                            "bring the unhealthy members back (or remove them first), or pass --force", True))
    return out

RESET_KUBECONFIGS = (K.ADMIN_KUBECONFIG, K.SUPER_ADMIN_KUBECONFIG, K.KUBELET_KUBECONFIG,
                     K.BOOTSTRAP_KUBELET_KUBECONFIG, K.CONTROLLER_MANAGER_KUBECONFIG, K.SCHEDULER_KUBECONFIG)
LEFT_BEHIND = ("The reset process does not clean CNI configuration (/etc/cni/net.d)",
               "The reset process does not reset or clean up iptables rules or IPVS tables "
               "(iptables -F, ipvsadm --clear)",
               "The reset process does not clean your kubeconfig files ($HOME/.kube/config)",
               "The Node object stays in the API: delete it with kubectl delete node <name>")


def has_local_etcd(ctx) -> bool:
    """Local etcd when the config says so, or (with facts) when the etcd manifest exists (§12)."""
    if ctx.facts is not None:
        paths = ctx.fact("paths", {}) or {}
        if (paths.get(etcd_manifest()) or {}).get("exists"):
            return True
    return ctx.is_control_plane and ctx.cluster.etcd_local is not None and ctx.cluster.etcd_external is None


def plan_reset_preflight(ctx) -> Plan:
    plan = Plan("preflight", ctx.host_name)
    for problem, fix, overridable in removal_problems(ctx):
        if overridable and ctx.removal.force:
            plan.notes.append(f"[WARNING] {problem} (--force: removing it anyway)")
            continue
        raise PreflightError(problem, host=ctx.host_name, phase="preflight", fix=fix)
    if ctx.removal is not None and ctx.removal.unreachable:
        plan.notes.append(f"{ctx.host_name} is unreachable: nothing is done on it; its etcd member is removed "
                          f"through {ctx.removal.via or 'another control plane'} and its Node deleted")
        return plan
    if ctx.facts is not None and ctx.fact("uid", 0) != 0:
        raise PreflightError("reset must run as root", host=ctx.host_name, phase="preflight",
                             fix="connect as root or configure sudo for this host in the inventory")
    plan.notes.append("[reset] Are you sure? The changes made to this host by init or join will be reverted "
                      "(kubefab asks unless --force)")
    return plan


def remove_member_command(ctx) -> Command:
    """Remove this node's etcd member unless it is the only one (kubeadm keeps the last member).

    The member is found by its peer URL ``https://<adv>:2380``; a node whose config carries no
    advertise address (an etcd manifest found on a host configured as a worker) is matched by
    its member name, the node name, through the local client URL.
    """
    if ctx.is_control_plane:
        endpoint, column, value = client_url(ctx.advertise_address), 4, peer_url(ctx.advertise_address)
    else:
        endpoint, column, value = f"https://127.0.0.1:{K.ETCD_CLIENT_PORT}", 3, ctx.node_name
    ec = shlex.join(etcdctl_argv(ctx.pki_dir, [endpoint]))
    match = f"index(${column}, p)" if column == 4 else f"${column} == p"
    script = (
        f"list=$({ec} member list) || {{ echo \"[reset] WARNING: cannot reach etcd: remove member "
        f"{ctx.node_name} by hand with etcdctl member remove\" >&2; exit 1; }}\n"
        f"id=$(printf '%s\\n' \"$list\" | awk -F', ' -v p={shlex.quote(value)} '{match} {{print $1}}')\n"
        "[ -n \"$id\" ] || { echo 'not a member (already removed)'; exit 0; }\n"
        "[ \"$(printf '%s\\n' \"$list\" | grep -c .)\" -gt 1 ] || { echo 'last etcd member: not removed'; exit 0; }\n"
        # etcd refuses a removal while the cluster looks unhealthy (e.g. just after a promotion):
        # retry for timeouts.etcdAPICall as kubeadm's etcd client does
        + retry_script(f"{ec} member remove \"$id\"", int(ctx.timeouts.etcd_api_call.total_seconds()),
                        ("member not found",)))
    return Command(("sh", "-c", script), f"remove etcd member {ctx.node_name} ({value})", ignore_failure=True)


STATIC_POD_WAIT_SECONDS = 40


def stop_static_pods_command(ctx) -> Command:
    """Remove the static pod manifests while the kubelet runs, and wait until it has stopped
    those pods (their ports free). Nothing to do without manifests; a kubelet that is not
    running leaves them to the runtime (crictl, later)."""
    q = shlex.quote
    manifests = q(K.MANIFESTS_DIR)
    script = (
        f"ls {manifests}/*.yaml >/dev/null 2>&1 || exit 0\n"
        "systemctl is-active --quiet kubelet 2>/dev/null || { echo '[reset] the kubelet is not running: "
        "the static pods are left to the container runtime'; exit 0; }\n"
        + api_server_out_first(ctx, 'rm -f -- "$api"')
        + f"find {manifests} -mindepth 1 -maxdepth 1 -exec rm -rf -- {{}} +\n"
        + ports_free_script(static_pod_ports(ctx), STATIC_POD_WAIT_SECONDS,
                            on_timeout="echo \"[reset] WARNING: $out is still in use after "
                                       f"{STATIC_POD_WAIT_SECONDS}s: stop what holds it with your container "
                                       "runtime's tools\" >&2; exit 1"))
    return Command(("sh", "-c", script), "stop the static pods: remove their manifests, wait for the kubelet",
                   ignore_failure=True)


def remove_member_from_peer_command(ctx) -> Command:
    """Remove the (unreachable) node's member with etcdctl on another control plane, through
    that member's local client URL; "not a member" is done. Failing is an error here: the host
    is gone, nothing else will remove it."""
    ec = shlex.join(etcdctl_argv(ctx.pki_dir, [f"https://127.0.0.1:{K.ETCD_CLIENT_PORT}"]))
    value = peer_url(ctx.advertise_address)
    script = (
        f"list=$({ec} member list) || {{ echo 'cannot reach etcd on this control plane' >&2; exit 1; }}\n"
        f"id=$(printf '%s\\n' \"$list\" | awk -F', ' -v p={shlex.quote(value)} 'index($4, p) {{print $1}}')\n"
        "[ -n \"$id\" ] || { echo 'not a member (already removed)'; exit 0; }\n"
        + retry_script(f"{ec} member remove \"$id\"", int(ctx.timeouts.etcd_api_call.total_seconds()),
                        ("member not found",)))
    return Command(("sh", "-c", script), f"remove etcd member {ctx.node_name} ({value}) from a peer")


def plan_remove_etcd_member(ctx) -> Plan:
    plan = Plan("remove-etcd-member", ctx.host_name)
    if not reachable(ctx):
        if etcd_member_of(ctx):
            plan.add(remove_member_from_peer_command(ctx))
        else:
            plan.notes.append("no local etcd member on this node")
        return plan
    if ctx.cluster.etcd_external is not None:
        plan.notes.append("external etcd: remove this node's data from it yourself; nothing is done here")
        return plan
    if not has_local_etcd(ctx):
        plan.notes.append("no local etcd member on this node")
        return plan
    plan.add(remove_member_command(ctx))
    plan.add(stop_static_pods_command(ctx))  # etcd must not run while its data is deleted
    # kubeadm deletes the contents, not the directory itself
    plan.add(FileRemove(data_dir(ctx), recursive=True, reason="etcd data (contents)"))
    return plan


UNMOUNT_SCRIPT = (
    "awk -v d={root} '$2 == d || index($2, d \"/\") == 1 {{print $2}}' /proc/mounts | sort -r | "
    "while read -r m; do umount \"$m\" || echo \"[reset] WARNING: cannot unmount $m\" >&2; done")


def plan_cleanup_node(ctx) -> Plan:
    plan = Plan("cleanup-node", ctx.host_name)
    plan.add(stop_static_pods_command(ctx))  # a no-op when remove-etcd-member did it
    plan.add(Command(("systemctl", "stop", "kubelet"), "stop the kubelet", ignore_failure=True))
    plan.add(Command(("sh", "-c", UNMOUNT_SCRIPT.format(root=shlex.quote(K.KUBELET_RUN_DIR))),
                     f"unmount everything under {K.KUBELET_RUN_DIR}", ignore_failure=True))
    cri = ctx.node_registration.cri_socket
    plan.add(Command(("sh", "-c", "command -v crictl >/dev/null 2>&1 || exit 0; "
                      f"crictl --runtime-endpoint {shlex.quote(cri)} rmp --all --force"),
                     "remove the Kubernetes containers through the CRI", ignore_failure=True))
    binaries = ctx.fact("binaries") or {}
    if ctx.facts is not None and not binaries.get("crictl"):
        plan.notes.append("[reset] WARNING: crictl is not installed on this host: pods the container runtime "
                          "still runs (kube-proxy, CoreDNS, CNI) are left; remove them with your runtime's tools "
                          "or install cri-tools and re-run reset")
    for directory in (K.MANIFESTS_DIR, K.KUBELET_RUN_DIR, ctx.pki_dir):
        plan.add(FileRemove(directory, recursive=True, reason="contents, as kubeadm reset"))
    if ctx.pki_dir != K.DEFAULT_CERTIFICATES_DIR:
        plan.notes.append(f"[reset] WARNING: cleaning a non-default certificates directory: {ctx.pki_dir}")
    for name in RESET_KUBECONFIGS:
        plan.add(FileRemove(posixpath.join(K.KUBERNETES_DIR, name)))
    left = LEFT_BEHIND if not removing(ctx) else LEFT_BEHIND[:-1]
    plan.notes.extend(left)
    for line in left:  # said once the host is reset, as kubeadm does
        plan.add(Message(line))
    return plan


def plan_drain(ctx) -> Plan:
    """kubectl cordon + drain of the node; pods drain would refuse stop the run here, before
    anything is done."""
    from ..drain import classify_pods

    r = ctx.removal
    plan = Plan("drain", ctx.host_name)
    if not r.node_exists:
        plan.notes.append(f"no Node {ctx.node_name} in the cluster: nothing to drain")
        return plan
    drained = classify_pods(list(r.pods), force=r.force, delete_emptydir_data=r.delete_emptydir_data)
    if drained.refused:
        raise PreflightError(f"cannot drain node {ctx.node_name}: {len(drained.refused)} pod(s) cannot be evicted",
                             details=[f"{p}: {why}" for p, why in drained.refused],
                             fix="pass the flag named above, or move those pods first")
    plan.notes.extend(drained.notes())
    spec = DrainSpec(force=r.force, delete_emptydir_data=r.delete_emptydir_data, timeout_seconds=r.timeout_seconds,
                     host=ctx.host_name)
    plan.add(ApiObject(_node_ref(ctx), strategy="cordon"), ApiObject(_node_ref(ctx), strategy="drain", drain=spec))
    return plan


def plan_delete_node(ctx) -> Plan:
    plan = Plan("delete-node", ctx.host_name)
    if not ctx.removal.node_exists:
        plan.notes.append(f"no Node {ctx.node_name} in the cluster: nothing to delete")
        return plan
    plan.add(ApiObject(_node_ref(ctx), strategy="delete"))
    return plan


RESET = Workflow(
    "reset",
    (
        Phase("preflight", "Run reset pre-flight checks", run=plan_reset_preflight, where=OPERATOR),
        Phase("drain", "Cordon the node and evict its pods (kubectl drain)", run=plan_drain, where=API,
              run_if=lambda ctx: removing(ctx) and reachable(ctx),
              skip_reason="--keep-node, or the host is unreachable"),
        Phase("remove-etcd-member", "Remove a local etcd member", run=plan_remove_etcd_member,
              probes=lambda ctx: [etcd_manifest()]),
        Phase("cleanup-node", "Run cleanup node", run=plan_cleanup_node, run_if=reachable,
              skip_reason="the host is unreachable"),
        Phase("delete-node", "Delete the Node object (kubectl delete node)", run=plan_delete_node, where=API,
              run_if=removing, skip_reason="--keep-node"),
    ),
    summary="Performs a best effort revert of changes made to this host by 'init' or 'join'",
)
