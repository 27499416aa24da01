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
from dataclasses import dataclass, field

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


__all__ = ["ClusterVersions", "ComponentUpgrade", "UpgradePlan", "compute", "parse_target", "plan",
           "read_cluster", "render_text"]
