"""Reusable lab pieces: a TLS etcd 3.4 and the kube-apiserver stand-in on free local ports.

The stand-in replaces a binary these machines cannot run (see tests/lab/standins). Certificates
are kubeadm-style (CN/O/usages/SANs as in kubeadm-reference §1) and made with ``cryptography``;
RSA keys are cached per process so a session pays for generation once.

Use from other tests::

    from tests.integration.standin_fixtures import *  # noqa: F401,F403  (fixtures)

    def test_x(standin_apiserver, standin_pki):
        api = standin_pki.client(standin_apiserver.url, "kubernetes-admin", ["system:masters"])
        ...

or programmatically: ``pki = make_pki(tmpdir)``, ``etcd = start_etcd(pki, tmpdir)``,
``srv = start_apiserver(pki, [etcd.url], tmpdir)``, ``srv.stop()``, ``etcd.stop()``.

Identities: ``pki.client(url, user, groups)`` (client cert), ``pki.client(url, token=...)``
(bootstrap or service-account token), ``pki.client(url)`` (anonymous) and
``pki.kubeconfig(url, user, groups)`` for kubectl or other processes. At first start the
server creates the default namespaces, the default RBAC policy (including the
``system:controller:*`` roles and bindings that controllers using service-account credentials
need) and the ``kubernetes`` Service; anything else is up to the test. Set
``KUBEFAB_STANDIN_VERSION`` in ``extra_env`` to change ``/version`` (default v1.36.0).
Processes started here are stopped at interpreter exit even if a teardown never ran.
"""

from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"

__all__ = [
    "LabPki", "EtcdProcess", "ApiServerProcess", "make_pki", "start_etcd", "start_apiserver",
    "free_port", "require_root", "standin_pki", "standin_etcd", "standin_apiserver",
    "standin_tmp",
]


# ---------------------------------------------------------------------------- root gating
def require_root() -> None:
    """Skip (with the reason) when not root; fail under CI=true, where lab tests must run."""
    if os.geteuid() == 0:
        return
    reason = "lab test needs root (runs etcd and TLS servers for the stand-in API server)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI=true requires lab tests to run")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- PKI
_KEYS: dict[str, rsa.RSAPrivateKey] = {}


def cached_key(role: str) -> rsa.RSAPrivateKey:
    """One RSA-2048 key per role per process (kubeadm's default algorithm; generation is slow)."""
    if role not in _KEYS:
        _KEYS[role] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[role]


def _name(cn: str, orgs: list[str] = ()) -> x509.Name:  # type: ignore[assignment]
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    # kubeadm writes RSA keys as PKCS#1 "RSA PRIVATE KEY" (reference §1.3).
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def make_ca(cn: str, key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A self-signed kubeadm-style CA (CN copied into a DNS SAN, CA=true, 10 years)."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, True, False, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_leaf(
    ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, key: rsa.RSAPrivateKey, cn: str,
    orgs: list[str] = (), *, server: bool = False, client: bool = False,  # type: ignore[assignment]
    dns: list[str] = (), ips: list[str] = (),  # type: ignore[assignment]
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """A kubeadm-style leaf: CA=false, digitalSignature+keyEncipherment, the given EKUs/SANs."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ekus = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(not_after or now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256())


@dataclass
class LabPki:
    """A kubeadm-style PKI directory (``<dir>/pki``) plus helpers for client identities."""

    dir: Path
    ca_cert: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    _clients: dict[tuple[str, tuple[str, ...]], tuple[Path, Path]] = field(default_factory=dict)

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    def path(self, name: str) -> str:
        """Absolute path of ``<pki>/<name>`` (e.g. ``ca.crt``, ``etcd/server.key``)."""
        return str(self.pki / name)

    def client_cert(self, user: str, groups: list[str] = (), *,  # type: ignore[assignment]
                    not_after: dt.datetime | None = None) -> tuple[str, str]:
        """Write (once) a client cert for CN=user, O=groups signed by ca; return (crt, key)."""
        k = (user, tuple(groups))
        if k not in self._clients or not_after is not None:
            key = cached_key("client")
            cert = make_leaf(self.ca_cert, self.ca_key, key, user, list(groups), client=True, not_after=not_after)
            stem = f"client-{len(self._clients)}-{abs(hash(k)) % 10**8}"
            crt_p, key_p = self.dir / "clients" / f"{stem}.crt", self.dir / "clients" / f"{stem}.key"
            crt_p.parent.mkdir(parents=True, exist_ok=True)
            crt_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_p.write_bytes(_pem_key(key))
            os.chmod(key_p, 0o600)
            if not_after is not None:
                return str(crt_p), str(key_p)
            self._clients[k] = (crt_p, key_p)
        crt_p, key_p = self._clients[k]
        return str(crt_p), str(key_p)

    def kubeconfig(self, server: str, user: str, groups: list[str] = (), path: Path | None = None) -> str:  # type: ignore[assignment]
        """Write a kubeconfig (embedded data, like admin.conf) for a cert identity; return its path."""
        import base64

        crt, key = self.client_cert(user, groups)
        b64 = lambda p: base64.b64encode(Path(p).read_bytes()).decode()  # noqa: E731
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "ctx", "preferences": {},
            "clusters": [{"name": "kubernetes", "cluster": {
                "server": server, "certificate-authority-data": b64(self.path("ca.crt"))}}],
            "users": [{"name": user, "user": {"client-certificate-data": b64(crt), "client-key-data": b64(key)}}],
            "contexts": [{"name": "ctx", "context": {"cluster": "kubernetes", "user": user}}],
        }
        path = path or self.dir / "kubeconfigs" / f"{abs(hash((user, tuple(groups)))) % 10**8}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg))
        os.chmod(path, 0o600)
        return str(path)

    def client(self, server: str, user: str | None = None, groups: list[str] = (),  # type: ignore[assignment]
               token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` verifying the server with ca.crt.

        ``user`` -> client certificate (CN=user, O=groups); ``token`` -> bearer token;
        neither -> anonymous.
        """
        from kubernetes import client as k8s

        conf = k8s.Configuration()
        conf.host = server
        conf.ssl_ca_cert = self.path("ca.crt")
        if user is not None:
            conf.cert_file, conf.key_file = self.client_cert(user, groups)
        if token is not None:
            conf.api_key = {"authorization": "Bearer " + token}
        return k8s.ApiClient(conf)


def make_pki(base: Path, *, apiserver_ips: list[str] = ("127.0.0.1",), node: str = "lab-cp") -> LabPki:  # type: ignore[assignment]
    """Create ca, apiserver, sa, etcd/{ca,server,peer,healthcheck-client}, apiserver-etcd-client."""
    base = Path(base)
    pki = base / "pki"
    (pki / "etcd").mkdir(parents=True, exist_ok=True)

    def write(name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (pki / f"{name}.key").write_bytes(_pem_key(key))
        os.chmod(pki / f"{name}.key", 0o600)

    ca_key, etcd_ca_key = cached_key("ca"), cached_key("etcd-ca")
    ca = make_ca("kubernetes", ca_key)
    write("ca", ca, ca_key)
    etcd_ca = make_ca("etcd-ca", etcd_ca_key)
    write("etcd/ca", etcd_ca, etcd_ca_key)
    # apiserver SANs per reference §1.2 (service IP, advertise address, kubernetes.default...).
    write("apiserver", make_leaf(
        ca, ca_key, cached_key("apiserver"), "kube-apiserver", server=True,
        dns=[node, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", "localhost"],
        ips=["10.96.0.1", *apiserver_ips]), cached_key("apiserver"))
    for name in ("server", "peer"):
        write(f"etcd/{name}", make_leaf(
            etcd_ca, etcd_ca_key, cached_key("etcd-" + name), node, server=True, client=True,
            dns=[node, "localhost"], ips=[*apiserver_ips, "127.0.0.1", "::1"]), cached_key("etcd-" + name))
    write("etcd/healthcheck-client", make_leaf(etcd_ca, etcd_ca_key, cached_key("etcd-hc"),
                                               "kube-etcd-healthcheck-client", client=True), cached_key("etcd-hc"))
    write("apiserver-etcd-client", make_leaf(etcd_ca, etcd_ca_key, cached_key("apiserver-etcd-client"),
                                             "kube-apiserver-etcd-client", client=True),
          cached_key("apiserver-etcd-client"))
    sa = cached_key("sa")
    (pki / "sa.key").write_bytes(_pem_key(sa))
    os.chmod(pki / "sa.key", 0o600)
    (pki / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return LabPki(dir=base, ca_cert=ca, ca_key=ca_key)


# ---------------------------------------------------------------------------- processes
def _wait(check: Any, what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log {log}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s; log {log}:\n{log.read_text()[-3000:]}")


_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _stop_leftovers() -> None:
    """Stop what this process started even if a test run dies before its teardown."""
    for proc in _STARTED:
        _stop(proc)


def _spawn(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    # Own session: a Ctrl-C in the terminal reaches pytest, which then stops these in order.
    proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, **kw)
    _STARTED.append(proc)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class EtcdProcess:
    """A running single-member TLS etcd."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        _stop(self.proc)


def start_etcd(pki: LabPki, workdir: Path, name: str = "lab-cp") -> EtcdProcess:
    """Start etcd with kubeadm-style TLS flags (client cert auth) on free 127.0.0.1 ports."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cport, pport = free_port(), free_port()
    url = f"https://127.0.0.1:{cport}"
    log = workdir / f"etcd-{cport}.log"
    args = [
        ETCD_BIN, f"--name={name}", f"--data-dir={workdir / f'etcd-data-{cport}'}",
        f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
        f"--listen-peer-urls=http://127.0.0.1:{pport}", f"--initial-advertise-peer-urls=http://127.0.0.1:{pport}",
        f"--initial-cluster={name}=http://127.0.0.1:{pport}",
        f"--cert-file={pki.path('etcd/server.crt')}", f"--key-file={pki.path('etcd/server.key')}",
        f"--trusted-ca-file={pki.path('etcd/ca.crt')}", "--client-cert-auth=true",
        "--snapshot-count=10000", "--log-level=warn",
    ]
    proc = _spawn(args, log)
    ctx = ssl.create_default_context(cafile=pki.path("etcd/ca.crt"))
    ctx.load_cert_chain(pki.path("etcd/healthcheck-client.crt"), pki.path("etcd/healthcheck-client.key"))

    def ready() -> bool:
        with urllib.request.urlopen(url + "/health", context=ctx, timeout=1) as r:
            return json.loads(r.read()).get("health") == "true"

    _wait(ready, "etcd", proc, log)
    return EtcdProcess(proc=proc, url=url, log=log)


@dataclass
class ApiServerProcess:
    """A running kube-apiserver stand-in (``python -m tests.lab.standins.apiserver``)."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path
    args: list[str]

    def stop(self) -> None:
        _stop(self.proc)


def apiserver_flags(pki: LabPki, etcd_urls: list[str], port: int, *, advertise: str = "127.0.0.1",
                    service_cidr: str = "10.96.0.0/12") -> list[str]:
    """The kube-apiserver flags kubeadm renders (reference §3.3), for a local PKI and port."""
    p = pki.path
    return [
        f"--advertise-address={advertise}", "--allow-privileged=true",
        "--authorization-mode=Node,RBAC", f"--client-ca-file={p('ca.crt')}",
        "--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
        f"--etcd-cafile={p('etcd/ca.crt')}", f"--etcd-certfile={p('apiserver-etcd-client.crt')}",
        f"--etcd-keyfile={p('apiserver-etcd-client.key')}", f"--etcd-servers={','.join(etcd_urls)}",
        f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        f"--proxy-client-cert-file={p('front-proxy-client.crt')}",
        f"--proxy-client-key-file={p('front-proxy-client.key')}",
        "--requestheader-allowed-names=front-proxy-client",
        f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group", "--requestheader-username-headers=X-Remote-User",
        f"--secure-port={port}", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p('sa.pub')}", f"--service-account-signing-key-file={p('sa.key')}",
        f"--service-cluster-ip-range={service_cidr}",
        f"--tls-cert-file={p('apiserver.crt')}", f"--tls-private-key-file={p('apiserver.key')}",
    ]


def start_apiserver(pki: LabPki, etcd_urls: list[str], workdir: Path, *, port: int | None = None,
                    extra_env: dict[str, str] | None = None, extra_args: list[str] = ()) -> ApiServerProcess:  # type: ignore[assignment]
    """Start the stand-in as the lab kubelet will (``<python> -m tests.lab.standins.apiserver <flags>``)."""
    port = port or free_port()
    args = [sys.executable, "-m", "tests.lab.standins.apiserver",
            *apiserver_flags(pki, etcd_urls, port), *extra_args]
    log = Path(workdir) / f"apiserver-{port}.log"
    env = {**os.environ, **(extra_env or {})}
    proc = _spawn(args, log, cwd=REPO, env=env)
    url = f"https://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))

    def ready() -> bool:
        with urllib.request.urlopen(url + "/readyz", context=ctx, timeout=1) as r:
            return r.read() == b"ok"

    _wait(ready, "kube-apiserver stand-in", proc, log)
    return ApiServerProcess(proc=proc, url=url, port=port, log=log, args=args)


# ---------------------------------------------------------------------------- pytest fixtures
@pytest.fixture(scope="session")
def standin_tmp() -> Iterator[Path]:
    """A session temp dir for PKI, etcd data and logs (kept on failure only via logs printed)."""
    d = Path(tempfile.mkdtemp(prefix="kubefab-standin-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def standin_pki(standin_tmp: Path) -> LabPki:
    """A kubeadm-style PKI for the stand-in apiserver and etcd."""
    require_root()
    return make_pki(standin_tmp)


@pytest.fixture(scope="session")
def standin_etcd(standin_pki: LabPki, standin_tmp: Path) -> Iterator[EtcdProcess]:
    """A TLS etcd 3.4 on a free port (client cert auth, etcd/ca)."""
    etcd = start_etcd(standin_pki, standin_tmp)
    yield etcd
    etcd.stop()


@pytest.fixture(scope="session")
def standin_apiserver(standin_pki: LabPki, standin_etcd: EtcdProcess, standin_tmp: Path) -> Iterator[ApiServerProcess]:
    """The kube-apiserver stand-in on a free port, storing in ``standin_etcd``."""
    srv = start_apiserver(standin_pki, [standin_etcd.url], standin_tmp)
    yield srv
    srv.stop()
