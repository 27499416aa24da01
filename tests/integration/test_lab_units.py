"""Pure tests of the lab's parts (no root, no namespaces): the systemctl stand-in's unit
parsing and expansion, lab naming, which etcd and CoreDNS each release's images hold and what
build.sh builds for them."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tasks.core import versions
from tasks.core.manifests.kubelet import render_kubelet_dropin
from tests.lab import images, systemctl
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


# ---------------------------------------------------------------------------- images and build.sh
# Each Kubernetes release the lab builds runs the etcd and CoreDNS kubeadm of its minor pins
# (tasks/core/versions.py), so every image tag names the binary it holds.
PINS = {"v1.36.3": ("v3.6.8", "v1.14.2"), "v1.35.4": ("v3.6.6", "v1.13.1")}


def build_sh_k8s_versions() -> list[str]:
    text = images.BUILD_SCRIPT.read_text()
    m = re.search(r'^K8S_VERSIONS="([^"]*)"', text, re.M)
    assert m, "build.sh has no K8S_VERSIONS"
    return m.group(1).split()


def test_the_lab_builds_the_releases_whose_pins_are_known() -> None:
    assert sorted(build_sh_k8s_versions()) == sorted(PINS)
    assert images.DEFAULT_K8S_VERSION == build_sh_k8s_versions()[0]


@pytest.mark.parametrize("version", sorted(PINS))
def test_each_release_gets_the_etcd_and_coredns_of_its_minor(version: str) -> None:
    etcd, coredns = PINS[version]
    info = versions.for_version(version)
    assert (images.etcd_version(version), images.coredns_version(version)) == (etcd, coredns)
    assert info.etcd_tag.split("-")[0] == etcd[1:] and info.coredns_tag == coredns  # the table's own words
    bins = images.Binaries(version)
    assert bins.etcd == images.CACHE / "etcd" / etcd / "bin"
    assert bins.coredns == images.CACHE / "coredns" / coredns / "bin" / "coredns"
    modules = images.BUILD_SCRIPT.parent / "modules"
    for name, module, want in ((f"etcd-{etcd}", "go.etcd.io/etcd/server/v3", etcd),
                               (f"coredns-{coredns}", "github.com/coredns/coredns", coredns)):
        assert (modules / name / "go.sum").is_file(), name
        assert f"\t{module} {want} " in (modules / name / "go.mod").read_text(), name


@pytest.mark.parametrize("version", sorted(PINS))
def test_build_sh_reads_the_same_pins(version: str) -> None:
    r = subprocess.run(["bash", str(images.BUILD_SCRIPT), "pins", version], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert tuple(r.stdout.split()) == PINS[version]


@pytest.mark.parametrize("version", sorted(PINS))
def test_image_specs_tag_each_binary_truthfully(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "_host_tools_files", lambda: ([], []))
    info = versions.for_version(version)
    etcd, coredns = PINS[version]
    specs = {img["tag"]: img for img in images.image_specs(images.Binaries(version))["control-plane"]}
    etcd_img = specs[f"registry.k8s.io/etcd:{info.etcd_tag}"]
    assert {f["src"] for f in etcd_img["files"]} == {
        str(images.CACHE / "etcd" / etcd / "bin" / b) for b in ("etcd", "etcdctl")}
    dns_img = specs[f"registry.k8s.io/coredns/coredns:{info.coredns_tag}"]
    assert [f["src"] for f in dns_img["files"]] == [str(images.CACHE / "coredns" / coredns / "bin" / "coredns")]
    assert not [t for t in specs if ("etcd:" in t and t != f"registry.k8s.io/etcd:{info.etcd_tag}")
                or ("coredns:" in t and not t.endswith(f":{info.coredns_tag}"))]


def _warm_cache(root: Path, etcds: tuple[str, ...], corednses: tuple[str, ...]) -> None:
    """A cache as build.sh leaves it, with only the given etcd and CoreDNS versions."""
    def done(d: Path, *bins: str) -> None:
        (d / "bin").mkdir(parents=True, exist_ok=True)
        for b in bins:
            (d / "bin" / b).write_text("")
            (d / "bin" / b).chmod(0o755)
        (d / ".complete").write_text("")

    here = images.BUILD_SCRIPT.parent
    sum_ = hashlib.sha256(b"".join((here / "modules" / "labimage" / f).read_bytes()
                                   for f in ("main.go", "go.mod", "go.sum"))).hexdigest()[:12]
    done(root / "labimage" / sum_, "labimage")
    (root / "labimage" / "current").symlink_to(root / "labimage" / sum_)
    done(root / "pause" / images.PAUSE_VERSION, "pause")
    done(root / "crictl" / images.CRICTL_VERSION, "crictl")
    for v in PINS:
        done(root / "k8s" / v, *images.CONTROL_PLANE_COMPONENTS, "kube-proxy", "kubelet", "kubectl", "kubeadm")
    for minor, v in images.KUBEADM_VERSIONS.items():
        if v not in PINS:
            done(root / "kubeadm" / v, "kubeadm")
    for v in etcds:
        done(root / "etcd" / v, "etcd", "etcdctl", "etcdutl")
    for v in corednses:
        done(root / "coredns" / v, "coredns")


def _build_all(cache: Path, tmp: Path) -> list[str]:
    """``build.sh all`` on ``cache`` with a ``go`` that only says where it was asked to build."""
    fake = tmp / "fakebin"
    fake.mkdir()
    log = tmp / "go.log"
    (fake / "go").write_text(f'#!/bin/sh\necho "$(basename "$PWD") $*" >> {log}\n')
    (fake / "go").chmod(0o755)
    env = {**os.environ, "KUBEFAB_LAB_CACHE": str(cache), "PATH": f"{fake}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", str(images.BUILD_SCRIPT), "all"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return log.read_text().splitlines() if log.exists() else []


def test_a_warm_cache_builds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    _warm_cache(cache, ("v3.6.8", "v3.6.6"), ("v1.14.2", "v1.13.1"))
    monkeypatch.setattr(images, "CACHE", cache)
    assert all(images.Binaries(v).missing() == [] for v in PINS)
    assert _build_all(cache, tmp_path) == []


def test_a_cache_from_before_builds_only_the_previous_minors_etcd_and_coredns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache of a machine that ran the lab when it had one etcd and one CoreDNS: the lab
    sees v1.35.4 as incomplete, and ``build.sh all`` builds the two missing releases only."""
    cache = tmp_path / "cache"
    _warm_cache(cache, ("v3.6.8",), ("v1.14.2",))
    monkeypatch.setattr(images, "CACHE", cache)
    assert images.Binaries("v1.36.3").missing() == []
    assert sorted(p.relative_to(cache).as_posix() for p in images.Binaries("v1.35.4").missing()) == [
        "coredns/v1.13.1/bin/coredns", "etcd/v3.6.6/bin/etcd", "etcd/v3.6.6/bin/etcdctl", "etcd/v3.6.6/bin/etcdutl"]
    calls = _build_all(cache, tmp_path)
    assert {c.split()[0] for c in calls} == {"etcd-v3.6.6", "coredns-v1.13.1"}, calls
    assert [c.split()[-1] for c in calls if c.startswith("etcd-")] == [
        "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3", "go.etcd.io/etcd/etcdutl/v3"]
    assert (cache / "etcd" / "v3.6.6" / ".complete").exists() and (cache / "coredns" / "v1.13.1" / ".complete").exists()
