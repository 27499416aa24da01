"""Each kubeadm document read into the frozen model of :mod:`tasks.core.spec`, with kubeadm's
defaults filled in (§11) and the checks of :mod:`.validate` applied field by field.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta, timezone
from typing import Mapping

from .. import constants as K
from ..endpoints import is_dns1123_subdomain, is_ip
from ..errors import KubefabError
from ..secrets import Secret
from ..spec import (
    APIEndpoint,
    APIServer,
    BootstrapToken,
    ClusterConfiguration,
    ControlPlaneComponent,
    Discovery,
    DNS,
    EnvVar,
    ExternalEtcd,
    HostPathMount,
    InitConfiguration,
    JoinConfiguration,
    JoinControlPlane,
    LocalEtcd,
    Networking,
    NodeRegistration,
    Taint,
    Timeouts,
)
from ..versions import for_version, normalize_version
from ..yamlload import shown
from .decode import _Reader, _type_name
from .validate import (
    CA_CERT_HASH_RE, CERTIFICATE_KEY_RE, _check_absolute, _check_cidrs, _check_endpoint,
    _check_feature_gates, _check_image_repository, _check_pod_subnet_node_mask, _check_sans,
    _HOST_PATH_TYPES, _PULL_POLICIES, _TAINT_EFFECTS,
    TOKEN_GROUP_RE, TOKEN_RE, TOKEN_USAGES,
)


# --- ClusterConfiguration ----------------------------------------------------------------------
_CLUSTER_FIELDS = ("apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint",
                   "apiServer", "controllerManager", "scheduler", "dns", "proxy", "certificatesDir",
                   "imageRepository", "featureGates", "clusterName", "encryptionAlgorithm",
                   "certificateValidityPeriod", "caCertificateValidityPeriod")
_COMPONENT_FIELDS = ("extraArgs", "extraVolumes", "extraEnvs")


def _read_envs(r: _Reader, node: Mapping, path: str) -> tuple[EnvVar, ...]:
    value = node.get("extraEnvs")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.err(f"{path}.extraEnvs", f"must be a list of {{name, value}}, got {_type_name(value)}")
        return ()
    out = []
    for i, item in enumerate(value):
        p = f"{path}.extraEnvs[{i}]"
        item = r.mapping(item, p)
        if "valueFrom" in item:
            r.err(f"{p}.valueFrom", "not supported by kubefab (static pods get literal values); use value")
        r.fields({k: v for k, v in item.items() if k != "valueFrom"}, p, ("name", "value"))
        name = r.string(item, "name", p)
        if not name:
            r.err(f"{p}.name", "required")
            continue
        out.append(EnvVar(name, r.string(item, "value", p)))
    return tuple(out)


def _read_volumes(r: _Reader, node: Mapping, path: str) -> tuple[HostPathMount, ...]:
    value = node.get("extraVolumes")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.err(f"{path}.extraVolumes", f"must be a list, got {_type_name(value)}")
        return ()
    out = []
    for i, item in enumerate(value):
        p = f"{path}.extraVolumes[{i}]"
        item = r.mapping(item, p)
        r.fields(item, p, ("name", "hostPath", "mountPath", "readOnly", "pathType"))
        name, host_path, mount_path = (r.string(item, k, p) for k in ("name", "hostPath", "mountPath"))
        for key, got in (("name", name), ("hostPath", host_path), ("mountPath", mount_path)):
            if not got:
                r.err(f"{p}.{key}", "required")
        path_type = r.string(item, "pathType", p)
        if path_type not in _HOST_PATH_TYPES:
            r.err(f"{p}.pathType", f"unknown pathType {path_type!r} (one of: {', '.join(t for t in _HOST_PATH_TYPES if t)})")
        out.append(HostPathMount(name, host_path, mount_path, r.boolean(item, "readOnly", p), path_type))
    return tuple(out)


def _read_component(r: _Reader, node: Mapping, key: str, path: str) -> ControlPlaneComponent:
    c = r.sub(node, key, path, _COMPONENT_FIELDS)
    p = f"{path}.{key}"
    return ControlPlaneComponent(r.args(c, "extraArgs", p), _read_volumes(r, c, p), _read_envs(r, c, p))


def _read_cluster(r: _Reader, doc: Mapping, path: str = "ClusterConfiguration", *,
                  from_cluster: bool = False) -> ClusterConfiguration:
    """``from_cluster``: the document is a cluster's ``kubeadm-config`` (already accepted by
    whoever wrote it), not the user's file: feature gates are then taken as they are."""
    r.fields(doc, path, _CLUSTER_FIELDS)

    raw_version = doc.get("kubernetesVersion")
    version = ""
    version_ok = True  # version-dependent checks are skipped when the version itself is wrong
    if raw_version is not None and not isinstance(raw_version, str):
        r.err(f"{path}.kubernetesVersion", f"must be a string such as \"v1.34.2\", got {_type_name(raw_version)} "
                                           f"{shown(raw_version)} (quote it)")
        raw_version, version_ok = None, False
    try:
        version = normalize_version(raw_version or "")
    except KubefabError as exc:
        problem = exc.problem.removeprefix("kubernetesVersion ")
        r.err(f"{path}.kubernetesVersion", problem + (f"; {exc.fix}" if exc.fix else ""))
        version, version_ok = normalize_version(""), False

    cpe = r.string(doc, "controlPlaneEndpoint", path)
    if cpe:
        _check_endpoint(r, cpe, f"{path}.controlPlaneEndpoint", what="controlPlaneEndpoint")

    net = r.sub(doc, "networking", path, ("serviceSubnet", "podSubnet", "dnsDomain"))
    np = f"{path}.networking"
    networking = Networking(
        service_subnet=r.string(net, "serviceSubnet", np) or K.DEFAULT_SERVICE_SUBNET,
        pod_subnet=r.string(net, "podSubnet", np),
        dns_domain=r.string(net, "dnsDomain", np) or K.DEFAULT_DNS_DOMAIN,
    )
    _check_cidrs(r, networking.service_subnet, f"{np}.serviceSubnet", service=True)
    controller_manager = _read_component(r, doc, "controllerManager", path)
    if networking.pod_subnet and _check_cidrs(r, networking.pod_subnet, f"{np}.podSubnet", service=False):
        _check_pod_subnet_node_mask(r, networking.pod_subnet, f"{np}.podSubnet", controller_manager)
    if not is_dns1123_subdomain(networking.dns_domain):
        r.err(f"{np}.dnsDomain", f"{networking.dns_domain!r} is not a DNS-1123 subdomain")

    etcd = r.sub(doc, "etcd", path, ("local", "external"))
    ep = f"{path}.etcd"
    etcd_local: LocalEtcd | None = None
    etcd_external: ExternalEtcd | None = None
    if etcd.get("local") is not None and etcd.get("external") is not None:
        r.err(ep, "local and external are mutually exclusive; set only one")
    if etcd.get("external") is not None:
        ext = r.sub(etcd, "external", ep, ("endpoints", "caFile", "certFile", "keyFile", "httpEndpoints"))
        xp = f"{ep}.external"
        endpoints = r.strings(ext, "endpoints", xp)
        if not endpoints:
            r.err(f"{xp}.endpoints", "required: at least one etcd client URL (https://host:2379)")
        files = {k: r.string(ext, k, xp) for k in ("caFile", "certFile", "keyFile")}
        http_endpoints = r.strings(ext, "httpEndpoints", xp)
        # kubeadm ValidateEtcd: with any TLS file given, every etcd URL must be https://
        tls = [k for k, v in files.items() if v]
        for key, urls in (("endpoints", endpoints), ("httpEndpoints", http_endpoints)):
            for i, url in enumerate(urls):
                if not re.match(r"^https?://[^/\s]+", url):
                    r.err(f"{xp}.{key}[{i}]", f"{url!r} is not an http(s):// URL")
                elif tls and not url.startswith("https://"):
                    r.err(f"{xp}.{key}[{i}]", f"{url!r}: {'/'.join(tls)} {'is' if len(tls) == 1 else 'are'} "
                                               f"set, so etcd must be reached over https://; use https:// or "
                                               f"remove the TLS files")
        for k, v in files.items():
            _check_absolute(r, v, f"{xp}.{k}")
            if any(u.startswith("https://") for u in endpoints) and not v:
                r.err(f"{xp}.{k}", "required with https:// endpoints")
        etcd_external = ExternalEtcd(endpoints, files["caFile"], files["certFile"], files["keyFile"],
                                     http_endpoints=http_endpoints)
    else:
        # kubeadm defaults etcd.local when neither local nor external is set (§11.2)
        loc = r.sub(etcd, "local", ep, ("imageRepository", "imageTag", "dataDir", "extraArgs", "extraEnvs",
                                        "serverCertSANs", "peerCertSANs"))
        lp = f"{ep}.local"
        etcd_local = LocalEtcd(
            image_repository=r.string(loc, "imageRepository", lp),
            image_tag=r.string(loc, "imageTag", lp),
            data_dir=r.string(loc, "dataDir", lp) or K.DEFAULT_ETCD_DATA_DIR,
            extra_args=r.args(loc, "extraArgs", lp),
            extra_envs=_read_envs(r, loc, lp),
            server_cert_sans=r.strings(loc, "serverCertSANs", lp),
            peer_cert_sans=r.strings(loc, "peerCertSANs", lp),
        )
        _check_absolute(r, etcd_local.data_dir, f"{lp}.dataDir")
        _check_sans(r, etcd_local.server_cert_sans, f"{lp}.serverCertSANs")
        _check_sans(r, etcd_local.peer_cert_sans, f"{lp}.peerCertSANs")

    api = r.sub(doc, "apiServer", path, (*_COMPONENT_FIELDS, "certSANs"))
    ap = f"{path}.apiServer"
    # kubeadm lower-cases apiServer.certSANs before validating them (load balancer names such as
    # ELBs may have capitals), and stores them lower-cased
    api_server = APIServer(extra_args=r.args(api, "extraArgs", ap), extra_volumes=_read_volumes(r, api, ap),
                           extra_envs=_read_envs(r, api, ap),
                           cert_sans=tuple(s.lower() for s in r.strings(api, "certSANs", ap)))
    _check_sans(r, api_server.cert_sans, f"{ap}.certSANs")

    dns = r.sub(doc, "dns", path, ("imageRepository", "imageTag", "disabled"))
    proxy = r.sub(doc, "proxy", path, ("disabled",))

    gates_raw = r.mapping(doc.get("featureGates"), f"{path}.featureGates")
    gates = []
    for name, value in gates_raw.items():
        if not isinstance(value, bool):
            r.err(f"{path}.featureGates.{name}", f"must be true or false, got {_type_name(value)}")
        else:
            gates.append((str(name), value))
    if version_ok and not from_cluster:
        _check_feature_gates(r, gates, f"{path}.featureGates", version)

    algorithm = r.string(doc, "encryptionAlgorithm", path) or K.DEFAULT_ENCRYPTION_ALGORITHM
    if algorithm not in K.ENCRYPTION_ALGORITHMS:
        r.err(f"{path}.encryptionAlgorithm", f"unknown algorithm {algorithm!r} (one of: {', '.join(K.ENCRYPTION_ALGORITHMS)})")
        algorithm = K.DEFAULT_ENCRYPTION_ALGORITHM
    elif algorithm == "ECDSA-P384" and for_version(version).minor < 34:
        # kubeadm added ECDSA-P384 in v1.34 (reference §1.3)
        r.err(f"{path}.encryptionAlgorithm", f"ECDSA-P384 needs Kubernetes v1.34 or later (kubernetesVersion is {version})")

    image_repository = r.string(doc, "imageRepository", path) or K.DEFAULT_IMAGE_REPOSITORY
    _check_image_repository(r, image_repository, f"{path}.imageRepository")
    for sub, node in (("dns", dns), ("etcd.local", etcd.get("local") if isinstance(etcd.get("local"), dict) else {})):
        repo = node.get("imageRepository")
        if isinstance(repo, str):
            _check_image_repository(r, repo, f"{path}.{sub}.imageRepository")
    certs_dir = r.string(doc, "certificatesDir", path) or K.DEFAULT_CERTIFICATES_DIR
    _check_absolute(r, certs_dir, f"{path}.certificatesDir")
    cluster_name = r.string(doc, "clusterName", path) or K.DEFAULT_CLUSTER_NAME
    leaf = r.duration(doc, "certificateValidityPeriod", path, K.DEFAULT_CERT_VALIDITY) or K.DEFAULT_CERT_VALIDITY
    ca = r.duration(doc, "caCertificateValidityPeriod", path, K.DEFAULT_CA_CERT_VALIDITY) or K.DEFAULT_CA_CERT_VALIDITY

    return ClusterConfiguration(
        kubernetes_version=version,
        control_plane_endpoint=cpe,
        cluster_name=cluster_name,
        certificates_dir=certs_dir,
        image_repository=image_repository,
        networking=networking,
        etcd_local=etcd_local,
        etcd_external=etcd_external,
        api_server=api_server,
        controller_manager=controller_manager,
        scheduler=_read_component(r, doc, "scheduler", path),
        dns=DNS(r.string(dns, "imageRepository", f"{path}.dns"), r.string(dns, "imageTag", f"{path}.dns"),
                r.boolean(dns, "disabled", f"{path}.dns")),
        proxy_disabled=r.boolean(proxy, "disabled", f"{path}.proxy"),
        feature_gates=tuple(sorted(gates)),
        encryption_algorithm=algorithm,
        certificate_validity_period=leaf,
        ca_certificate_validity_period=ca,
    )


# --- node-local documents ------------------------------------------------------------------------
_NODE_REG_FIELDS = ("name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors",
                    "imagePullPolicy", "imagePullSerial")
_TIMEOUT_FIELDS = {
    "controlPlaneComponentHealthCheck": "control_plane_component_health_check",
    "kubeletHealthCheck": "kubelet_health_check",
    "kubernetesAPICall": "kubernetes_api_call",
    "etcdAPICall": "etcd_api_call",
    "tlsBootstrap": "tls_bootstrap",
    "discovery": "discovery",
    "upgradeManifests": "upgrade_manifests",
}


def _read_node_registration(r: _Reader, doc: Mapping, path: str, node_name: str) -> NodeRegistration:
    reg = r.sub(doc, "nodeRegistration", path, _NODE_REG_FIELDS)
    p = f"{path}.nodeRegistration"
    # kubeadm trims and lower-cases the node name, given or detected (nodeutil.GetHostname)
    name = (r.string(reg, "name", p).strip() or node_name.strip()).lower()
    if not name:
        r.err(f"{p}.name", "required (no node name given and no inventory fallback)")
    elif not is_dns1123_subdomain(name):
        r.err(f"{p}.name", f"{name!r} is not a valid node name (DNS-1123 subdomain: lower case letters, digits, '-', '.')")
    cri = r.string(reg, "criSocket", p) or K.DEFAULT_CRI_SOCKET
    if "://" not in cri:
        if cri.startswith("/"):
            cri = "unix://" + cri  # kubeadm adds the scheme to a bare path (§11.7)
        else:
            r.err(f"{p}.criSocket", f"{cri!r} must be a unix:// URL or an absolute socket path")
    elif not cri.startswith("unix://"):
        # kubeadm ValidateSocketPath: only the unix scheme
        r.err(f"{p}.criSocket", f"{cri!r}: only unix:// sockets are supported")
    taints: tuple[Taint, ...] | None = None
    raw = reg.get("taints")
    if raw is not None:
        # kubeadm: taints unset (nil) -> the control-plane taint; [] -> no taints (§11.1)
        if not isinstance(raw, list):
            r.err(f"{p}.taints", f"must be a list, got {_type_name(raw)}")
        else:
            out = []
            for i, item in enumerate(raw):
                tp = f"{p}.taints[{i}]"
                item = r.mapping(item, tp)
                r.fields(item, tp, ("key", "value", "effect", "timeAdded"))
                key, effect = r.string(item, "key", tp), r.string(item, "effect", tp)
                if not key:
                    r.err(f"{tp}.key", "required")
                if effect not in _TAINT_EFFECTS:
                    r.err(f"{tp}.effect", f"{effect!r} is not one of {', '.join(_TAINT_EFFECTS)}")
                out.append(Taint(key, effect, r.string(item, "value", tp)))
            taints = tuple(out)
    policy = r.string(reg, "imagePullPolicy", p) or "IfNotPresent"
    if policy not in _PULL_POLICIES:
        r.err(f"{p}.imagePullPolicy", f"{policy!r} is not one of {', '.join(_PULL_POLICIES)}")
    ignore = r.strings(reg, "ignorePreflightErrors", p)
    if "all" in (i.lower() for i in ignore) and len(ignore) > 1:
        r.err(f"{p}.ignorePreflightErrors", "'all' ignores every check; do not combine it with other names")
    return NodeRegistration(
        name=name,
        cri_socket=cri,
        taints=taints,
        kubelet_extra_args=r.args(reg, "kubeletExtraArgs", p),
        ignore_preflight_errors=tuple(i.lower() for i in ignore),  # kubeadm compares lower-cased (§10.4)
        image_pull_policy=policy,
        image_pull_serial=r.boolean(reg, "imagePullSerial", p, True),
    )


def _read_endpoint(r: _Reader, node: Mapping, key: str, path: str, advertise_address: str) -> APIEndpoint:
    ep = r.sub(node, key, path, ("advertiseAddress", "bindPort"))
    p = f"{path}.{key}"
    given = r.string(ep, "advertiseAddress", p)
    # kubeadm reads 0.0.0.0 / :: as "detect the host's address": the inventory's, here
    unspecified = is_ip(given) and ipaddress.ip_address(given).is_unspecified
    address = advertise_address if unspecified else (given or advertise_address)
    if not address:
        r.err(f"{p}.advertiseAddress", f"{given!r} asks for the host's own address, and the inventory gives none: "
                                       f"set it here or in the inventory" if unspecified
              else "required (no address given and no inventory fallback)")
    elif not is_ip(address):
        r.err(f"{p}.advertiseAddress", f"{address!r} is not an IP address")
    elif address == given and ipaddress.ip_address(given).is_loopback:
        # kubeadm would look for a global address on the host's loopback interface instead
        r.err(f"{p}.advertiseAddress", f"{given!r} is a loopback address, which other nodes cannot reach; give "
                                       f"the host's own address, or leave it empty to use the inventory's")
    port = r.integer(ep, "bindPort", p, 0) or K.DEFAULT_API_BIND_PORT
    if not 0 < port < 65536:
        r.err(f"{p}.bindPort", f"{port} is not a port number (1-65535)")
    return APIEndpoint(address, port)


def _read_timeouts(r: _Reader, doc: Mapping, path: str, extra: Mapping[str, timedelta]) -> Timeouts:
    t = r.sub(doc, "timeouts", path, tuple(_TIMEOUT_FIELDS))
    base = Timeouts()
    values = {}
    for key, attr in _TIMEOUT_FIELDS.items():
        default = extra.get(key, getattr(base, attr))
        values[attr] = r.duration(t, key, f"{path}.timeouts", default) or default
    return Timeouts(**values)


def _read_patches(r: _Reader, doc: Mapping, path: str) -> str:
    patches = r.sub(doc, "patches", path, ("directory",))
    directory = r.string(patches, "directory", f"{path}.patches")
    # kubeadm would resolve a relative directory against its working directory on the node;
    # kubefab has none there (and kubeadm requires it absolute in UpgradeConfiguration)
    _check_absolute(r, directory, f"{path}.patches.directory")
    return directory


def _token_secret(r: _Reader, node: Mapping, key: str, path: str) -> Secret | None:
    value = r.string(node, key, path, secret=True)
    if not value:
        return None
    if not TOKEN_RE.match(value):
        # never echo the value: it is a credential
        r.err(f"{path}.{key}", "invalid token: must be <id>.<secret>, 6 and 16 lower-case letters or digits "
                              "(regexp [a-z0-9]{6}\\.[a-z0-9]{16})")
    return Secret(value, kind="bootstrap token")


def _certificate_key(r: _Reader, node: Mapping, path: str) -> Secret | None:
    value = r.string(node, "certificateKey", path, secret=True)
    if not value:
        return None
    if not CERTIFICATE_KEY_RE.match(value):
        r.err(f"{path}.certificateKey", f"invalid certificate key: must be 64 hexadecimal characters "
                                        f"(got {len(value)} characters)")
    return Secret(value.lower(), kind="certificate key")


def _read_bootstrap_tokens(r: _Reader, doc: Mapping, path: str) -> tuple[BootstrapToken, ...]:
    raw = doc.get("bootstrapTokens")
    if raw is not None and not isinstance(raw, list):
        r.err(f"{path}.bootstrapTokens", f"must be a list, got {_type_name(raw)}")
        raw = None
    if not raw:
        # kubeadm defaults one token (its value generated at init, §11.1); an empty Secret
        # tells the init phases to mint or reuse one
        return (BootstrapToken(token=Secret("", kind="bootstrap token")),)
    out = []
    for i, item in enumerate(raw):
        p = f"{path}.bootstrapTokens[{i}]"
        item = r.mapping(item, p)
        r.fields(item, p, ("token", "description", "ttl", "expires", "usages", "groups"))
        token = _token_secret(r, item, "token", p) or Secret("", kind="bootstrap token")
        ttl = r.duration(item, "ttl", p, K.DEFAULT_TOKEN_TTL)
        expires = None
        raw_exp = item.get("expires")
        if isinstance(raw_exp, datetime):
            expires = raw_exp if raw_exp.tzinfo else raw_exp.replace(tzinfo=timezone.utc)
        elif isinstance(raw_exp, str):
            try:
                expires = datetime.fromisoformat(raw_exp.replace("Z", "+00:00"))
            except ValueError:
                r.err(f"{p}.expires", f"{raw_exp!r} is not an RFC 3339 time (2006-01-02T15:04:05Z)")
        elif raw_exp is not None:
            r.err(f"{p}.expires", f"must be an RFC 3339 time, got {_type_name(raw_exp)}")
        if expires is not None and item.get("ttl") is not None:
            r.err(p, "ttl and expires are mutually exclusive")
        usages = r.strings(item, "usages", p) or ("signing", "authentication")
        for j, usage in enumerate(usages):
            if usage not in TOKEN_USAGES:
                r.err(f"{p}.usages[{j}]", f"unknown usage {usage!r} (known: {', '.join(TOKEN_USAGES)})")
        groups = r.strings(item, "groups", p) or (K.DEFAULT_BOOTSTRAP_GROUP,)
        for j, group in enumerate(groups):
            if not TOKEN_GROUP_RE.match(group):
                r.err(f"{p}.groups[{j}]", f"{group!r} must match {TOKEN_GROUP_RE.pattern}")
        if "authentication" not in usages:
            # kubeadm ValidateTokenGroups: groups (always set: defaulted when empty) need the
            # authentication usage, which is also what a joining kubelet's TLS bootstrap uses
            r.err(f"{p}.usages", f"[{', '.join(usages)}] must include 'authentication': the token's groups "
                                 f"({', '.join(groups)}) only apply when it authenticates, and a joining node "
                                 f"authenticates with it")
        out.append(BootstrapToken(token=token, description=r.string(item, "description", p),
                                  ttl=ttl, expires=expires, usages=usages, groups=groups))
    return tuple(out)


_INIT_FIELDS = ("apiVersion", "kind", "bootstrapTokens", "dryRun", "nodeRegistration", "localAPIEndpoint",
                "certificateKey", "skipPhases", "patches", "timeouts")
_JOIN_FIELDS = ("apiVersion", "kind", "dryRun", "nodeRegistration", "caCertPath", "discovery", "controlPlane",
                "skipPhases", "patches", "timeouts")


def _read_init(r: _Reader, doc: Mapping, *, node_name: str, advertise_address: str,
               extra: Mapping[str, timedelta]) -> InitConfiguration:
    path = "InitConfiguration"
    r.fields(doc, path, _INIT_FIELDS)
    return InitConfiguration(
        node_registration=_read_node_registration(r, doc, path, node_name),
        local_api_endpoint=_read_endpoint(r, doc, "localAPIEndpoint", path, advertise_address),
        bootstrap_tokens=_read_bootstrap_tokens(r, doc, path),
        certificate_key=_certificate_key(r, doc, path),
        skip_phases=r.strings(doc, "skipPhases", path),
        timeouts=_read_timeouts(r, doc, path, extra),
        dry_run=r.boolean(doc, "dryRun", path),
        patches_directory=_read_patches(r, doc, path),
    )


def _read_join(r: _Reader, doc: Mapping, *, node_name: str, advertise_address: str,
               extra: Mapping[str, timedelta]) -> JoinConfiguration:
    path = "JoinConfiguration"
    r.fields(doc, path, _JOIN_FIELDS)
    disc = r.sub(doc, "discovery", path, ("bootstrapToken", "file", "tlsBootstrapToken"))
    dp = f"{path}.discovery"
    bt_raw = disc.get("bootstrapToken")
    bt = r.sub(disc, "bootstrapToken", dp, ("token", "apiServerEndpoint", "caCertHashes", "unsafeSkipCAVerification"))
    bp = f"{dp}.bootstrapToken"
    fl_raw = disc.get("file")
    fl = r.sub(disc, "file", dp, ("kubeConfigPath",))
    if bt_raw is not None and fl_raw is not None:
        r.err(dp, "bootstrapToken and file are mutually exclusive; set only one")
    token = _token_secret(r, bt, "token", bp)
    endpoint = r.string(bt, "apiServerEndpoint", bp)
    if endpoint:
        _check_endpoint(r, endpoint, f"{bp}.apiServerEndpoint", what="apiServerEndpoint", require_port=True)
    hashes = r.strings(bt, "caCertHashes", bp)
    for i, pin in enumerate(hashes):
        if not CA_CERT_HASH_RE.match(pin):
            r.err(f"{bp}.caCertHashes[{i}]", f"{pin!r} must be sha256:<64 hex characters>")
    kubeconfig_path = r.string(fl, "kubeConfigPath", f"{dp}.file")
    if fl_raw is not None and not kubeconfig_path:
        r.err(f"{dp}.file.kubeConfigPath", "required when discovery.file is set")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", kubeconfig_path)
    if scheme and scheme.group(1).lower() not in ("https", "file"):
        # kubeadm ValidateDiscoveryKubeConfigPath: a file path, or an https:// URL
        r.err(f"{dp}.file.kubeConfigPath", f"{kubeconfig_path!r}: a discovery URL must be https:// (the file "
                                           f"carries the cluster's CA); or give a path to the file")
    # tlsBootstrapToken defaults to the discovery token (§11.3)
    tls_token = _token_secret(r, disc, "tlsBootstrapToken", dp) or token
    discovery = Discovery(
        token=token, api_server_endpoint=endpoint,
        ca_cert_hashes=tuple(h.lower() for h in hashes),  # kubeadm stores pins lower-cased (§7.1)
        unsafe_skip_ca_verification=r.boolean(bt, "unsafeSkipCAVerification", bp),
        file_kubeconfig_path=kubeconfig_path.removeprefix("file://"),
        tls_bootstrap_token=tls_token,
    )
    control_plane = None
    if doc.get("controlPlane") is not None:
        cp = r.sub(doc, "controlPlane", path, ("localAPIEndpoint", "certificateKey"))
        cpp = f"{path}.controlPlane"
        control_plane = JoinControlPlane(
            local_api_endpoint=_read_endpoint(r, cp, "localAPIEndpoint", cpp, advertise_address),
            certificate_key=_certificate_key(r, cp, cpp),
        )
    ca_cert_path = r.string(doc, "caCertPath", path) or f"{K.DEFAULT_CERTIFICATES_DIR}/ca.crt"
    _check_absolute(r, ca_cert_path, f"{path}.caCertPath")
    if not ca_cert_path.endswith(".crt"):
        # kubeadm ValidateJoinConfiguration
        r.err(f"{path}.caCertPath", f"{ca_cert_path!r} must name a .crt file (e.g. /etc/kubernetes/pki/ca.crt)")
    return JoinConfiguration(
        node_registration=_read_node_registration(r, doc, path, node_name),
        discovery=discovery,
        ca_cert_path=ca_cert_path,
        control_plane=control_plane,
        skip_phases=r.strings(doc, "skipPhases", path),
        timeouts=_read_timeouts(r, doc, path, extra),
        dry_run=r.boolean(doc, "dryRun", path),
        patches_directory=_read_patches(r, doc, path),
    )
