"""What kubeadm and kubefab render for one config, side by side, normalised for comparison.

kubeadm's side is the real binary of the minor (built by ``make lab-k8s``) running
``kubeadm init --dry-run``: it writes every file to a dry-run directory and prints every API
object it would create. It runs in its own network and UTS namespaces (``unshare``), so it reaches
no API server (the dry-run client's GETs of live objects fail at once instead of timing out) and
sees the node name as its hostname. kubefab's side is ``fab init --dry-run --offline --output-dir``.

The normalised forms keep what the issue asks to agree on and drop what is random by nature
(key bytes, token values, serial numbers, the instant a certificate was made).
"""

from __future__ import annotations

import base64
import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from tests.lab import images

REPO = Path(__file__).resolve().parents[2]
NODE = "master1"
MANIFESTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBELET_FILES = ("config.yaml", "instance-config.yaml", "kubeadm-flags.env")


class JudgeError(AssertionError):
    """kubeadm or kubefab could not render the config at all."""


@dataclass
class Rendering:
    """Files by the absolute path they would have on the node; API objects by (kind, ns, name)."""

    files: dict[str, bytes] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    node_labels: set[str] = field(default_factory=set)
    node_taints: set[str] = field(default_factory=set)


def cert_dir(config_text: str) -> str:
    for doc in yaml.safe_load_all(config_text):
        if doc and doc.get("kind") == "ClusterConfiguration":
            return doc.get("certificatesDir") or "/etc/kubernetes/pki"
    return "/etc/kubernetes/pki"


# --- kubeadm -----------------------------------------------------------------------------------


def kubeadm_binary(minor: int) -> Path:
    path = images.kubeadm(minor)
    if not path.exists():
        raise JudgeError(f"kubeadm for 1.{minor} is not built ({path}); run 'make lab-k8s'")
    return path


def run_kubeadm(minor: int, config_text: str, work: Path) -> Rendering:
    """``kubeadm init --dry-run --upload-certs`` with the config; its files and printed objects."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "kubeadm.yaml").write_text(config_text)
    dry = work / "dryrun"
    shutil.rmtree(dry, ignore_errors=True)
    dry.mkdir()
    isolate = ["unshare", "--net", "--uts"] if os.geteuid() == 0 else ["unshare", "-r", "--net", "--uts"]
    script = f'hostname {NODE} && exec "$@"'
    cmd = [*isolate, "sh", "-c", script, "sh", str(kubeadm_binary(minor)), "init", "--dry-run",
           "--upload-certs", "--skip-phases=preflight", "--config", str(work / "kubeadm.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KUBEADM_INIT_DRYRUN_DIR": str(dry)})
    (work / "kubeadm.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise JudgeError(f"kubeadm 1.{minor} refused the config:\n{proc.stderr[-3000:]}")
    # kubeadm makes a directory inside the one it is given
    roots = [p for p in dry.iterdir() if p.is_dir() and p.name.startswith("kubeadm-init-dryrun")]
    root = roots[0] if len(roots) == 1 and not (dry / "ca.crt").exists() else dry
    out = Rendering()
    pki = cert_dir(config_text)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.removesuffix(".yaml") in MANIFESTS:
            target = f"/etc/kubernetes/manifests/{rel}"
        elif rel in KUBELET_FILES:
            target = f"/var/lib/kubelet/{rel}"
        elif rel.endswith(".conf"):
            target = f"/etc/kubernetes/{rel}"
        else:
            target = f"{pki}/{rel}"
        out.files[target] = path.read_bytes()
    for obj in printed_objects(proc.stdout):
        meta = obj.get("metadata") or {}
        out.objects[(obj["kind"], meta.get("namespace") or "", meta["name"])] = obj
    m = re.search(r"adding the labels: \[([^\]]*)\]", proc.stdout)
    out.node_labels = set(m.group(1).split()) if m else set()
    m = re.search(r"adding the taints \[([^\]]*)\]", proc.stdout)
    out.node_taints = set(m.group(1).split()) if m else set()
    return out


def printed_objects(stdout: str) -> list[dict]:
    """The objects kubeadm's dry-run client would CREATE/UPDATE: the YAML block after each
    ``Attached object:`` of such an action, up to the blank line that ends it."""
    objects, lines = [], stdout.splitlines()
    verb = ""
    i = 0
    while i < len(lines):
        m = re.match(r"\[dryrun\] Would perform action (\w+) on resource", lines[i])
        if m:
            verb = m.group(1)
        if lines[i] == "[dryrun] Attached object:":
            block = []
            i += 1
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            if verb in ("CREATE", "UPDATE"):
                objects.append(yaml.safe_load("\n".join(block)))
        i += 1
    return objects


# --- kubefab -----------------------------------------------------------------------------------


def run_kubefab(config_text: str, address: str, work: Path) -> Rendering:
    """``fab -H master1 init --dry-run --offline --upload-certs --output-dir`` with the same config."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "kubeadm.yaml").write_text(config_text)
    inventory = {"cluster": {"name": "judge", "config": "kubeadm.yaml"},
                 "hosts": {NODE: {"address": address, "roles": ["control-plane"]}}}
    (work / "hosts.yaml").write_text(yaml.safe_dump(inventory))
    out_dir = work / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "fabric", "-H", NODE, "init", "--dry-run", "--offline", "--upload-certs",
           "--inventory", str(work / "hosts.yaml"), "--state-dir", str(work / "state"), "--output-dir", str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    (work / "kubefab.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise JudgeError(f"kubefab refused the config:\n{proc.stderr[-3000:]}")
    out = Rendering()
    host_root = out_dir / NODE
    wanted = ("/etc/kubernetes/", "/var/lib/kubelet/", cert_dir(config_text) + "/")
    for path in sorted(p for p in host_root.rglob("*") if p.is_file()):
        target = "/" + path.relative_to(host_root).as_posix()
        if target.startswith(wanted):
            out.files[target] = path.read_bytes()
    for path in sorted((out_dir / "api").rglob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        meta = obj.get("metadata") or {}
        key = (obj["kind"], meta.get("namespace") or "", meta["name"])
        if obj["kind"] == "Node":
            out.node_labels = {k for k in (meta.get("labels") or {})}
            out.node_taints = {f"{t['key']}:{t['effect']}" for t in (obj.get("spec") or {}).get("taints") or []}
            continue
        out.objects[key] = obj
    return out


# --- normalised forms --------------------------------------------------------------------------


def dump(value) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, width=200)


def diff(name: str, kubeadm_text: str, kubefab_text: str) -> str:
    return "".join(difflib.unified_diff(kubeadm_text.splitlines(True), kubefab_text.splitlines(True),
                                        f"kubeadm {name}", f"kubefab {name}"))


def certificate(pem: bytes, ca_pem: dict[str, bytes]) -> dict:
    """What must agree about a certificate (not its key bytes, serial or the instant it was made)."""
    cert = x509.load_pem_x509_certificate(pem)
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "key": key_kind(cert.public_key()),
            "signature": cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else None,
            "validity": validity(cert), "extensions": extensions(cert),
            "signed_by": next((name for name, ca in ca_pem.items() if issued_by(cert, ca)), None)}


def issued_by(cert: x509.Certificate, ca_pem: bytes) -> bool:
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        return True
    except Exception:
        return False


def validity(cert: x509.Certificate) -> str:
    """The certificate's lifetime, rounded to the hour (kubeadm backdates NotBefore a little)."""
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    return f"{round(life.total_seconds() / 3600)}h"


def key_kind(key) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"ECDSA-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519"
    return type(key).__name__


def extensions(cert: x509.Certificate) -> dict:
    out = {}
    for ext in cert.extensions:
        v = ext.value
        name = ext.oid._name
        if isinstance(v, x509.KeyUsage):
            flags = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                     "key_agreement", "key_cert_sign", "crl_sign"]
            value = [f for f in flags if getattr(v, f)]
            if v.key_agreement:
                value += [f for f in ("encipher_only", "decipher_only") if getattr(v, f)]
        elif isinstance(v, x509.ExtendedKeyUsage):
            value = [u._name for u in v]
        elif isinstance(v, x509.BasicConstraints):
            value = {"ca": v.ca, "path_length": v.path_length}
        elif isinstance(v, x509.SubjectAlternativeName):
            value = {"dns": v.get_values_for_type(x509.DNSName),
                     "ip": [str(i) for i in v.get_values_for_type(x509.IPAddress)]}
        elif isinstance(v, x509.SubjectKeyIdentifier | x509.AuthorityKeyIdentifier):
            value = "present"
        else:
            value = repr(v)
        out[name] = {"critical": ext.critical, "value": value}
    return out


def private_key(pem: bytes) -> str:
    try:
        return key_kind(load_pem_private_key(pem, None))
    except ValueError:
        return key_kind(load_pem_public_key(pem))


def kubeconfig(text: bytes, ca_pem: dict[str, bytes]) -> dict:
    """A kubeconfig's structure: names, server, which CA it embeds, what the user holds."""
    doc = yaml.safe_load(text)
    for c in doc.get("clusters") or []:
        data = c["cluster"].pop("certificate-authority-data", None)
        if data is not None:
            pem = base64.b64decode(data)
            c["cluster"]["certificate-authority-data"] = next(
                (f"<{n}>" for n, ca in ca_pem.items() if ca.strip() == pem.strip()), "<another CA>")
    for u in doc.get("users") or []:
        user = u["user"]
        if "client-certificate-data" in user:
            user["client-certificate-data"] = certificate(base64.b64decode(user["client-certificate-data"]), ca_pem)
        if "client-key-data" in user:
            user["client-key-data"] = private_key(base64.b64decode(user["client-key-data"]))
        if "token" in user:
            user["token"] = "<token>"
    return doc


BOOTSTRAP_PUBLIC_KEYS = {"description", "usage-bootstrap-authentication", "usage-bootstrap-signing",
                         "auth-extra-groups"}


def api_object(obj: dict, ca_pem: dict[str, bytes]) -> dict:
    """An object's content with the random parts named instead of compared."""
    obj = yaml.safe_load(yaml.safe_dump(obj))  # a deep copy
    obj.pop("status", None)  # the server's, never the client's
    meta = obj.get("metadata") or {}
    for key in ("creationTimestamp", "resourceVersion"):
        meta.pop(key, None)
    for subject in obj.get("subjects") or []:  # the API server's default for User and Group
        if subject.get("kind") in ("User", "Group"):
            subject.setdefault("apiGroup", "rbac.authorization.k8s.io")
    for ref in meta.get("ownerReferences") or []:
        ref["uid"] = ""
        if ref.get("name", "").startswith("bootstrap-token-"):
            ref["name"] = "bootstrap-token-<id>"
    if obj.get("kind") == "Secret":
        data = obj.get("data") or {}
        if obj.get("type") == "bootstrap.kubernetes.io/token":
            obj["data"] = {k: (_b64(v) if k in BOOTSTRAP_PUBLIC_KEYS else "<value>") for k, v in data.items()}
            meta["name"] = "bootstrap-token-<id>"
        else:
            obj["data"] = {k: "<value>" for k in data}
    elif obj.get("kind") == "ConfigMap":
        for k, v in list((obj.get("data") or {}).items()):
            if k.startswith("jws-kubeconfig-"):
                obj["data"].pop(k)
            elif k == "kubeconfig" or k.endswith((".conf", "Configuration")) or k == "kubelet":
                parsed = yaml.safe_load(v)
                obj["data"][k] = kubeconfig(v.encode(), ca_pem) if isinstance(parsed, dict) and \
                    parsed.get("kind") == "Config" else parsed
    return {k: (v if k == "data" else omit_empty(v)) for k, v in obj.items()}


def omit_empty(value):
    """Drop the zero values (``{}``, ``[]``, ``""``, ``false``, null) that Go's ``omitempty``
    leaves out of one serialisation and not another: the stored object is the same."""
    if isinstance(value, dict):
        # a label or annotation with an empty value is still there
        pruned = {k: v if k in ("labels", "annotations") else omit_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ({}, [], "", False, None)}
    if isinstance(value, list):
        return [omit_empty(v) for v in value]
    return value


def _b64(value) -> str:
    try:
        return base64.b64decode(value).decode()
    except Exception:
        return str(value)


def object_key(key: tuple[str, str, str], obj: dict) -> tuple[str, str, str]:
    """Bootstrap-token Secrets are named by their random id: key them by description instead."""
    if obj.get("type") == "bootstrap.kubernetes.io/token":
        desc = _b64((obj.get("data") or {}).get("description", "")) or "the default token"
        return (key[0], key[1], f"bootstrap-token ({desc})")
    return key


def ca_pems(r: Rendering, pki: str) -> dict[str, bytes]:
    return {name: r.files[f"{pki}/{name}.crt"] for name in ("ca", "front-proxy-ca", "etcd/ca")
            if f"{pki}/{name}.crt" in r.files}
