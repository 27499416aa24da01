"""kubefab: kubeadm-style Kubernetes clusters on existing hosts, over SSH.

Run ``fab --list`` for the tasks and ``fab --help init`` for one task's flags and phases.
The tasks live in the ``tasks`` package; this file only exposes them to Fabric.
"""

from tasks.cli import ns  # noqa: F401  (Fabric loads the collection named ``ns``)
