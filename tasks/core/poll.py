"""The one poll loop: on this machine (:func:`poll`) and on a host (:func:`poll_script`).

Every wait of kubefab is "check, sleep a second, until a deadline, then report the last
answer": the API server's /readyz and Nodes Ready from the operator machine, and on the host
the health URLs, a file written by the kubelet, an etcdctl call kubeadm retries, a port freed.
"""

from __future__ import annotations

import shlex
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def poll(check: Callable[[], tuple[bool, T]], timeout: float, *, interval: float = 1.0,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> tuple[bool, T]:
    """Call ``check() -> (done, last)`` until done or ``timeout`` seconds pass.

    :returns: ``(True, last)`` when done, ``(False, last)`` at the deadline (the last answer,
        for the error message).
    """
    deadline = clock() + timeout
    while True:
        done, last = check()
        if done or clock() > deadline:
            return done, last
        sleep(interval)


def poll_script(body: str, timeout_s: int, *, ok_patterns: tuple[str, ...] = (), on_timeout: str = "",
                interval: int = 1) -> str:
    """A POSIX sh loop that runs ``body`` every ``interval`` seconds until it succeeds (or its
    output matches one of ``ok_patterns``), for at most ``timeout_s`` seconds.

    On success it prints the body's last output and exits 0; at the deadline it prints it to
    stderr (and runs ``on_timeout``, if given) and exits 1.
    """
    cases = "".join(f"    *{shlex.quote(p)}*) echo \"$out\"; exit 0;;\n" for p in ok_patterns)
    return (f"deadline=$(( $(date +%s) + {int(timeout_s)} ))\n"
            "while :; do\n"
            f"  out=$( {{ {body} ; }} 2>&1 ) && {{ echo \"$out\"; exit 0; }}\n"
            + (f"  case \"$out\" in\n{cases}  esac\n" if cases else "")
            + "  [ \"$(date +%s)\" -ge \"$deadline\" ] && { "
            + (f"{on_timeout}; " if on_timeout else "")
            + "echo \"$out\" >&2; exit 1; }\n"
            f"  sleep {int(interval)}\n"
            "done\n")
