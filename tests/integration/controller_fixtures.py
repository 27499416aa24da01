"""Fixtures that run the kube-controller-manager / kube-scheduler stand-ins for tests.

The stand-ins replace binaries these machines cannot run (tests/lab/standins). They are
started as the lab kubelet starts them, ``<python> -m tests.lab.standins.<name> <flags>``, with
the flags kubeadm renders (reference §3.3) against the local etcd + kube-apiserver stand-in of
``standin_fixtures``. Sync intervals are shortened through ``KUBEFAB_STANDIN_SYNC_SECONDS``.

Use::

    from tests.integration.standin_fixtures import *  # noqa: F401,F403
    from tests.integration.controller_fixtures import *  # noqa: F401,F403
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import signal
import ssl
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.integration.standin_fixtures import (
    REPO,
    ApiServerProcess,
    LabPki,
    free_port,
)
from tests.lab.standins.clientkit import KubeClient, rfc3339
from tests.lab.standins.controller_manager import controller_policy_objects

__all__ = [
    "StandinProcess", "kcm_flags", "start_standin", "ensure_objects", "wait_for", "new_token",
    "token_secret", "bind_group", "ensure_kubeadm_csr_rbac", "BOOTSTRAP_GROUP",
    "standin_admin", "standin_kcm",
]

SYNC_SECONDS = "0.2"
BOOTSTRAP_GROUP = "system:bootstrappers:kubeadm:default-node-token"
_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> tuple[str, str]:
    """A random bootstrap token (id, secret) in kubeadm's format (reference §6)."""
    return ("".join(secrets.choice(_ALPHABET) for _ in range(6)),
            "".join(secrets.choice(_ALPHABET) for _ in range(16)))


def token_secret(token_id: str, token_secret_value: str, *, expires: dt.datetime | None,
                 usages: tuple[str, ...] = ("signing", "authentication"),
                 groups: str | None = BOOTSTRAP_GROUP, description: str | None = None) -> dict[str, Any]:
    """A bootstrap token Secret as kubeadm writes it (reference §6)."""
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    data = {"token-id": b64(token_id), "token-secret": b64(token_secret_value)}
    if expires is not None:
        data["expiration"] = b64(rfc3339(expires))
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = b64("true")
    if groups:
        data["auth-extra-groups"] = b64(groups)
    if description:
        data["description"] = b64(description)
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"}, "data": data}


def bind_group(admin: KubeClient, name: str, role: str, group: str) -> None:
    """Create (if missing) ClusterRoleBinding ``name``: ClusterRole ``role`` -> Group ``group``."""
    status, body = admin.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    assert status in (201, 409), body


def ensure_kubeadm_csr_rbac(admin: KubeClient) -> None:
    """The CSR bindings kubeadm's bootstrap-token phase creates (reference §5.1)."""
    bind_group(admin, "kubeadm:kubelet-bootstrap", "system:node-bootstrapper", BOOTSTRAP_GROUP)
    bind_group(admin, "kubeadm:node-autoapprove-bootstrap",
               "system:certificates.k8s.io:certificatesigningrequests:nodeclient", BOOTSTRAP_GROUP)
    bind_group(admin, "kubeadm:node-autoapprove-certificate-rotation",
               "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes")


@dataclass
class StandinProcess:
    """A running stand-in process and where it logs."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    args: list[str]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.1,
             proc: StandinProcess | None = None) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` (and the log) if not."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        if proc is not None and proc.proc.poll() is not None:
            break
        time.sleep(interval)
    tail = f"\n--- {proc.log} ---\n{proc.log_text()[-3000:]}" if proc is not None else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r}){tail}")


def kcm_flags(pki: LabPki, kubeconfig: str, port: int) -> list[str]:
    """kube-controller-manager flags as kubeadm renders them (reference §3.3), local paths."""
    p = pki.path
    return [
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1", f"--client-ca-file={p('ca.crt')}", "--cluster-name=kubernetes",
        f"--cluster-signing-cert-file={p('ca.crt')}", f"--cluster-signing-key-file={p('ca.key')}",
        "--controllers=*,bootstrapsigner,tokencleaner", f"--kubeconfig={kubeconfig}",
        "--leader-elect=true", f"--requestheader-client-ca-file={p('ca.crt')}",
        f"--root-ca-file={p('ca.crt')}", f"--service-account-private-key-file={p('sa.key')}",
        "--use-service-account-credentials=true", f"--secure-port={port}",
    ]


def start_standin(module: str, args: list[str], workdir: Path, port: int,
                  ready: Callable[[], bool] | None = None) -> StandinProcess:
    """Start ``python -m tests.lab.standins.<module> <args>`` and wait for its HTTPS health port."""
    log = Path(workdir) / f"{module}-{port}.log"
    env = {**os.environ, "KUBEFAB_STANDIN_SYNC_SECONDS": SYNC_SECONDS}
    cmd = [sys.executable, "-m", f"tests.lab.standins.{module}", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    sp = StandinProcess(proc=proc, port=port, log=log, args=cmd)
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=insecure, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(ready or up, f"{module} stand-in health on :{port}", timeout=15, proc=sp)
    return sp


def ensure_objects(admin: KubeClient, objects: list[tuple[str, dict[str, Any]]]) -> None:
    """Create each object unless it exists (409 AlreadyExists is fine)."""
    for path, obj in objects:
        status, body = admin.request("POST", path, obj)
        assert status in (201, 409), f"creating {obj['kind']} {obj['metadata']['name']}: {status} {body}"


@pytest.fixture(scope="session")
def standin_admin(standin_pki: LabPki, standin_apiserver: ApiServerProcess) -> Iterator[KubeClient]:
    """A cluster-admin client (kubernetes-admin in system:masters) on the stand-in API server."""
    kubeconfig = standin_pki.kubeconfig(standin_apiserver.url, "kubernetes-admin", ["system:masters"])
    client = KubeClient.from_kubeconfig(kubeconfig)
    yield client
    client.close()


@pytest.fixture(scope="module")
def standin_kcm(standin_pki: LabPki, standin_apiserver: ApiServerProcess, standin_admin: KubeClient,
                standin_tmp: Path) -> Iterator[StandinProcess]:
    """The controller-manager stand-in with kubeadm's flags and its own identity
    (``system:kube-controller-manager``), per-controller service accounts on.

    Module scope: its garbage collector and token cleaner must not act on other modules'
    objects should they share the API server."""
    # The controllers' default roles, created if the API server stand-in did not create them.
    ensure_objects(standin_admin, controller_policy_objects())
    kubeconfig = standin_pki.kubeconfig(standin_apiserver.url, "system:kube-controller-manager",
                                        path=standin_tmp / "controller-manager.conf")
    port = free_port()
    kcm = start_standin("controller_manager", kcm_flags(standin_pki, kubeconfig, port), standin_tmp, port)
    yield kcm
    code = kcm.stop()
    text = kcm.log_text()
    if os.environ.get("KUBEFAB_SHOW_STANDIN_LOGS"):
        print(f"--- {kcm.log} ---\n{text}")
    assert code == 0, f"controller-manager stand-in did not stop cleanly:\n{text[-2000:]}"
    assert "Traceback" not in text, f"controller-manager stand-in crashed somewhere:\n{text[-3000:]}"
