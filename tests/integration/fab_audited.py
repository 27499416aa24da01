"""`fab` with an audit hook: every temp file Python's ``tempfile`` makes is appended, with the
stack that made it, to ``$KUBEFAB_TEST_TEMPFILE_LOG`` (tests/integration/test_faults_lab.py
checks that no key material goes to the operator machine's /tmp).

Usage: ``python -m tests.integration.fab_audited -r ROOT <fab arguments>``
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback


def _hook(event: str, args: tuple) -> None:
    if not event.startswith("tempfile."):
        return
    with open(os.environ["KUBEFAB_TEST_TEMPFILE_LOG"], "a", encoding="utf-8") as fh:
        fh.write(f"{event} {args[0]}\n" + "".join(traceback.format_stack(limit=8)[:-1]) + "\n")


if __name__ == "__main__":
    if os.environ.get("KUBEFAB_TEST_TEMPFILE_LOG"):
        sys.addaudithook(_hook)
    sys.argv = ["fab", *sys.argv[1:]]
    runpy.run_module("fabric", run_name="__main__")
