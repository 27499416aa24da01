"""Run one function over many hosts in a bounded thread pool, never losing a failure.

Fabric's ``ThreadingGroup`` idea (style.md §1.5): every host gets a result, either a value or
the exception it raised, in the order the hosts were given; :meth:`HostResults.raise_if_failed`
names *every* failed host, not just the first.

Example::

    results = run_parallel(["w1", "w2", "w3"], lambda h: gather_facts(transports[h], paths))
    results.raise_if_failed()        # KubefabError: 1 of 3 hosts failed: w2: ...
    facts = {r.host: r.value for r in results}
"""

from __future__ import annotations

import logging
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Sequence, TypeVar, overload

from ..core.errors import KubefabError
from ..core.secrets import scrub

log = logging.getLogger("kubefab.remote")

DEFAULT_CONCURRENCY = 10

H = TypeVar("H")
T = TypeVar("T")


@dataclass(frozen=True)
class HostResult(Generic[T]):
    """One host's outcome: ``value`` when ``error`` is None."""

    host: str
    value: T | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    traceback: str = ""  # for --debug; scrubbed

    @property
    def ok(self) -> bool:
        return self.error is None

    def message(self) -> str:
        """The error as one host-prefixed text (KubefabError renders itself)."""
        if self.error is None:
            return ""
        if isinstance(self.error, KubefabError):
            text = self.error.render()
            return text if text.startswith(f"{self.host}:") or f"] {self.host}:" in text.split("\n")[0] \
                else f"{self.host}: {text}"
        return scrub(f"{self.host}: {type(self.error).__name__}: {self.error}")


class HostResults(Generic[T], Sequence[HostResult[T]]):
    """Per-host results in host order; index by position or by host name."""

    def __init__(self, results: list[HostResult[T]]) -> None:
        self._results = results

    @overload
    def __getitem__(self, key: int) -> HostResult[T]: ...

    @overload
    def __getitem__(self, key: str) -> HostResult[T]: ...

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            for r in self._results:
                if r.host == key:
                    return r
            raise KeyError(key)
        return self._results[key]

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[HostResult[T]]:
        return iter(self._results)

    def __repr__(self) -> str:
        return f"HostResults({self._results!r})"

    @property
    def succeeded(self) -> list[HostResult[T]]:
        return [r for r in self._results if r.ok]

    @property
    def failed(self) -> list[HostResult[T]]:
        return [r for r in self._results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def values(self) -> dict[str, T]:
        """Host -> value for the hosts that succeeded."""
        return {r.host: r.value for r in self._results if r.ok}  # type: ignore[misc]

    def raise_if_failed(self, what: str = "") -> None:
        """Raise one KubefabError listing every failed host (GroupException's idea).

        :raises KubefabError: if any host failed; ``details`` has one entry per failed host
            and ``.results`` holds this object.
        """
        bad = self.failed
        if not bad:
            return
        if len(bad) == 1 and isinstance(bad[0].error, KubefabError) and len(self._results) == 1:
            raise bad[0].error
        label = f"{what}: " if what else ""
        err = KubefabError(
            f"{label}{len(bad)} of {len(self._results)} hosts failed: " + ", ".join(r.host for r in bad),
            details=[r.message() for r in bad],
            fix="fix the hosts listed above and re-run; hosts that succeeded are not affected")
        err.results = self  # type: ignore[attr-defined]
        raise err


def _name(host: object) -> str:
    return str(getattr(host, "name", host))


def run_parallel(
    hosts: Sequence[H],
    fn: Callable[[H], T],
    *,
    max_workers: int = DEFAULT_CONCURRENCY,
    name: Callable[[H], str] = _name,
) -> HostResults[T]:
    """Call ``fn(host)`` for every host, at most ``max_workers`` at a time.

    Exceptions are caught per host (KeyboardInterrupt cancels hosts not yet started and is
    re-raised). Results come back in the order of ``hosts``.

    :param hosts: host names or inventory objects (``.name`` is used for labels).
    :param max_workers: concurrency bound (default 10); ``1`` runs them one by one.
    """
    if max_workers < 1:
        raise KubefabError(f"concurrency must be at least 1, got {max_workers}")
    names = [name(h) for h in hosts]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise KubefabError("the same host is listed twice: " + ", ".join(dupes),
                           fix="list each host once")
    if not hosts:
        return HostResults([])

    def timed(host: H) -> tuple[T, float]:
        started = time.monotonic()
        value = fn(host)
        return value, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=min(max_workers, len(hosts)), thread_name_prefix="kubefab-host") as pool:
        futures: list[Future] = [pool.submit(timed, h) for h in hosts]
        results: list[HostResult[T]] = []
        try:
            for host_name, fut in zip(names, futures):
                try:
                    value, seconds = fut.result()
                    results.append(HostResult(host_name, value, None, seconds))
                except Exception as exc:  # every host's failure is kept, whatever its type
                    tb = scrub("".join(traceback.format_exception(exc)))
                    log.debug("[%s] failed: %s", host_name, tb)
                    results.append(HostResult(host_name, None, exc, 0.0, tb))
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            raise
    return HostResults(results)
