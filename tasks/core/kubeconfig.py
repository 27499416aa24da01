"""kubeadm's kubeconfig files, byte for byte as client-go writes them (kubeadm-reference.md §2, §5.3).

admin.conf, super-admin.conf, kubelet.conf, controller-manager.conf and scheduler.conf carry an
embedded client certificate signed by the cluster CA; bootstrap-kubelet.conf carries a bootstrap
token; the ``cluster-info`` kubeconfig carries only the CA and the server. Every file has one
cluster named ``<clusterName>``, one user named after the certificate CN and one context
``<user>@<cluster>`` that is current (kubeadm's CreateBasic).

Serialization follows ``clientcmd.Write``: the v1 ``Config`` object goes through JSON to YAML,
so keys come out sorted, empty lists as ``null``, and strings that need quoting are
double-quoted. ``preferences: {}`` is written by client-go up to 1.33 only: from 1.34 on the field
is ``omitzero`` (seen with the real kubectl 1.35/1.36 and in client-go's types), so kubefab writes it
for 1.33 clusters alone (``preferences=``). Files are kept per node in the state dir (``<state>/nodes/<node>/``)
so re-runs reuse them byte for byte.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from . import constants as K
from . import pki
from .errors import ConfigError, PKIError
from .yamlload import load_document
from .secrets import Secret
from .spec import ClusterConfiguration
from .versions import for_version

KUBECONFIG_MODE = 0o600
PHASE = "kubeconfig"


# --- serialization ----------------------------------------------------------------------------
class _GoYamlDumper(yaml.SafeDumper):
    """PyYAML tuned to emit what go-yaml v2 (behind sigs.k8s.io/yaml) emits for a kubeconfig."""

    def choose_scalar_style(self):  # noqa: D401 - PyYAML hook
        style = super().choose_scalar_style()
        # go-yaml quotes with double quotes where PyYAML would pick single ones (`name: ""`)
        return '"' if style == "'" else style


def _represent_none(dumper: yaml.SafeDumper, _: None):
    return dumper.represent_scalar("tag:yaml.org,2002:null", "null")


_GoYamlDumper.add_representer(type(None), _represent_none)


def render_kubeconfig(config: dict[str, Any]) -> bytes:
    """Serialize a kubeconfig dict as ``clientcmd.Write`` does (sorted keys, block style)."""
    text = yaml.dump(config, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=True,
                     width=1 << 30, allow_unicode=True)
    return text.encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def build_kubeconfig(*, cluster_name: str, server: str, ca_pem: bytes, user: str | None,
                     client_cert_pem: bytes | None = None, client_key_pem: bytes | None = None,
                     token: Secret | None = None, preferences: bool = False) -> dict[str, Any]:
    """kubeadm's CreateBasic (+ WithCerts / WithToken) as a v1 Config dict.

    ``user=None`` gives the cluster-info shape: no users, no contexts, empty current-context.
    """
    cluster = {"certificate-authority-data": _b64(ca_pem), "server": server}
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "clusters": [{"cluster": cluster, "name": cluster_name}],
        "contexts": None,
        "current-context": "",
        "kind": "Config",
        "users": None,
    }
    if preferences:
        config["preferences"] = {}
    if user is None:
        return config
    context = f"{user}@{cluster_name}"
    auth: dict[str, Any] = {}
    if client_cert_pem is not None:
        auth["client-certificate-data"] = _b64(client_cert_pem)
    if client_key_pem is not None:
        auth["client-key-data"] = _b64(client_key_pem)
    if token is not None:
        auth["token"] = token.reveal()
    config["contexts"] = [{"context": {"cluster": cluster_name, "user": user}, "name": context}]
    config["current-context"] = context
    config["users"] = [{"name": user, "user": auth}]
    return config


def writes_preferences(minor: int) -> bool:
    """Whether kubeadm of this minor writes ``preferences: {}`` (client-go <= 1.33)."""
    return minor <= 33


def cluster_info_kubeconfig(server: str, ca_pem: bytes, *, preferences: bool = False) -> str:
    """``kube-public/cluster-info`` ``data.kubeconfig``: one cluster named ``""`` (reference §5.3).

    Returned as the exact string stored in the ConfigMap; the bootstrap signer signs these bytes
    and joining nodes compare them, so they must never be re-serialized differently.
    """
    return render_kubeconfig(build_kubeconfig(cluster_name="", server=server, ca_pem=ca_pem, user=None,
                                              preferences=preferences)).decode()


def bootstrap_kubeconfig(server: str, ca_pem: bytes, token: Secret, *,
                         cluster_name: str = K.DEFAULT_CLUSTER_NAME, preferences: bool = False) -> bytes:
    """``bootstrap-kubelet.conf``: user ``tls-bootstrap-token-user`` with the token (reference §7.2).

    The result contains the token: wrap it in a :class:`Secret` before it goes into a plan.
    """
    return render_kubeconfig(build_kubeconfig(cluster_name=cluster_name, server=server, ca_pem=ca_pem,
                                              user=K.TLS_BOOTSTRAP_USER, token=token, preferences=preferences))


def parse_kubeconfig(data: bytes | str, *, what: str = "kubeconfig") -> dict[str, Any]:
    """Load a kubeconfig into a dict.

    :raises PKIError: when it is not a YAML mapping.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        obj = load_document(text, source=what)  # bounded, as every file kubefab reads
    except (ConfigError, UnicodeDecodeError) as exc:
        why = exc.details[0] if isinstance(exc, ConfigError) and exc.details else "not UTF-8 YAML"
        raise PKIError(f"{what} is not valid YAML ({why})", phase=PHASE,
                       fix=f"delete {what} to have it written again") from None
    if not isinstance(obj, dict):
        raise PKIError(f"{what} is not a kubeconfig (not a mapping)", phase=PHASE,
                       fix=f"delete {what} to have it written again")
    return obj


def _named(items: Any, name: str) -> dict[str, Any] | None:
    for item in items or ():
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def current_entries(config: dict[str, Any], *, what: str = "kubeconfig") -> tuple[dict, dict, str]:
    """(cluster, user, user name) the current context points at.

    :raises PKIError: when current-context, its cluster or its user do not resolve.
    """
    ctx = _named(config.get("contexts"), config.get("current-context") or "")
    if ctx is None or not isinstance(ctx.get("context"), dict):
        raise PKIError(f"{what}: current-context {config.get('current-context')!r} does not resolve",
                       phase=PHASE, fix=f"delete {what} to have it written again")
    cluster = _named(config.get("clusters"), ctx["context"].get("cluster", ""))
    if cluster is None or not isinstance(cluster.get("cluster"), dict):
        raise PKIError(f"{what}: cluster {ctx['context'].get('cluster')!r} of the current context is missing",
                       phase=PHASE, fix=f"delete {what} to have it written again")
    user_name = ctx["context"].get("user", "")
    user = _named(config.get("users"), user_name) or {"user": {}}
    return cluster["cluster"], user.get("user") or {}, user_name


def rotate_kubelet_kubeconfig(current: bytes, pem_path: str = K.KUBELET_CLIENT_CURRENT_PEM) -> bytes:
    """kubelet-finalize: point the current user at the rotated client pem (reference §2 end).

    The embedded cert/key data are dropped and ``client-certificate``/``client-key`` both name
    ``pem_path``; everything else is kept.
    """
    config = parse_kubeconfig(current, what=K.KUBELET_KUBECONFIG)
    _, user, _ = current_entries(config, what=K.KUBELET_KUBECONFIG)
    user.pop("client-certificate-data", None)
    user.pop("client-key-data", None)
    user["client-certificate"] = pem_path
    user["client-key"] = pem_path
    # _named returned a fallback dict when the user entry was missing; make sure it is stored
    ctx_user = _named(config.get("contexts"), config["current-context"])["context"]["user"]
    if _named(config.get("users"), ctx_user) is None:
        config["users"] = [*(config.get("users") or []), {"name": ctx_user, "user": user}]
    return render_kubeconfig(config)


def _ca_data(cluster: dict[str, Any], base: Path | None) -> bytes | None:
    data = cluster.get("certificate-authority-data")
    if data:
        try:
            return base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            return None
    path = cluster.get("certificate-authority")
    if path:
        p = Path(path) if base is None else base / path
        try:
            return p.read_bytes()
        except OSError:
            return None
    return None


def check_existing_kubeconfig(data: bytes, *, expected_ca_pem: bytes, expected_server: str,
                              what: str, base: Path | None = None) -> list[str]:
    """kubeadm's reuse rule for a kubeconfig already on disk (reference §2).

    :returns: warnings (a different server is only a warning, as in kubeadm 1.30+).
    :raises PKIError: when it does not load or its CA is not the cluster CA.
    """
    config = parse_kubeconfig(data, what=what)
    cluster, _, _ = current_entries(config, what=what)
    ca = _ca_data(cluster, base)
    if ca is None or ca.strip() != expected_ca_pem.strip():
        raise PKIError(f"{what} exists but was made for a different cluster CA", phase=PHASE,
                       fix=f"delete {what} (and the copy on the host) to have it written again with this "
                       "cluster's CA")
    if cluster.get("server") != expected_server:
        return [f"{what} points at {cluster.get('server')!r}, expected {expected_server!r}; kept as is "
                "(delete it to have it rewritten)"]
    return []


def client_certificate(data: bytes) -> x509.Certificate | None:
    """The embedded client certificate of the current user, if any (for expiry checks)."""
    try:
        config = parse_kubeconfig(data)
        _, user, _ = current_entries(config)
        raw = user.get("client-certificate-data")
        return pki.parse_certs(base64.b64decode(raw))[0] if raw else None
    except (PKIError, binascii.Error, ValueError):
        return None


def renew_kubeconfig(data: bytes, ca: pki.CertKeyPair, cluster: ClusterConfiguration, *, now: datetime,
                     new_key: bool = False, what: str = "kubeconfig", keygen: pki.KeyGen | None = None) -> bytes:
    """The kubeconfig with its embedded client certificate renewed (kubeadm's ``certs renew
    admin.conf``...): same user, same key unless ``new_key``, new validity; the rest as it was.

    :raises PKIError: when the file has no embedded client certificate and key.
    """
    config = parse_kubeconfig(data, what=what)
    _, user, _ = current_entries(config, what=what)
    cert_raw, key_raw = user.get("client-certificate-data"), user.get("client-key-data")
    if not cert_raw or not key_raw:
        raise PKIError(f"{what} has no embedded client certificate and key to renew", phase="certs-renew",
                       fix="renew the certificate it points at yourself, or delete the file and re-run init")
    cert_pem, key_pem = base64.b64decode(cert_raw), base64.b64decode(key_raw)
    old = pki.CertKeyPair(pki.parse_certs(cert_pem, what=what)[0], cert_pem,
                          pki.parse_private_key(key_pem, what=what), key_pem)
    new = pki.renew_signed(old, ca, cluster, now=now, new_key=new_key, keygen=keygen)
    user["client-certificate-data"] = _b64(new.cert_pem)
    if new_key:
        user["client-key-data"] = _b64(new.key_pem)
    return render_kubeconfig(config)


# --- the kubeadm kubeconfig set ---------------------------------------------------------------
@dataclass(frozen=True)
class KubeconfigSpec:
    """One file of ``kubeadm init phase kubeconfig``; ``name`` is the sub-phase name."""

    name: str
    file: str
    user: str                     # "{node}" is replaced with the node name
    organizations: tuple[str, ...]
    server: str                   # "control-plane" | "local" | "kubelet"
    init_only: bool               # control-plane joins do not write it (reference §2)

    def user_for(self, node_name: str) -> str:
        return self.user.replace("{node}", node_name)


KUBECONFIG_SPECS: tuple[KubeconfigSpec, ...] = (
    KubeconfigSpec("admin", K.ADMIN_KUBECONFIG, K.ADMIN_USER, (K.CLUSTER_ADMINS_GROUP,), "control-plane", False),
    KubeconfigSpec("super-admin", K.SUPER_ADMIN_KUBECONFIG, K.SUPER_ADMIN_USER, (K.SYSTEM_MASTERS_GROUP,),
                   "control-plane", True),
    KubeconfigSpec("kubelet", K.KUBELET_KUBECONFIG, K.NODES_USER_PREFIX + "{node}", (K.NODES_GROUP,),
                   "kubelet", True),
    KubeconfigSpec("controller-manager", K.CONTROLLER_MANAGER_KUBECONFIG, K.CONTROLLER_MANAGER_USER, (),
                   "local", False),
    KubeconfigSpec("scheduler", K.SCHEDULER_KUBECONFIG, K.SCHEDULER_USER, (), "local", False),
)
SPECS_BY_NAME = {s.name: s for s in KUBECONFIG_SPECS}
SPECS_BY_FILE = {s.file: s for s in KUBECONFIG_SPECS}


def specs_for(*, init: bool, is_control_plane: bool) -> tuple[KubeconfigSpec, ...]:
    """Which files a node gets: all five on init, three on a control-plane join, none on workers."""
    if init:
        return KUBECONFIG_SPECS
    if is_control_plane:
        return tuple(s for s in KUBECONFIG_SPECS if not s.init_only)
    return ()


def server_for(spec: KubeconfigSpec, cluster: ClusterConfiguration, *, control_plane_url: str, local_url: str,
               is_control_plane: bool) -> str:
    """The ``server`` of one file (reference §2 table)."""
    if spec.server == "local":
        return local_url
    if spec.server == "kubelet" and is_control_plane and for_version(cluster.kubernetes_version).kubelet_local_mode:
        # ControlPlaneKubeletLocalMode (beta/on 1.33, GA 1.35): the kubelet on a control plane
        # talks to its local API server
        return local_url
    return control_plane_url


def build_cert_kubeconfig(cluster_pki: pki.ClusterPKI, cluster: ClusterConfiguration, *, user: str,
                          organizations: tuple[str, ...], server: str, now: datetime,
                          keygen: pki.KeyGen | None = None) -> bytes:
    """A kubeconfig with a fresh client certificate from the cluster CA (kubeadm's CreateWithCerts)."""
    pair = pki.build_client_cert(cluster_pki.ca, user, organizations, cluster=cluster, now=now, keygen=keygen)
    return render_kubeconfig(build_kubeconfig(cluster_name=cluster.cluster_name, server=server,
                                              ca_pem=cluster_pki.ca_cert_pem, user=user,
                                              client_cert_pem=pair.cert_pem, client_key_pem=pair.key_pem,
                                              preferences=writes_preferences(cluster.minor)))


def build_user_kubeconfig(ca: pki.CertKeyPair, cluster: ClusterConfiguration, *, server: str, client_name: str,
                          organizations: tuple[str, ...] = (), not_after: datetime | None = None,
                          token: Secret | None = None, keygen: pki.KeyGen | None = None) -> bytes:
    """``kubeadm kubeconfig user``: a kubeconfig for an additional user (reference §2).

    With ``token`` the user authenticates with it (no certificate); otherwise with a new client
    certificate signed by ``ca``: CN ``client_name``, O ``organizations``, clientAuth, NotBefore
    inherited from the CA, NotAfter ``not_after``, key of ``cluster.encryptionAlgorithm``.
    The result holds a private key or a token: treat it as a secret.
    """
    ca_pem = ca.cert_pem
    if token is not None:
        return render_kubeconfig(build_kubeconfig(cluster_name=cluster.cluster_name, server=server, ca_pem=ca_pem,
                                                  user=client_name, token=token,
                                                  preferences=writes_preferences(cluster.minor)))
    if not_after is None:
        raise ValueError("not_after is required for a client certificate")
    pair = pki.build_signed(ca, cn=client_name, organizations=organizations, usages=(pki.CLIENT_AUTH,),
                            algorithm=cluster.encryption_algorithm, not_before=ca.cert.not_valid_before_utc,
                            not_after=not_after, keygen=keygen)
    return render_kubeconfig(build_kubeconfig(cluster_name=cluster.cluster_name, server=server, ca_pem=ca_pem,
                                              user=client_name, client_cert_pem=pair.cert_pem,
                                              client_key_pem=pair.key_pem,
                                              preferences=writes_preferences(cluster.minor)))


class NodeKubeconfigs(dict):
    """File name -> bytes, plus what was created, reused and warned about."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []
        self.reused: list[str] = []
        self.warnings: list[str] = []


def ensure_node_kubeconfigs(cluster_pki: pki.ClusterPKI, node_dir: Path | str, cluster: ClusterConfiguration, *,
                            node_name: str, control_plane_url: str, local_url: str, is_control_plane: bool,
                            init: bool, now: datetime, keygen: pki.KeyGen | None = None,
                            store=None) -> NodeKubeconfigs:
    """Load or create a node's kubeconfigs under ``<node_dir>/`` (reference §2).

    An existing file is reused byte for byte if its CA is the cluster CA (a different server only
    warns). Without the CA key (external-CA mode) the files must already exist.

    :raises PKIError: for a file made for another CA, or a missing file in external-CA mode.
    """
    from .statestore import DISK

    store = store or DISK
    root = Path(node_dir)
    out = NodeKubeconfigs()
    # every existing file is checked (and every missing one known to be makeable) before
    # anything is written: a bad file fails the run with the state dir as it was
    todo = []
    for spec in specs_for(init=init, is_control_plane=is_control_plane):
        path = root / spec.file
        server = server_for(spec, cluster, control_plane_url=control_plane_url, local_url=local_url,
                            is_control_plane=is_control_plane)
        existing = store.read(path)
        if existing is not None:
            out.warnings += check_existing_kubeconfig(existing, expected_ca_pem=cluster_pki.ca_cert_pem,
                                                      expected_server=server, what=str(path), base=root)
        elif cluster_pki.external_ca:
            raise PKIError(f"external CA mode: {path} must be provided (ca.key is not available to sign "
                           "its client certificate)", phase=f"{PHASE}/{spec.name}",
                           fix=f"create {spec.file} with a client certificate for {spec.user_for(node_name)!r} "
                           "signed by your CA and put it there")
        todo.append((spec, path, server, existing))
    for spec, path, server, existing in todo:
        if existing is not None:
            out[spec.file] = existing
            out.reused.append(spec.name)
            continue
        data = build_cert_kubeconfig(cluster_pki, cluster, user=spec.user_for(node_name),
                                     organizations=spec.organizations, server=server, now=now, keygen=keygen)
        store.write(path, data, KUBECONFIG_MODE, what="kubeconfig")
        out[spec.file] = data
        out.created.append(spec.name)
    return out
