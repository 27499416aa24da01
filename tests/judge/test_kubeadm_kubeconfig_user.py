"""kubeadm judges ``fab kubeconfig.user`` against ``kubeadm kubeconfig user``, for every minor.

Both sign with the same CA: kubefab's state dir, and a copy of its ``pki/`` that the kubeadm
config's ``certificatesDir`` points at. The kubeconfigs are compared in the judge's normalised
form (names, server, embedded CA, the client certificate's subject, usages, key and lifetime).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import yaml

from tests.judge import configs, render
from tests.judge.render import dump

MINORS = sorted(render.images.KUBEADM_VERSIONS)

pytestmark = pytest.mark.kubeadm

CASES = [
    ("alice", (), "8760h"),
    ("ops", ("system:masters", "ops"), "24h"),
]


def _state(work, text: str):
    """A kubefab state dir with the cluster CAs (as init makes them) and the inventory for it."""
    from tasks.core import inventory, pki

    (work / "kubeadm.yaml").write_text(text)
    hosts = {"cluster": {"name": "judge", "config": "kubeadm.yaml"},
             "hosts": {render.NODE: {"address": configs.ADDRESS, "roles": ["control-plane"]}}}
    (work / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    inv = inventory.load_inventory(work / "hosts.yaml")
    cluster = inv.kubeadm_config(inv.first_control_plane).cluster
    pki.ensure_cluster_pki(work / "state" / "pki", cluster, now=datetime.now(timezone.utc))


@pytest.mark.parametrize("minor", MINORS, ids=[f"1.{m}" for m in MINORS])
@pytest.mark.parametrize("name,orgs,validity", CASES, ids=[c[0] for c in CASES])
def test_kubeconfig_user(tmp_path, minor, name, orgs, validity):
    text = configs.config(minor, "ecdsa-validity" if orgs else "example")
    _state(tmp_path, text)
    # kubeadm reads the CA from certificatesDir: a copy of kubefab's
    pki_copy = tmp_path / "kubeadm-pki"
    shutil.copytree(tmp_path / "state" / "pki", pki_copy)
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        if doc.get("kind") == "ClusterConfiguration":
            doc["certificatesDir"] = str(pki_copy)
    (tmp_path / "kubeadm-cfg.yaml").write_text(yaml.safe_dump_all(docs))
    org_flags = [f"--org={o}" for o in orgs]
    a = subprocess.run([str(render.kubeadm_binary(minor)), "kubeconfig", "user", "--config",
                        str(tmp_path / "kubeadm-cfg.yaml"), "--client-name", name, "--validity-period", validity,
                        *org_flags], capture_output=True, text=True, timeout=120)
    assert a.returncode == 0, a.stderr
    b = subprocess.run([sys.executable, "-m", "fabric", "kubeconfig.user", "--client-name", name,
                        "--validity-period", validity, *[f for o in orgs for f in ("--org", o)],
                        "--inventory", str(tmp_path / "hosts.yaml"), "--state-dir", str(tmp_path / "state")],
                       capture_output=True, text=True, timeout=120, cwd=render.REPO)
    assert b.returncode == 0, b.stderr
    cas = {"ca": (tmp_path / "state" / "pki" / "ca.crt").read_bytes()}
    ka, kb = dump(render.kubeconfig(a.stdout.encode(), cas)), dump(render.kubeconfig(b.stdout.encode(), cas))
    assert ka == kb, "kubefab differs from kubeadm:\n" + render.diff("kubeconfig user", ka, kb)
