"""Command line of the test lab: ``python -m tests.lab up|down|status|exec|sw``.

Examples::

    python -m tests.lab up 4 --lb          # node1-3 control planes, node4 worker, an haproxy host
    python -m tests.lab status --json
    python -m tests.lab exec node1 -- ls /etc/kubernetes
    python -m tests.lab sw -- ssh -F /var/tmp/kubefab-lab/ssh_config node2 hostname
    python -m tests.lab sw -- fab -H node1 init --inventory /var/tmp/kubefab-lab/inventory.yaml
    python -m tests.lab down
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time

from tasks.core.errors import KubefabError
from tests.lab.hosts import Lab, LabError

PR_SET_CHILD_SUBREAPER = 36


def _up_detached(lab: Lab, n: int, lb: bool, k: int | None, version: str | None) -> dict:
    """Bring the lab up from a forked keeper process that outlives this command.

    Why: the hosts' launchers must have a living parent that reaps them, or they
    linger as zombies on machines whose PID 1 does not reap (this one's doesn't).
    The keeper reaps them until the lab is down, then exits.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the keeper
        os.close(read_fd)
        code = 0
        try:
            os.setsid()
            ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            msg: dict = {"ok": True, "status": lab.up(n, lb=lb, control_planes=k, k8s_version=version)}
        except KubefabError as exc:
            msg = {"ok": False, "error": exc.render()}
        except Exception as exc:  # report, never a traceback on the user's screen
            msg = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            os.write(write_fd, json.dumps(msg).encode())
            os.close(write_fd)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            while True:
                try:
                    os.wait()
                except ChildProcessError:
                    break
                except InterruptedError:
                    continue
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    try:
        msg = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        msg = {}
    if not msg.get("ok"):
        # A keeper with no host to look after exits at once: reap it rather than leave a zombie.
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.01)
        raise LabError(msg.get("error", "the lab keeper died without a word; see the hosts' console.log files"))
    return msg["status"]


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=2))
        return
    if not status["hosts"]:
        print(f"lab at {status['dir']}: down")
        return
    print(f"lab at {status['dir']} (subnet {status.get('subnet')})")
    for h in status["hosts"]:
        state = "running" if h.get("running") else "STOPPED"
        print(f"  {h['name']:<8} {h['address']:<15} {','.join(h['roles']):<14} {state}")
    if status["lb"]:
        print(f"  {'lb':<8} {status['lb']['address']:<15} {'load-balancer':<14} "
              f"{'running' if status['lb'].get('running') else 'STOPPED'}")
    print(f"inventory: {status['inventory']}\nssh_config: {status['ssh_config']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description="kubefab's multi-host test lab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="bring up (or grow) the lab to N hosts")
    p_up.add_argument("n", type=int)
    p_up.add_argument("--lb", action="store_true", help="add an haproxy host for :6443")
    p_up.add_argument("--control-planes", type=int, default=None, metavar="K")
    p_up.add_argument("--k8s-version", default=None, help="the Kubernetes release the hosts run (v1.36.3; built when missing)")
    p_up.add_argument("--json", action="store_true")
    sub.add_parser("down", help="tear the lab down, leaving nothing behind")
    p_st = sub.add_parser("status", help="describe the lab")
    p_st.add_argument("--json", action="store_true")
    p_ex = sub.add_parser("exec", help="run a command inside a host: exec HOST -- CMD...")
    p_ex.add_argument("host")
    p_ex.add_argument("command", nargs=argparse.REMAINDER)
    p_sw = sub.add_parser("sw", help="run a command in the switch namespace: sw -- CMD...")
    p_sw.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    lab = Lab()
    try:
        if args.cmd == "up":
            start = time.monotonic()
            status = _up_detached(lab, args.n, args.lb, args.control_planes, args.k8s_version)
            _print_status(status, args.json)
            print(f"up: {len(status['hosts']) + (1 if status['lb'] else 0)} hosts in "
                  f"{time.monotonic() - start:.2f}s", file=sys.stderr)
        elif args.cmd == "down":
            lab.down()
            print(f"lab at {lab.dir}: down", file=sys.stderr)
        elif args.cmd == "status":
            _print_status(lab.status(), args.json)
        elif args.cmd in ("exec", "sw"):
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error(f"{args.cmd}: give a command after --")
            full = lab.exec_argv(args.host, command) if args.cmd == "exec" else lab.sw_argv(command)
            sys.stdout.flush()
            os.execvp(full[0], full)
    except KubefabError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
