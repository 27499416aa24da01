"""v1beta3 -> v1beta4 conversion of kubeadm's documents (reference §11.8), as kubeadm converts
before defaulting and validating."""

from __future__ import annotations

from typing import Any

from ..yamlload import shown
from .decode import V1BETA3, V1BETA4, _deepcopy, _dig, _Reader, _type_name


# --- v1beta3 -> v1beta4 conversion (reference §11.8) ---------------------------------------------
_V1BETA4_ONLY: dict[str, tuple[str, ...]] = {
    # kind -> dotted paths that v1beta3 does not have (an error when given in a v1beta3 file)
    "ClusterConfiguration": ("encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod",
                             "proxy", "dns.disabled", "apiServer.extraEnvs", "controllerManager.extraEnvs",
                             "scheduler.extraEnvs", "etcd.local.extraEnvs", "etcd.external.httpEndpoints"),
    "InitConfiguration": ("dryRun", "timeouts", "nodeRegistration.imagePullSerial"),
    "JoinConfiguration": ("dryRun", "timeouts", "nodeRegistration.imagePullSerial"),
}


def _map_to_args(value: Any, path: str, r: _Reader) -> Any:
    """v1beta3 ``extraArgs`` map -> v1beta4 list, sorted by name as kubeadm's converter does."""
    if value is None:
        return None
    if not isinstance(value, dict):
        r.err(path, f"must be a mapping of flag name to value in v1beta3, got {_type_name(value)}")
        return None
    out = []
    for name in sorted(value, key=str):
        v = value[name]
        if not isinstance(v, str):
            r.err(f"{path}.{name}", f"must be a string, got {_type_name(v)} {shown(v)} (quote it)")
            continue
        out.append({"name": str(name), "value": v})
    return out


def _convert_v1beta3(kind: str, doc: dict, r: _Reader, extra: dict[str, Any]) -> dict:
    """Turn a v1beta3 document into its v1beta4 form; moved values land in ``extra``."""
    doc = _deepcopy(doc)
    for dotted in _V1BETA4_ONLY.get(kind, ()):
        parent, leaf = _dig(doc, dotted)
        if parent is not None and leaf in parent:
            r.err(f"{kind}.{dotted}", f"unknown field {leaf!r} in {V1BETA3} (it exists only in {V1BETA4})")
            parent.pop(leaf)
    if kind == "ClusterConfiguration":
        for comp in ("apiServer", "controllerManager", "scheduler"):
            c = doc.get(comp)
            if isinstance(c, dict) and "extraArgs" in c:
                c["extraArgs"] = _map_to_args(c["extraArgs"], f"{kind}.{comp}.extraArgs", r)
        etcd = doc.get("etcd")
        local = etcd.get("local") if isinstance(etcd, dict) else None
        if isinstance(local, dict) and "extraArgs" in local:
            local["extraArgs"] = _map_to_args(local["extraArgs"], f"{kind}.etcd.local.extraArgs", r)
        api = doc.get("apiServer")
        if isinstance(api, dict) and "timeoutForControlPlane" in api:
            # v1beta3 apiServer.timeoutForControlPlane -> {Init,Join}Configuration.timeouts
            value = api.pop("timeoutForControlPlane")
            if value is not None:
                got = r.duration({"timeoutForControlPlane": value}, "timeoutForControlPlane",
                                 f"{kind}.apiServer", None)
                if got is not None:
                    extra["controlPlaneComponentHealthCheck"] = got
        gates = doc.get("featureGates")
        if isinstance(gates, dict) and "PublicKeysECDSA" in gates:
            # v1beta3's PublicKeysECDSA gate became encryptionAlgorithm ECDSA-P256
            if gates.pop("PublicKeysECDSA") is True:
                doc["encryptionAlgorithm"] = "ECDSA-P256"
            if not gates:
                doc.pop("featureGates")
    if kind in ("InitConfiguration", "JoinConfiguration"):
        reg = doc.get("nodeRegistration")
        if isinstance(reg, dict) and "kubeletExtraArgs" in reg:
            reg["kubeletExtraArgs"] = _map_to_args(reg["kubeletExtraArgs"], f"{kind}.nodeRegistration.kubeletExtraArgs", r)
    if kind == "JoinConfiguration":
        disc = doc.get("discovery")
        if isinstance(disc, dict) and "timeout" in disc:
            # v1beta3 discovery.timeout -> JoinConfiguration.timeouts.discovery
            value = disc.pop("timeout")
            if value is not None:
                got = r.duration({"timeout": value}, "timeout", f"{kind}.discovery", None)
                if got is not None:
                    extra["discovery"] = got
    return doc
