"""The v1.35 HA cluster two lab modules share, so the lab brings it up once.

node1-3 control planes behind the haproxy load balancer and node4 a worker, running Kubernetes
v1.35.4 (the previous minor the lab builds) with the etcd 3.6.6 and CoreDNS v1.13.1 kubeadm 1.35
pins (the lab builds them for it: tests/lab/images.py), brought up by ``fab cluster-up``. The
``LAB_ORDER`` of the modules that use it (see ``tests/conftest.py``) runs them last and
back to back: ``test_etcd_backup_lab`` first (its restore leaves the cluster as it found it,
healthy), then ``test_upgrade_lab``, which takes it to v1.36.
"""

from __future__ import annotations

import pytest

from tests.integration.test_cluster_lab import inventory
from tests.integration.test_init_lab import fab
from tests.lab import images
from tests.lab.fixtures import fresh_lab, require_lab, test_lab_dir

FROM = images.KUBEADM_VERSIONS[35]
CONTROL_PLANES = ("node1", "node2", "node3")
WORKER = "node4"

_shared: dict | None = None


@pytest.fixture(scope="session")
def previous_minor_cluster(request, tmp_path_factory) -> dict:
    """``lab``, ``tmp``, ``inv``, ``state``, ``admin`` and the ``flags`` that name them.

    Imported by two modules (so registered twice): the module cache makes it one cluster.
    """
    global _shared
    if _shared is None:
        require_lab()
        lab = fresh_lab(test_lab_dir("v135"))
        request.config.add_cleanup(lab.down)
        lab.up(4, lb=True, control_planes=3, k8s_version=FROM)
        tmp = tmp_path_factory.mktemp("v135")
        inv = inventory(lab, tmp, {**{n: ["control-plane"] for n in CONTROL_PLANES}, WORKER: ["worker"]})
        state = tmp / "state"
        r = fab(lab, "cluster-up", "--inventory", str(inv), "--state-dir", str(state), timeout=900)
        assert r.returncode == 0, r.out[-2000:] + r.err[-4000:]
        _shared = {"lab": lab, "tmp": tmp, "inv": inv, "state": state,
                   "admin": state / "nodes" / "node1" / "admin.conf",
                   "flags": ["--inventory", str(inv), "--state-dir", str(state)]}
    return _shared
