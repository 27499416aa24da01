"""``fab upgrade.plan``: what ``kubeadm upgrade plan <version>`` reports, for the whole cluster.

Read from the running cluster, as kubeadm reads it: the cluster version (the API server's
``/version``), the version of each control-plane component on each node (the tag of its mirror
Pod's image), each Node's kubelet, etcd's image tag per member, the CoreDNS Deployment's image
tag, and the component config versions in the ``kube-proxy`` and ``kubelet-config`` ConfigMaps.
The target is the version the operator names: kubefab never asks the internet which releases
exist. The version policy is kubeadm's (``phases/upgrade/policy.go``): one minor at a time up,
one down, no further than the newest minor kubefab renders, and kubelets at most three minors
behind the target.

:func:`compute` is pure (versions in, plan out); :func:`read_cluster` is the API side.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone

import yaml

from . import output
from .core import constants as K
from .core import versions
from .core.errors import ConfigError, KubefabError

CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
MAX_KUBELET_SKEW = 3  # kubeadm's MaximumAllowedMinorVersionKubeletSkew
OUTPUT_API_VERSION = output.API_VERSION
# component config groups and the version kubefab writes (kubeadm's "preferred" version)
CONFIG_GROUPS = {"kubeproxy.config.k8s.io": ("kube-proxy", "config.conf", "v1alpha1"),
                 "kubelet.config.k8s.io": ("kubelet-config", "kubelet", "v1beta1")}

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


@dataclass(frozen=True)
class ClusterVersions:
    """What runs in the cluster; each map is version -> node names (as kubeadm's version getter)."""

    cluster_version: str
    components: dict[str, dict[str, list[str]]]   # kube-apiserver... -> {version: [nodes]}
    kubelets: dict[str, list[str]]
    etcd: dict[str, list[str]]                     # empty with external etcd
    dns: str                                       # CoreDNS image tag ("" without CoreDNS)
    config_versions: dict[str, str] = field(default_factory=dict)  # group -> apiVersion's version


@dataclass(frozen=True)
class ComponentUpgrade:
    name: str
    current_version: str
    new_version: str
    node_name: str = ""


@dataclass(frozen=True)
class UpgradePlan:
    cluster_version: str
    target: str
    components: list[ComponentUpgrade]
    config_versions: list[dict]
    errors: list[str]            # kubeadm's mandatory policy errors: the upgrade is refused
    warnings: list[str]          # kubeadm's skippable ones

    def to_data(self) -> dict:
        return {"apiVersion": OUTPUT_API_VERSION, "kind": "UpgradePlan", "clusterVersion": self.cluster_version,
                "target": self.target,
                "components": [{"name": c.name, "currentVersion": c.current_version, "newVersion": c.new_version,
                                **({"nodeName": c.node_name} if c.node_name else {})} for c in self.components],
                "configVersions": self.config_versions, "errors": self.errors, "warnings": self.warnings}


def _parse(version: str) -> tuple[int, int, int] | None:
    m = _SEMVER.match(version.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def parse_target(target: str) -> str:
    """``v1.36.3`` (a leading ``v`` added); a clean error for anything else."""
    parsed = _parse(target or "")
    if parsed is None or "-" in target or "+" in target:
        raise ConfigError(f"--version {target[:40]!r} is not a Kubernetes release (vMAJOR.MINOR.PATCH)",
                          phase="upgrade/plan", fix="name the release to upgrade to, e.g. --version v1.36.3")
    return "v{}.{}.{}".format(*parsed)


def _tag_version(image: str) -> str:
    """The tag of ``registry/name:tag`` (kubeadm turns ``_`` of a tag into semver's ``+``)."""
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    return tag.replace("_", "+")


def compute(current: ClusterVersions, target: str) -> UpgradePlan:
    """The plan from ``current`` to ``target`` with kubeadm's version policy."""
    target = parse_target(target)
    tgt = _parse(target)
    have = _parse(current.cluster_version)
    errors: list[str] = []
    warnings: list[str] = []
    newest = max(versions.SUPPORTED_MINORS)
    if have is None:
        errors.append(f"the cluster reports version {current.cluster_version!r}, which is no release kubefab knows")
        have = tgt
    if tgt[1] not in versions.SUPPORTED_MINORS:
        errors.append(f"kubefab renders Kubernetes {versions.supported_text()}, not v1.{tgt[1]}"
                      + ("; upgrade kubefab first" if tgt[1] > newest else ""))
    if tgt[1] > have[1] + 1:
        errors.append(f"{target} is {tgt[1] - have[1]} minors above the cluster's {current.cluster_version}: "
                      f"upgrades go one minor at a time (first to a v1.{have[1] + 1} release)")
    if tgt[1] < have[1] - 1:
        errors.append(f"{target} is {have[1] - tgt[1]} minors below the cluster's {current.cluster_version}: "
                      f"a downgrade goes back one minor at most")
    old = []
    for kubelet, nodes in current.kubelets.items():
        k = _parse(kubelet)
        if k is not None and k[1] < tgt[1] - MAX_KUBELET_SKEW:
            old.append(f"{kubelet} ({', '.join(sorted(nodes))})")
    if old:
        warnings.append(f"kubelets more than {MAX_KUBELET_SKEW} minors behind {target}: {'; '.join(old)}; "
                        f"upgrade them before the control plane")

    rows: list[ComponentUpgrade] = []
    for kubelet in sorted(current.kubelets):
        for node in current.kubelets[kubelet]:
            rows.append(ComponentUpgrade("kubelet", kubelet, target, node))
    for name in CONTROL_PLANE_COMPONENTS:
        for v in sorted(current.components.get(name, {})):
            for node in current.components[name][v]:
                rows.append(ComponentUpgrade(name, v, target, node))
    # kube-proxy runs the cluster's version, which kubeadm prints without the "v"
    rows.append(ComponentUpgrade("kube-proxy", current.cluster_version.removeprefix("v"), target))
    info = versions.TABLE.get(tgt[1])
    if current.dns or info:
        rows.append(ComponentUpgrade("CoreDNS", current.dns, info.coredns_tag if info else "N/A"))
    if current.etcd:
        for v in sorted(current.etcd):
            for node in current.etcd[v]:
                rows.append(ComponentUpgrade("etcd", v, info.etcd_tag if info else "N/A", node))
    configs = []
    for group, (_, _, preferred) in sorted(CONFIG_GROUPS.items(), reverse=True):
        now = current.config_versions.get(group, "")
        configs.append({"group": group, "currentVersion": now, "preferredVersion": preferred,
                        "manualUpgradeRequired": bool(now) and now != preferred})
    return UpgradePlan(current.cluster_version, target, rows, configs, errors, warnings)


def render_text(plan: UpgradePlan) -> str:
    """kubeadm's text layout: the kubelets to upgrade by hand, then the control plane."""
    def table(rows: list[tuple[str, ...]]) -> list[str]:
        return output.table(rows, sep="  ").splitlines()

    head = ("COMPONENT", "NODE", "CURRENT", "TARGET")
    kubelets = [(c.name, c.node_name, c.current_version, c.new_version) for c in plan.components if c.name == "kubelet"]
    rest = [(c.name, c.node_name, c.current_version, c.new_version) for c in plan.components if c.name != "kubelet"]
    lines = [f"[upgrade/versions] Cluster version: {plan.cluster_version}",
             f"[upgrade/versions] Target version: {plan.target}", ""]
    if kubelets:
        lines += ["Kubelets, to upgrade on each node after the control plane (the kubelet binary is "
                  "the operator's package to install):"] + table([head, *kubelets]) + [""]
    lines += [f"Upgrade to {plan.target}:"] + table([head, *rest]) + [""]
    lines += ["Component configs in the cluster (\"yes\": kubefab writes another version; convert "
              "that config by hand before the upgrade):"]
    lines += table([("API GROUP", "CURRENT VERSION", "PREFERRED VERSION", "MANUAL UPGRADE REQUIRED")]
                   + [(c["group"], c["currentVersion"] or "-", c["preferredVersion"],
                       "yes" if c["manualUpgradeRequired"] else "no") for c in plan.config_versions])
    return "\n".join(lines)


# --- the API side ------------------------------------------------------------------------------
def read_cluster(api) -> ClusterVersions:
    """Everything :func:`compute` needs, through the official client (one request each)."""
    ns = K.KUBE_SYSTEM_NAMESPACE
    version = api.request("GET", "/version")["gitVersion"]

    def by_node(items) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for pod in items:
            containers = pod.get("spec", {}).get("containers") or [{}]
            tag = _tag_version(containers[0].get("image", ""))
            out.setdefault(tag, []).append(pod["spec"].get("nodeName", ""))
        return out

    pods = api.request("GET", f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": "tier=control-plane"})["items"]
    components = {name: by_node([p for p in pods if p["metadata"].get("labels", {}).get("component") == name])
                  for name in (*CONTROL_PLANE_COMPONENTS, "etcd")}
    kubelets: dict[str, list[str]] = {}
    for node in api.request("GET", "/api/v1/nodes")["items"]:
        kubelets.setdefault(node["status"]["nodeInfo"]["kubeletVersion"], []).append(node["metadata"]["name"])
    dns = ""
    found = api.get({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": ns}})
    if found:
        dns = _tag_version(found["spec"]["template"]["spec"]["containers"][0]["image"])
    config_versions = {}
    for group, (name, key, _) in CONFIG_GROUPS.items():
        cm = api.get({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}})
        text = ((cm or {}).get("data") or {}).get(key, "")
        try:
            doc = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            doc = None
        api_version = doc.get("apiVersion", "") if isinstance(doc, dict) else ""
        if api_version.startswith(group + "/"):
            config_versions[group] = api_version.split("/", 1)[1]
    etcd = components.pop("etcd")
    return ClusterVersions(version, components, kubelets, etcd, dns, config_versions)


def plan(inv, state, *, target: str, connect) -> UpgradePlan:
    """``fab upgrade.plan --version vX.Y.Z``: print the plan (text, or the ``UpgradePlan``
    document with ``-o json|yaml``); raise when kubeadm's policy refuses it."""
    from .session import cluster_api

    target = parse_target(target)
    output.stage("reading the cluster's versions")
    with cluster_api(inv, state, connect=connect) as (_, api):
        current = read_cluster(api)
    result = compute(current, target)
    if output.data_mode():
        body = {k: v for k, v in result.to_data().items() if k not in ("apiVersion", "kind")}
        output.emit("UpgradePlan", body)
    else:
        output.out(render_text(result))
    for w in result.warnings:
        output.err(f"[upgrade/versions] WARNING: {w}")
    if result.errors:
        raise KubefabError(f"the upgrade to {target} is not possible", phase="upgrade/plan", details=result.errors,
                           fix="pick a target one minor above the cluster's at most, within "
                               f"{versions.supported_text()}")
    return result


# --- upgrade.apply ------------------------------------------------------------------------------
def resolve_target(inv, version: str) -> str:
    """The release to upgrade to: the config's ``kubernetesVersion``; ``--version`` must agree.

    kubefab renders what the config says (``init`` and ``cluster-up`` too), so an upgrade the
    config does not name would be undone by the next ``cluster-up``.

    :raises ConfigError: a ``--version`` the config does not name, with the edit to make.
    """
    configured = inv.kubeadm_config(inv.first_control_plane).cluster.kubernetes_version
    if not version:
        return parse_target(configured)
    target = parse_target(version)
    if target != parse_target(configured):
        raise ConfigError(f"--version {target}, but the kubeadm config says kubernetesVersion: {configured}",
                          phase="upgrade/apply",
                          fix=f"set kubernetesVersion: {target} in the ClusterConfiguration (or cluster: in the "
                              "inventory), then run `fab upgrade.apply`: kubefab renders the config's version, and "
                              "init or cluster-up with the old one would undo the upgrade")
    return target


def _max_unavailable(text: str, workers: int) -> int:
    """``--max-unavailable``: a count or a percentage of the workers (default 10 %, at least one)."""
    raw = (text or "10%").strip()
    try:
        value = int(raw[:-1]) * workers // 100 if raw.endswith("%") else int(raw)
    except ValueError:
        raise ConfigError(f"--max-unavailable {text[:40]!r} is not a number or a percentage", phase="upgrade/apply",
                          fix="give a count (--max-unavailable 2) or a percentage of the workers (10%)") from None
    if value < 0 or (raw.endswith("%") and not 0 <= int(raw[:-1]) <= 100):
        raise ConfigError(f"--max-unavailable {text} is out of range", phase="upgrade/apply",
                          fix="give 1 or more, or 1% to 100%")
    return max(1, value)


def _health_problems(inv, nodes: list[dict], pods: list[dict]) -> list[str]:
    """kubeadm's upgrade preflight, cluster side: every control-plane Node Ready and its static
    Pods (mirror Pods) Ready."""
    from .session import node_state

    by_name = {n["metadata"]["name"]: n for n in nodes}
    problems = []
    for host in inv.control_planes:
        name = inv.kubeadm_config(host, join=True).join.node_registration.name
        node = by_name.get(name)
        if node is None:
            problems.append(f"{host.name}: no Node {name} in the cluster")
            continue
        if not node_state(node)[0]:
            problems.append(f"{host.name}: Node {name} is not Ready")
        for component in (*CONTROL_PLANE_COMPONENTS, K.ETCD):
            mine = [p for p in pods if p["spec"].get("nodeName") == name
                    and p["metadata"].get("labels", {}).get("component") == component]
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for p in mine for c in (p.get("status") or {}).get("conditions") or [])
            if component == K.ETCD and not mine:
                continue  # external etcd, checked with etcdctl when local
            if not ready:
                problems.append(f"{host.name}: {component} is not Ready")
    return problems


def _etcd_members(inv, state, connect) -> str:
    """``etcdctl member list`` from the first control plane, after ``endpoint health`` of every
    member: the quorum kubeadm's preflight wants. Returns the member list JSON.

    :raises KubefabError: an unhealthy member or a learner (a failed join), named.
    """
    import json

    from .phases.context import RunContext
    from .phases.etcdutil import etcdctl_argv
    from .core.endpoints import join_host_port

    first = inv.first_control_plane
    ctx = RunContext(config=inv.kubeadm_config(first), host_name=first.name, state=state)
    endpoints = ["https://" + join_host_port(h.advertise_address or h.address, K.ETCD_CLIENT_PORT)
                 for h in inv.control_planes]
    listing = shlex.join(etcdctl_argv(ctx.pki_dir, endpoints, "member", "list", "-w", "json"))
    health = shlex.join(etcdctl_argv(ctx.pki_dir, endpoints, "endpoint", "health", "-w", "json"))
    transport = connect(first)
    try:
        result = transport.run(f"{listing} && echo @@kubefab@@ && {health}", check=False, timeout=120)
    finally:
        transport.close()
    members_text, _, health_text = result.stdout.partition("@@kubefab@@")
    problems = []
    try:
        for entry in json.loads(health_text or "[]"):
            if not entry.get("health"):
                problems.append(f"etcd at {entry.get('endpoint')}: {entry.get('error') or 'unhealthy'}")
        members = json.loads(members_text).get("members") or []
    except (ValueError, AttributeError):
        raise KubefabError("etcd's member list or health could not be read on " + first.name, host=first.name,
                           phase="upgrade/preflight", details=result.tail(),
                           fix="check etcd on the control planes (crictl ps --name etcd), then re-run") from None
    for m in members:
        if m.get("isLearner"):
            problems.append(f"etcd member {m.get('name') or m.get('ID')} is a learner (a control-plane join that "
                            "did not finish)")
    if problems or result.exit_code != 0:
        raise KubefabError("etcd is not healthy: the upgrade would put its quorum at risk", phase="upgrade/preflight",
                           details=problems or result.tail(),
                           fix="bring every member back (or finish or reset the half-joined control plane), "
                               "then re-run")
    return members_text


HEALTH_WAIT_SECONDS = 90  # how long the preflight waits for a control plane that is not healthy yet


@dataclass(frozen=True)
class ApplyFlags:
    """``upgrade.apply``'s flags."""

    certificate_renewal: bool = True
    max_unavailable: str = ""
    drain_timeout: str = "5m"
    delete_emptydir_data: bool = False


def _renew_names(current: ClusterVersions, node: str, target: str, etcd_tag: str, cluster) -> list[str]:
    """The certificates kubeadm renews for the components that change on ``node``."""
    from .phases.renew import READERS, renewable_names

    moving = {name for name in CONTROL_PLANE_COMPONENTS
              for version, nodes in current.components.get(name, {}).items() if node in nodes and version != target}
    if any(node in nodes and tag != etcd_tag for tag, nodes in current.etcd.items()):
        moving.add(K.ETCD)
    names = [n for n in renewable_names(cluster) if READERS.get(n) in moving
             or (n == "etcd-healthcheck-client" and K.ETCD in moving)]
    if K.KUBE_APISERVER in moving:
        names += [K.ADMIN_KUBECONFIG, K.SUPER_ADMIN_KUBECONFIG]
    return names


def apply(inv, state, *, version: str, options, flags: ApplyFlags, accept_new_host_keys: bool = False) -> None:
    """``fab upgrade.apply``: the control planes one at a time, the cluster's config and addons,
    then every kubelet (see :mod:`tasks.phases.upgrade`)."""
    from .locks import run_lock

    with run_lock(state, dry_run=options.dry_run):
        _apply(inv, state, version=version, options=options, flags=flags, accept_new_host_keys=accept_new_host_keys)


def _apply(inv, state, *, version: str, options, flags: ApplyFlags, accept_new_host_keys: bool) -> None:
    import time
    from dataclasses import replace

    from .core.config.durations import parse_go_duration
    from .core.manifests.common import etcd_image
    from .core.plan import DrainSpec
    from .core.poll import poll
    from .core.statestore import PendingStore
    from .discovery import with_etcd_members
    from .phases import upgrade as phases
    from .phases.context import RunContext
    from .phases.join import state_join_data
    from .phases.kubelet import kubelet_config_bytes
    from .phases.renew import build_renewal
    from .pipeline import HostResult, Run, report, run_hosts, run_workflow, ssh_connector
    from .session import cluster_api, node_state

    started = time.monotonic()
    target = resolve_target(inv, version)
    try:
        drain_seconds = parse_go_duration(flags.drain_timeout).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"--drain-timeout: {exc}", phase="upgrade/apply",
                          fix="give a Go duration such as 90s or 5m (0: no limit)") from None
    first = inv.first_control_plane
    workers = [h for h in inv.hosts if not h.is_control_plane]
    batch = _max_unavailable(flags.max_unavailable, len(workers))
    state.check()
    if not (state.pki_dir / "ca.crt").exists():
        raise KubefabError(f"no cluster PKI in {state.root}", phase="upgrade/apply",
                           fix="pass --state-dir of the cluster to upgrade")
    connect = ssh_connector(inv, accept_new_host_keys=accept_new_host_keys)

    output.stage(f"[upgrade] reading the cluster for the upgrade to {target}")
    with cluster_api(inv, state, connect=connect) as (_, api):
        current = read_cluster(api)

        def healthy():
            nodes = api.request("GET", "/api/v1/nodes")["items"]
            pods = api.request("GET", f"/api/v1/namespaces/{K.KUBE_SYSTEM_NAMESPACE}/pods",
                               query={"labelSelector": "tier=control-plane"})["items"]
            problems = _health_problems(inv, nodes, pods)
            return not problems, (nodes, problems)

        # a control plane that restarted a moment ago (a kubelet upgraded by the last run) gets
        # a short while to be Ready again before the upgrade is refused
        with output.waiting("the control plane to be healthy", [first.name]):
            _, (nodes, problems) = poll(healthy, HEALTH_WAIT_SECONDS, interval=5)
    planned = compute(current, target)
    if not output.data_mode():
        output.err(render_text(planned))
    for w in planned.warnings:
        output.err(f"[upgrade/versions] WARNING: {w}")
    if planned.errors:
        raise KubefabError(f"the upgrade to {target} is not possible", phase="upgrade/preflight",
                           details=planned.errors, fix="pick a target one minor above the cluster's at most")
    if problems:
        raise KubefabError("the control plane is not healthy: kubeadm does not upgrade it in this state",
                           phase="upgrade/preflight", details=problems,
                           fix="bring the named components back (`fab -H <host> join-control-plane` converges one), "
                               "then re-run")
    first_cfg = inv.kubeadm_config(first)
    members = _etcd_members(inv, state, connect) if first_cfg.cluster.etcd_local is not None else ""

    now = datetime.now(timezone.utc)
    first_ctx = RunContext(config=first_cfg, host_name=first.name, state=state, options=options, now=now,
                           store=PendingStore(state))
    kubelet_config = kubelet_config_bytes(first_ctx)
    etcd_tag = _tag_version(etcd_image(first_cfg.cluster))
    admin = (first_ctx.node_state_dir / K.ADMIN_KUBECONFIG).read_bytes()
    node_info = {n["metadata"]["name"]: n for n in nodes}

    def context(host, *, cluster_side: bool = False) -> RunContext:
        """The host's context as init (the first control plane) or a join renders it."""
        if host.name == first.name:
            ctx = replace(first_ctx, store=PendingStore(state))
        else:
            ctx = RunContext(config=inv.kubeadm_config(host, join=True), host_name=host.name, state=state,
                             options=options, now=now, store=PendingStore(state))
            jd = replace(state_join_data(ctx), kubelet_config=kubelet_config)
            if host.is_control_plane and members:
                jd = with_etcd_members(jd, members)
            ctx = replace(ctx, join_data=jd)
        node = node_info.get(ctx.node_name)
        ready, running = node_state(node) if node is not None else (False, "")
        annotations = (node or {}).get("metadata", {}).get("annotations") or {}
        data = phases.UpgradeData(
            target=target, renewed=flags.certificate_renewal, node_exists=node is not None, node_version=running,
            unschedulable=bool(((node or {}).get("spec") or {}).get("unschedulable")),
            cordoned_by_kubefab=phases.CORDONED_ANNOTATION in annotations,
            drain=DrainSpec(delete_emptydir_data=flags.delete_emptydir_data, timeout_seconds=drain_seconds,
                            host=host.name))
        ctx = replace(ctx, upgrade=data)
        if cluster_side:
            ctx = replace(ctx, cluster_kubeconfig=admin)
        return ctx

    def control_plane(host) -> HostResult:
        def prepare():
            ctx = context(host)
            if not flags.certificate_renewal:
                return ctx
            names = _renew_names(current, ctx.node_name, target, etcd_tag, ctx.cluster)
            try:
                return replace(ctx, renewal=build_renewal(ctx, names))
            except KubefabError as exc:
                raise exc.with_context(host=host.name, phase="upgrade/certs")
        return run_workflow(host, Run(phases.CONTROL_PLANE, "control-plane", prepare, table=False,
                                      done=lambda r: f"{host.name}: control plane at {target} in {r.seconds:.1f}s"),
                            connect=connect, options=options)

    def cluster(workflow, role: str) -> HostResult:
        return run_workflow(first, Run(workflow, role, lambda: context(first), table=False),
                            connect=connect, options=options)

    def kubelet(host) -> HostResult:
        return run_workflow(host, Run(phases.KUBELET, "kubelet", lambda: context(host, cluster_side=True),
                                      table=False,
                                      done=lambda r: f"{host.name}: kubelet at {target} in {r.seconds:.1f}s"),
                            connect=connect, options=options)

    results: list[HostResult] = []

    def step(hosts, fn, role: str, parallel: int = 1) -> bool:
        out = run_hosts(hosts, fn, parallel=parallel, role=lambda h: role)
        results.extend(out)
        return all(r.ok for r in out)

    output.stage(f"[upgrade] control planes, one at a time: {', '.join(h.name for h in inv.control_planes)}")
    ok = step([first], control_plane, "control-plane") and step([first], lambda h: cluster(phases.CONFIG, "config"),
                                                                   "config")
    for host in inv.control_planes[1:]:
        ok = ok and step([host], control_plane, "control-plane")
    ok = ok and step([first], lambda h: cluster(phases.ADDONS, "addons"), "addons")
    if ok:
        output.stage(f"[upgrade] kubelets: the control planes, then the workers {batch} at a time")
        step(list(inv.control_planes), kubelet, "kubelet")
        step(workers, kubelet, "kubelet", parallel=batch)
    report(results, dry_run=options.dry_run, seconds=time.monotonic() - started)
    if not options.dry_run:
        output.stage(f"[upgrade] SUCCESS! The cluster runs {target}.")


__all__ = ["ApplyFlags", "ClusterVersions", "ComponentUpgrade", "UpgradePlan", "apply", "compute", "parse_target",
           "plan", "read_cluster", "render_text", "resolve_target"]
