"""Where the state directory's files are read and written during a run.

The PKI, the node kubeconfigs and the join material are loaded from the state directory or made
on first use. Making them must not write anything yet: a dry-run shows what it *would* create
and leaves the directory byte for byte as it was, and an apply writes only once every plan of
the host has been built (preflight passed). So the loaders write through a store:

- :class:`DiskStore` writes at once (atomic, parents 0700): tests and the read-mostly commands;
- :class:`PendingStore` keeps the writes in memory, answers reads from them first, and writes
  them all in :meth:`PendingStore.commit` (the pipeline calls it just before applying).

Example::

    store = PendingStore(state)
    pki.ensure_cluster_pki(state.pki_dir, cluster, now=now, store=store)  # nothing on disk yet
    store.describe()      # ["pki/ca.key (0600, private key)", ...]
    store.commit()        # now it is written
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import PKIError
from .secrets import Secret
from .state import ClusterState, write_atomic

DIR_MODE = 0o700


class StateStore(Protocol):
    def read(self, path: Path) -> bytes | None: ...

    def write(self, path: Path, data: bytes, mode: int, *, what: str = "") -> None: ...


def read_file(path: Path) -> bytes | None:
    """The file's bytes, ``None`` when it does not exist (other errors name the path)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as exc:
        raise PKIError(f"cannot read {path}: {exc.strerror}",
                       fix=f"check the permissions of {Path(path).parent}") from None


class DiskStore:
    """Reads and writes the disk directly (parents created 0700)."""

    def read(self, path: Path) -> bytes | None:
        return read_file(path)

    def write(self, path: Path, data: bytes, mode: int, *, what: str = "") -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(path.parent, DIR_MODE)
        write_atomic(path, data, mode)


DISK = DiskStore()


@dataclass(frozen=True)
class PendingFile:
    path: Path
    data: bytes
    mode: int
    what: str


@dataclass
class PendingStore:
    """Writes kept in memory until :meth:`commit`; reads see them first.

    Also holds the join material (bootstrap token, certificate key) a run would remember in
    ``join.yaml``.
    """

    state: ClusterState
    files: dict[Path, PendingFile] = field(default_factory=dict)
    token_: Secret | None = None
    certificate_key_: Secret | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # --- files --------------------------------------------------------------------------------
    def read(self, path: Path) -> bytes | None:
        with self._lock:
            pending = self.files.get(Path(path))
        return pending.data if pending is not None else read_file(path)

    def write(self, path: Path, data: bytes, mode: int, *, what: str = "") -> None:
        with self._lock:
            self.files[Path(path)] = PendingFile(Path(path), data, mode, what)

    # --- join material --------------------------------------------------------------------------
    def token(self) -> Secret | None:
        return self.token_ or self.state.token()

    def certificate_key(self) -> Secret | None:
        return self.certificate_key_ or self.state.certificate_key()

    def remember(self, *, token: Secret | None = None, certificate_key: Secret | None = None) -> None:
        with self._lock:
            if token is not None and (self.state.token() is None or self.state.token().reveal() != token.reveal()):
                self.token_ = token
            if certificate_key is not None and (self.state.certificate_key() is None or
                                                self.state.certificate_key().reveal() != certificate_key.reveal()):
                self.certificate_key_ = certificate_key

    # --- what would be written ------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        return not self.files and self.token_ is None and self.certificate_key_ is None

    def describe(self) -> list[str]:
        """One line per file the run would create in the state dir; never a value."""
        lines = []
        for f in self.files.values():
            try:
                rel = f.path.relative_to(self.state.root)
            except ValueError:
                rel = f.path
            kind = f" {f.what}" if f.what else ""
            lines.append(f"{rel} (mode {f.mode:04o},{kind} {len(f.data)} bytes)")
        if self.token_ is not None:
            lines.append(f"{self.state.join_file.name}: bootstrap token {self.token_}")
        if self.certificate_key_ is not None:
            lines.append(f"{self.state.join_file.name}: certificate key {self.certificate_key_}")
        return lines

    def commit(self) -> None:
        """Write every pending file (in the order they were made: keys before certificates)
        and the join material; then nothing is pending."""
        with self._lock:
            if not self.empty:
                self.state.ensure()
            for f in self.files.values():
                DISK.write(f.path, f.data, f.mode)
            if self.token_ is not None or self.certificate_key_ is not None:
                self.state.remember(token=self.token_, certificate_key=self.certificate_key_)
            self.files.clear()
            self.token_ = self.certificate_key_ = None
