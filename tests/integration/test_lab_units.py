"""Pure tests of the lab's parts (no root, no namespaces): systemctl parsing and
expansion, the lab kubelet's flags and etcd shim, lab naming."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tasks.core.manifests import render_kubelet_dropin
from tests.lab import kubelet, systemctl
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
    k = kubelet.Kubelet({}, {"staticPodPath": str(manifests)}, "n1")
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
    k = kubelet.Kubelet({}, {"staticPodPath": str(manifests)}, "n1")
    k.pod_log_dir = str(tmp_path / "pods")
    k.sync_pods()
    proc = next(iter(k.pods.values())).containers[0].proc
    assert proc is not None
    assert proc.wait(timeout=20) == 0, (tmp_path / "pods").rglob("0.log").__next__().read_text()
