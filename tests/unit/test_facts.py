"""Facts: the probe script and its pure parsers.

Fixtures (``tests/fixtures/facts/*.json``, pyinfra style) pair a probe's raw stdout with the
parsed value. The probe itself is also run here with the real ``sh`` (dash) and ``bash
--posix`` against a tree of awkward file names, and compared with what Python sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tasks.core.errors import RemoteError
from tasks.remote.facts import (
    HostFacts,
    Listener,
    PathFact,
    build_probe,
    gather_facts,
    parse_default_address,
    parse_listeners,
    parse_probe,
    parse_proxy_env,
    probe_command,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "facts"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def test_there_are_fixtures():
    assert len(FIXTURE_FILES) >= 4


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.stem)
def test_parse_probe_matches_fixture(fixture: Path):
    data = json.loads(fixture.read_text())
    raw = "\n".join(data["stdout"]) + "\n"
    assert parse_probe(raw).to_dict() == data["parsed"]


def _fixture_facts(name: str) -> HostFacts:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return parse_probe("\n".join(data["stdout"]))


def test_listening_ports_name_the_owner_for_preflight():
    cp = _fixture_facts("ubuntu2404_control_plane")
    assert cp.listening_ports[6443] == "pid 990 (kube-apiserver)"
    assert cp.listening_ports[2379] == "pid 812 (etcd)"
    fresh = _fixture_facts("debian12_fresh_root")
    assert fresh.listening_ports == {2024: ""}


def test_path_facts_read_like_dicts_for_existing_callers():
    cp = _fixture_facts("ubuntu2404_control_plane")
    etcd = cp.paths["/etc/kubernetes/manifests/etcd.yaml"]
    assert etcd.get("exists") is True and etcd["mode"] == 0o600 and etcd.get("nonempty", "x") == "x"
    with pytest.raises(KeyError):
        etcd["nope"]
    with pytest.raises(RemoteError, match="not probed"):
        cp.path("/not/asked/for")


@pytest.mark.parametrize("route4, route6, addrs, expected", [
    ("default via 10.0.0.1 dev ens3 proto dhcp src 10.0.0.11 metric 100", "", "", ("ens3", "10.0.0.11")),
    ("default via 192.0.2.1 dev eth0", "",
     "3: eth1 inet 172.16.0.5/24 scope global eth1\n2: eth0 inet 192.0.2.2/24 scope global eth0", ("eth0", "192.0.2.2")),
    ("", "default via fe80::1 dev eth0 metric 1024",
     "2: eth0 inet6 2001:db8::5/64 scope global \\ valid_lft forever", ("eth0", "2001:db8::5")),
    ("", "", "2: eth0 inet6 2001:db8::7/64 scope global\n3: br0@eth0 inet 10.1.1.1/16 scope global br0",
     ("br0", "10.1.1.1")),
    ("", "", "", (None, None)),
])
def test_default_address(route4, route6, addrs, expected):
    assert parse_default_address(route4, route6, addrs) == expected


def test_proxy_env_keeps_non_empty_proxy_variables_only():
    assert parse_proxy_env("HTTPS_PROXY=http://p:3128\nno_proxy=\nfoo_proxy=x\nPROXY=y\nhttp_proxy=a=b") == {
        "HTTPS_PROXY": "http://p:3128", "foo_proxy": "x", "http_proxy": "a=b"}


def test_unknown_listener_tool_is_an_error():
    with pytest.raises(RemoteError, match="unknown listener tool"):
        parse_listeners("lsof", "x")
    assert parse_listeners("ss", "State Recv-Q\n") == ()
    assert parse_listeners("ss", 'LISTEN 0 5 [::1]:6443 [::]:* users:(("a b",pid=9,fd=3))') == (
        Listener("::1", 6443, 9, "a b"),)


@pytest.mark.parametrize("stdout, message", [
    ("", "printed no result"),
    ("motd only\n", "printed no result"),
    ('{"probe": 1, "uid": ', "not valid JSON"),
    ('{"probe": 99}', "unknown facts probe version"),
])
def test_parse_probe_errors_are_remote_errors(stdout, message):
    with pytest.raises(RemoteError, match=message):
        parse_probe(stdout)


@pytest.mark.parametrize("kwargs", [
    {"paths": ["relative/path"]},
    {"paths": ["/a\nb"]},
    {"paths": [], "binaries": ["kubelet; rm -rf /"]},
    {"paths": [], "cri_sockets": ["/run/a b.sock"]},
])
def test_build_probe_rejects_unsafe_names(kwargs):
    with pytest.raises(RemoteError, match="cannot probe"):
        build_probe(**kwargs)


AWKWARD = ["plain.conf", "with space", "quote\"and'apostrophe", "tab\there", "dollar$(touch pwned)",
           "back\\slash", "ünïcödé", "-dash-first"]


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    for n, name in enumerate(AWKWARD):
        p = tmp_path / name
        p.write_bytes(f"content {n}\n".encode() * (n + 1))
        p.chmod(0o640 if n % 2 else 0o600)
    (tmp_path / "dir-full").mkdir()
    (tmp_path / "dir-full" / ".hidden").write_text("x")
    (tmp_path / "dir-empty").mkdir()
    (tmp_path / "link").symlink_to("plain.conf")
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


def _tree_paths(tree: Path) -> list[str]:
    return [str(tree / n) for n in AWKWARD] + [str(tree / n) for n in
                                               ("dir-full", "dir-empty", "link", "fifo", "absent")]


@pytest.mark.parametrize("python", [False, True], ids=["sh-probe", "python-probe"])
@pytest.mark.parametrize("shell", [["sh"], ["bash", "--posix"]], ids=["dash", "bash-posix"])
def test_probe_runs_in_posix_shells_and_matches_python(tree: Path, shell: list[str], python: bool):
    paths = _tree_paths(tree)
    script = build_probe(paths, binaries=["sh", "definitely-not-a-binary"], cri_sockets=["/run/nope.sock"],
                         python=python)
    assert subprocess.run([*shell, "-n", "-c", script]).returncode == 0
    proc = subprocess.run([*shell, "-c", script], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    facts = parse_probe(proc.stdout.decode())
    assert not (tree.parent / "pwned").exists() and not Path("pwned").exists()
    assert facts.uid == os.getuid() and facts.hostname == os.uname().nodename
    assert facts.kernel == os.uname().release and facts.arch == os.uname().machine
    assert facts.cpus == len(os.sched_getaffinity(0))
    assert facts.binaries == {"sh": facts.binaries["sh"], "definitely-not-a-binary": None}
    assert facts.binaries["sh"].endswith("/sh")
    assert facts.cri_sockets == ()
    assert facts.ip_forward == Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    cgroup = Path("/sys/fs/cgroup")
    assert facts.cgroup_version == (2 if (cgroup / "cgroup.controllers").exists() else 1 if (cgroup / "memory").is_dir()
                                    else 2 if cgroup.is_dir() else None)
    for name in AWKWARD:
        p = tree / name
        fact = facts.paths[str(p)]
        st = p.stat()
        assert (fact.exists, fact.type, fact.mode, fact.uid, fact.size) == (
            True, "file", st.st_mode & 0o7777, st.st_uid, st.st_size), name
        assert fact.sha256 == hashlib.sha256(p.read_bytes()).hexdigest(), name
    assert facts.paths[str(tree / "dir-full")].nonempty is True
    assert facts.paths[str(tree / "dir-empty")].nonempty is False
    link = facts.paths[str(tree / "link")]
    assert (link.type, link.link_target) == ("symlink", "plain.conf")
    assert link.sha256 == hashlib.sha256((tree / "plain.conf").read_bytes()).hexdigest()
    assert facts.paths[str(tree / "fifo")].type == "fifo"
    assert facts.paths[str(tree / "absent")].exists is False


def _raw_probe(script: str, env: dict | None = None) -> dict:
    proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=30, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_python_probe_prints_exactly_what_the_sh_probe_prints(tree: Path, monkeypatch):
    """The one-process probe (probe.py) is a faster spelling of probe.sh, not new facts: every key
    and value of the raw object is the same (sockets, a proxy variable and a non-ASCII path included)."""
    sock = tree / "cri.sock"
    import socket

    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    env = dict(os.environ, HTTPS_PROXY="http://proxy.example:3128", no_proxy="10.0.0.0/8,.svc")
    paths = _tree_paths(tree) + ["/", "/etc/os-release", "/proc/swaps", str(tree / "ünïcödé")]
    kw = dict(binaries=["sh", "ls", "definitely-not-a-binary"], cri_sockets=[str(sock), "/run/nope.sock"])
    try:
        by_sh = _raw_probe(build_probe(paths, python=False, **kw), env)
        by_python = _raw_probe(build_probe(paths, python=True, **kw), env)
    finally:
        server.close()
    assert by_python.keys() == by_sh.keys()
    for key in by_sh:
        if key == "proxy_env":  # in environment order, which sh keeps in its own way
            assert sorted(by_python[key].splitlines()) == sorted(by_sh[key].splitlines())
        elif key != "listeners":  # sockets come and go between the two runs
            assert by_python[key] == by_sh[key], key
    assert by_python["listeners"]["tool"] == by_sh["listeners"]["tool"]
    assert by_python["cri_sockets"] == {str(sock): True, "/run/nope.sock": False}
    assert "HTTPS_PROXY=http://proxy.example:3128" in by_python["proxy_env"].splitlines()


def test_python_probe_forks_no_process_per_path(tree: Path):
    """The point of probe.py: the cost of a probe does not grow with the paths probed. Counted with
    strace when present, else by the time of 400 paths against 4."""
    import shutil
    import time

    few, many = _tree_paths(tree)[:2], [str(tree / f"absent-{i}") for i in range(100)] + _tree_paths(tree)
    if shutil.which("strace"):
        def forks(paths):
            out = subprocess.run(["strace", "-f", "-c", "-e", "trace=clone,clone3,fork,vfork", "sh", "-c",
                                  build_probe(paths)], capture_output=True, text=True, timeout=60).stderr
            return sum(int(ln.split()[3]) for ln in out.splitlines() if ln.split()[-1:] and
                       ln.split()[-1] in ("clone", "clone3", "fork", "vfork"))
        assert forks(many) - forks(few) < 10  # the sh probe forks about 17 per path: 7000 more here
        return
    def seconds(paths, python):
        t = time.monotonic()
        _raw_probe(build_probe(paths, python=python))
        return time.monotonic() - t
    assert seconds(many, True) < seconds(many, False) / 2


def test_probe_falls_back_to_sh_without_python3_or_when_it_fails(tree: Path, tmp_path_factory):
    paths = _tree_paths(tree)[:3]
    bin_dir = tmp_path_factory.mktemp("bin")  # /usr/bin without python
    for tool in Path("/usr/bin").iterdir():
        if not tool.name.startswith("python"):
            (bin_dir / tool.name).symlink_to(tool)
    no_python = dict(os.environ, PATH=str(bin_dir))
    assert _raw_probe(build_probe(paths), no_python)["paths"] == _raw_probe(build_probe(paths, python=False))["paths"]
    broken = build_probe(paths).replace("KF_PY=", "KF_PY=AAAA", 1)  # python3 fails: nothing but the sh object
    proc = subprocess.run(["sh", "-c", broken], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PATH="/usr/bin:/bin"))
    assert proc.stdout.count('{"probe":') == 1 and parse_probe(proc.stdout).paths[paths[0]].exists


def test_probe_survives_a_non_posix_login_shell_wrapper():
    """gather_facts sends ``sh -c '<script>'``: whatever the login shell, sh runs the probe."""
    cmd = probe_command(build_probe(["/"]))
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert parse_probe(proc.stdout).paths["/"].type == "directory"


class _OneShot:
    """A strict fake: exactly one command, and it must be the probe."""

    host = "fake1"

    def __init__(self, stdout: str, exit_code: int = 0, stderr: str = "") -> None:
        self.calls: list[str] = []
        self._out = (stdout, exit_code, stderr)

    def run(self, command, *, check=True, timeout=None):
        if self.calls:
            raise AssertionError(f"unexpected second command: {command[:80]}")
        assert command.startswith("sh -c ") and "KF_BINARIES=" in command
        self.calls.append(command)
        stdout, code, stderr = self._out

        class R:
            pass

        r = R()
        r.stdout, r.exit_code, r.stderr = stdout, code, stderr
        return r


def test_gather_facts_uses_one_command_and_names_the_host_on_failure():
    data = json.loads((FIXTURES / "debian12_fresh_root.json").read_text())
    fake = _OneShot("\n".join(data["stdout"]))
    facts = gather_facts(fake, ["/etc/kubernetes"], cri_sockets=["unix:///run/custom.sock"])
    assert len(fake.calls) == 1 and "/run/custom.sock" in fake.calls[0] and "unix://" not in fake.calls[0]
    assert facts.hostname == "vm"
    with pytest.raises(RemoteError) as exc:
        gather_facts(_OneShot("", 126, "sh: permission denied"), [])
    assert "fake1" in str(exc.value) and "exit code 126" in str(exc.value)
    with pytest.raises(RemoteError, match="fake1: the facts probe printed no result"):
        gather_facts(_OneShot("garbage"), [])


def test_path_fact_defaults():
    assert PathFact("/x").get("exists") is False and PathFact("/x").get("sha256", "none") == "none"
