"""Shared unit-test fixtures.

``key_cache`` makes RSA generation run a handful of times per session instead of once per
certificate (kubeadm's tests swap NewPrivateKey for fixture keys for the same reason). Pass
``key_cache`` as the ``keygen=`` argument of the pki/kubeconfig builders.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from tasks.core import pki


class KeyCache:
    """A ``keygen`` callable handing out pre-made keys, ``pool`` distinct ones per algorithm.

    Keys are created lazily and then handed out round-robin, so certificates made in one test get
    distinct keys (up to ``pool``) while the whole session generates at most ``pool`` keys per
    algorithm.
    """

    def __init__(self, pool: int = 24) -> None:
        self.pool = pool
        self._keys: dict[str, list] = defaultdict(list)
        self._next: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, algorithm: str):
        algo = algorithm or "RSA-2048"
        with self._lock:
            self.calls += 1
            keys = self._keys[algo]
            i = self._next[algo]
            self._next[algo] = (i + 1) % self.pool
            if i >= len(keys):
                keys.append(pki.generate_private_key(algo))
            return keys[i]


@pytest.fixture(scope="session")
def key_cache() -> KeyCache:
    """Session-wide key generator for pki/kubeconfig tests (fast, distinct keys per test)."""
    return KeyCache()


@pytest.fixture
def fixed_now() -> datetime:
    """A fixed 'kubeadm start time' so validity periods are exact."""
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
