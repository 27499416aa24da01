"""Run the real ``fab`` recording every file the process writes (for the secrets scan).

``python -m tests.integration.fab_write_audit <fab arguments>`` with ``KUBEFAB_AUDIT_FILE=FILE``: a
Python audit hook (PEP 578) sees every ``open`` for writing, ``mkstemp``, rename and removal
in this process (kubefab's code and every library it calls: the kubernetes client, paramiko,
logging). A file removed (or renamed away) is read just before, so its content is kept; the
others are read by the test from the disk. At exit FILE gets a JSON list of
``{"path", "removed", "content" (base64, removed files only)}``. Files written by child processes
are not seen (kubefab starts none on the operator machine).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import sys
import threading

_OUT = os.environ["KUBEFAB_AUDIT_FILE"]
_SKIP = (_OUT,)
_written: dict[str, dict] = {}
_guard = threading.local()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _abs(path, dir_fd=None) -> str | None:
    if isinstance(path, int) or path is None:
        return None
    path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        try:
            return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        except OSError:
            return None
    return os.path.abspath(path)


def _snapshot(path: str, removed: bool) -> None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return
    _written[path] = {"path": path, "removed": removed, "content": base64.b64encode(data).decode()}


def _hook(event: str, args) -> None:
    if getattr(_guard, "busy", False):
        return
    _guard.busy = True
    try:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and flags & _WRITE_FLAGS)
            p = _abs(path)
            if writing and p and p not in _SKIP and not p.startswith(("/dev/", "/proc/")):
                _written.setdefault(p, {"path": p, "removed": False, "content": ""})
        elif event == "tempfile.mkstemp":
            p = _abs(args[0])
            if p:
                _written.setdefault(p, {"path": p, "removed": False, "content": ""})
        elif event in ("os.rename", "os.replace"):
            src, dst = _abs(args[0], args[2]), _abs(args[1], args[3])
            if dst:
                _written.setdefault(dst, {"path": dst, "removed": False, "content": ""})
            if src in _written:
                _snapshot(src, True)  # its bytes live on under dst
        elif event == "os.remove":
            p = _abs(args[0], args[1])
            if p in _written:
                _snapshot(p, True)
    finally:
        _guard.busy = False


def _dump() -> None:
    _guard.busy = True
    with open(_OUT, "w") as fh:
        json.dump(list(_written.values()), fh)


atexit.register(_dump)  # registered first: runs last, after the libraries' own clean-up
sys.addaudithook(_hook)

if __name__ == "__main__":
    from fabric.main import program

    sys.argv = ["fab", *sys.argv[1:]]
    program.run()
