"""Pure tests of the lab's parts (no root, no namespaces): systemctl parsing and
expansion, the lab kubelet's flags, etcd shim and adoption of the pods a previous
kubelet left running, the crictl stand-in, lab naming."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tasks.core.manifests import render_kubelet_dropin
from tests.lab import crictl, kubelet, systemctl
from tests.lab.hosts import default_control_planes, lab_identity

# The drop-in kubefab's kubelet-start writes (kubeadm's 10-kubeadm.conf).
DROPIN = render_kubelet_dropin().decode()


@pytest.mark.parametrize(
    ("line", "env", "argv"),
    [
        ("/bin/x $A", {"A": "--a=1  --b=2"}, ["/bin/x", "--a=1", "--b=2"]),
        ("/bin/x $MISSING --c", {}, ["/bin/x", "--c"]),
        ("/bin/x ${A}", {"A": "one two"}, ["/bin/x", "one two"]),
        ("/bin/x --p=${A}/z", {"A": "/etc"}, ["/bin/x", "--p=/etc/z"]),
        ('/bin/x "$A"', {"A": "one two"}, ["/bin/x", "one two"]),
        ("/bin/x $$HOME", {"HOME": "/root"}, ["/bin/x", "$HOME"]),
        ("/bin/x $A", {"A": "--n='a b' --m=c"}, ["/bin/x", "--n=a b", "--m=c"]),
        ("/bin/x 'q r' s\\ t", {}, ["/bin/x", "q r", "s t"]),
    ],
)
def test_expand_command_follows_systemd_rules(line: str, env: dict, argv: list[str]) -> None:
    assert systemctl.expand_command(line, env) == argv


def test_env_file_parsing_strips_quotes_and_comments() -> None:
    text = '# kubeadm\nKUBELET_KUBEADM_ARGS="--node-ip=10.0.0.1 --x=y"\n; other\nA=plain\nexport B=\'q\'\nbad line\n'
    assert systemctl.parse_env_file(text) == {
        "KUBELET_KUBEADM_ARGS": "--node-ip=10.0.0.1 --x=y", "A": "plain", "B": "q"}


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_dropin_resets_exec_start_and_env_files_override(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "/lib/systemd/system/kubelet.service":
            "[Unit]\nDescription=kubelet\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n"
            "Environment=KUBELET_EXTRA_ARGS=--from-unit\n[Install]\nWantedBy=multi-user.target\n",
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf": DROPIN,
        "/var/lib/kubelet/kubeadm-flags.env": 'KUBELET_KUBEADM_ARGS="--node-ip=10.1.2.3 --a=b"\n',
        "/etc/default/kubelet": "KUBELET_EXTRA_ARGS=--from-file\n",
    })
    unit = systemctl.find_unit("kubelet", root=str(tmp_path))
    assert unit is not None
    assert unit.exec_start == [DROPIN.splitlines()[-1].split("=", 1)[1]]
    assert unit.restart == "always" and unit.wanted_by == ["multi-user.target"]
    env = systemctl.service_environment(unit, root=str(tmp_path))
    argv, ignore = systemctl.command_argv(unit.exec_start[-1], env)
    assert not ignore
    assert argv == [
        "/usr/bin/kubelet", "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
        "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml",
        "--node-ip=10.1.2.3", "--a=b", "--from-file",
    ]


def test_missing_optional_env_file_is_fine_but_required_one_fails(tmp_path: Path) -> None:
    _tree(tmp_path, {"/etc/systemd/system/a.service": "[Service]\nEnvironmentFile=-/nope\nExecStart=/bin/true\n",
                     "/etc/systemd/system/b.service": "[Service]\nEnvironmentFile=/nope\nExecStart=/bin/true\n"})
    systemctl.service_environment(systemctl.find_unit("a", root=str(tmp_path)), root=str(tmp_path))
    with pytest.raises(FileNotFoundError):
        systemctl.service_environment(systemctl.find_unit("b", root=str(tmp_path)), root=str(tmp_path))


def test_dropins_sorted_by_name_and_etc_shadows_lib(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "/lib/systemd/system/x.service": "[Service]\nExecStart=/bin/a\n",
        "/lib/systemd/system/x.service.d/20-b.conf": "[Service]\nExecStart=\nExecStart=/bin/lib-20\n",
        "/etc/systemd/system/x.service.d/20-b.conf": "[Service]\nExecStart=\nExecStart=/bin/etc-20\n",
        "/etc/systemd/system/x.service.d/10-a.conf": "[Service]\nExecStart=\nExecStart=/bin/etc-10\n",
    })
    unit = systemctl.find_unit("x.service", root=str(tmp_path))
    assert [Path(d).name for d in unit.dropins] == ["10-a.conf", "20-b.conf"]
    assert unit.exec_start == ["/bin/etc-20"]


def test_unit_text_continuations_and_comments() -> None:
    entries = systemctl.parse_unit_text("[Service]\n# c\n; c\nExecStart=/bin/x \\\n  --flag\n")
    assert entries == [("Service", "ExecStart", "/bin/x  --flag")]


@pytest.mark.parametrize(("argv", "known", "ignored"), [
    (["--config=/c.yaml", "--kubeconfig", "/k.conf", "--v=2"], {"config": "/c.yaml", "kubeconfig": "/k.conf"},
     ["--v=2"]),
    (["--hostname-override=Node-A", "--pod-infra-container-image=x"], {"hostname-override": "Node-A"},
     ["--pod-infra-container-image=x"]),
])
def test_kubelet_flags(argv: list[str], known: dict, ignored: list[str]) -> None:
    assert kubelet.parse_flags(argv) == (known, ignored)


def test_node_name_lowercases_override_or_hostname() -> None:
    assert kubelet.node_name({"hostname-override": "Node-A"}) == "node-a"
    assert kubelet.node_name({}, hostname="MyHost") == "myhost"


def test_etcd_shim_translates_36_flags() -> None:
    args, notes = kubelet.translate_etcd_args(
        ["--name=n1", "--feature-gates=InitialCorruptCheck=true,Other=false",
         "--watch-progress-notify-interval=5s"])
    assert args == ["--name=n1", "--experimental-initial-corrupt-check=true", "--feature-gates=Other=false",
                    "--experimental-watch-progress-notify-interval=5s"]
    assert len(notes) == 2


def test_resolve_command_maps_control_plane_to_standins_and_prefers_lab_bin(tmp_path: Path) -> None:
    argv, how = kubelet.resolve_command(["kube-scheduler", "--bind-address=127.0.0.1"], None, python="/py")
    assert argv == ["/py", "-m", "tests.lab.standins.scheduler", "--bind-address=127.0.0.1"]
    real = tmp_path / "kube-scheduler"
    real.write_text("#!/bin/sh\n")
    real.chmod(0o755)
    argv, how = kubelet.resolve_command(["kube-scheduler", "--x"], str(tmp_path))
    assert argv == [str(real), "--x"] and "KUBEFAB_LAB_BIN" in how
    with pytest.raises(LookupError):
        kubelet.resolve_command(["no-such-binary-here"], None)


def test_pod_uid_changes_with_content_and_node() -> None:
    a = kubelet.pod_uid(b"x", "n1")
    assert a == kubelet.pod_uid(b"x", "n1") != kubelet.pod_uid(b"y", "n1") != kubelet.pod_uid(b"x", "n2")


def test_kubelet_version_flag(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(kubelet.VERSION_ENV, "v1.35.2")
    assert kubelet.main(["--version"]) == 0
    assert capsys.readouterr().out == "Kubernetes v1.35.2\n"


def test_lab_identity_differs_per_dir_and_is_private(tmp_path: Path) -> None:
    tag1, net1 = lab_identity(tmp_path / "a")
    tag2, net2 = lab_identity(tmp_path / "b")
    assert tag1 != tag2
    assert net1.startswith("10.") and net1.endswith(".0/24")
    assert lab_identity(tmp_path / "a") == (tag1, net1)


@pytest.mark.parametrize(("n", "k"), [(1, 1), (2, 1), (3, 3), (10, 3)])
def test_default_control_planes(n: int, k: int) -> None:
    assert default_control_planes(n) == k


def test_main_rejects_unknown_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert systemctl.main(["frobnicate", "x"]) == 1
    assert "Unknown command verb" in capsys.readouterr().err
    assert os.environ.get("PATH")  # sanity: the test did not clobber the environment


def _pod(name: str, command: list[str]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": "kube-system"},
                           "spec": {"hostNetwork": True, "containers": [{"name": name, "command": command}]}})


def test_kubelet_sync_starts_restarts_and_stops_static_pods(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The process side without a lab: manifests in a temp dir, processes on this machine."""
    monkeypatch.setenv(kubelet.BACKOFF_CAP_ENV, "1")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "sleeper.yaml").write_text(_pod("sleeper", ["sleep", "300"]))
    (manifests / ".hidden.yaml").write_text(_pod("hidden", ["sleep", "301"]))
    (manifests / "kube-scheduler.yaml").write_text(_pod("kube-scheduler", ["kube-scheduler", "--x"]))
    k = kubelet.Kubelet({}, {"staticPodPath": str(manifests)}, "n1", state_path=str(tmp_path / "run" / "pods.json"))
    k.pod_log_dir = str(tmp_path / "pods")
    monkeypatch.setitem(kubelet.STANDIN_MODULES, "kube-scheduler", "tests.lab.no_such_standin_module")
    try:
        k.sync_pods()
        reports = {r["manifest"]["metadata"]["name"]: r for r in k.pod_reports()}
        assert set(reports) == {"sleeper", "kube-scheduler"}  # dot files are ignored
        first = reports["sleeper"]
        assert first["running"] and first["pid"] and first["restarts"] == 0
        assert reports["kube-scheduler"]["failed"] and not reports["kube-scheduler"]["running"]
        log_file = tmp_path / "pods" / f"kube-system_sleeper_{first['uid']}" / "sleeper" / "0.log"
        assert log_file.exists()
        # death -> restarted after back-off, restart counted
        os.kill(first["pid"], 9)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            k.sync_pods()
            again = {r["manifest"]["metadata"]["name"]: r for r in k.pod_reports()}["sleeper"]
            if again["running"] and again["pid"] != first["pid"]:
                break
            time.sleep(0.1)
        assert again["running"] and again["restarts"] == 1
        # changed manifest -> new process with the new command line
        (manifests / "sleeper.yaml").write_text(_pod("sleeper", ["sleep", "302"]))
        k.sync_pods()
        changed = {r["manifest"]["metadata"]["name"]: r for r in k.pod_reports()}["sleeper"]
        assert changed["uid"] != first["uid"] and changed["pid"] != again["pid"]
        cmdline = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and b"302" not in cmdline:  # right after fork/exec
            cmdline = Path(f"/proc/{changed['pid']}/cmdline").read_bytes()
            time.sleep(0.01)
        assert cmdline.split(b"\0")[1:2] == [b"302"]
        # removed manifest -> stopped
        (manifests / "sleeper.yaml").unlink()
        k.sync_pods()
        assert "sleeper" not in {r["manifest"]["metadata"]["name"] for r in k.pod_reports()}
        assert not Path(f"/proc/{changed['pid']}").exists() or \
            Path(f"/proc/{changed['pid']}/stat").read_text().split()[2] == "Z"
    finally:
        for pod in k.pods.values():
            k.stop_pod(pod)


def test_standin_pods_can_import_the_repository_from_slash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pods run with cwd "/" and the manifest's env: the kubelet must add the repo to PYTHONPATH."""
    monkeypatch.delenv("PYTHONPATH", raising=False)
    # Any importable module of the repo serves as a stand-in that exits 0 at once.
    monkeypatch.setitem(kubelet.STANDIN_MODULES, "kube-scheduler", "tests.lab.netns")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "kube-scheduler.yaml").write_text(_pod("kube-scheduler", ["kube-scheduler", "--v=2"]))
    k = kubelet.Kubelet({}, {"staticPodPath": str(manifests)}, "n1", state_path=str(tmp_path / "run" / "pods.json"))
    k.pod_log_dir = str(tmp_path / "pods")
    k.sync_pods()
    proc = next(iter(k.pods.values())).containers[0].proc
    assert proc is not None
    assert proc.wait(timeout=20) == 0, (tmp_path / "pods").rglob("0.log").__next__().read_text()


# ---------------------------------------------------------------------------- kubelet restarts
def _kubelet(tmp_path: Path, manifests: Path) -> kubelet.Kubelet:
    k = kubelet.Kubelet({}, {"staticPodPath": str(manifests)}, "n1", state_path=str(tmp_path / "run" / "pods.json"))
    k.pod_log_dir = str(tmp_path / "pods")
    return k


def _pids(k: kubelet.Kubelet) -> dict[str, int | None]:
    return {r["manifest"]["metadata"]["name"]: r["pid"] for r in k.pod_reports()}


def _alive(pid: int | None) -> bool:
    return kubelet.proc_start_time(pid) is not None  # a zombie counts as gone


def _cmdline(pid: int, word: bytes) -> list[bytes]:
    deadline = time.monotonic() + 3
    args: list[bytes] = []
    while time.monotonic() < deadline and word not in args:  # right after fork/exec
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        time.sleep(0.01)
    return args


def test_adopt_process_needs_the_same_pid_and_start_time() -> None:
    """PID reuse safety: a recorded pid is adopted only while it has the recorded start time."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    start = None
    try:
        start = kubelet.proc_start_time(proc.pid)
        assert isinstance(start, int) and start > 0
        adopted = kubelet.adopt_process(proc.pid, start)
        assert adopted is not None and adopted.pid == proc.pid and adopted.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            adopted.wait(timeout=0.05)
        # The same pid with another start time is another process that got the pid: never ours.
        assert kubelet.adopt_process(proc.pid, start + 1) is None
        assert kubelet.adopt_process(proc.pid, start - 1) is None
        assert kubelet.adopt_process(proc.pid, None) is None
        assert kubelet.adopt_process(str(proc.pid), start) is None
        assert kubelet.adopt_process(0, start) is None and kubelet.adopt_process(-1, start) is None
        proc.kill()  # not reaped yet: a zombie, which has exited
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and Path(f"/proc/{proc.pid}/stat").read_text().split()[2] != "Z":
            time.sleep(0.01)
        assert kubelet.adopt_process(proc.pid, start) is None
        assert adopted.poll() == kubelet.UNKNOWN_EXIT == adopted.returncode
        assert adopted.wait(timeout=1) == kubelet.UNKNOWN_EXIT
    finally:
        proc.kill()
        proc.wait()
    assert kubelet.adopt_process(proc.pid, start) is None


def test_a_restarted_kubelet_adopts_its_pods_and_syncs_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next kubelet keeps what still runs (same pid), restarts a changed pod, stops a removed
    one, starts again a pod that died meanwhile or whose pid now names another process."""
    monkeypatch.setenv(kubelet.BACKOFF_CAP_ENV, "1")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name, seconds in (("keep", "300"), ("change", "301"), ("remove", "302"), ("killed", "303"),
                          ("reused", "304")):
        (manifests / f"{name}.yaml").write_text(_pod(name, ["sleep", seconds]))
    first = _kubelet(tmp_path, manifests)
    second: kubelet.Kubelet | None = None
    children: list = []
    try:
        first.sync_pods()
        children = [c.proc for pod in first.pods.values() for c in pod.containers]
        before = _pids(first)
        assert all(before.values())
        first.save_state(force=True)  # what run() does at exit: no pod is stopped
        state = json.loads(Path(first.state_path).read_text())
        entries = {p["static_name"]: p for p in state["pods"]}
        keep = entries["keep"]
        assert keep["name"] == "keep-n1" and keep["namespace"] == "kube-system" and keep["path"].endswith("keep.yaml")
        assert keep["digest"] == hashlib.sha256((manifests / "keep.yaml").read_bytes()).hexdigest()
        assert re.fullmatch(r"[0-9a-f]{64}", keep["id"]) and keep["uid"] == first.pods[keep["path"]].uid
        (c0,) = keep["containers"]
        assert (c0["name"], c0["pid"], c0["restarts"]) == ("keep", before["keep"], 0)
        assert c0["start_time"] == kubelet.proc_start_time(before["keep"]) and c0["started_wall"] > 0
        # While no kubelet runs: a manifest changes, one goes away, a pod dies, and one pid is
        # recorded with another start time (what a reused pid looks like).
        (manifests / "change.yaml").write_text(_pod("change", ["sleep", "305"]))
        (manifests / "remove.yaml").unlink()
        os.kill(before["killed"], signal.SIGKILL)
        entries["reused"]["containers"][0]["start_time"] -= 1
        Path(first.state_path).write_text(json.dumps(state))

        second = _kubelet(tmp_path, manifests)
        second.adopt()
        assert set(second.pods) == set(first.pods)  # the removed one too, to be stopped by the sync
        adopted = second.pods[keep["path"]]
        assert isinstance(adopted.containers[0].proc, kubelet.AdoptedProcess)
        assert (adopted.id, adopted.uid) == (keep["id"], keep["uid"])
        second.sync_pods()
        after = _pids(second)
        assert after["keep"] == before["keep"]  # adopted, not restarted
        assert after["change"] not in (None, before["change"]) and not _alive(before["change"])
        assert _cmdline(after["change"], b"305")[1:2] == [b"305"]
        assert "remove" not in after and not _alive(before["remove"])
        assert after["killed"] not in (None, before["killed"])
        assert after["reused"] not in (None, before["reused"])  # not adopted: started again...
        assert _alive(before["reused"])  # ...and whatever holds the recorded pid is left alone
        restarts = {r["manifest"]["metadata"]["name"]: r["restarts"] for r in second.pod_reports()}
        assert restarts == {"keep": 0, "change": 0, "killed": 1, "reused": 1}
        # An adopted container that dies is restarted (with back-off), like any other.
        os.kill(after["keep"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _pids(second)["keep"] in (None, after["keep"]):
            second.sync_pods()
            time.sleep(0.05)
        report = {r["manifest"]["metadata"]["name"]: r for r in second.pod_reports()}["keep"]
        assert report["running"] and report["pid"] != after["keep"] and report["restarts"] == 1
        # The state file follows what runs.
        recorded = {p["static_name"]: p["containers"][0]["pid"] for p in kubelet.read_state(second.state_path)["pods"]}
        assert recorded == _pids(second)
    finally:
        if second is not None:
            for pod in second.pods.values():
                second.stop_pod(pod)
        for proc in children:
            proc.kill()
            proc.wait()


def _columns(out: str) -> list[dict[str, str]]:
    """Rows of a crictl table, cut at the header's column starts."""
    header, *lines = out.splitlines()
    starts = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [s for s, _ in starts[1:]] + [None]
    return [{name: line[start:end].strip() for (start, name), end in zip(starts, ends)} for line in lines]


@pytest.fixture
def cri_socket(tmp_path: Path) -> Iterator[str]:
    """A listening UNIX socket: what crictl dials before it talks to the runtime."""
    path = tmp_path / "cri.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(16)
    try:
        yield f"unix://{path}"
    finally:
        s.close()


def test_crictl_lists_stops_and_removes_the_kubelets_pods(tmp_path: Path, cri_socket: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(_pod("a", ["sleep", "310"]))
    (manifests / "b.yaml").write_text(_pod("b", ["sleep", "311"]))
    k = _kubelet(tmp_path, manifests)

    def run(*args: str) -> tuple[int, str, str]:
        code = crictl.main(["--runtime-endpoint", cri_socket, *args], state_path=k.state_path)
        out = capsys.readouterr()
        return code, out.out, out.err

    try:
        k.sync_pods()
        pids = _pids(k)
        code, out, _ = run("pods")
        assert code == 0 and re.split(r"\s{2,}", out.splitlines()[0]) == [
            "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]
        assert sorted((r["NAME"], r["STATE"], r["NAMESPACE"], r["ATTEMPT"], r["CREATED"]) for r in _columns(out)) == [
            ("a-n1", "Ready", "kube-system", "0", "Less than a second ago"),
            ("b-n1", "Ready", "kube-system", "0", "Less than a second ago")]
        code, out, _ = run("pods", "-q")
        ids = out.split()
        assert code == 0 and len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)
        code, out, _ = run("ps")
        assert re.split(r"\s{2,}", out.splitlines()[0]) == [
            "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"]
        assert sorted((r["STATE"], r["NAME"], r["POD"], r["NAMESPACE"]) for r in _columns(out)) == [
            ("Running", "a", "a-n1", "kube-system"), ("Running", "b", "b-n1", "kube-system")]
        by_name = {p["metadata"]["name"]: p for p in json.loads(run("pods", "-o", "json")[1])["items"]}
        a_id = by_name["a-n1"]["id"]
        # A Ready pod is not removed without --force; stopp then rmp removes it.
        code, _, err = run("rmp", a_id[:8])
        assert code == 1 and f'pod sandbox \\"{a_id[:8]}\\" is running, please stop it first' in err
        assert _alive(pids["a"])
        code, out, _ = run("stopp", a_id[:8])
        assert (code, out) == (0, f"Stopped sandbox {a_id[:8]}\n") and not _alive(pids["a"])
        assert json.loads(run("pods", "-o", "json", "--name", "^a-")[1])["items"][0]["state"] == "SANDBOX_NOTREADY"
        assert "Exited" in run("ps", "-a")[1] and "Exited" not in run("ps")[1]
        assert run("rmp", a_id) == (0, f"Removed sandbox {a_id}\n", "")
        # --all --force: stops and removes every pod, no process left.
        code, out, _ = run("rmp", "--all", "--force")
        b_id = by_name["b-n1"]["id"]
        assert (code, out) == (0, f"Stopped sandbox {b_id}\nRemoved sandbox {b_id}\n") and not _alive(pids["b"])
        assert run("pods", "-q")[:2] == (0, "") and kubelet.read_state(k.state_path)["pods"] == []
        code, out, err = run("rmp", "-af")
        assert (code, out) == (0, "") and "No pods to remove" in err
        code, _, err = run("stopp", "0123")
        assert code == 1 and "NotFound" in err and "level=fatal" in err
        # The endpoint must answer, as crictl's dial does.
        assert crictl.main(["-r", f"unix://{tmp_path}/none.sock", "pods"], state_path=k.state_path) == 1
        assert f"dial unix {tmp_path}/none.sock: connect: no such file or directory" in capsys.readouterr().err
        assert crictl.main(["-r", cri_socket, "frobnicate"], state_path=k.state_path) == 3
        assert "No help topic for 'frobnicate'" in capsys.readouterr().err
    finally:
        for pod in k.pods.values():
            k.stop_pod(pod)


def test_crictl_formats_like_crictl() -> None:
    assert [crictl.human_duration(s) for s in (0.5, 1, 59, 60, 119, 3000, 3600, 7200, 3 * 86400)] == [
        "Less than a second", "1 second", "59 seconds", "About a minute", "About a minute", "50 minutes",
        "About an hour", "2 hours", "3 days"]
    assert crictl.table([["A", "BB"], ["x" * 18, "last cell never padded"]]) == (
        "A" + " " * 20 + "BB\n" + "x" * 18 + "   last cell never padded\n")
