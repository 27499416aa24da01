"""Enter a network namespace from Python, one thread at a time.

Why: the lab's hosts are reachable only inside the "switch" namespace, and the
orchestrator (tests, readiness probes) must talk to them without leaving the
root namespace for good. ``setns(2)`` with CLONE_NEWNET changes only the calling
thread, so a ``with in_netns(path):`` block is safe in a threaded test run.
Python 3.11 has no ``os.setns``; ctypes calls libc directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns_fd(fd: int, nstype: int) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns failed: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the block's sockets in the network namespace at ``path``.

    :param path: a namespace file, e.g. ``/run/netns/<name>``.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns_fd(target, CLONE_NEWNET)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns_fd(original, CLONE_NEWNET)
    finally:
        os.close(original)


def netns_inode(path: str) -> int | None:
    """Return the inode identifying a namespace file, or None if it is gone."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
