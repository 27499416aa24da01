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

from .config.validate import CERTIFICATE_KEY_RE, TOKEN_RE
from .errors import ConfigError
from .secrets import Secret
from .yamlload import load_document, read_file


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
    try:  # the rename itself survives a crash of the machine too
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def is_temp_name(name: str) -> bool:
    """A temp file of :func:`write_atomic` (``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3


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

    def check(self) -> None:
        """Refuse an invalid join.yaml before a run writes anything (it is read mid-run)."""
        self.load_join()

    @property
    def join_file(self) -> Path:
        return self.root / "join.yaml"

    def load_join(self) -> dict[str, Any]:
        """The stored join material: ``{"tokens": [...], "certificate_key": ...}``.

        :raises ConfigError: naming the file, the key and the fix when the file cannot be read
            or holds an invalid value (the value itself is never shown: it is a credential).
        """
        path = self.join_file
        if not path.exists():
            return {}
        whole_fix = (f"restore {path} from a backup, or delete it: the next `fab init` mints a new token "
                     f"(and, with --upload-certs, a new certificate key)")
        text = read_file(path, what="state file", missing_fix=whole_fix, fix=whole_fix)
        data = load_document(text, source=str(path), fix=whole_fix)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is not a mapping of tokens and certificate_key", fix=whole_fix)
        problems = join_problems(data)
        if problems:
            n = len(problems)
            fixes = dict.fromkeys(fix.format(path=path) for _, _, fix in problems)
            raise ConfigError(f"{path}: {n} invalid value{'s' if n != 1 else ''} in the cluster state",
                              details=[f"{path}: {key}: {problem}" for key, problem, _ in problems],
                              fix="; ".join(fixes))
        return data

    def save_join(self, data: dict[str, Any]) -> None:
        problems = join_problems(data)
        if problems:  # never persist what the next run could not read back
            key, problem, _ = problems[0]
            raise ConfigError(f"refusing to save {key} in {self.join_file}: {problem}",
                              fix="pass a valid value (see `fab --help init`)")
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


_TOKEN_FIX = ("remove that entry from tokens in {path} (the next `fab init` mints a new token; "
              "`fab token.create` makes one for joins)")
_KEY_FIX = ("remove the certificate_key line from {path} (the next `fab init --upload-certs` makes a new key), "
            "or set it to the 64-hex key `fab init` printed")


def join_problems(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, problem, fix)`` for every invalid entry of join.yaml (values never echoed).

    ``fix`` has a ``{path}`` placeholder for the file.
    """
    out: list[tuple[str, str, str]] = []
    for key in data:
        if key not in JOIN_KEYS:
            out.append((str(key), f"unknown key (kubefab keeps {' and '.join(JOIN_KEYS)} here)",
                        f"remove {str(key)!r} from {{path}}"))
    tokens = data.get("tokens")
    if tokens is not None:
        if not isinstance(tokens, list):
            out.append(("tokens", "must be a list of bootstrap tokens",
                        "remove the tokens line from {path} (the next `fab init` mints a new token)"))
        else:
            for i, token in enumerate(tokens):
                if not isinstance(token, str) or not TOKEN_RE.match(token):
                    out.append((f"tokens[{i}]", "not a bootstrap token (<6 of a-z0-9>.<16 of a-z0-9>)", _TOKEN_FIX))
    key = data.get("certificate_key")
    if key is not None and not (isinstance(key, str) and CERTIFICATE_KEY_RE.match(key)):
        out.append(("certificate_key", "not a certificate key (64 hexadecimal characters)", _KEY_FIX))
    return out


JOIN_KEYS = ("tokens", "certificate_key")
