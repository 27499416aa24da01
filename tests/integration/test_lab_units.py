"""Pure tests of the lab's parts (no root, no namespaces): the systemctl stand-in's unit
parsing and expansion, lab naming."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.core.manifests.kubelet import render_kubelet_dropin
from tests.lab import systemctl
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
