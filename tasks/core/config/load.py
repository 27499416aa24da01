"""Load kubeadm's own configuration files into the frozen model of :mod:`tasks.core.spec`.

A kubeadm config file is multi-document YAML: ``InitConfiguration``, ``ClusterConfiguration``,
``JoinConfiguration`` (``kubeadm.k8s.io/v1beta4``; ``v1beta3`` is converted first, as kubeadm
does, reference §11.8), plus the component configs ``KubeletConfiguration`` and
``KubeProxyConfiguration``, kept as plain dicts (the manifest renderer fills their defaults).

Loading follows kubeadm's rules: decoding is strict (:mod:`.decode`), v1beta3 is converted
(:mod:`.convert`), kubeadm's defaults are applied (:mod:`.defaults`), and the result is
validated (:mod:`.validate`). Every problem found is collected and reported in one
:class:`~tasks.core.errors.ConfigError` whose ``details`` hold one
``"<file>: <field.path>: <problem>"`` line each, so a user fixes all of them in one pass.
Secret values (bootstrap tokens, the certificate key) become :class:`Secret` at load time and
are never echoed in a message.

:func:`parse_cluster_configuration` reads the ``kubeadm-config`` ConfigMap's
ClusterConfiguration (also when real kubeadm wrote it); :mod:`.encode` writes it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..spec import ClusterConfiguration, KubeadmConfig
from ..yamlload import Document, read_file, shown
from .convert import _convert_v1beta3
from .decode import (
    _deepcopy, _KINDS, KUBEADM_GROUP, _load_documents, _Reader, SUPPORTED_KUBEADM_VERSIONS,
    _supported_text, _type_name, V1BETA3,
)
from .defaults import _read_cluster, _read_init, _read_join
from .validate import _check_component_fields


def _merge(base: dict, over: Mapping, prefix: str, paths: list[str]) -> dict:
    """Deep-merge ``over`` onto ``base`` (mappings merge, anything else replaces); record leaves."""
    out = dict(base)
    for key, value in over.items():
        path = f"{prefix}.{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, path, paths)
        else:
            out[key] = _deepcopy(value)
            paths.append(path)
    return out


# --- loading -------------------------------------------------------------------------------------
def _raise(source: str, issues: list[str], what: str = "kubeadm configuration") -> None:
    if issues:
        n = len(issues)
        raise ConfigError(
            f"{source}: {n} problem{'s' if n != 1 else ''} in the {what}",
            details=issues,
            fix="correct each field listed (kubeadm's v1beta4 reference: "
                "https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/)",
        )


def load_config_text(
    text: str,
    *,
    source: str,
    node_name: str,
    advertise_address: str,
    inline_cluster: Mapping[str, Any] | None = None,
    inline_source: str = "inventory",
    for_join: str | None = None,
) -> KubeadmConfig:
    """Load, convert, default and validate a kubeadm config file's text.

    :param text: the multi-document YAML (may be empty: all defaults).
    :param source: the file name, used in every message.
    :param node_name: ``nodeRegistration.name`` when the file leaves it empty.
    :param advertise_address: ``advertiseAddress`` when the file leaves it empty.
    :param inline_cluster: ClusterConfiguration fields from the inventory (v1beta4 camelCase),
        deep-merged over the file's (lists and scalars replace).
    :param inline_source: the inventory file name, for messages about inline fields.
    :param for_join: None (default) reads what the file holds; ``"worker"`` or
        ``"control-plane"`` reads it as ``kubeadm join`` would for that kind of node: the
        InitConfiguration is ignored, ``join`` is always set (kubeadm's defaults when the file
        has no JoinConfiguration) and ``join.control_plane`` is set exactly for control planes.
    :returns: the defaulted configuration. With neither an Init nor a Join document (and
        ``for_join`` None), a default InitConfiguration is made (what ``kubeadm init`` does).
    :raises ConfigError: listing every problem found.
    """
    if for_join not in (None, "worker", "control-plane"):
        raise ValueError(f"for_join must be None, 'worker' or 'control-plane', not {for_join!r}")
    issues: list[str] = []
    docs = _load_documents(text, source, issues)
    r = _Reader(source, issues)
    by_kind: dict[str, tuple[str, dict, Document]] = {}
    extra: dict[str, timedelta] = {}
    for doc in docs:
        where = f"document {doc.index} (line {doc.line})"
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            issues.append(f"{source}: {where}: must be a mapping with apiVersion and kind, got {_type_name(doc.data)}")
            continue
        api, kind = doc.data.get("apiVersion"), doc.data.get("kind")
        if not api or not kind:
            missing = " and ".join(k for k, v in (("apiVersion", api), ("kind", kind)) if not v)
            issues.append(f"{source}: {where}: {missing} missing (supported: {_supported_text()})")
            continue
        if not isinstance(api, str) or not isinstance(kind, str):
            for key, value in (("apiVersion", api), ("kind", kind)):
                if not isinstance(value, str):
                    issues.append(f"{source}: {where}: {key} must be a string, got {_type_name(value)}")
            continue
        if kind not in _KINDS:
            issues.append(f"{source}: {where}: unknown kind {kind!r} (supported: {_supported_text()})")
            continue
        if api not in _KINDS[kind]:
            hint = ""
            if isinstance(api, str) and api.startswith(KUBEADM_GROUP + "/"):
                hint = "; older kubeadm APIs must be migrated (kubeadm config migrate)"
            issues.append(f"{source}: {where}: unsupported apiVersion {api!r} for {kind} "
                          f"(supported: {', '.join(_KINDS[kind])}){hint}")
            continue
        if kind in by_kind:
            issues.append(f"{source}: {where}: a second {kind} document (the first is document "
                          f"{by_kind[kind][2].index}); give each kind once")
            continue
        by_kind[kind] = (api, doc.data, doc)

    converted: dict[str, dict] = {}
    for kind in ("ClusterConfiguration", "InitConfiguration", "JoinConfiguration"):
        if kind in by_kind:
            api, data, _ = by_kind[kind]
            converted[kind] = _convert_v1beta3(kind, data, r, extra) if api == V1BETA3 else data

    cluster_doc = converted.get("ClusterConfiguration", {})
    inline_paths: list[str] = []
    if inline_cluster:
        cluster_doc = _merge(cluster_doc, inline_cluster, "ClusterConfiguration", inline_paths)
    cr = _Reader(source, issues, inline_source=inline_source, inline_paths=inline_paths)
    cluster = _read_cluster(cr, cluster_doc)

    init = join = None
    if for_join is None:
        if "InitConfiguration" in converted or "JoinConfiguration" not in converted:
            # v1beta3's discovery.timeout belongs to the JoinConfiguration only
            init_extra = {k: v for k, v in extra.items() if k != "discovery"}
            init = _read_init(r, converted.get("InitConfiguration", {}), node_name=node_name,
                              advertise_address=advertise_address, extra=init_extra)
        if "JoinConfiguration" in converted:
            join = _read_join(r, converted["JoinConfiguration"], node_name=node_name,
                              advertise_address=advertise_address, extra=extra)
    else:
        # kubeadm join ignores an InitConfiguration and defaults a missing JoinConfiguration;
        # whether the node joins as a control plane is the caller's (the inventory role's) call
        doc = dict(converted.get("JoinConfiguration", {}))
        if for_join == "control-plane":
            doc["controlPlane"] = doc.get("controlPlane") or {}
        else:
            doc.pop("controlPlane", None)
        join = _read_join(r, doc, node_name=node_name, advertise_address=advertise_address, extra=extra)

    components: dict[str, dict] = {}
    for kind in ("KubeletConfiguration", "KubeProxyConfiguration", "ResetConfiguration", "UpgradeConfiguration"):
        if kind in by_kind:
            components[kind] = _deepcopy(by_kind[kind][1])
            _check_component_fields(r, kind, components[kind])
    _raise(source, issues)
    return KubeadmConfig(
        cluster=cluster,
        init=init,
        join=join,
        kubelet=components.get("KubeletConfiguration", {}),
        kube_proxy=components.get("KubeProxyConfiguration", {}),
        reset=components.get("ResetConfiguration", {}),
        upgrade=components.get("UpgradeConfiguration", {}),
        source=source,
    )


def read_text_file(path: str | Path, *, what: str, missing_fix: str) -> str:
    """A UTF-8 file's text, or a ConfigError naming it (missing, unreadable, too large, not UTF-8)."""
    return read_file(path, what=what, missing_fix=missing_fix)


def load_config_file(path: str | Path, **kwargs: Any) -> KubeadmConfig:
    """:func:`load_config_text` on a file (``source`` defaults to the path as given).

    :raises ConfigError: the file is missing or unreadable, or its content is invalid.
    """
    text = read_text_file(path, what="kubeadm config file",
                          missing_fix="create it, or fix the path (cluster.config in the inventory is relative to "
                                      "the inventory file)")
    kwargs.setdefault("source", str(path))
    return load_config_text(text, **kwargs)


def default_config(*, node_name: str, advertise_address: str,
                   kubernetes_version: str | None = None) -> KubeadmConfig:
    """kubeadm's defaults for one node (``kubeadm init`` with no config file)."""
    inline = {"kubernetesVersion": kubernetes_version} if kubernetes_version else None
    return load_config_text("", source="(defaults)", node_name=node_name,
                            advertise_address=advertise_address, inline_cluster=inline,
                            inline_source="(defaults)")


def parse_cluster_configuration(text: str, *, source: str = "kubeadm-config ConfigMap") -> ClusterConfiguration:
    """Read a ``kubeadm-config`` ClusterConfiguration (v1beta4, or v1beta3 from older clusters).

    A joining node reads the cluster's configuration this way, whoever wrote it (kubefab or
    kubeadm). Extra documents of other kinds are not allowed here.

    :raises ConfigError: listing every problem found.
    """
    issues: list[str] = []
    docs = [d for d in _load_documents(text, source, issues) if d.data is not None]
    r = _Reader(source, issues)
    if not issues and len(docs) != 1:
        issues.append(f"{source}: expected exactly one ClusterConfiguration document, found {len(docs)}")
    cluster = None
    if not issues:
        data = docs[0].data
        api = data.get("apiVersion") if isinstance(data, dict) else None
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind != "ClusterConfiguration" or api not in SUPPORTED_KUBEADM_VERSIONS:
            issues.append(f"{source}: document 1: expected kind ClusterConfiguration with apiVersion "
                          f"{' or '.join(SUPPORTED_KUBEADM_VERSIONS)}, got {shown(kind)} {shown(api)}")
        else:
            if api == V1BETA3:
                data = _convert_v1beta3("ClusterConfiguration", data, r, {})
            cluster = _read_cluster(r, data, from_cluster=True)
    _raise(source, issues, "ClusterConfiguration")
    assert cluster is not None
    return cluster
