"""The ``upgrade.apply`` workflows: kubeadm's ``upgrade apply`` and ``upgrade node``, from the operator.

kubeadm upgrades one node at a time, on the node, from the cluster's ``kubeadm-config``. kubefab
holds the config and the PKI, so it renders the new static Pods exactly as ``init`` and
``join-control-plane`` render them for the new ``kubernetesVersion`` (a later ``cluster-up``
with the same config then changes nothing), and drives three workflows from the operator:

- :data:`CONTROL_PLANE` on each control plane, one at a time:

  - ``backup``: the static Pod manifests and an etcd snapshot (etcd's snapshot API, through
    ``etcdctl`` on the host) in ``/etc/kubernetes/tmp/kubefab-upgrade-<version>/``, made once
    per target version (a re-run keeps the first, pre-upgrade backup), then the ids of the
    running static Pods, to tell their replacements apart;
  - ``certs``, ``kubeconfig``: the certificates of the components that change, renewed as
    ``certs.renew`` renews them (kubeadm's ``--certificate-renewal``, on by default);
  - ``etcd``, then ``control-plane/apiserver``, ``controller-manager``, ``scheduler``: each new
    manifest written, then kubeadm's wait: the kubelet has started a new Pod for it (a Pod
    sandbox that was not there before, as kubeadm waits for the mirror Pod's hash to change)
    and its health URL answers; otherwise the host's manifests from the backup are put back
    (kubeadm's rollback: etcd's only when etcd failed) and the run stops. When etcd and the API server both change, the API server is
    stopped before its local etcd restarts and started with its new manifest after, so the
    load balancer sends nothing to an API server without its etcd.

- :data:`CONFIG` and :data:`ADDONS` through the API (first control plane): ``kubeadm-config``
  and ``kubelet-config`` after the first control plane (as ``upgrade apply`` uploads them),
  CoreDNS and kube-proxy after the last one (kubeadm upgrades the addons once no control plane
  runs the old version).

- :data:`KUBELET` on every node (control planes first, then workers ``--max-unavailable`` at a
  time), kubeadm's documented ``upgrade node`` procedure: check the kubelet binary the operator
  installed, cordon and drain, write the kubelet's files for the new version, restart it, wait
  until the Node is Ready with the new version, uncordon. A node that needs nothing is not
  drained. kubefab marks the Nodes it cordons (:data:`CORDONED_ANNOTATION`) and uncordons only
  those, so a node the operator cordoned stays cordoned, and a re-run after a failure
  uncordons what the failed run left cordoned.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import Any

from ..core import constants as K
from ..core.errors import PreflightError
from ..core.plan import ApiObject, Command, DrainSpec, FileWrite, Plan, Wait
from .controlplane import manifest_path, manifest_step, etcd_probes
from .renew import (PARKED_DIR, LB_SETTLE_SECONDS, _health, _stop_script, cri_endpoint, plan_renew_certs,
                    plan_renew_kubeconfigs)
from .workflow import API, OPERATOR, Phase, Workflow

CORDONED_ANNOTATION = "kubefab.dev/upgrade-cordoned"  # value: the target version
STATIC_PODS = (K.ETCD, K.KUBE_APISERVER, K.KUBE_CONTROLLER_MANAGER, K.KUBE_SCHEDULER)
PODS_BEFORE = posixpath.join(K.KUBERNETES_DIR, "tmp", "kubefab-upgrade-pods-before")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class UpgradeData:
    """What ``upgrade.apply`` learned before planning one node (read from the cluster).

    :param target: the release, ``v1.36.3``.
    :param renewed: whether certificates are renewed (``--certificate-renewal``).
    :param node_exists: the Node object exists.
    :param node_version: the kubelet version the Node reports (the kubelet that runs).
    :param unschedulable: the Node is cordoned.
    :param cordoned_by_kubefab: it carries :data:`CORDONED_ANNOTATION` (an earlier run cordoned it).
    :param drain: kubectl drain's options for this node.
    """

    target: str
    renewed: bool = True
    node_exists: bool = True
    node_version: str = ""
    unschedulable: bool = False
    cordoned_by_kubefab: bool = False
    drain: DrainSpec | None = None


def upgrade_data(ctx) -> UpgradeData:
    data = ctx.upgrade
    if data is None:  # pragma: no cover - the command always prepares it
        raise PreflightError("no upgrade data in this run", host=ctx.host_name,
                             fix="a kubefab bug: upgrade.apply prepares it")
    return data


def backup_dir(target: str) -> str:
    """Where one control plane's pre-upgrade backup goes (kubeadm: kubeadm-backup-manifests-<time>
    and kubeadm-backup-etcd-<time>; kubefab names it by the target, so a re-run finds it)."""
    return posixpath.join(K.KUBERNETES_DIR, "tmp", f"kubefab-upgrade-{target}")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``Kubernetes v1.36.3`` / ``v1.36.3`` -> (1, 36, 3)."""
    m = _VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


# --- control planes ---------------------------------------------------------------------------------
def _differs(ctx, step: FileWrite) -> bool:
    """The host's file is not what the plan writes (unknown offline: assume it is)."""
    fact = (ctx.fact("paths", {}) or {}).get(step.path)
    if fact is None:
        return True
    return not (fact.get("exists") and fact.get("sha256") == step.sha256
                and (fact.get("mode") or 0) & 0o7777 == step.mode)


def _static_pods(ctx) -> tuple[str, ...]:
    return tuple(c for c in STATIC_PODS if c != K.ETCD or ctx.cluster.etcd_local is not None)


def changing(ctx) -> tuple[str, ...]:
    """The static Pods whose manifest this run changes on the host, in upgrade order."""
    return tuple(c for c in _static_pods(ctx) if _differs(ctx, manifest_step(ctx, c)))


def _backup_script(ctx, directory: str) -> str:
    from .etcdutil import etcdctl_argv

    q = shlex.quote
    part = directory + ".part"
    lines = ["set -e", f"rm -rf {q(part)}", f"mkdir -p {q(part)}/manifests", f"chmod 0700 {q(part)}",
             f"cp -p {q(K.MANIFESTS_DIR)}/*.yaml {q(part)}/manifests/"]
    if ctx.cluster.etcd_local is not None:
        argv = etcdctl_argv(ctx.pki_dir, ["https://127.0.0.1:2379"], "snapshot", "save", f"{part}/etcd-snapshot.db")
        lines.append(shlex.join(argv) + " >/dev/null")
    lines += [f"mv {q(part)} {q(directory)}", f"echo 'backed up to {directory}'"]
    return "\n".join(lines)


def _record_script(ctx, components: tuple[str, ...]) -> str:
    """The ids of the Pod sandboxes the kubelet runs now for the static Pods that change."""
    q = shlex.quote
    cri = q(cri_endpoint(ctx))
    lines = [f"mkdir -p {q(posixpath.dirname(PODS_BEFORE))}", f": > {q(PODS_BEFORE)}.tmp"]
    for c in components:
        pod = q(f"^{c}-{ctx.node_name}$")
        lines.append(f"for id in $(crictl -r {cri} pods --name {pod} -q); do echo \"{c} $id\"; done "
                     f">> {q(PODS_BEFORE)}.tmp")
    lines.append(f"mv -f {q(PODS_BEFORE)}.tmp {q(PODS_BEFORE)}")
    return "\n".join(lines)


def etcd_leader_away(ctx) -> Command:
    """Hand etcd's leadership to another started voting member when this host's member leads.

    Not kubeadm's: a leader that stops makes the others elect a new one first, and until they
    have, every API server's /readyz fails (its etcd check), so a load balancer has no backend
    left. Best effort: a member that does not lead, no other member to lead, or a hand-over that
    etcd refuses three times (printed as a warning) changes nothing.
    """
    from .etcdutil import etcdctl_argv

    e = shlex.join(etcdctl_argv(ctx.pki_dir, ["https://127.0.0.1:2379"]))
    me = shlex.quote(ctx.node_name)
    script = (f"st=$({e} endpoint status -w json 2>/dev/null) || {{ echo 'etcd status unknown: leadership left as is'; exit 0; }}\n"
              "id=$(echo \"$st\" | sed -n 's/.*\"member_id\":\\([0-9]*\\).*/\\1/p')\n"
              "leader=$(echo \"$st\" | sed -n 's/.*\"leader\":\\([0-9]*\\).*/\\1/p')\n"
              "[ -n \"$id\" ] && [ \"$id\" = \"$leader\" ] || { echo 'this etcd member does not lead'; exit 0; }\n"
              f"to=$({e} member list | awk -F', ' -v me={me} "
              "'$2 == \"started\" && $3 != me && $6 == \"false\" { print $1; exit }')\n"
              "[ -n \"$to\" ] || { echo 'no other started member to lead'; exit 0; }\n"
              # a busy member may refuse the hand-over for a moment ("leader changed", a timeout):
              # try again, then go on, as a leader that stops is what the members handle anyway
              f"for try in 1 2 3; do out=$({e} move-leader \"$to\" 2>&1) && "
              "{ echo \"etcd leadership handed to member $to\"; exit 0; }; sleep 2; done\n"
              "echo \"WARNING: etcd leadership not handed over ($(echo \"$out\" | tail -n 1)): "
              "the other members elect a new leader when this one stops\"\n")
    return Command(("sh", "-c", script), "hand etcd's leadership to another member before this one stops")


def plan_preflight(ctx) -> Plan:
    plan = Plan("preflight", ctx.host_name)
    data = upgrade_data(ctx)
    moving = changing(ctx)
    if moving:
        plan.notes.append(f"upgrades {', '.join(moving)} to {data.target}, one at a time")
    else:
        plan.notes.append(f"every static Pod manifest is already as {data.target} wants it")
    return plan


def plan_backup(ctx) -> Plan:
    plan = Plan("backup", ctx.host_name)
    moving = changing(ctx)
    if not moving:
        plan.notes.append("no static Pod changes: no backup needed")
        return plan
    directory = backup_dir(upgrade_data(ctx).target)
    plan.add(Command(("sh", "-c", _backup_script(ctx, directory)),
                     f"back up the static Pod manifests and an etcd snapshot to {directory}", creates=directory),
             Command(("sh", "-c", _record_script(ctx, moving)), "note the running static Pods"))
    return plan


RESTARTED_SCRIPT = r"""
# $1 component, $2 Pod name, $3 seconds, $4 health URL, $5 CRI endpoint, $6 backup manifest,
# $7 the API server's port (an API server only: its old container is stopped once it stopped listening)
c=$1; pod=$2; t=$3; url=$4; cri=$5; backup=$6; port=${7:-}; before=%(before)s; parked=%(parked)s
manifest=%(manifests)s/$c.yaml
%(probe)send=$(( $(date +%%s) + t )); last=""; seen=""; closed=""
while [ "$(date +%%s)" -lt "$end" ]; do
  for id in $(crictl -r "$cri" pods --name "^$pod\$" --state ready -q 2>/dev/null); do
    grep -q "^$c $id\$" "$before" 2>/dev/null && continue
    [ -n "$(crictl -r "$cri" ps --pod "$id" --name "^$c\$" --state running -q 2>/dev/null)" ] || continue
    seen=$id; last=$(probe "$url")
    case "$last" in ok*|*"HTTP 200") echo "$c: new Pod ${id%%"${id#????????????}"} running and healthy"; exit 0;; esac
  done
  if [ -z "$port" ] || %(listening)s | grep -qx "$(printf '%%04X' "$port")"; then
    closed=""
  elif [ -z "$closed" ]; then closed=$(date +%%s)
  elif [ $(( $(date +%%s) - closed )) -ge %(settle)s ]; then
    # the old API server stopped listening, its requests in flight drained, and a load
    # balancer's check has had the time to see it gone: it would only wait for its watches
    # until the kubelet's grace period ends, and its new Pod with it
    for old in $(sed -n "s/^$c //p" "$before" 2>/dev/null); do
      for id in $(crictl -r "$cri" ps --pod "$old" --name "^$c\$" -q 2>/dev/null); do
        crictl -r "$cri" stop --timeout 0 "$id" >/dev/null 2>&1
      done
    done
  fi
  sleep 1
done
if [ -z "$seen" ]; then echo "$c: the kubelet started no new Pod for the new manifest within ${t}s"
else echo "$c: the new Pod did not become healthy within ${t}s (last answer from $url: ${last:-none})"; fi
newest=$(crictl -r "$cri" ps -a --name "^$c\$" -q 2>/dev/null | head -n 1)
[ -n "$newest" ] && crictl -r "$cri" logs --tail 8 "$newest" 2>&1 | sed 's/^/  log: /'
# kubeadm's rollback: every control-plane manifest of this host back from the backup (etcd's only
# when etcd is the one that failed), so the host runs its old version again
for old in "$(dirname "$backup")"/*.yaml; do
  [ -f "$old" ] || continue
  name=$(basename "$old"); [ "$name" = etcd.yaml ] && [ "$c" != etcd ] && continue
  cmp -s "$old" "%(manifests)s/$name" && continue
  cp -p "$old" "%(manifests)s/.$name.kubefab-rollback" && mv -f "%(manifests)s/.$name.kubefab-rollback" "%(manifests)s/$name" \
    && echo "rolled back: %(manifests)s/$name is the pre-upgrade manifest from $old again"
done
for f in "$parked"/*.yaml; do [ -f "$f" ] && mv -f "$f" %(manifests)s/ && echo "started $(basename "$f" .yaml) again with its old manifest"; done
exit 1
"""


def restarted_script(before: str, parked: str, manifests: str, settle: int = LB_SETTLE_SECONDS) -> str:
    from ..core.poll import LISTENING_PORTS, PROBE_FUNCTION

    return RESTARTED_SCRIPT % {"before": shlex.quote(before), "parked": shlex.quote(parked),
                               "manifests": shlex.quote(manifests), "probe": PROBE_FUNCTION, "settle": int(settle),
                               "listening": LISTENING_PORTS}


def _restarted(ctx, component: str) -> Command:
    data = upgrade_data(ctx)
    script = restarted_script(PODS_BEFORE, PARKED_DIR, K.MANIFESTS_DIR)
    timeout = int(ctx.timeouts.upgrade_manifests.total_seconds())
    backup = posixpath.join(backup_dir(data.target), "manifests", f"{component}.yaml")
    port = (str(ctx.bind_port),) if component == K.KUBE_APISERVER else ()
    return Command(("sh", "-c", script, "restarted", component, f"{component}-{ctx.node_name}", str(timeout),
                    _health(ctx, component).target, cri_endpoint(ctx), backup, *port),
                   f"wait until the kubelet runs {component} from its new manifest and it is healthy "
                   f"(else put the old manifest back)", on_change=True)


def _plan_static_pod(ctx, component: str, phase: str) -> Plan:
    plan = Plan(phase, ctx.host_name)
    step = manifest_step(ctx, component)
    plan.notes.extend(ctx.patch_notes(component))
    if not _differs(ctx, step):
        plan.add(step, _health(ctx, component))
        return plan
    moving = changing(ctx)
    if component == K.ETCD:
        plan.add(etcd_leader_away(ctx))
    if component == K.ETCD and K.KUBE_APISERVER in moving:
        # the local API server talks to this etcd member only: out of the load balancer's
        # rotation while etcd restarts; it comes back with its new manifest next
        plan.add(Command(("sh", "-c", _stop_script(ctx, K.KUBE_APISERVER)),
                         f"stop {K.KUBE_APISERVER} while its local etcd restarts"))
    if component == K.KUBE_CONTROLLER_MANAGER and K.KUBE_SCHEDULER in moving:
        # both leader-elected, serving no client: the scheduler's new manifest goes in beside
        # the controller manager's and the two restart together (its own phase then finds the
        # file in place and only checks its health)
        plan.add(step, manifest_step(ctx, K.KUBE_SCHEDULER), _restarted(ctx, component),
                 _restarted(ctx, K.KUBE_SCHEDULER), _health(ctx, component))
        return plan
    plan.add(step, _restarted(ctx, component))
    if component == K.KUBE_APISERVER:
        parked = posixpath.join(PARKED_DIR, f"{K.KUBE_APISERVER}.yaml")
        plan.add(Command(("rm", "-f", parked), "drop the stopped API server's old manifest", on_change=True),
                 Command(("sleep", str(LB_SETTLE_SECONDS)),
                         "let a load balancer's health check see the API server ready before going on",
                         on_change=True))
    plan.add(_health(ctx, component))
    return plan


def plan_etcd(ctx) -> Plan:
    if ctx.cluster.etcd_local is None:
        plan = Plan("etcd", ctx.host_name)
        plan.notes.append("external etcd: not kubefab's to upgrade")
        return plan
    return _plan_static_pod(ctx, K.ETCD, "etcd")


def _component_phase(name: str, component: str) -> Phase:
    return Phase(name, f"Upgrade the {component} static Pod",
                 run=lambda ctx: _plan_static_pod(ctx, component, f"control-plane/{name}"),
                 probes=lambda ctx: [manifest_path(component)])


def _control_plane_probes(ctx) -> list[str]:
    return [manifest_path(c) for c in STATIC_PODS] + etcd_probes(ctx)


def _renewal_probes(ctx) -> list[str]:
    from .renew import _probes

    return _probes(ctx) if ctx.renewal is not None else []


CONTROL_PLANE = Workflow(
    "upgrade-control-plane",
    (
        Phase("preflight", "Say which static Pods change", run=plan_preflight, where=OPERATOR,
              probes=_control_plane_probes),
        Phase("backup", "Back up the static Pod manifests and etcd's data", run=plan_backup),
        Phase("certs", "Renew the certificates of the components that change", run=plan_renew_certs,
              probes=_renewal_probes, run_if=lambda ctx: ctx.renewal is not None,
              skip_reason="--certificate-renewal=false"),
        Phase("kubeconfig", "Renew the kubeconfigs of the components that change", run=plan_renew_kubeconfigs,
              probes=_renewal_probes, run_if=lambda ctx: ctx.renewal is not None,
              skip_reason="--certificate-renewal=false"),
        Phase("etcd", "Upgrade the local etcd member", run=plan_etcd, probes=etcd_probes),
        Phase("control-plane", "Upgrade the control plane static Pods: the API server, then the controller "
                               "manager and scheduler together", phases=(
            _component_phase("apiserver", K.KUBE_APISERVER),
            _component_phase("controller-manager", K.KUBE_CONTROLLER_MANAGER),
            _component_phase("scheduler", K.KUBE_SCHEDULER),
        )),
    ),
    summary="Upgrades the static Pods of a control plane, one at a time, rolling back one that fails",
    config_skip=False,
)


# --- the cluster's objects ---------------------------------------------------------------------------
def _api_phase(name: str, help_: str, run) -> Phase:
    return Phase(name, help_, run=run, where=API)


def _config_phases():
    from .uploadconfig import plan_upload_config_kubeadm, plan_upload_config_kubelet

    return (Phase("upload-config", "Upload the new ClusterConfiguration and kubelet configuration", where=API,
                  phases=(Phase("kubeadm", "Upload the kubeadm ClusterConfiguration to a ConfigMap",
                                run=plan_upload_config_kubeadm),
                          Phase("kubelet", "Upload the kubelet component config to a ConfigMap",
                                run=plan_upload_config_kubelet))),)


def _addon_phases():
    from .addons import plan_addon_coredns, plan_addon_kube_proxy
    from .bootstraptoken import plan_bootstrap_rbac

    return (Phase("bootstrap-token", "The RBAC rules nodes join and bootstrap with, for the new version",
                  run=plan_bootstrap_rbac, where=API),
            Phase("addon", "Upgrade the addons", where=API, aliases=("addons",),
                  phases=(Phase("coredns", "Upgrade the CoreDNS addon", run=plan_addon_coredns),
                          Phase("kube-proxy", "Upgrade the kube-proxy addon", run=plan_addon_kube_proxy))))


CONFIG = Workflow("upgrade-config", _config_phases(), summary="Uploads the new cluster configuration",
                  config_skip=False)
ADDONS = Workflow("upgrade-addons", _addon_phases(), summary="Upgrades the RBAC rules, CoreDNS and kube-proxy",
                  config_skip=False)


# --- kubelets ------------------------------------------------------------------------------------------
def kubelet_files(ctx) -> list[FileWrite]:
    """The kubelet's files for the new version, as init (the first control plane) or a join
    (every other node) writes them, so a later cluster-up finds them in place."""
    from .kubelet import kubelet_files as files_of
    from .join import join_kubelet_config

    files = files_of(ctx, worker_join=ctx.config.join is not None and not ctx.is_control_plane)
    if ctx.config.join is not None:
        config = join_kubelet_config(ctx)
        if config is not None:
            files = [FileWrite(f.path, config, mode=f.mode, dir_mode=f.dir_mode) if f.path == K.KUBELET_CONFIG_FILE
                     else f for f in files]
    return files


def _binary(ctx) -> tuple[int, int, int] | None:
    return parse_version(ctx.fact("kubelet_version") or "")


def _restart_needed(ctx) -> bool:
    """The running kubelet (the Node's version) is not the installed binary."""
    binary, running = _binary(ctx), parse_version(upgrade_data(ctx).node_version)
    return binary is not None and running is not None and binary != running


def kubelet_changes(ctx) -> bool:
    """This node needs the kubelet part: a file changes or the kubelet must restart."""
    return _restart_needed(ctx) or any(_differs(ctx, f) for f in kubelet_files(ctx))


def _install_fix(ctx, target: str) -> str:
    bare = target.removeprefix("v")
    return (f"install kubelet {target} on {ctx.host_name} (the kubelet package, e.g. "
            f"`apt-get install kubelet={bare}-*` or `dnf install kubelet-{bare}`), then re-run "
            f"`fab upgrade.apply`: the nodes already done are left alone")


def plan_kubelet_preflight(ctx) -> Plan:
    data = upgrade_data(ctx)
    plan = Plan("preflight", ctx.host_name)
    target = parse_version(data.target)
    binary = _binary(ctx)
    if ctx.facts is not None:
        if binary is None:
            raise PreflightError(f"no kubelet binary found on {ctx.host_name} ({ctx.fact('kubelet_version') or 'none'})",
                                 host=ctx.host_name, phase="preflight", fix=_install_fix(ctx, data.target))
        if binary[:2] != target[:2] or binary < target:
            raise PreflightError(
                f"the kubelet installed on {ctx.host_name} is v{'.'.join(map(str, binary))}, older than "
                f"{data.target}" if binary < target else
                f"the kubelet installed on {ctx.host_name} is v{'.'.join(map(str, binary))}, newer than the "
                f"control plane's {data.target} (a kubelet must not be newer than the API server)",
                host=ctx.host_name, phase="preflight", fix=_install_fix(ctx, data.target))
        if binary > target:
            plan.notes.append(f"[WARNING KubeletVersion]: the kubelet v{'.'.join(map(str, binary))} is a newer "
                              f"patch than the control plane's {data.target}")
    if not data.node_exists:
        raise PreflightError(f"no Node {ctx.node_name} in the cluster", host=ctx.host_name, phase="preflight",
                             fix=f"join {ctx.host_name} first (fab -H {ctx.host_name} join), or take it out of "
                                 "the inventory")
    if kubelet_changes(ctx):
        plan.notes.append(f"drain {ctx.node_name}, write the kubelet's files for {data.target}, restart it, "
                          "uncordon")
    else:
        plan.notes.append(f"the kubelet already runs {data.target} with its files as wanted")
    return plan


def _node(ctx, annotations: dict | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": ctx.node_name}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta}


def plan_kubelet_drain(ctx) -> Plan:
    data = upgrade_data(ctx)
    plan = Plan("drain", ctx.host_name)
    if not kubelet_changes(ctx):
        plan.notes.append("nothing changes on this node: not drained")
        return plan
    if data.unschedulable and not data.cordoned_by_kubefab:
        plan.notes.append(f"{ctx.node_name} was cordoned before this run: it stays cordoned afterwards")
    plan.add(ApiObject(_node(ctx, {CORDONED_ANNOTATION: data.target}), strategy="cordon"),
             ApiObject(_node(ctx), strategy="drain", drain=data.drain))
    return plan


def plan_kubelet_config(ctx) -> Plan:
    data = upgrade_data(ctx)
    plan = Plan("kubelet-config", ctx.host_name)
    files = kubelet_files(ctx)
    config = next(f for f in files if f.path == K.KUBELET_CONFIG_FILE)
    if _differs(ctx, config) and (ctx.fact("paths", {}) or {}).get(K.KUBELET_CONFIG_FILE, {}).get("exists"):
        directory = posixpath.join(K.KUBERNETES_DIR, "tmp", f"kubefab-kubelet-config-{data.target}")
        q = shlex.quote
        plan.add(Command(("sh", "-c", f"mkdir -p {q(directory)}.part && chmod 0700 {q(directory)}.part && "
                                      f"cp -p {q(K.KUBELET_CONFIG_FILE)} {q(directory)}.part/ && "
                                      f"mv {q(directory)}.part {q(directory)}"),
                         f"back up {K.KUBELET_CONFIG_FILE} to {directory}", creates=directory))
    plan.add(*files)
    always = _restart_needed(ctx)
    if ctx.is_control_plane and ctx.cluster.etcd_local is not None and kubelet_changes(ctx):
        # a new kubelet restarts the static Pods it runs (their hash changes with the version)
        plan.add(etcd_leader_away(ctx))
    plan.add(Command(("systemctl", "daemon-reload"), "pick up the kubelet drop-in", on_change=not always),
             Command(("systemctl", "restart", "kubelet"),
                     "restart the kubelet: its new binary" + (" and files" if not always else ""),
                     on_change=not always))
    return plan


def plan_kubelet_wait(ctx) -> Plan:
    data = upgrade_data(ctx)
    plan = Plan("wait", ctx.host_name)
    binary = _binary(ctx)
    expect = "v" + ".".join(map(str, binary)) if binary else data.target
    plan.add(Wait("kubelet-healthz", f"http://127.0.0.1:{K.KUBELET_HEALTHZ_PORT}/healthz",
                  ctx.timeouts.kubelet_health_check))
    if ctx.is_control_plane:
        # the static Pods the new kubelet restarted are healthy before the next control plane's turn
        plan.add(*(_health(ctx, c) for c in _static_pods(ctx)))
    plan.add(Wait("node-ready", f"/api/v1/nodes/{ctx.node_name}", ctx.timeouts.kubelet_health_check, on="api",
                  expect=expect))
    if ctx.is_control_plane and _static_pods(ctx):
        # the mirror Pods show the new images before the next reader of the cluster (a re-run
        # reads the versions from them: a stale one made it renew etcd's certificates again)
        images = ",".join(f"{c}={_manifest_image(ctx, c)}" for c in _static_pods(ctx))
        plan.add(Wait("mirror-pods", f"/api/v1/nodes/{ctx.node_name}", ctx.timeouts.kubelet_health_check,
                      on="api", expect=images))
    return plan


def _manifest_image(ctx, component: str) -> str:
    import yaml

    pod = yaml.safe_load(manifest_step(ctx, component).data())
    return pod["spec"]["containers"][0]["image"]


def plan_uncordon(ctx) -> Plan:
    plan = Plan("uncordon", ctx.host_name)
    plan.add(ApiObject(_node(ctx, {CORDONED_ANNOTATION: upgrade_data(ctx).target}), strategy="uncordon"))
    return plan


def _kubelet_probes(ctx) -> list[str]:
    return [f.path for f in kubelet_files(ctx)]


KUBELET = Workflow(
    "upgrade-kubelet",
    (
        Phase("preflight", "Check the installed kubelet and the Node", run=plan_kubelet_preflight, where=OPERATOR,
              probes=_kubelet_probes),
        Phase("drain", "Cordon the node and evict its pods (kubectl drain)", run=plan_kubelet_drain, where=API),
        Phase("kubelet-config", "Write the kubelet's files for the new version and restart it",
              run=plan_kubelet_config, probes=_kubelet_probes),
        Phase("wait", "Wait until the Node is Ready with the new kubelet", run=plan_kubelet_wait, where=API),
        Phase("uncordon", "Uncordon the node (when this upgrade cordoned it)", run=plan_uncordon, where=API),
    ),
    summary="Upgrades one node's kubelet (kubeadm upgrade node, with the drain around it)",
    config_skip=False,
)

__all__ = ["ADDONS", "CONFIG", "CONTROL_PLANE", "CORDONED_ANNOTATION", "KUBELET", "UpgradeData", "backup_dir",
           "changing", "kubelet_changes", "parse_version"]
