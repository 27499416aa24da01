"""The one poll loop: on this machine (:func:`poll`) and on a host (:func:`poll_script`).

Every wait of kubefab is "check, sleep a second, until a deadline, then report the last
answer": the API server's /readyz and Nodes Ready from the operator machine, and on the host
the health URLs, a file written by the kubelet, an etcdctl call kubeadm retries, a port freed
(:func:`ports_free_script`).
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


# sh: ``probe URL`` prints the answer of a (loopback) health URL, with curl, wget or python3,
# whichever the host has; ``ok`` or `` HTTP 200`` at the end means healthy
PROBE_FUNCTION = r"""
probe() {
  if command -v curl >/dev/null 2>&1; then curl -ksS --max-time 5 -o /dev/stdout -w ' HTTP %{http_code}' "$1" 2>&1
  elif command -v wget >/dev/null 2>&1; then wget -q --no-check-certificate -T 5 -O - "$1" 2>&1
  else python3 -c 'import sys,ssl,urllib.request as u;c=ssl._create_unverified_context();print(u.urlopen(sys.argv[1],timeout=5,context=c).read().decode())' "$1" 2>&1
  fi
}
"""


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


# every port a socket listens on, in hex as /proc/net/tcp has it: no ss or netstat needed
LISTENING_PORTS = ("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
                   "awk '$4 == \"0A\" { n = split($2, a, \":\"); print a[n] }'")


def listening_script(ports: list[int] | tuple[int, ...]) -> str:
    """A pipeline that prints the first of ``ports`` a socket listens on (in hex, as
    ``/proc/net/tcp`` has it), nothing when all are free."""
    hex_ports = "|".join(f"{p:04X}" for p in ports)
    return f"{LISTENING_PORTS} | grep -E '^({hex_ports})$' | head -1"


def ports_free_script(ports: list[int] | tuple[int, ...], timeout_s: int, *, on_timeout: str,
                      also: str = "") -> str:
    """:func:`poll_script` until no socket listens on ``ports`` and ``also`` (a command that
    prints what else still runs, e.g. ``etcd still runs``) prints nothing.

    While it waits, the loop's ``$out`` says what still holds on (``port 6443``,
    ``port 2379 etcd still runs``): ``on_timeout`` can put it in its message (and should end
    with ``exit 1`` to have the last word).
    """
    body = (f"busy=$({listening_script(ports)}); other=$({also or 'true'}); "
            '[ -z "$busy$other" ] || { echo ${busy:+"port $((0x$busy))"} $other; false; }')
    return poll_script(body, timeout_s, on_timeout=on_timeout)
