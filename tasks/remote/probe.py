# kubefab facts probe, the python3 form: the same JSON object as probe.sh, in ONE process.
#
# probe.sh runs this with `python3 -I -c` when the host has python3 (argv: the binaries, the
# sockets, the caller's PATH, then the paths) and falls back to its own sh code otherwise.
# probe.sh forks ~17 processes per probed path; this forks none per path (only ss, ip,
# kubelet --version and systemctl, once each). Every value means exactly what probe.sh's
# does (tests/unit/test_facts.py runs both and compares). Written for python3 >= 3.5 (no
# f-strings); it prints nothing until the whole object is built, so a failure leaves the sh
# probe a clean stdout.
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import subprocess
import sys

BINARIES, SOCKETS, PATH0 = sys.argv[1:4]
TOOLS_PATH = PATH0 + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
CTRL = re.compile("[\x00-\x08\x0b-\x1f]")


def esc(text):
    """probe.sh's _esc: control characters but tab/newline dropped, the last newline cut."""
    text = CTRL.sub("", text)
    return text[:-1] if text.endswith("\n") else text


def subst(text):
    """A shell $(...): every trailing newline cut (then _str: control characters dropped)."""
    return CTRL.sub("", text.rstrip("\n"))


def which(name, path):
    for d in path.split(":"):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def run(argv, err=False, timeout=None):
    """stdout (with err: stdout and stderr) of argv, decoded; '' when it cannot run."""
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT if err else subprocess.DEVNULL,
                             env=dict(os.environ, PATH=TOOLS_PATH))
        try:
            out = p.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            p.kill()
            out = p.communicate()[0]
    except OSError:
        return ""
    return out.decode("utf-8", "replace")


def tool(name, *args):
    """_run: stdout of a tool on the probe's PATH, null when absent."""
    if which(name, TOOLS_PATH) is None:
        return None
    return esc(run([name] + list(args)))


def raw(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def read(path):
    """_file: a file's content, null when unreadable."""
    text = raw(path)
    return None if text is None else esc(text)


def text(name):
    """A name as the operator reads it (python may have decoded argv as ASCII + surrogates)."""
    return os.fsencode(name).decode("utf-8", "replace")


KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISSOCK, "socket"),
         (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "character special file"), (stat.S_ISBLK, "block special file"))


def stat_line(path):
    """stat -c '%F|%a|%u|%g|%U|%G|%s' (no dereference)."""
    try:
        st = os.lstat(path)
    except OSError:
        return ""
    kind = "weird file"
    if stat.S_ISREG(st.st_mode):
        kind = "regular file" if st.st_size else "regular empty file"
    for test, name in KINDS:
        if test(st.st_mode):
            kind = name
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = "UNKNOWN"
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = "UNKNOWN"
    return "|".join((kind, "%o" % (st.st_mode & 0o7777), str(st.st_uid), str(st.st_gid), user, group,
                     str(st.st_size)))


def sha256(path):
    if not os.access(path, os.R_OK):
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


def path_entry(p):
    entry = {"path": text(p)}
    if not os.path.lexists(p):
        return entry
    entry["stat"] = stat_line(p)
    if os.path.islink(p):
        try:
            entry["link"] = subst(text(os.readlink(p)))
        except OSError:
            entry["link"] = ""
    if os.path.isfile(p):
        entry["sha256"] = sha256(p)
    if os.path.isdir(p):
        try:
            entry["nonempty"] = bool(os.listdir(p))
        except OSError:
            entry["nonempty"] = False
    return entry


def is_socket(path):
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def facts(paths):
    f = {"binaries": {}}
    for b in BINARIES.split():
        found = which(b, PATH0)
        f["binaries"][b] = subst(text(found)) if found else None
    f["path"] = subst(text(PATH0))
    uid = os.geteuid()
    f["uid"] = str(uid)
    try:
        f["user"] = pwd.getpwuid(uid).pw_name
    except KeyError:
        f["user"] = ""
    u = os.uname()
    f["hostname"], f["kernel"], f["arch"] = u.nodename, u.release, u.machine
    f["os_release"] = read("/etc/os-release" if os.access("/etc/os-release", os.R_OK) else "/usr/lib/os-release")
    try:
        f["nproc"] = str(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        f["nproc"] = str(os.cpu_count() or "")
    mem = read("/proc/meminfo") or ""
    f["meminfo"] = "\n".join(ln for ln in mem.split("\n") if re.match(r"(MemTotal|SwapTotal):", ln))
    f["swaps"] = read("/proc/swaps")
    f["ip_forward"] = read("/proc/sys/net/ipv4/ip_forward")
    f["ipv6_forwarding"] = read("/proc/sys/net/ipv6/conf/default/forwarding")
    f["ipv6_forwarding_all"] = read("/proc/sys/net/ipv6/conf/all/forwarding")
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        f["cgroup_version"] = "2"
    elif os.path.isdir("/sys/fs/cgroup/memory"):
        f["cgroup_version"] = "1"
    elif os.path.isdir("/sys/fs/cgroup"):
        f["cgroup_version"] = "2"
    else:
        f["cgroup_version"] = None
    if which("ss", TOOLS_PATH):
        f["listeners"] = {"tool": "ss", "out": esc(run(["ss", "-tlnp"]))}
    elif which("netstat", TOOLS_PATH):
        f["listeners"] = {"tool": "netstat", "out": esc(run(["netstat", "-tlnp"]))}
    else:
        f["listeners"] = {"tool": "proc", "out": esc((raw("/proc/net/tcp") or "") + (raw("/proc/net/tcp6") or ""))}
    limit = 10 if which("timeout", TOOLS_PATH) else None
    if which("kubelet", TOOLS_PATH):
        out = run(["kubelet", "--version"], err=True, timeout=limit)
        f["kubelet_version"] = esc(out.split("\n", 1)[0] + "\n" if out else "")
    else:
        f["kubelet_version"] = None
    if which("systemctl", TOOLS_PATH):
        active = run(["systemctl", "is-active", "kubelet", "firewalld", "systemd-resolved"],
                     timeout=limit).rstrip("\n").split("\n")
        active += [""] * 3
        f["systemctl"] = {"kubelet_active": subst(active[0]),
                          "kubelet_enabled": subst(run(["systemctl", "is-enabled", "kubelet"], timeout=limit)),
                          "firewalld_active": subst(active[1]), "systemd_resolved_active": subst(active[2])}
    else:
        f["systemctl"] = None
    f["ip_route4"] = tool("ip", "-4", "route", "show", "default")
    f["ip_route6"] = tool("ip", "-6", "route", "show", "default")
    f["ip_addr"] = tool("ip", "-o", "addr", "show", "scope", "global")
    env = b"\n".join(k + b"=" + v for k, v in os.environb.items()).decode("utf-8", "replace")
    f["proxy_env"] = esc("".join(ln + "\n" for ln in env.split("\n")
                                 if re.match(r"[a-z_]*_proxy=", ln, re.IGNORECASE | re.ASCII)))
    f["ca_dirs"] = {}
    for d in ("/etc/ssl/certs", "/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates",
              "/usr/share/ca-certificates", "/usr/local/share/ca-certificates"):
        f["ca_dirs"][d] = os.path.isdir(d)
    f["cri_sockets"] = {}
    for s in SOCKETS.split():
        f["cri_sockets"][text(s)] = is_socket(s)
    f["paths"] = [path_entry(p) for p in paths]
    return f


def main():
    body = json.dumps(facts(sys.argv[4:]))
    sys.stdout.write('{"probe": 1, ' + body[1:] + "\n")
    sys.stdout.flush()


main()
