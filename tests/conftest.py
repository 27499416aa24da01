"""Test-wide set-up: the real Kubernetes tools the lab built come first on PATH.

kubectl, etcd and etcdctl are the ones ``make lab-k8s`` (tests/lab/k8s/build.sh) built from their
Go modules, at the versions the lab runs, not whatever the machine happens to have.
"""

import os
import tempfile

from tests.lab import images

# every `fab` run writes a log file (default ~/.cache/kubefab/kubefab.log): the tests' runs
# write theirs to a directory of their own
os.environ.setdefault("KUBEFAB_LOG_FILE", os.path.join(tempfile.mkdtemp(prefix="kubefab-test-log-"), "kubefab.log"))

_BINS = images.Binaries(os.environ.get("KUBEFAB_LAB_K8S_VERSION") or images.DEFAULT_K8S_VERSION)
os.environ["PATH"] = os.pathsep.join(
    [str(p) for p in (_BINS.k8s, _BINS.etcd) if p.is_dir()] + [os.environ.get("PATH", "")])



def pytest_collection_modifyitems(config, items):
    """A lab module may say when it runs (``LAB_ORDER``, default 50; the sort is stable, so
    file order otherwise): the two modules that share the v1.35 cluster go last, back to back."""
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "LAB_ORDER", 50))
