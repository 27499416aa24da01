"""``preflight``: kubeadm's checks, as pure functions of the host's facts (reference §10).

Every check runs; warnings are reported as ``[WARNING Name]``; errors together as
``[ERROR Name]`` with the ``--ignore-preflight-errors`` hint, exactly like kubeadm. Ignored
checks still run and print as warnings. Names follow kubeadm (``Port-6443``,
``FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml``, ``DirAvailable--var-lib-etcd``).

One deliberate difference: on a host that already runs *this* cluster's control plane (its
``ca.crt`` is the cluster CA kubefab holds), the port and file checks that exist to stop a
second ``kubeadm init`` over a live node are waived, because kubefab's re-run converges instead
of clobbering. A host with a *different* CA still fails them.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

from ..core import constants as K
from ..core.errors import PreflightError
from ..core.plan import Plan
from .workflow import OPERATOR, Phase

MIN_CPUS = 2
MIN_MEM_MB = 1700


@dataclass(frozen=True)
class Finding:
    name: str
    message: str
    error: bool  # False = warning


def check_name_for_path(prefix: str, path: str) -> str:
    """``FileAvailable--etc-kubernetes-manifests-etcd.yaml``: every ``/`` becomes ``-``."""
    return f"{prefix}-{path.replace('/', '-')}"


def _path(facts, path: str) -> dict:
    return (getattr(facts, "paths", None) or {}).get(path) or {}


def _ports(facts) -> dict[int, str]:
    ports = getattr(facts, "listening_ports", None) or {}
    if isinstance(ports, dict):
        return {int(p): str(v or "") for p, v in ports.items()}
    return {int(p): "" for p in ports}


def same_cluster(ctx) -> bool:
    """The host's ca.crt is the cluster CA (a re-run, not a clash): the CA this operator holds
    on an init, the discovered one on a join (never a freshly created state-dir PKI)."""
    ca = _path(ctx.facts, posixpath.join(ctx.pki_dir, "ca.crt"))
    if not ca.get("exists") or not ca.get("sha256"):
        return False
    try:
        pem = ctx.cluster_join_data.ca_pem if ctx.config.join is not None else ctx.cluster_pki.ca_cert_pem
        ours = hashlib.sha256(pem).hexdigest()
    except Exception:  # no CA known yet: cannot be ours
        return False
    return ca["sha256"] == ours


def node_checks(ctx, *, worker: bool) -> list[Finding]:
    """Checks every node runs (init and join)."""
    f = ctx.facts
    found: list[Finding] = []
    if getattr(f, "uid", 0) != 0:
        found.append(Finding("IsPrivilegedUser", "user is not running as root", True))
    sockets = getattr(f, "cri_sockets", None)
    want = ctx.node_registration.cri_socket.removeprefix("unix://")
    if sockets is not None and want not in sockets:
        found.append(Finding("CRI", f"container runtime is not running: socket {want} not found", True))
    if getattr(f, "swap_on", False):
        found.append(Finding("Swap", "swap is supported for cgroup v2 only; the kubelet must be properly "
                                     "configured to use swap", False))
    binaries = getattr(f, "binaries", None) or {}
    for binary, level in ctx.version.preflight_binaries:
        if not binaries.get(binary):
            found.append(Finding(f"FileExisting-{binary}", f"{binary} not found in system path", level == "error"))
    kubelet_version = getattr(f, "kubelet_version", "") or ""
    if not binaries.get("kubelet") and not kubelet_version:
        found.append(Finding("FileExisting-kubelet", "kubelet not found in system path", True))
    elif kubelet_version:
        found.extend(_kubelet_version(ctx, kubelet_version))
    if getattr(f, "kubelet_enabled", "enabled") not in ("enabled", "static", "alias"):
        found.append(Finding("Service-Kubelet", "kubelet service is not enabled, please run "
                                                "'systemctl enable kubelet.service'", False))
    if not _waived(ctx) and K.KUBELET_PORT in _ports(f):
        found.append(_port_finding(f, K.KUBELET_PORT))
    if getattr(f, "cgroup_version", None) == 1:
        found.append(_cgroup_v1_finding(ctx, kubelet_version))
    if str(getattr(f, "ip_forward", "1")).strip()[:1] != "1":
        found.append(Finding("FileContent--proc-sys-net-ipv4-ip_forward",
                             "/proc/sys/net/ipv4/ip_forward contents are not set to 1", True))
    return found


def _kubelet_minor(text: str) -> int | None:
    m = re.search(r"v?1\.(\d+)\.(\d+)", text)
    return int(m.group(1)) if m else None


CGROUP_V1_FAILS_FROM = 35  # the kubelet refuses cgroup v1 from 1.35 on unless failCgroupV1: false


def _cgroup_v1_finding(ctx, kubelet_version: str) -> Finding:
    """kubeadm's SystemVerification on a cgroup v1 host: an error when the kubelet is 1.35 or
    newer (the installed one, else the cluster's version), a warning before."""
    minor = _kubelet_minor(kubelet_version) or ctx.version.minor
    return Finding("SystemVerification",
                   f"the host runs cgroup v1, which kubelet v1.{CGROUP_V1_FAILS_FROM} and newer refuse "
                   "(KEP-5573); migrate the host to cgroup v2, or keep v1 by setting failCgroupV1: false in "
                   "the KubeletConfiguration and skipping this check "
                   "(--ignore-preflight-errors=SystemVerification)",
                   minor >= CGROUP_V1_FAILS_FROM)


def _kubelet_version(ctx, text: str) -> list[Finding]:
    minor = _kubelet_minor(text)
    if minor is None:
        return [Finding("KubeletVersion", f"couldn't parse kubelet version {text!r}", True)]
    cp_minor = ctx.version.minor
    if minor > cp_minor:
        return [Finding("KubeletVersion", f"the kubelet version (v1.{minor}) is higher than the control plane "
                                          f"version (v1.{cp_minor})", True)]
    if minor < cp_minor - 3:
        return [Finding("KubeletVersion", f"kubelet version v1.{minor} is lower than the minimum supported "
                                          f"(v1.{cp_minor - 3})", True)]
    return []


def _port_finding(facts, port: int) -> Finding:
    owner = _ports(facts).get(port) or ""
    return Finding(f"Port-{port}", f"Port {port} is in use" + (f" by {owner}" if owner else ""), True)


def _waived(ctx) -> bool:
    return same_cluster(ctx)


def _no_proxy_covers(host: str, no_proxy: str) -> bool:
    """Whether ``host`` (an IP or a name) is excluded from proxying by a NO_PROXY list
    (entries: ``*``, names, ``.suffix`` domains, IPs, CIDRs), as Go's http.ProxyFromEnvironment reads it."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    for entry in (e.strip() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".").split(":")[0].lower()
        if host.lower() == name or host.lower().endswith("." + name):
            return True
    return False


def proxy_checks(ctx, hosts: list[str], cidrs: list[str]) -> list[Finding]:
    """kubeadm's HTTPProxy and HTTPProxyCIDR warnings: would a proxy be used to reach these?"""
    env = {k.lower(): v for k, v in (ctx.proxy_env or {}).items()}
    proxy = env.get("https_proxy") or env.get("http_proxy")
    if not proxy:
        return []
    no_proxy = env.get("no_proxy", "")
    found = []
    for host in hosts:
        if host and not _no_proxy_covers(host, no_proxy):
            found.append(Finding("HTTPProxy", f'Connection to "https://{host}" uses proxy "{proxy}". If that is not '
                                              "intended, adjust your proxy settings", False))
    import ipaddress

    for cidr in cidrs:
        try:
            first = str(ipaddress.ip_network(cidr, strict=False)[1])
        except (ValueError, IndexError):
            continue
        if not _no_proxy_covers(first, no_proxy):
            found.append(Finding("HTTPProxyCIDR", f'connection to "{cidr}" uses proxy "{proxy}". This may lead to '
                                                  "malfunctional cluster setup. Make sure that Pod and Services IP "
                                                  "ranges specified correctly as exceptions in proxy configuration",
                                 False))
    return found


def control_plane_checks(ctx) -> list[Finding]:
    """The checks of init and of a control-plane join (kubeadm's init list)."""
    f = ctx.facts
    found: list[Finding] = []
    cpus = getattr(f, "cpus", MIN_CPUS)
    if cpus < MIN_CPUS:
        found.append(Finding("NumCPU", f"the number of available CPUs {cpus} is less than the required {MIN_CPUS}",
                             True))
    mem = getattr(f, "mem_mb", MIN_MEM_MB)
    if mem < MIN_MEM_MB:
        found.append(Finding("Mem", f"the system RAM ({mem} MB) is less than the minimum {MIN_MEM_MB} MB", True))
    net = ctx.cluster.networking
    cidrs = [c for c in (net.service_subnet.split(",") + net.pod_subnet.split(",")) if c.strip()]
    found.extend(proxy_checks(ctx, [ctx.advertise_address], cidrs))
    if getattr(f, "firewalld_active", False):
        found.append(Finding("Firewalld", f"firewalld is active, please ensure ports [{ctx.bind_port} "
                                          f"{K.KUBELET_PORT}] are open or your cluster may not function correctly",
                             False))
    if _waived(ctx):
        return found
    ports = _ports(f)
    wanted = [ctx.bind_port, K.KUBE_SCHEDULER_PORT, K.KUBE_CONTROLLER_MANAGER_PORT]
    if ctx.cluster.etcd_local is not None:
        wanted += [K.ETCD_CLIENT_PORT, K.ETCD_PEER_PORT]
    for port in wanted:
        if port in ports:
            found.append(_port_finding(f, port))
    for component in K.STATIC_POD_COMPONENTS:
        path = posixpath.join(K.MANIFESTS_DIR, f"{component}.yaml")
        if _path(f, path).get("exists"):
            found.append(Finding(check_name_for_path("FileAvailable", path), f"{path} already exists", True))
    if ctx.cluster.etcd_local is not None:
        data_dir = ctx.cluster.etcd_local.data_dir
        if _path(f, data_dir).get("nonempty"):
            found.append(Finding(check_name_for_path("DirAvailable", data_dir), f"{data_dir} is not empty", True))
    return found


def paths_to_probe(ctx) -> list[str]:
    """Paths whose state the checks (and change detection) need."""
    paths = [posixpath.join(K.MANIFESTS_DIR, f"{c}.yaml") for c in K.STATIC_POD_COMPONENTS]
    paths.append(posixpath.join(ctx.pki_dir, "ca.crt"))
    if ctx.cluster.etcd_local is not None:
        paths.append(ctx.cluster.etcd_local.data_dir)
    paths += [posixpath.join(K.KUBERNETES_DIR, n) for n in (K.KUBELET_KUBECONFIG, K.BOOTSTRAP_KUBELET_KUBECONFIG)]
    paths.append(K.KUBELET_CLIENT_CURRENT_PEM)
    return paths


def evaluate(ctx, findings: list[Finding], *, phase: str = "preflight") -> Plan:
    """Turn findings into a plan (notes) or raise one PreflightError listing every error."""
    ignore = {n.lower() for n in ctx.options.ignore_preflight_errors} | {
        n.lower() for n in ctx.node_registration.ignore_preflight_errors}
    ignore_all = "all" in ignore
    plan = Plan(phase, ctx.host_name)
    errors, names = [], []
    for f in findings:
        if f.error and not (ignore_all or f.name.lower() in ignore):
            errors.append(f"[ERROR {f.name}]: {f.message}")
            names.append(f.name)
        else:
            plan.notes.append(f"[WARNING {f.name}]: {f.message}")
    if errors:
        raise PreflightError(
            "Some fatal errors occurred:", host=ctx.host_name, phase=phase, details=errors,
            fix="fix the errors above, or (if you know what you are doing) make a check non-fatal with "
                "--ignore-preflight-errors=" + ",".join(names))
    if not findings:
        plan.notes.append("all checks passed")
    return plan


def plan_preflight_init(ctx) -> Plan:
    if ctx.facts is None:
        return Plan("preflight", ctx.host_name, notes=["offline: host checks need facts and were not run"])
    return evaluate(ctx, node_checks(ctx, worker=False) + control_plane_checks(ctx))


PREFLIGHT_INIT = Phase("preflight", "Run pre-flight checks", run=plan_preflight_init, where=OPERATOR,
                       probes=paths_to_probe)
