"""The cluster state directory on the operator machine.

One directory per cluster (default ``.kubefab/<cluster>/`` beside the inventory), mode 0700,
git-ignored: ``pki/`` (the central PKI, laid out as kubeadm's), ``nodes/<node>/`` (per-node
leaves and kubeconfigs, so re-runs reuse them byte for byte) and ``join.yaml`` (bootstrap tokens
and the certificate key, 0600). It holds the crown jewels: nothing in it is ever printed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .secrets import Secret


def write_atomic(path: Path, data: bytes, mode: int, *, dir_mode: int = 0o700) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory, then rename:
    a crash leaves the old file or the new one, never half a key (missing parents get
    ``dir_mode``)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class ClusterState:
    """Paths and small records inside one cluster's state directory."""

    root: Path

    def ensure(self) -> "ClusterState":
        for d in (self.root, self.pki_dir, self.root / "nodes"):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            write_atomic(gitignore, b"# kubefab cluster state: private keys and tokens\n*\n", 0o600)
        return self

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    def node_dir(self, node_name: str) -> Path:
        d = self.root / "nodes" / node_name
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        return d

    @property
    def join_file(self) -> Path:
        return self.root / "join.yaml"

    def load_join(self) -> dict[str, Any]:
        """The stored join material: ``{"tokens": [...], "certificate_key": ...}``."""
        if not self.join_file.exists():
            return {}
        try:
            data = yaml.safe_load(self.join_file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.join_file} is not valid YAML ({exc.__class__.__name__})",
                              fix="restore it from a backup or delete it to mint new tokens") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.join_file} is not a mapping", fix="delete it to mint new tokens")
        return data

    def save_join(self, data: dict[str, Any]) -> None:
        text = yaml.safe_dump(data, sort_keys=True)
        write_atomic(self.join_file, text.encode(), 0o600)

    def token(self) -> Secret | None:
        tokens = self.load_join().get("tokens") or []
        return Secret(tokens[0], kind="bootstrap token") if tokens else None

    def certificate_key(self) -> Secret | None:
        key = self.load_join().get("certificate_key")
        return Secret(key, kind="certificate key") if key else None

    def remember(self, *, token: Secret | None = None, certificate_key: Secret | None = None) -> None:
        data = self.load_join()
        if token is not None:
            tokens = [t for t in data.get("tokens") or [] if t != token.reveal()]
            data["tokens"] = [token.reveal(), *tokens]
        if certificate_key is not None:
            data["certificate_key"] = certificate_key.reveal()
        self.save_join(data)
