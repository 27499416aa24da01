"""The lab's container images, assembled from the real binaries as at an air-gapped site.

No registry is reachable from the lab, so the images kubefab's manifests and addons name
(``registry.k8s.io/kube-apiserver:v1.36.3``, ``registry.k8s.io/etcd:3.6.8-0``, ...) are built here
from the binaries ``tests/lab/k8s/build.sh`` compiled (each Kubernetes release with the etcd and
CoreDNS releases kubeadm of its minor pins, so every tag names the binary it holds), written as
docker-format archives by ``labimage`` (go-containerregistry) and imported into each host's
containerd, as an operator preloads images. Two archives per Kubernetes version: one for control planes (everything) and
one for workers (pause, kube-proxy, CoreDNS, the workload image).

The images hold what the upstream ones do where it matters: the binary at the path kubeadm's
manifests run (``/usr/local/bin/<component>``, ``/coredns``, ``/pause``), and for kube-proxy the
iptables and conntrack tools it calls (Debian's, with their libraries), in nft mode like the
hosts' own iptables.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tasks.core import versions
from tasks.core.errors import KubefabError

CACHE = Path(os.environ.get("KUBEFAB_LAB_CACHE", "/var/cache/kubefab-lab"))
BUILD_SCRIPT = Path(__file__).resolve().parent / "k8s" / "build.sh"
REGISTRY = "registry.k8s.io"
DEFAULT_K8S_VERSION = "v1.36.3"  # the release the lab runs unless told (build.sh builds it first)
BUSYBOX_IMAGE = "kubefab.local/lab/busybox:1.35.0"  # the workload image (Debian's busybox-static)
PAUSE_VERSION = "3.10.2"  # kubeadm 1.36's; the lab's one pause image for every release
CRICTL_VERSION = "v1.36.0"
# kubeadm, the judge, for every minor kubefab supports: the newest patch the Go proxy serves
# (build.sh's K8S_VERSIONS build it with the rest of a release, KUBEADM_VERSIONS alone)
KUBEADM_VERSIONS = {33: "v1.33.13", 34: "v1.34.4", 35: "v1.35.4", 36: "v1.36.3"}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
IPTABLES_TOOLS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                  "ip6tables-restore")


class ImageError(KubefabError):
    """The lab's images could not be built."""


def etcd_version(k8s_version: str) -> str:
    """The etcd release kubeadm of ``k8s_version``'s minor pins (tasks/core/versions.py's tag
    ``3.6.6-0`` is etcd ``v3.6.6``): the one the lab builds and runs with that release."""
    return "v" + versions.for_version(k8s_version).etcd_tag.split("-")[0]


def coredns_version(k8s_version: str) -> str:
    """The CoreDNS release kubeadm of ``k8s_version``'s minor pins (``v1.13.1`` for 1.35)."""
    return versions.for_version(k8s_version).coredns_tag


# the default release's etcd (the API helper tests run it; conftest puts its etcdctl on PATH)
ETCD_VERSION = etcd_version(DEFAULT_K8S_VERSION)


@dataclass(frozen=True)
class Binaries:
    """Where the built binaries of one Kubernetes version (and its etcd, CoreDNS...) are."""

    version: str

    @property
    def etcd_version(self) -> str:
        return etcd_version(self.version)

    @property
    def coredns_version(self) -> str:
        return coredns_version(self.version)

    @property
    def k8s(self) -> Path:
        return CACHE / "k8s" / self.version / "bin"

    @property
    def etcd(self) -> Path:
        return CACHE / "etcd" / self.etcd_version / "bin"

    @property
    def coredns(self) -> Path:
        return CACHE / "coredns" / self.coredns_version / "bin" / "coredns"

    @property
    def pause(self) -> Path:
        return CACHE / "pause" / PAUSE_VERSION / "bin" / "pause"

    @property
    def crictl(self) -> Path:
        return CACHE / "crictl" / CRICTL_VERSION / "bin" / "crictl"

    @property
    def labimage(self) -> Path:
        return CACHE / "labimage" / "current" / "bin" / "labimage"

    @property
    def kubelet(self) -> Path:
        return self.k8s / "kubelet"

    def missing(self) -> list[Path]:
        """What ``build.sh all`` has yet to build for this release (nothing on a warm cache)."""
        need = [self.k8s / name for name in (*CONTROL_PLANE_COMPONENTS, "kube-proxy", "kubelet", "kubectl")]
        need += [self.etcd / "etcd", self.etcd / "etcdctl", self.etcd / "etcdutl", self.coredns, self.pause, self.crictl, self.labimage]
        return [p for p in need if not p.exists()]


def kubeadm(minor: int) -> Path:
    """The built kubeadm of a supported minor (with its release's binaries, or built alone)."""
    version = KUBEADM_VERSIONS[minor]
    whole = CACHE / "k8s" / version / "bin" / "kubeadm"
    return whole if whole.exists() else CACHE / "kubeadm" / version / "bin" / "kubeadm"


def ensure_built(version: str) -> Binaries:
    """Build what is missing for ``version`` (once; build.sh keeps a cache and a lock)."""
    bins = Binaries(version)
    if bins.missing():
        proc = subprocess.run(["bash", str(BUILD_SCRIPT), "all"], capture_output=True, text=True)
        if proc.returncode != 0 or bins.missing():
            raise ImageError(f"building the lab's Kubernetes {version} failed",
                             details=(proc.stderr or proc.stdout).splitlines()[-15:],
                             fix=f"run 'bash {BUILD_SCRIPT} all' and read its output")
    return bins


def _ldd_closure(paths: list[str]) -> set[str]:
    """The shared libraries (real paths) the given ELF files load, and the dynamic loader."""
    libs: set[str] = set()
    proc = subprocess.run(["ldd", *paths], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.add(parts[2])
        elif len(parts) == 2 and parts[0].startswith("/") and parts[1].startswith("(0x"):
            libs.add(parts[0])  # the loader: /lib64/ld-linux-x86-64.so.2
    return libs


def _host_tools_files() -> tuple[list[dict], list[dict]]:
    """Debian's iptables (nft backend) and conntrack for the kube-proxy image."""
    multi = "/usr/sbin/xtables-nft-multi"
    xt_dir = Path("/usr/lib/x86_64-linux-gnu/xtables")
    for need in (multi, "/usr/sbin/conntrack"):
        if not Path(need).exists():
            raise ImageError(f"{need} is missing (kube-proxy's image needs it)",
                             fix="run scripts/ensure-apt.sh (iptables, conntrack)")
    elves = [multi, "/usr/sbin/conntrack", *(str(p) for p in sorted(xt_dir.glob("*.so")))]
    files = [{"src": p, "dest": p} for p in elves]
    for lib in sorted(_ldd_closure(elves)):
        files.append({"src": os.path.realpath(lib), "dest": lib})
        real = os.path.realpath(lib)
        if real != lib:
            files.append({"src": real, "dest": real})
    for etc in ("/etc/protocols", "/etc/services", "/etc/ethertypes"):
        if Path(etc).exists():
            files.append({"src": etc, "dest": etc})
    links = [{"dest": f"/usr/sbin/{t}", "target": "xtables-nft-multi"} for t in IPTABLES_TOOLS]
    links += [{"dest": f"/usr/sbin/{t.replace('tables', 'tables-nft', 1)}", "target": "xtables-nft-multi"}
              for t in IPTABLES_TOOLS]
    return _dedupe(files), links


def _dedupe(files: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for f in files:
        seen[f["dest"]] = f
    return list(seen.values())


def image_specs(bins: Binaries) -> dict[str, list[dict]]:
    """The labimage specs, by role: {"control-plane": [...], "worker": [...]}."""
    v = bins.version
    info = versions.for_version(v)
    usr = lambda name, src: {"src": str(src), "dest": f"/usr/local/bin/{name}", "mode": 0o755}  # noqa: E731
    pause = {"tag": f"{REGISTRY}/pause:{PAUSE_VERSION}", "entrypoint": ["/pause"],
             "files": [{"src": str(bins.pause), "dest": "/pause", "mode": 0o755}]}
    tools, links = _host_tools_files()
    proxy = {"tag": f"{REGISTRY}/kube-proxy:{v}", "entrypoint": ["/usr/local/bin/kube-proxy"], "env": [PATH_ENV],
             "files": [usr("kube-proxy", bins.k8s / "kube-proxy"), *tools], "symlinks": links,
             "dirs": ["/tmp", "/run", "/var/lib/kube-proxy", "/lib/modules"]}
    coredns = {"tag": f"{REGISTRY}/coredns/coredns:{info.coredns_tag}", "entrypoint": ["/coredns"],
               "files": [{"src": str(bins.coredns), "dest": "/coredns", "mode": 0o755}], "dirs": ["/tmp"]}
    busybox_links = ["sh", "sleep", "cat", "ls", "echo", "nslookup", "wget", "hostname", "env", "ping", "nc",
                     "ip", "true", "false", "date", "id", "ps", "grep", "head", "tail", "mkdir", "rm"]
    busybox = {"tag": BUSYBOX_IMAGE, "entrypoint": ["/bin/sh"], "env": [PATH_ENV],
               "files": [{"src": "/bin/busybox", "dest": "/bin/busybox", "mode": 0o755}],
               "symlinks": [{"dest": f"/bin/{t}", "target": "busybox"} for t in busybox_links],
               "dirs": ["/tmp", "/etc"]}
    etcd = {"tag": f"{REGISTRY}/etcd:{info.etcd_tag}", "entrypoint": ["/usr/local/bin/etcd"], "env": [PATH_ENV],
            "files": [usr("etcd", bins.etcd / "etcd"), usr("etcdctl", bins.etcd / "etcdctl")],
            "dirs": ["/tmp", "/var/lib/etcd"]}
    components = [{"tag": f"{REGISTRY}/{c}:{v}", "entrypoint": [f"/usr/local/bin/{c}"], "env": [PATH_ENV],
                   "files": [usr(c, bins.k8s / c)], "dirs": ["/tmp"]} for c in CONTROL_PLANE_COMPONENTS]
    worker = [pause, proxy, coredns, busybox]
    return {"worker": worker, "control-plane": [*worker, etcd, *components]}


def _fingerprint(specs: dict) -> str:
    h = hashlib.sha256(json.dumps(specs, sort_keys=True).encode())
    for role in sorted(specs):
        for img in specs[role]:
            for f in img.get("files", []):
                st = os.stat(f["src"])
                h.update(f"{f['src']}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def ensure_images(version: str) -> dict[str, Path]:
    """The image archives for ``version`` by role, built once and kept in the cache."""
    bins = ensure_built(version)
    specs = image_specs(bins)
    out = CACHE / "images" / f"{version}-{_fingerprint(specs)}"
    archives = {role: out / f"{role}.tar" for role in specs}
    if all(p.exists() for p in archives.values()):
        return archives
    out.mkdir(parents=True, exist_ok=True)
    for role, images in specs.items():
        if archives[role].exists():
            continue
        spec = json.dumps({"output": str(archives[role]), "images": images}).encode()
        proc = subprocess.run([str(bins.labimage)], input=spec, capture_output=True)
        if proc.returncode != 0:
            raise ImageError(f"assembling the lab's {role} images for {version} failed",
                             details=proc.stderr.decode(errors="replace").splitlines()[-10:],
                             fix=f"run {bins.labimage} by hand with the spec in tests/lab/images.py")
    return archives
