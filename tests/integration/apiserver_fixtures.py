"""A real kube-apiserver and a real TLS etcd, run as local processes on 127.0.0.1 for tests.

The binaries are the lab's (``make lab-k8s`` builds them from their Go modules into
``$KUBEFAB_LAB_CACHE``, default /var/cache/kubefab-lab): kube-apiserver ``K8S_VERSION`` from
``k8s/<version>/bin`` and etcd ``ETCD_VERSION`` from ``etcd/<version>/bin``. A missing binary
fails the test that needs it (it never skips): run ``make lab-k8s``.

The PKI is kubeadm-style (CN/O/usages/SANs as in kubeadm-reference §1), made with
``cryptography`` and independent of kubefab's own PKI code; RSA keys are cached per process so
a session pays for generation once. Both processes get the flags kubeadm's static pod manifests
give them (reference §3.3), with local paths and free ports, and listen on 127.0.0.1 only.

Use from other tests::

    from tests.integration.apiserver_fixtures import *  # noqa: F401,F403  (fixtures)

    def test_x(apiserver, api_pki, api_admin):
        api = api_pki.client(apiserver.url, "kubernetes-admin", ["system:masters"])
        ...

or programmatically: ``pki = make_pki(tmpdir)``, ``etcd = start_etcd(pki, tmpdir)``,
``srv = start_apiserver(pki, [etcd.url], tmpdir)``, ``srv.stop()``, ``etcd.stop()``.

Identities: ``pki.client(url, user, groups)`` (client cert, for the ``kubernetes`` package),
``pki.kubeconfig(url, user, groups)`` for kubectl, :class:`~tests.integration.kubeclient.KubeClient`
or other processes. What a fresh server holds is what kube-apiserver creates itself (the
default/kube-system/kube-public namespaces, the bootstrap RBAC policy, the ``kubernetes``
Service); no controller manager runs, so nothing garbage-collects, no namespace finishes
terminating and no service account token is minted. Processes started here are stopped at
interpreter exit even if a teardown never ran.
"""

from __future__ import annotations

import atexit
import datetime as dt
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.kubeclient import KubeClient
from tests.lab import images

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = images.DEFAULT_K8S_VERSION
ETCD_VERSION = images.etcd_version(K8S_VERSION)  # the etcd kubeadm of that minor pins
ETCD_READY_SECONDS = 30.0
APISERVER_READY_SECONDS = 90.0  # a cold kube-apiserver on a 2-core machine takes a while
ADMIN_USER, ADMIN_GROUPS = "kubernetes-admin", ["system:masters"]

__all__ = [
    "LabPki", "EtcdProcess", "ApiServerProcess", "make_pki", "start_etcd", "start_apiserver",
    "apiserver_flags", "etcd_flags", "lab_cache", "lab_binary", "free_port", "require_root",
    "api_tmp", "api_pki", "api_etcd", "apiserver", "api_admin", "K8S_VERSION", "ETCD_VERSION",
]


# ---------------------------------------------------------------------------- gating
def require_root() -> None:
    """Skip (with the reason) when not root; fail under CI=true, where lab tests must run."""
    if os.geteuid() == 0:
        return
    reason = "lab test needs root (runs etcd and kube-apiserver processes)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI=true requires lab tests to run")
    pytest.skip(reason)


def lab_cache() -> Path:
    """Where ``make lab-k8s`` puts the built binaries (read at call time: tests may override)."""
    return Path(os.environ.get("KUBEFAB_LAB_CACHE", "/var/cache/kubefab-lab"))


def lab_binary(kind: str, version: str, name: str) -> str:
    """``<cache>/<kind>/<version>/bin/<name>``; fails the test (never skips) when it is not there."""
    path = lab_cache() / kind / version / "bin" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} {version} is not built: {path} is missing; run `make lab-k8s` "
                    f"(builds the lab's Kubernetes binaries into {lab_cache()})", pytrace=False)
    return str(path)


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
        path = path or self.dir / "kubeconfigs" / f"{abs(hash((server, user, tuple(groups)))) % 10**8}.conf"
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
    """The files kube-apiserver and etcd read with kubeadm's flags: ca, apiserver,
    apiserver-kubelet-client, front-proxy-{ca,client}, sa.{key,pub},
    etcd/{ca,server,peer,healthcheck-client} and apiserver-etcd-client.

    kube-apiserver refuses to start when a file its flags name is missing, so the
    kubelet-client and front-proxy certificates are here although no test calls a kubelet or
    an aggregated API."""
    base = Path(base)
    pki = base / "pki"
    (pki / "etcd").mkdir(parents=True, exist_ok=True)

    def write(name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (pki / f"{name}.key").write_bytes(_pem_key(key))
        os.chmod(pki / f"{name}.key", 0o600)

    ca_key, etcd_ca_key, fp_ca_key = cached_key("ca"), cached_key("etcd-ca"), cached_key("front-proxy-ca")
    ca = make_ca("kubernetes", ca_key)
    write("ca", ca, ca_key)
    etcd_ca = make_ca("etcd-ca", etcd_ca_key)
    write("etcd/ca", etcd_ca, etcd_ca_key)
    front_proxy_ca = make_ca("front-proxy-ca", fp_ca_key)
    write("front-proxy-ca", front_proxy_ca, fp_ca_key)
    # apiserver SANs per reference §1.2 (service IP, advertise address, kubernetes.default...).
    write("apiserver", make_leaf(
        ca, ca_key, cached_key("apiserver"), "kube-apiserver", server=True,
        dns=[node, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", "localhost"],
        ips=["10.96.0.1", *apiserver_ips]), cached_key("apiserver"))
    write("apiserver-kubelet-client", make_leaf(
        ca, ca_key, cached_key("apiserver-kubelet-client"), "kube-apiserver-kubelet-client",
        ["kubeadm:cluster-admins"], client=True), cached_key("apiserver-kubelet-client"))
    write("front-proxy-client", make_leaf(
        front_proxy_ca, fp_ca_key, cached_key("front-proxy-client"), "front-proxy-client", client=True),
        cached_key("front-proxy-client"))
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
def _tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log)"


def _wait(check: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path,
          timeout: float) -> None:
    """Poll ``check`` until true; raise with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log {log}:\n{_tail(log)}")
        try:
            if check():
                return
        except (OSError, http.client.HTTPException, ValueError):
            pass
        time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"{what} not ready after {timeout}s; log {log}:\n{_tail(log)}")


_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _stop_leftovers() -> None:
    """Stop what this process started even if a test run dies before its teardown."""
    for proc in _STARTED:
        _stop(proc)


def _spawn(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    # Own session: a Ctrl-C in the terminal reaches pytest, which then stops these in order.
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kw)
    _STARTED.append(proc)
    return proc


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM (kube-apiserver shuts down gracefully: it drains and removes its endpoint
    lease), SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class EtcdProcess:
    """A running single-member TLS etcd."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    args: list[str]

    def stop(self) -> None:
        _stop(self.proc)


def etcd_flags(pki: LabPki, data_dir: Path, name: str, client_port: int, peer_port: int,
               metrics_port: int) -> list[str]:
    """The etcd flags kubeadm renders for etcd 3.6 (reference §3.2), on 127.0.0.1 ports."""
    p = pki.path
    client, peer = f"https://127.0.0.1:{client_port}", f"https://127.0.0.1:{peer_port}"
    return [
        f"--advertise-client-urls={client}", f"--cert-file={p('etcd/server.crt')}",
        "--client-cert-auth=true", f"--data-dir={data_dir}", "--feature-gates=InitialCorruptCheck=true",
        f"--initial-advertise-peer-urls={peer}", f"--initial-cluster={name}={peer}",
        f"--key-file={p('etcd/server.key')}", f"--listen-client-urls={client}",
        f"--listen-metrics-urls=http://127.0.0.1:{metrics_port}", f"--listen-peer-urls={peer}",
        f"--name={name}", f"--peer-cert-file={p('etcd/peer.crt')}", "--peer-client-cert-auth=true",
        f"--peer-key-file={p('etcd/peer.key')}", f"--peer-trusted-ca-file={p('etcd/ca.crt')}",
        "--snapshot-count=10000", f"--trusted-ca-file={p('etcd/ca.crt')}",
        "--watch-progress-notify-interval=5s",
        "--log-level=warn",  # not kubeadm's: keeps the log to what matters
    ]


def start_etcd(pki: LabPki, workdir: Path, name: str = "lab-cp") -> EtcdProcess:
    """Start the lab's etcd with kubeadm-style TLS flags on free 127.0.0.1 ports; wait for /health."""
    binary = lab_binary("etcd", ETCD_VERSION, "etcd")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cport, pport, mport = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{cport}"
    log = workdir / f"etcd-{cport}.log"
    args = [binary, *etcd_flags(pki, workdir / f"etcd-data-{cport}", name, cport, pport, mport)]
    proc = _spawn(args, log)
    ctx = ssl.create_default_context(cafile=pki.path("etcd/ca.crt"))
    ctx.load_cert_chain(pki.path("etcd/healthcheck-client.crt"), pki.path("etcd/healthcheck-client.key"))

    def ready() -> bool:
        with urllib.request.urlopen(url + "/health", context=ctx, timeout=2) as r:
            return json.loads(r.read()).get("health") == "true"

    _wait(ready, f"etcd {ETCD_VERSION}", proc, log, ETCD_READY_SECONDS)
    return EtcdProcess(proc=proc, url=url, log=log, args=args)


@dataclass
class ApiServerProcess:
    """A running kube-apiserver (the lab's real binary)."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path
    args: list[str]

    def stop(self) -> None:
        _stop(self.proc)


def apiserver_flags(pki: LabPki, etcd_urls: list[str], port: int, *, advertise: str = "127.0.0.1",
                    service_cidr: str = "10.96.0.0/12") -> list[str]:
    """The kube-apiserver flags kubeadm renders (reference §3.3), for a local PKI and port,
    plus ``--bind-address`` so that it listens on 127.0.0.1 only."""
    p = pki.path
    return [
        f"--advertise-address={advertise}", "--allow-privileged=true",
        "--authorization-mode=Node,RBAC", f"--bind-address={advertise}", f"--client-ca-file={p('ca.crt')}",
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
                    extra_args: list[str] = (), timeout: float = APISERVER_READY_SECONDS,  # type: ignore[assignment]
                    ) -> ApiServerProcess:
    """Start the lab's kube-apiserver with kubeadm's flags; wait until /readyz says ``ok``.

    Readiness is asked as kubernetes-admin (system:masters): the anonymous access to /readyz
    only exists once the server has created its bootstrap RBAC policy."""
    binary = lab_binary("k8s", K8S_VERSION, "kube-apiserver")
    port = port or free_port()
    args = [binary, *apiserver_flags(pki, etcd_urls, port), *extra_args]
    log = Path(workdir) / f"apiserver-{port}.log"
    proc = _spawn(args, log, cwd=Path(workdir))
    url = f"https://127.0.0.1:{port}"
    ctx = ssl.create_default_context(cafile=pki.path("ca.crt"))
    ctx.load_cert_chain(*pki.client_cert(ADMIN_USER, ADMIN_GROUPS))

    def ready() -> bool:
        with urllib.request.urlopen(url + "/readyz", context=ctx, timeout=5) as r:
            return r.read() == b"ok"

    _wait(ready, f"kube-apiserver {K8S_VERSION}", proc, log, timeout)
    return ApiServerProcess(proc=proc, url=url, port=port, log=log, args=args)


# ---------------------------------------------------------------------------- pytest fixtures
@pytest.fixture(scope="session")
def api_tmp() -> Iterator[Path]:
    """A session temp dir for the PKI, etcd's data and the processes' logs (removed at the end;
    a failing start shows the log's tail in its error)."""
    d = Path(tempfile.mkdtemp(prefix="kubefab-apiserver-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def api_pki(api_tmp: Path) -> LabPki:
    """A kubeadm-style PKI for etcd and kube-apiserver (and the clients of the tests)."""
    require_root()
    return make_pki(api_tmp)


@pytest.fixture(scope="session")
def api_etcd(api_pki: LabPki, api_tmp: Path) -> Iterator[EtcdProcess]:
    """The lab's etcd on free 127.0.0.1 ports (TLS, client certificates from etcd/ca)."""
    etcd = start_etcd(api_pki, api_tmp)
    yield etcd
    etcd.stop()


@pytest.fixture(scope="session")
def apiserver(api_pki: LabPki, api_etcd: EtcdProcess, api_tmp: Path) -> Iterator[ApiServerProcess]:
    """The lab's kube-apiserver on a free 127.0.0.1 port, storing in ``api_etcd``."""
    srv = start_apiserver(api_pki, [api_etcd.url], api_tmp)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api_admin(api_pki: LabPki, apiserver: ApiServerProcess) -> Iterator[KubeClient]:
    """A cluster-admin client (kubernetes-admin in system:masters) on ``apiserver``."""
    kubeconfig = api_pki.kubeconfig(apiserver.url, ADMIN_USER, ADMIN_GROUPS)
    client = KubeClient.from_kubeconfig(kubeconfig)
    yield client
    client.close()
