"""The ``init`` workflow: kubeadm init's phases, in kubeadm's order (reference §13)."""

from __future__ import annotations

from .addons import ADDON
from .bootstraptoken import BOOTSTRAP_TOKEN
from .certs import CERTS
from .controlplane import CONTROL_PLANE, ETCD
from .kubeconfig import KUBECONFIG
from .kubelet import KUBELET_FINALIZE, KUBELET_START
from .markcontrolplane import MARK_CONTROL_PLANE
from .preflight import PREFLIGHT_INIT
from .showjoincommand import SHOW_JOIN_COMMAND
from .uploadcerts import UPLOAD_CERTS
from .uploadconfig import UPLOAD_CONFIG
from .waitcontrolplane import WAIT_CONTROL_PLANE
from .workflow import Workflow

INIT = Workflow(
    "init",
    (
        PREFLIGHT_INIT,
        CERTS,
        KUBECONFIG,
        ETCD,
        CONTROL_PLANE,
        KUBELET_START,
        WAIT_CONTROL_PLANE,
        UPLOAD_CONFIG,
        UPLOAD_CERTS,
        MARK_CONTROL_PLANE,
        BOOTSTRAP_TOKEN,
        KUBELET_FINALIZE,
        ADDON,
        SHOW_JOIN_COMMAND,
    ),
    summary="Run this command in order to set up the Kubernetes control plane",
)
