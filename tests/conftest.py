"""Test-wide set-up: the real Kubernetes tools the lab built come first on PATH.

kubectl, etcd and etcdctl are the ones ``make lab-k8s`` (tests/lab/k8s/build.sh) built from their
Go modules, at the versions the lab runs, not whatever the machine happens to have.
"""

import os
import tempfile
import time
from collections import defaultdict

import pytest

from tests.lab import images

# every `fab` run writes a log file (default ~/.cache/kubefab/kubefab.log): the tests' runs
# write theirs to a directory of their own
os.environ.setdefault("KUBEFAB_LOG_FILE", os.path.join(tempfile.mkdtemp(prefix="kubefab-test-log-"), "kubefab.log"))

_BINS = images.Binaries(os.environ.get("KUBEFAB_LAB_K8S_VERSION") or images.DEFAULT_K8S_VERSION)
os.environ["PATH"] = os.pathsep.join(
    [str(p) for p in (_BINS.k8s, _BINS.etcd) if p.is_dir()] + [os.environ.get("PATH", "")])


def pytest_collection_modifyitems(config, items):
    """A lab module may say when it runs (``LAB_ORDER``, default 50; the sort is stable, so
    file order otherwise): modules that share a cluster run back to back (test_cluster_lab then
    test_day2_lab; the two on the v1.35 cluster last).

    Modules that share a lab name the function that takes it down (``RELEASE_AFTER``): it runs
    after the last collected test of those modules, so the next modules do not share the two
    cores with an idle cluster."""
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "LAB_ORDER", 50))
    last: dict = {}
    for item in items:
        release = getattr(getattr(item, "module", None), "RELEASE_AFTER", None)
        if release is not None:
            last[release] = item
    for release, item in last.items():
        item.stash[_RELEASE] = release


_RELEASE = pytest.StashKey()


# wall time per lab module, set-up and tear-down of its fixtures included: printed at the end of
# a run, so a CI log says which module to make faster (the make test budget is 25 minutes)
_LAB_SECONDS: dict[str, float] = defaultdict(float)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0 = time.monotonic()
    yield
    if item.get_closest_marker("lab") is not None:
        _LAB_SECONDS[item.nodeid.split("::")[0]] += time.monotonic() - t0


def pytest_terminal_summary(terminalreporter):
    if not _LAB_SECONDS:
        return
    terminalreporter.section("lab modules, wall time")
    for module, seconds in sorted(_LAB_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:7.1f} s  {module}")
    terminalreporter.write_line(f"{sum(_LAB_SECONDS.values()):7.1f} s  in all")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    release = item.stash.get(_RELEASE, None)
    if release is not None:
        release()
