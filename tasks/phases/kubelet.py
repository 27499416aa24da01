"""``kubelet-start`` and ``kubelet-finalize``.

kubelet-start mirrors kubeadm: stop the kubelet, write ``/var/lib/kubelet/config.yaml``,
``kubeadm-flags.env`` (and ``instance-config.yaml`` from 1.34), then start it. kubefab also
writes the ``10-kubeadm.conf`` systemd drop-in that the kubeadm packages would have shipped,
because the hosts have no kubeadm package. When nothing changed the kubelet is left alone,
so a re-run reports 0 changed.

kubelet-finalize mirrors ``enable-client-cert-rotation``: once the kubelet has its rotated
client certificate, kubelet.conf points at ``kubelet-client-current.pem`` instead of embedded
data, and the kubelet is restarted.
"""

from __future__ import annotations

from ..core import constants as K
from ..core.manifests.kubelet import (
    kubelet_config_dict, patch_kubelet_config, render_instance_config, render_kubeadm_flags_env,
    render_kubelet_config, render_kubelet_dropin, resolver_mutation, uses_instance_config,
)
from ..core.plan import Command, FileWrite, Plan
from .workflow import Phase, Refresh


def kubelet_config_bytes(ctx, *, for_node: bool = False) -> bytes:
    """The cluster's KubeletConfiguration; ``for_node`` adds what kubeadm changes on the node
    itself: its CRI socket when it applies instance-config.yaml (1.34+), and resolvConf where
    systemd-resolved runs."""
    cri = ctx.node_registration.cri_socket if for_node and uses_instance_config(ctx.cluster) else None
    resolved = for_node and bool(ctx.fact("systemd_resolved_active"))
    return render_kubelet_config(ctx.cluster, ctx.config.kubelet, cri_socket=cri,
                                           systemd_resolved=resolved, patches=ctx.patches if for_node else None)


def kubelet_patch_notes(ctx) -> list[str]:
    """kubeadm's ``[patches] Applied patch ...`` lines for the node's config.yaml."""
    if ctx.patches is None:
        return []
    return patch_kubelet_config(kubelet_config_dict(ctx.cluster, ctx.config.kubelet or {}),
                                          ctx.patches)[1]


def resolver_warning(ctx) -> str | None:
    """kubeadm's warning when systemd-resolved runs and the user chose another resolvConf."""
    return resolver_mutation(dict(ctx.config.kubelet or {}), bool(ctx.fact("systemd_resolved_active")))


def kubelet_files(ctx, *, worker_join: bool = False) -> list[FileWrite]:
    node = ctx.node_registration
    files = [
        FileWrite(K.KUBELET_CONFIG_FILE, kubelet_config_bytes(ctx, for_node=True), mode=0o644, dir_mode=0o700),
        FileWrite(K.KUBELET_FLAGS_ENV_FILE,
                  render_kubeadm_flags_env(ctx.cluster, node, host_hostname=ctx.host_hostname,
                                                     worker_join=worker_join),
                  mode=0o644, dir_mode=0o700),
    ]
    if uses_instance_config(ctx.cluster):
        files.append(FileWrite(K.KUBELET_INSTANCE_CONFIG_FILE, render_instance_config(node.cri_socket),
                               mode=0o644, dir_mode=0o700))
    files.append(FileWrite(K.KUBELET_SYSTEMD_DROPIN_FILE, render_kubelet_dropin(), mode=0o644))
    return files


def kubelet_restart_steps(ctx=None) -> list[Command]:
    """Reload, enable and restart the kubelet when its files change; also, whatever the files,
    enable it when the facts say it is not enabled and start it when they say it is not running
    (a converged node whose kubelet was stopped gets it back on a re-run)."""
    enabled = ctx.fact("kubelet_enabled") if ctx is not None else None
    active = ctx.fact("kubelet_active") if ctx is not None else None
    enable_always = enabled is not None and enabled != "enabled"
    start_always = active is not None and active != "active"
    return [
        Command(("systemctl", "daemon-reload"), "pick up the kubelet drop-in", on_change=not start_always),
        Command(("systemctl", "enable", "kubelet"), "start the kubelet at boot", on_change=not enable_always),
        Command(("systemctl", "restart", "kubelet"), "(re)start the kubelet with the new configuration",
                on_change=not start_always),
    ]


def plan_kubelet_start(ctx) -> Plan:
    plan = Plan("kubelet-start", ctx.host_name)
    plan.add(*kubelet_files(ctx))
    plan.notes.extend(kubelet_patch_notes(ctx))
    warning = resolver_warning(ctx)
    if warning:
        plan.notes.append(warning)
    plan.add(*kubelet_restart_steps(ctx))
    return plan


def plan_kubelet_finalize(ctx) -> Plan:
    """Point kubelet.conf at the rotated client certificate once the kubelet has one."""
    from ..core import kubeconfig as kc

    plan = Plan("kubelet-finalize/enable-client-cert-rotation", ctx.host_name)
    pem_present = ctx.fact("paths", {}).get(K.KUBELET_CLIENT_CURRENT_PEM, {}).get("exists") if ctx.facts else None
    if not pem_present:
        plan.notes.append(f"{K.KUBELET_CLIENT_CURRENT_PEM} not present yet: kubelet.conf keeps its embedded "
                          "client certificate (kubeadm does the same)")
        return plan
    from .kubeconfig import node_kubeconfigs

    current = node_kubeconfigs(ctx).get(K.KUBELET_KUBECONFIG)
    if current is None:
        return plan
    plan.add(FileWrite(f"{K.KUBERNETES_DIR}/{K.KUBELET_KUBECONFIG}",
                       kc.rotate_kubelet_kubeconfig(current, K.KUBELET_CLIENT_CURRENT_PEM), mode=0o600))
    plan.add(Command(("systemctl", "restart", "kubelet"), "use the rotated client certificate", on_change=True))
    return plan


def kubelet_file_paths(ctx) -> list[str]:
    paths = [K.KUBELET_CONFIG_FILE, K.KUBELET_FLAGS_ENV_FILE, K.KUBELET_SYSTEMD_DROPIN_FILE]
    if uses_instance_config(ctx.cluster):
        paths.append(K.KUBELET_INSTANCE_CONFIG_FILE)
    return paths


FINALIZE_WAIT_SECONDS = 10

KUBELET_START = Phase(
    name="kubelet-start",
    help="Write kubelet settings and (re)start the kubelet",
    run=plan_kubelet_start,
    probes=kubelet_file_paths,
    produces=("kubelet",),
)

KUBELET_FINALIZE = Phase(
    name="kubelet-finalize",
    help="Updates settings relevant to the kubelet after TLS bootstrap",
    phases=(Phase("enable-client-cert-rotation", "Enable kubelet client certificate rotation",
                  run=plan_kubelet_finalize,
                  probes=lambda ctx: [f"{K.KUBERNETES_DIR}/{K.KUBELET_KUBECONFIG}", K.KUBELET_CLIENT_CURRENT_PEM],
                  # kubeadm looks once for the rotated certificate; kubefab gives the kubelet's
                  # certificate store a few seconds to write it, so one run converges instead of two
                  refresh=Refresh((K.KUBELET_CLIENT_CURRENT_PEM,), wait_seconds=FINALIZE_WAIT_SECONDS)),),
    needs=("kubelet",),
)
