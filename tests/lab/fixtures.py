"""pytest fixtures for lab tests: one session lab, brought up once, always torn down.

Use from a test module with ``from tests.lab.fixtures import lab  # noqa: F401``
(or list ``tests.lab.fixtures`` in a root conftest's ``pytest_plugins``). Several
modules importing the fixture share one Lab object: it is cached here, and torn
down at the end of the session (``config.add_cleanup``) and at interpreter exit,
even when tests fail. A lab left behind by a killed run is torn down first.

Root rule (never a silent skip): under CI (``CI=true``) a lab that cannot start
fails the run; elsewhere, without root, the tests skip saying why.
"""

from __future__ import annotations

import atexit
import os
import shutil
from pathlib import Path

import pytest

from tasks.core.errors import KubefabError
from tests.lab.hosts import Lab

TEST_LAB_DIR_ENV = "KUBEFAB_LAB_TEST_DIR"
DEFAULT_TEST_LAB_DIR = "/var/tmp/kubefab-lab-pytest"  # + "-<pid>" per session
SESSION_HOSTS = 4  # node1-3 control planes, node4 worker, plus the lb host
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "/usr/sbin/sshd", "ssh", "haproxy", "containerd", "runc", "ctr",
                  "/usr/lib/cni/bridge", "go")

_session_lab: Lab | None = None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the lab tests need root (network namespaces, mounts, sshd); run them as root"
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t)]
    if missing:
        return f"the lab tests need {', '.join(missing)}: run scripts/ensure-apt.sh as root"
    return None


def require_lab() -> None:
    """Fail under CI, skip with the reason elsewhere, when the lab cannot run."""
    reason = lab_unavailable_reason()
    if reason:
        if in_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


def test_lab_dir(name: str = "") -> str:
    """This session's lab directory: per process, so concurrent runs never collide."""
    base = os.environ.get(TEST_LAB_DIR_ENV) or DEFAULT_TEST_LAB_DIR
    return f"{base}-{os.getpid()}" + (f"-{name}" if name else "")


def sweep_abandoned_labs() -> list[str]:
    """Tear down test labs whose pytest process is gone (a killed run leaves them).

    :returns: the directories cleaned.
    """
    base = Path(os.environ.get(TEST_LAB_DIR_ENV) or DEFAULT_TEST_LAB_DIR)
    cleaned = []
    if not base.parent.is_dir():
        return cleaned
    for entry in base.parent.glob(base.name + "-*"):
        owner = entry.name[len(base.name) + 1 :].split("-")[0]
        if owner.isdigit() and int(owner) != os.getpid() and not Path(f"/proc/{owner}").exists():
            Lab(entry).down()
            cleaned.append(str(entry))
    return cleaned


test_lab_dir.__test__ = False  # a helper, not a test


def fresh_lab(path: str) -> Lab:
    """A Lab at ``path`` with anything a crashed run left there torn down first."""
    lab = Lab(path)
    lab.down()
    atexit.register(lab.down)
    return lab


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Lab:
    """The session's lab: ``node1``..``node4`` (3 control planes, 1 worker) and ``lb``."""
    global _session_lab
    require_lab()
    if _session_lab is None:
        sweep_abandoned_labs()
        candidate = fresh_lab(test_lab_dir())
        request.config.add_cleanup(candidate.down)
        try:
            candidate.up(SESSION_HOSTS, lb=True)
        except KubefabError as exc:
            candidate.down()
            pytest.fail(f"the test lab could not start:\n{exc.render()}", pytrace=False)
        _session_lab = candidate
    return _session_lab
