"""Key material for libraries that read only files (``ssl``, the kubernetes client): kept in memory.

``ssl.SSLContext.load_cert_chain`` and the kubernetes client's ``cert_file``/``key_file`` take
paths; given a kubeconfig's ``client-key-data``, the kubernetes client writes it to a temp file in
``/tmp`` that only an orderly exit removes (a killed run left the cluster-admin key there). Here
each blob goes to an anonymous memory file (``memfd_create``) read through ``/proc/self/fd/N``:
nothing on a disk, and gone with the process however it ends. Where memfd does not exist (not
Linux), a 0600 file in a 0700 temp dir, removed when the block ends.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from typing import Iterator


@contextmanager
def memory_file(data: bytes, name: str = "kubefab") -> Iterator[str]:
    """A path whose content is ``data``, readable by this process for the block."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    tmp = tempfile.mkdtemp(prefix="kubefab-")  # 0700
    try:
        path = os.path.join(tmp, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# kubeconfig fields whose data the kubernetes client would write to temp files
_DATA_FIELDS = {"clusters": ("cluster", ("certificate-authority",)),
                "users": ("user", ("client-certificate", "client-key"))}


def kubeconfig_in_memory(cfg: dict, stack: ExitStack) -> dict:
    """A copy of the kubeconfig ``cfg`` whose ``*-data`` fields point at memory files instead
    (alive until ``stack`` closes), so the kubernetes client writes no temp file."""
    out = dict(cfg)
    for section, (inner, fields) in _DATA_FIELDS.items():
        items = []
        for item in cfg.get(section) or []:
            body = dict((item or {}).get(inner) or {})
            for field in fields:
                data = body.pop(f"{field}-data", None)
                if data:
                    body[field] = stack.enter_context(memory_file(base64.b64decode(data), field))
            items.append({**item, inner: body})
        out[section] = items
    return out
