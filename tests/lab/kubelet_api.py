"""The lab kubelet's API side: TLS bootstrap, Node registration and mirror pods.

The machines kubefab is tested on cannot run the real kubelet; the lab kubelet
(tests/lab/kubelet.py) stands in for its process side and calls :meth:`ApiSide.sync` every 1-2 s
for what the real kubelet does against the API server on a kubeadm node:

- TLS bootstrap (reference §2, §4.4): with no usable ``kubeconfig`` and a
  ``bootstrap_kubeconfig``, make an ECDSA P-256 key, post a CSR (``system:node:<name>`` /
  ``system:nodes``, signer ``kubernetes.io/kube-apiserver-client-kubelet``, usages digital
  signature + client auth), wait (across calls) until it is issued, write
  ``<cert_dir>/kubelet-client-<timestamp>.pem`` (cert + key, 0600) and the symlink
  ``kubelet-client-current.pem``, then ``kubelet.conf`` as the kubelet does (cluster
  ``default-cluster``, user ``default-auth`` pointing at the pem, context ``default-context``).
  The client certificate is renewed the same way (self CSR) after 80 % of its lifetime when
  ``rotateCertificates`` is on, as kubeadm configures it.
- Node registration: labels ``kubernetes.io/hostname|os|arch`` (+ the beta ones), addresses
  InternalIP and Hostname, ``--register-with-taints`` from the kubelet flags, capacity, node info,
  and a Ready condition whose heartbeat is refreshed every ``nodeStatusUpdateFrequency``, with
  the node Lease in ``kube-node-lease`` renewed alongside.
- Mirror pods for static pods (``<pod>-<node>`` in the manifest's namespace, its labels and
  annotations plus ``kubernetes.io/config.{mirror,hash,source,seen}``, ``spec.nodeName``, an
  ownerReference to the Node as the kubelet sets it, status Running while the process runs);
  mirror pods whose manifest is gone are deleted, changed ones recreated.

Nothing here serves a port. :meth:`ApiSide.sync` never raises: every problem is logged once
(repeated identical failures are not re-logged every second).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import socket
import sys
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab.standins.clientkit import (
    ApiStatusError,
    KubeClient,
    load_kubeconfig,
    parse_go_duration,
    rfc3339,
    utc_now,
)

__all__ = ["ApiSide", "static_pod_hash", "mirror_pod_name", "build_kubelet_kubeconfig"]

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
CURRENT_PEM = "kubelet-client-current.pem"
BOOTSTRAP_KEY = "kubelet-client.key.tmp"  # the kubelet keeps its pending bootstrap key here
ROTATION_KEY = "kubelet-client-rotation.key.tmp"
# ECDSA keys: "key encipherment" is for RSA only (the approver accepts both sets).
CLIENT_USAGES = ["digital signature", "client auth"]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
HASH_ANNOTATION = "kubernetes.io/config.hash"
SOURCE_ANNOTATION = "kubernetes.io/config.source"
SEEN_ANNOTATION = "kubernetes.io/config.seen"
STATUS_ENV = "KUBEFAB_LAB_NODE_STATUS_SECONDS"
VERSION_ENV = "KUBEFAB_LAB_KUBELET_VERSION"
DEFAULT_KUBELET_VERSION = "v1.36.0"
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
LEASE_SECONDS = 40  # the kubelet's nodeLeaseDurationSeconds default
ROTATE_AT = 0.8  # fraction of the client certificate's lifetime after which it is renewed


# ---------------------------------------------------------------------------- pure helpers
def static_pod_hash(manifest: Mapping[str, Any], node_name: str) -> str:
    """The config hash the kubelet gives a static pod (its UID and mirror annotation).

    Any change to the manifest changes it, which is what makes the kubelet recreate the
    mirror pod; 32 hex characters like the real md5-based value.
    """
    canonical = json.dumps({"node": node_name, "pod": manifest}, sort_keys=True, separators=(",", ":"))
    return hashlib.md5(canonical.encode()).hexdigest()  # noqa: S324 - an identifier, not security


def mirror_pod_name(manifest: Mapping[str, Any], node_name: str) -> str:
    """``<pod name>-<node name>``: how the kubelet names static pods (and so mirror pods)."""
    return f"{(manifest.get('metadata') or {}).get('name', '')}-{node_name}"


def build_kubelet_kubeconfig(server: str, ca_data: bytes | None, ca_file: str | None, insecure: bool,
                             pem_path: str) -> dict[str, Any]:
    """kubelet.conf as the kubelet writes it after TLS bootstrap (reference §2)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    elif ca_file:
        cluster["certificate-authority"] = ca_file
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "contexts": [{"name": "default-context", "context": {
            "cluster": "default-cluster", "namespace": "default", "user": "default-auth"}}],
        "current-context": "default-context",
        "users": [{"name": "default-auth", "user": {"client-certificate": pem_path, "client-key": pem_path}}],
    }


def parse_taints(value: str) -> list[dict[str, str]]:
    """``--register-with-taints`` (``key=value:Effect`` or ``key:Effect``, comma separated).

    :raises ValueError: on a malformed entry (the real kubelet refuses to start then).
    """
    taints = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        spec, _, effect = item.rpartition(":")
        if not spec or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"invalid taint spec {item!r}")
        key, eq, val = spec.partition("=")
        taint = {"key": key, "effect": effect}
        if eq:
            taint["value"] = val
        taints.append(taint)
    return taints


_API_FLAGS = ("register-with-taints", "node-ip", "node-labels")


def _flags_from_argv(argv: list[str]) -> dict[str, str]:
    """The kubelet flags the API side uses, from ``--name=value`` or ``--name value`` args."""
    out: dict[str, str] = {}
    for i, arg in enumerate(argv):
        name, eq, value = arg.lstrip("-").partition("=")
        if not arg.startswith("--") or name not in _API_FLAGS:
            continue
        if eq:
            out[name] = value
        elif i + 1 < len(argv):
            out[name] = argv[i + 1]
    return out


def _machine_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x"}.get(machine, machine)


def _read_first_line(path: str) -> str:
    try:
        return Path(path).read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


def _meminfo_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _pem_chain_and_key(pem: bytes) -> tuple[list[x509.Certificate], Any]:
    certs = x509.load_pem_x509_certificates(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    return certs, key


def _public_der(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


# ---------------------------------------------------------------------------- the API side
class ApiSide:
    """What the kubelet does against the API server, one non-blocking step per :meth:`sync`.

    :param node_name: the Node name (``--hostname-override`` or the host name, lower-cased).
    :param kubeconfig: ``/etc/kubernetes/kubelet.conf``.
    :param bootstrap_kubeconfig: ``/etc/kubernetes/bootstrap-kubelet.conf``.
    :param cert_dir: ``/var/lib/kubelet/pki``.
    :param kubelet_config: the parsed ``/var/lib/kubelet/config.yaml``.
    :param log: a :class:`logging.Logger` (or a callable taking one message).
    :param flags: the kubelet command-line flags without dashes (``register-with-taints``,
        ``node-ip``, ``node-labels``), e.g. from ``kubeadm-flags.env``.
    """

    def __init__(self, *, node_name: str, kubeconfig: str, bootstrap_kubeconfig: str | None,
                 cert_dir: str, kubelet_config: Mapping[str, Any] | None, log: Any,
                 flags: Mapping[str, str] | None = None,
                 now: Callable[[], dt.datetime] = utc_now) -> None:
        self.node_name = node_name
        self.kubeconfig = kubeconfig
        self.bootstrap_kubeconfig = bootstrap_kubeconfig or ""
        self.cert_dir = Path(cert_dir)
        self.config = dict(kubelet_config or {})
        # In the lab the API side runs inside the kubelet process: without explicit flags, read
        # the few it needs from that process's own command line.
        self.flags = ({k.lstrip("-"): v for k, v in flags.items()} if flags is not None
                      else _flags_from_argv(sys.argv[1:]))
        self._log = log
        self._now = now
        self._client: KubeClient | None = None
        self._client_key: tuple[Any, ...] | None = None
        self._node_uid = ""
        self._last_status = 0.0
        self._seen: dict[str, str] = {}
        self._said: dict[str, str] = {}
        self._force_rotation = False

    # -- logging ------------------------------------------------------------------------------
    def _emit(self, level: int, message: str) -> None:
        if isinstance(self._log, logging.Logger):
            self._log.log(level, "%s", message)
        elif callable(self._log):
            self._log(message)

    def _say(self, topic: str, message: str, level: int = logging.INFO) -> None:
        """Log a message unless it is what was last said on this topic."""
        if self._said.get(topic) != message:
            self._said[topic] = message
            self._emit(level, message)

    def _clear(self, topic: str) -> None:
        self._said.pop(topic, None)

    # -- the loop step ------------------------------------------------------------------------
    def sync(self, static_pods: list[dict[str, Any]]) -> None:
        """One step: credentials, Node, mirror pods. Never raises (errors are logged)."""
        try:
            client = self._ensure_credentials()
            if client is None:
                return
            if not self._ensure_node(client):
                return
            self._sync_mirror_pods(client, static_pods or [])
            self._maybe_rotate(client)
            self._clear("sync")
        except Exception as exc:  # noqa: BLE001 - the kubelet loop must survive anything
            self._say("sync", f"kubelet API side: {type(exc).__name__}: {exc}", logging.ERROR)

    # -- credentials --------------------------------------------------------------------------
    def _current_pem(self) -> Path:
        return self.cert_dir / CURRENT_PEM

    def _current_pair(self) -> tuple[bytes, bytes] | None:
        """(cert PEM, key PEM) of ``kubelet-client-current.pem`` when it loads and is valid now."""
        try:
            certs, key = _pem_chain_and_key(self._current_pem().read_bytes())
        except (OSError, ValueError, TypeError):
            return None
        now = self._now()
        if not certs or not certs[0].not_valid_before_utc <= now < certs[0].not_valid_after_utc:
            return None
        if _public_der(certs[0]) != _public_der(key):
            return None
        cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return cert_pem, key_pem

    def _kubeconfig_usable(self) -> bool:
        """kubelet.conf loads and gives a credential that is valid now: a token, the kubelet's
        current client certificate (which wins, as the kubelet's certificate manager's does), or
        the certificate embedded in or referenced by the kubeconfig."""
        if not Path(self.kubeconfig).is_file():
            return False
        try:
            cfg = load_kubeconfig(self.kubeconfig)
        except (OSError, ValueError) as exc:
            self._say("kubeconfig", f"kubelet: {self.kubeconfig} is not usable: {exc}", logging.WARNING)
            return False
        if cfg.token or self._current_pair() is not None:
            return True
        if not cfg.cert_pem or not cfg.key_pem:
            return False
        try:
            cert = x509.load_pem_x509_certificates(cfg.cert_pem)[0]
        except ValueError:
            return False
        now = self._now()
        return cert.not_valid_before_utc <= now < cert.not_valid_after_utc

    def _ensure_credentials(self) -> KubeClient | None:
        if self._kubeconfig_usable():
            self._adopt_kubeconfig_certificate()
            return self._api_client()
        if self.bootstrap_kubeconfig and Path(self.bootstrap_kubeconfig).is_file():
            self._bootstrap_step()
            return self._api_client() if self._kubeconfig_usable() else None
        self._say("credentials", f"kubelet: no usable {self.kubeconfig} and no bootstrap kubeconfig "
                  f"({self.bootstrap_kubeconfig or 'none given'}): running standalone")
        return None

    def _adopt_kubeconfig_certificate(self) -> None:
        """On a node whose kubelet.conf carries a client certificate (the init node: kubeadm
        writes it with embedded data) and no current pem yet, store that pair as
        ``kubelet-client-<ts>.pem`` + ``kubelet-client-current.pem`` and renew it right away, as
        the kubelet's certificate manager does. kubeadm's kubelet-finalize phase relies on that
        file existing (reference §2)."""
        if self._current_pair() is not None:
            return
        cfg = load_kubeconfig(self.kubeconfig)
        if not cfg.cert_pem or not cfg.key_pem:
            return
        try:
            cert = x509.load_pem_x509_certificates(cfg.cert_pem)[0]
            key = serialization.load_pem_private_key(cfg.key_pem, password=None)
        except (ValueError, TypeError):
            return
        if _public_der(cert) != _public_der(key):
            return
        target = self._store_pem(cfg.cert_pem, key)
        self._force_rotation = self.config.get("rotateCertificates") is not False
        self._say("adopt", f"kubelet: stored the kubeconfig's client certificate as {target}")

    def _api_client(self) -> KubeClient:
        """A client from kubelet.conf (server, CA) with the current client certificate, rebuilt
        when the file or the pem it points at changes."""
        pem = self._current_pem()
        stamp = (os.stat(self.kubeconfig).st_mtime_ns,
                 os.path.realpath(pem) if pem.exists() else "", pem.stat().st_mtime_ns if pem.exists() else 0)
        if self._client is None or self._client_key != stamp:
            if self._client is not None:
                self._client.close()
            cfg = load_kubeconfig(self.kubeconfig)
            pair = self._current_pair()
            if pair is not None:
                cfg = replace(cfg, cert_pem=pair[0], key_pem=pair[1])
            self._client = KubeClient(cfg.server, cfg.ssl_context(), token=cfg.token,
                                      user_agent=f"kubelet-lab/{self.node_name}")
            self._client_key = stamp
        return self._client

    def _load_or_make_key(self, name: str) -> Any:
        path = self.cert_dir / name
        if path.exists():
            try:
                return serialization.load_pem_private_key(path.read_bytes(), password=None)
            except ValueError:
                self._say("key", f"kubelet: discarding unreadable {path}", logging.WARNING)
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, path)
        return key

    def _csr_name(self, key: Any) -> str:
        """A name derived from key, subject and usages, as the kubelet derives ``node-csr-*``:
        re-posting after a restart finds the same CSR instead of creating another. (The kubelet
        base64url-encodes its digest; CSR names are free-form upstream, hex keeps them valid
        for stricter servers too.)"""
        digest = hashlib.sha256()
        digest.update(_public_der(key))
        digest.update(f"{NODE_USER_PREFIX}{self.node_name}|{NODES_GROUP}|{','.join(CLIENT_USAGES)}".encode())
        return "node-csr-" + digest.hexdigest()

    def _build_csr(self, key: Any) -> bytes:
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
                             x509.NameAttribute(NameOID.COMMON_NAME, NODE_USER_PREFIX + self.node_name)])
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        return csr.public_bytes(serialization.Encoding.PEM)

    def _csr_step(self, client: KubeClient, key: Any, purpose: str) -> bytes | None:
        """Post (once) and poll our CSR; the issued certificate PEM when it is there."""
        name = self._csr_name(key)
        csr = client.get(f"{CSR_PATH}/{name}")
        if csr is None:
            body = {
                "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": name},
                "spec": {"request": base64.b64encode(self._build_csr(key)).decode(),
                         "signerName": KUBELET_CLIENT_SIGNER, "usages": list(CLIENT_USAGES)},
            }
            status, answer = client.request("POST", CSR_PATH, body)
            if status == 409:
                return None
            if status >= 300:
                message = answer.get("message", "") if isinstance(answer, dict) else str(answer)[:200]
                raise ApiStatusError(status, answer.get("reason", "") if isinstance(answer, dict) else "",
                                     f"posting {purpose} CSR: {message}")
            self._say(purpose, f"kubelet: {purpose}: posted CSR {name}, waiting for approval and signing")
            return None
        conditions = (csr.get("status") or {}).get("conditions") or []
        for cond in conditions:
            if cond.get("type") in ("Denied", "Failed") and cond.get("status", "True") == "True":
                self._say(purpose, f"kubelet: {purpose}: CSR {name} was {cond['type'].lower()}: "
                          f"{cond.get('reason', '')} {cond.get('message', '')}".rstrip(), logging.ERROR)
                return None
        cert_b64 = (csr.get("status") or {}).get("certificate")
        if not cert_b64:
            return None
        pem = base64.b64decode(cert_b64)
        leaf = x509.load_pem_x509_certificates(pem)[0]
        # Both a certificate and a private key answer public_key(): compare the two SPKIs.
        if _public_der(leaf) != _public_der(key):
            raise ApiStatusError(500, "", f"CSR {name} was issued a certificate for another key")
        return pem

    def _store_pem(self, cert_pem: bytes, key: Any) -> Path:
        """Write ``kubelet-client-<timestamp>.pem`` (cert then key, 0600) and point the
        ``kubelet-client-current.pem`` symlink at it atomically, as the kubelet's cert store does."""
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S")
        target = self.cert_dir / f"kubelet-client-{stamp}.pem"
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        os.replace(tmp, target)
        link_tmp = self.cert_dir / f".{CURRENT_PEM}.tmp"
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        os.symlink(str(target), link_tmp)
        os.replace(link_tmp, self._current_pem())
        return target

    def _write_kubeconfig(self) -> None:
        boot = load_kubeconfig(self.bootstrap_kubeconfig)
        doc = build_kubelet_kubeconfig(boot.server, boot.ca_pem, None, boot.insecure, str(self._current_pem()))
        path = Path(self.kubeconfig)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))
        os.replace(tmp, path)

    def _bootstrap_step(self) -> None:
        """One step of TLS bootstrap with the bootstrap token identity."""
        current = self._current_pem()
        if current.exists():
            # A valid client cert but no kubelet.conf: the kubelet just rewrites the kubeconfig.
            try:
                certs, _ = _pem_chain_and_key(current.read_bytes())
                if certs[0].not_valid_after_utc > self._now():
                    self._write_kubeconfig()
                    self._say("bootstrap", f"kubelet: wrote {self.kubeconfig} for the existing {current}")
                    return
            except (ValueError, OSError, TypeError):
                pass
        client = KubeClient.from_kubeconfig(self.bootstrap_kubeconfig, user_agent=f"kubelet-lab/{self.node_name}")
        try:
            key = self._load_or_make_key(BOOTSTRAP_KEY)
            pem = self._csr_step(client, key, "TLS bootstrap")
        finally:
            client.close()
        if pem is None:
            return
        target = self._store_pem(pem, key)
        self._write_kubeconfig()
        (self.cert_dir / BOOTSTRAP_KEY).unlink(missing_ok=True)
        self._say("bootstrap", f"kubelet: TLS bootstrap done: {target} and {self.kubeconfig} written")

    def _maybe_rotate(self, client: KubeClient) -> None:
        """Renew the client certificate after 80 % of its lifetime (self-node CSR)."""
        if self.config.get("rotateCertificates") is False:
            return
        current = self._current_pem()
        if not current.exists():
            return
        cert = x509.load_pem_x509_certificates(current.read_bytes())[0]
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        if not self._force_rotation and self._now() < cert.not_valid_before_utc + life * ROTATE_AT:
            return
        key = self._load_or_make_key(ROTATION_KEY)
        pem = self._csr_step(client, key, "client certificate rotation")
        if pem is None:
            return
        target = self._store_pem(pem, key)
        (self.cert_dir / ROTATION_KEY).unlink(missing_ok=True)
        self._force_rotation = False
        self._say("client certificate rotation", f"kubelet: rotated the client certificate: {target}")

    # -- Node -----------------------------------------------------------------------------------
    def _node_ip(self, client: KubeClient) -> str:
        """``--node-ip``, else the address this host uses to reach the API server (the
        default-route interface's, as the kubelet picks when nothing is configured)."""
        if self.flags.get("node-ip"):
            return self.flags["node-ip"].split(",")[0]
        url = urllib.parse.urlsplit(client.server)
        host, port = url.hostname or "127.0.0.1", url.port or 443
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return str(s.getsockname()[0])

    def _labels(self) -> dict[str, str]:
        arch = _machine_arch()
        labels = {
            "beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch, "kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
        }
        for item in filter(None, (v.strip() for v in self.flags.get("node-labels", "").split(","))):
            key, _, value = item.partition("=")
            labels[key] = value
        return labels

    def _node_status(self, client: KubeClient, old: Mapping[str, Any] | None) -> dict[str, Any]:
        now = rfc3339(self._now())
        previous = {c.get("type"): c for c in ((old or {}).get("conditions") or [])}

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            before = previous.get(kind) or {}
            since = before.get("lastTransitionTime") if before.get("status") == status else None
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": since or now}

        cpus = str(os.cpu_count() or 1)
        mem = f"{_meminfo_kib()}Ki"
        pods = str(self.config.get("maxPods", 110))
        capacity = {"cpu": cpus, "memory": mem, "pods": pods, "ephemeral-storage": "10Gi",
                    "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
        return {
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": self._node_ip(client)},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": _read_first_line("/etc/machine-id"),
                "systemUUID": _read_first_line("/sys/class/dmi/id/product_uuid"),
                "bootID": _read_first_line("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": platform.release(), "osImage": _os_image(),
                "containerRuntimeVersion": "lab://1.0.0",
                "kubeletVersion": os.environ.get(VERSION_ENV, DEFAULT_KUBELET_VERSION),
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": _machine_arch(),
            },
        }

    def _status_interval(self) -> float:
        override = os.environ.get(STATUS_ENV)
        if override:
            try:
                return max(0.1, float(override))
            except ValueError:
                pass
        try:
            seconds = parse_go_duration(str(self.config.get("nodeStatusUpdateFrequency") or "10s")).total_seconds()
        except ValueError:
            seconds = 0.0
        # A zero value means "the default" in the serialized KubeletConfiguration (reference §4.1).
        return seconds if seconds > 0 else 10.0

    def _ensure_node(self, client: KubeClient) -> bool:
        """Register the Node once, then refresh its status every status interval."""
        path = f"/api/v1/nodes/{self.node_name}"
        if not self._node_uid:
            node = client.get(path)
            if node is None:
                taints = parse_taints(self.flags.get("register-with-taints", ""))
                body: dict[str, Any] = {
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": self.node_name, "labels": self._labels(),
                                 "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                    "spec": {"taints": taints} if taints else {},
                    "status": self._node_status(client, None),
                }
                status, answer = client.request("POST", "/api/v1/nodes", body)
                if status == 409:
                    node = client.get(path)
                elif status >= 300:
                    message = answer.get("message", "") if isinstance(answer, dict) else str(answer)[:200]
                    self._say("node", f"kubelet: unable to register node {self.node_name!r}: {message}",
                              logging.ERROR)
                    return False
                else:
                    node = answer
                    self._say("node", f"kubelet: successfully registered node {self.node_name}")
            if node is None:
                return False
            self._node_uid = node["metadata"]["uid"]
            self._reconcile_labels(client, node)
            self._last_status = 0.0
        if time.monotonic() - self._last_status >= self._status_interval():
            self._update_node_status(client)
            self._renew_lease(client)
        return True

    def _renew_lease(self, client: KubeClient) -> None:
        """The node heartbeat Lease ``kube-node-lease/<node>`` the kubelet keeps renewed."""
        path = f"{LEASES_PATH}/{self.node_name}"
        now = self._now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # MicroTime
        lease = client.get(path)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.node_name, "namespace": "kube-node-lease",
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                      "uid": self._node_uid}]},
                    "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_SECONDS,
                             "renewTime": now}}
            status, answer = client.request("POST", LEASES_PATH, body)
        else:
            lease.setdefault("spec", {}).update({"holderIdentity": self.node_name, "renewTime": now,
                                                 "leaseDurationSeconds": LEASE_SECONDS})
            status, answer = client.request("PUT", path, lease)
        if status >= 300 and status != 409:
            message = answer.get("message", "") if isinstance(answer, dict) else str(answer)[:200]
            self._say("lease", f"kubelet: unable to renew the node lease: {message}", logging.WARNING)
        else:
            self._clear("lease")

    def _reconcile_labels(self, client: KubeClient, node: dict[str, Any]) -> None:
        """An existing Node keeps its taints; the kubelet only re-asserts its default labels."""
        labels = dict((node.get("metadata") or {}).get("labels") or {})
        wanted = self._labels()
        if all(labels.get(k) == v for k, v in wanted.items()):
            return
        client.call("PATCH", f"/api/v1/nodes/{self.node_name}", {"metadata": {"labels": wanted}},
                    content_type="application/merge-patch+json")

    def _update_node_status(self, client: KubeClient) -> None:
        path = f"/api/v1/nodes/{self.node_name}"
        for _ in range(3):
            node = client.get(path)
            if node is None:
                # Deleted under us: register again next step (the kubelet does the same).
                self._node_uid = ""
                self._say("node", f"kubelet: node {self.node_name} disappeared; registering again", logging.WARNING)
                return
            node["status"] = {**(node.get("status") or {}), **self._node_status(client, node.get("status"))}
            status, answer = client.request("PUT", path + "/status", node)
            if status == 409:
                continue
            if status >= 300:
                message = answer.get("message", "") if isinstance(answer, dict) else str(answer)[:200]
                raise ApiStatusError(status, "", f"updating node status: {message}")
            self._node_uid = answer["metadata"]["uid"]
            self._last_status = time.monotonic()
            return

    # -- mirror pods ------------------------------------------------------------------------------
    @staticmethod
    def _entry(item: Mapping[str, Any]) -> tuple[dict[str, Any], bool, int, float | None, str | None]:
        """(manifest, running, restarts, started epoch, phase) from a static pod entry.

        Accepted shapes: the lab kubelet's report, a Pod dict whose ``status`` holds
        ``running``/``pid``/``restarts`` (and ``phase``); or ``{"manifest": <Pod>, "running":
        bool, "pid": int, "restarts": int, "started_at": epoch}``.
        """
        if "manifest" in item:
            manifest, extra = dict(item["manifest"] or {}), dict(item)
        else:
            manifest = {k: v for k, v in item.items() if k != "status"}
            status = item.get("status")
            extra = dict(status) if isinstance(status, Mapping) else {}
        running = bool(extra.get("running", extra.get("pid") is not None))
        restarts = int(extra.get("restarts") or 0)
        started = extra.get("started_at")
        phase = extra.get("phase") if isinstance(extra.get("phase"), str) else None
        return (manifest, running, restarts, float(started) if isinstance(started, (int, float)) else None,
                phase)

    def _mirror_pod(self, manifest: dict[str, Any], pod_hash: str) -> dict[str, Any]:
        meta = manifest.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        seen = self._seen.setdefault(pod_hash, self._now().strftime("%Y-%m-%dT%H:%M:%S.%f000Z"))
        annotations = {**(meta.get("annotations") or {}), HASH_ANNOTATION: pod_hash,
                       MIRROR_ANNOTATION: pod_hash, SOURCE_ANNOTATION: "file", SEEN_ANNOTATION: seen}
        spec = dict(manifest.get("spec") or {})
        spec["nodeName"] = self.node_name
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": mirror_pod_name(manifest, self.node_name), "namespace": namespace,
                "labels": dict(meta.get("labels") or {}), "annotations": annotations,
                # As the kubelet's mirror client sets it: the Node owns its mirror pods.
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                     "uid": self._node_uid}],
            },
            "spec": spec,
        }

    def _pod_status(self, manifest: dict[str, Any], running: bool, restarts: int, started: float | None,
                    ip: str, old: Mapping[str, Any] | None) -> dict[str, Any]:
        now = rfc3339(self._now())
        start = rfc3339(dt.datetime.fromtimestamp(started, dt.timezone.utc)) if started else now
        previous = {c.get("type"): c for c in ((old or {}).get("conditions") or [])}

        def condition(kind: str, ok: bool) -> dict[str, Any]:
            state = "True" if ok else "False"
            before = previous.get(kind) or {}
            since = before.get("lastTransitionTime") if before.get("status") == state else None
            return {"type": kind, "status": state, "lastProbeTime": None, "lastTransitionTime": since or now}

        containers = []
        for c in (manifest.get("spec") or {}).get("containers") or []:
            state = ({"running": {"startedAt": start}} if running
                     else {"waiting": {"reason": "CrashLoopBackOff" if restarts else "ContainerCreating"}})
            containers.append({"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "",
                               "containerID": f"lab://{c.get('name', '')}", "ready": running,
                               "started": running, "restartCount": restarts, "state": state})
        return {
            "phase": "Running" if running else "Pending",
            "conditions": [condition("PodReadyToStartContainers", running), condition("Initialized", True),
                           condition("Ready", running), condition("ContainersReady", running),
                           condition("PodScheduled", True)],
            "hostIP": ip, "hostIPs": [{"ip": ip}], "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": (old or {}).get("startTime") or start,
            "containerStatuses": containers, "qosClass": "Burstable",
        }

    def _sync_mirror_pods(self, client: KubeClient, static_pods: list[dict[str, Any]]) -> None:
        selector = urllib.parse.quote(f"spec.nodeName={self.node_name}")
        existing = {}
        for pod in client.list(f"/api/v1/pods?fieldSelector={selector}"):
            meta = pod.get("metadata") or {}
            if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
                existing[(meta.get("namespace"), meta.get("name"))] = pod
        ip = self._node_ip(client)
        wanted: set[tuple[str, str]] = set()
        for item in static_pods:
            manifest, running, restarts, started, phase = self._entry(item)
            if not (manifest.get("metadata") or {}).get("name"):
                self._say("manifest", "kubelet: a static pod manifest without metadata.name was ignored",
                          logging.WARNING)
                continue
            # The process side owns the static pod's identity when it states it (as the kubelet's
            # file source does); otherwise hash the manifest the same deterministic way.
            given = ((manifest.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
            pod_hash = given if isinstance(given, str) and given else static_pod_hash(manifest, self.node_name)
            desired = self._mirror_pod(manifest, pod_hash)
            key = (desired["metadata"]["namespace"], desired["metadata"]["name"])
            wanted.add(key)
            current = existing.get(key)
            ns_path = f"/api/v1/namespaces/{key[0]}/pods"
            if current is not None and (current["metadata"].get("annotations") or {}).get(MIRROR_ANNOTATION) != pod_hash:
                client.delete(f"{ns_path}/{key[1]}", uid=current["metadata"].get("uid"))
                self._emit(logging.INFO, f"kubelet: deleted outdated mirror pod {key[0]}/{key[1]}")
                current = None
            if current is None:
                status, answer = client.request("POST", ns_path, desired)
                if status >= 300:
                    message = answer.get("message", "") if isinstance(answer, dict) else str(answer)[:200]
                    self._say(f"mirror/{key}", f"kubelet: failed creating mirror pod {key[0]}/{key[1]}: {message}",
                              logging.ERROR)
                    continue
                self._emit(logging.INFO, f"kubelet: created mirror pod {key[0]}/{key[1]}")
                self._clear(f"mirror/{key}")
                current = answer
            new_status = self._pod_status(manifest, running, restarts, started, ip, current.get("status"))
            if phase in ("Failed", "Succeeded") and not running:
                new_status["phase"] = phase
            if self._status_differs(current.get("status") or {}, new_status):
                current["status"] = new_status
                status, answer = client.request("PUT", f"{ns_path}/{key[1]}/status", current)
                if status >= 300 and status != 409:
                    message = answer.get("message", "") if isinstance(answer, dict) else str(answer)[:200]
                    self._say(f"mirror-status/{key}", f"kubelet: failed updating status of {key[0]}/{key[1]}: "
                              f"{message}", logging.ERROR)
        for key, pod in existing.items():
            if key not in wanted:
                if client.delete(f"/api/v1/namespaces/{key[0]}/pods/{key[1]}", uid=pod["metadata"].get("uid")):
                    self._emit(logging.INFO, f"kubelet: deleted mirror pod {key[0]}/{key[1]} (manifest removed)")

    @staticmethod
    def _status_differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Compare what matters (phase, readiness, restarts, IPs), not timestamps."""
        def digest(s: Mapping[str, Any]) -> Any:
            return (s.get("phase"), s.get("podIP"), s.get("hostIP"),
                    sorted((c.get("type"), c.get("status")) for c in s.get("conditions") or []),
                    sorted((c.get("name"), c.get("ready"), c.get("restartCount"))
                           for c in s.get("containerStatuses") or []))
        return digest(old) != digest(new)
