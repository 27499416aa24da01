#!/usr/bin/env bash
# Builds the real Kubernetes components for the lab from their Go modules, into a cache
# outside the repository, once: a component already in the cache is never built again.
#
#   tests/lab/k8s/build.sh [all]          everything the lab and the tests use
#   tests/lab/k8s/build.sh k8s v1.36.3    one Kubernetes release (all its binaries)
#   tests/lab/k8s/build.sh kubeadm v1.34.4
#   tests/lab/k8s/build.sh etcd [V] | coredns [V]   one version, or those of every K8S_VERSIONS release
#   tests/lab/k8s/build.sh pause | crictl | labimage
#   tests/lab/k8s/build.sh pins v1.35.4    print the etcd and CoreDNS versions that release's lab uses
#   tests/lab/k8s/build.sh gomod k8s v1.36.3   (maintainers) write modules/<name>/go.mod + go.sum
#
# The Go modules are in tests/lab/k8s/modules/<name>/ (go.mod and go.sum only; the sources come
# from the Go module cache). Output: $KUBEFAB_LAB_CACHE (default /var/cache/kubefab-lab)/
#   k8s/<version>/bin/{kube-apiserver,...}   etcd/<version>/bin/{etcd,etcdctl,etcdutl}
#   coredns/<version>/bin/coredns            pause/<version>/bin/pause   crictl/<version>/bin/crictl   labimage/current/bin/labimage
# A flock on $CACHE/.build.lock keeps two runs from building at once.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${KUBEFAB_LAB_CACHE:-/var/cache/kubefab-lab}"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0 GOTOOLCHAIN=local

# The versions the lab runs. Kubernetes: the newest served patch of 1.36 and of 1.35 (upgrades);
# kubeadm alone for the older minors kubefab supports. etcd and CoreDNS: for each K8S_VERSIONS
# release, what kubeadm of its minor pins, read from tasks/core/versions.py (see pins below:
# 1.36 etcd v3.6.8 and CoreDNS v1.14.2, 1.35 etcd v3.6.6 and CoreDNS v1.13.1). pause: what
# kubeadm 1.36 pins (PauseVersion 3.10.2), one for every release.
K8S_VERSIONS="v1.36.3 v1.35.4"
KUBEADM_VERSIONS="v1.34.4 v1.33.13"
PAUSE_VERSION=3.10.2
CRITOOLS_VERSION=v1.36.0
K8S_TOOLS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl"

log() { printf '[lab-k8s] %s\n' "$*" >&2; }

# pins K8S_VERSION: "ETCD_VERSION COREDNS_VERSION", the etcd and CoreDNS releases kubeadm of that
# minor pins, from the table in tasks/core/versions.py (etcd tag 3.6.6-0 is etcd v3.6.6), through
# tests/lab/images.py, which points the lab's images at the same ones.
pins() {
    local out
    out="$(python3 - "$ROOT" "$1" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from tests.lab import images
print(images.etcd_version(sys.argv[2]), images.coredns_version(sys.argv[2]))
EOF
)" || { log "cannot read the etcd and CoreDNS versions of $1 from tasks/core/versions.py"; exit 1; }
    echo "$out"
}

# all_pins KIND: the etcd (KIND=etcd) or CoreDNS versions of every K8S_VERSIONS release, once each.
all_pins() {
    local v p etcd coredns seen=" "
    for v in $K8S_VERSIONS; do
        p="$(pins "$v")"; read -r etcd coredns <<<"$p"
        [[ "$1" == etcd ]] && p="$etcd" || p="$coredns"
        [[ "$seen" == *" $p "* ]] || seen+="$p "
    done
    echo $seen
}

# k8s_ldflags VERSION: what hack/lib/version.sh sets, so --version and /version tell the release.
k8s_ldflags() {
    local v="$1" minor
    minor="$(echo "$v" | cut -d. -f2)"
    local date; date="$(module_time k8s.io/kubernetes "$v")"
    local f="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
    done
    echo "$f"
}

# module_time MODULE VERSION: the release time the module proxy records (a stable build date).
module_time() {
    sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/$1/@v/$2.info" 2>/dev/null || true
}

# done_marker DIR: a build is complete only when its marker exists (an interrupted one is redone).
built() { [[ -f "$1/.complete" ]]; }

build_k8s() {   # build_k8s VERSION [tools...]
    local v="$1"; shift
    local tools="${*:-$K8S_TOOLS}" name="k8s-$v" out="$CACHE/k8s/$v"
    [[ "$tools" == kubeadm ]] && { name="kubeadm-$v"; out="$CACHE/kubeadm/$v"; }
    built "$out" && { log "k8s $v: cached in $out"; return; }
    local mod="$HERE/modules/$name"
    [[ -f "$mod/go.mod" ]] || { log "no Go module for $name: run '$0 gomod k8s $v'"; exit 1; }
    log "building Kubernetes $v ($tools) into $out"
    local pkgs=() t; for t in $tools; do pkgs+=("k8s.io/kubernetes/cmd/$t"); done
    mkdir -p "$out/bin"
    (cd "$mod" && go mod download k8s.io/kubernetes && \
        go build -trimpath -ldflags "$(k8s_ldflags "$v")" -o "$out/bin/" "${pkgs[@]}")
    touch "$out/.complete"
}

build_simple() {   # build_simple KIND VERSION MODULE_DIR PACKAGE... (binaries named after the last path element)
    local kind="$1" v="$2" name="$3"; shift 3
    local out="$CACHE/$kind/$v"
    built "$out" && { log "$kind $v: cached in $out"; return; }
    log "building $kind $v into $out"
    mkdir -p "$out/bin"
    (cd "$HERE/modules/$name" && go build -trimpath -ldflags "-s -w ${LDFLAGS:-}" -o "$out/bin/" "$@")
    touch "$out/.complete"
}

build_etcd() {   # build_etcd VERSION; the binaries are named after their packages' last element ("v3"): name them
    local v="$1" out="$CACHE/etcd/$1"
    # a cache made before etcdutl was added has the marker without it: build again
    built "$out" && [[ -x "$out/bin/etcdutl" ]] && { log "etcd $v: cached in $out"; return; }
    [[ -f "$HERE/modules/etcd-$v/go.mod" ]] || { log "no Go module for etcd-$v: run '$0 gomod etcd $v'"; exit 1; }
    log "building etcd $v into $out"
    mkdir -p "$out/bin"
    (cd "$HERE/modules/etcd-$v" &&
        go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3 &&
        go build -trimpath -ldflags "-s -w" -o "$out/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3 &&
        go build -trimpath -ldflags "-s -w" -o "$out/bin/etcdutl" go.etcd.io/etcd/etcdutl/v3)
    touch "$out/.complete"
}

build_coredns() {   # build_coredns VERSION
    [[ -f "$HERE/modules/coredns-$1/go.mod" ]] || { log "no Go module for coredns-$1: run '$0 gomod coredns $1'"; exit 1; }
    build_simple coredns "$1" "coredns-$1" github.com/coredns/coredns
}

build_crictl() {
    build_simple crictl "$CRITOOLS_VERSION" "crictl-$CRITOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
}

# labimage: the lab's image assembler (modules/labimage/main.go, on go-containerregistry).
build_labimage() {
    local sum out; sum="$(cat "$HERE/modules/labimage/"{main.go,go.mod,go.sum} | sha256sum | cut -c1-12)"
    out="$CACHE/labimage/$sum"
    built "$out" && { log "labimage: cached in $out"; return; }
    log "building labimage into $out"
    mkdir -p "$out/bin"
    (cd "$HERE/modules/labimage" && go build -trimpath -ldflags "-s -w" -o "$out/bin/labimage" .)
    touch "$out/.complete"
    ln -sfn "$out" "$CACHE/labimage/current"
}

# pause: the C program kubeadm's pause image runs, from the k8s.io/kubernetes module's build/pause.
build_pause() {
    local out="$CACHE/pause/$PAUSE_VERSION"
    built "$out" && { log "pause $PAUSE_VERSION: cached in $out"; return; }
    local src="$GOMODCACHE/k8s.io/kubernetes@v1.36.3/build/pause/linux/pause.c"
    [[ -f "$src" ]] || (cd "$HERE/modules/k8s-v1.36.3" && go mod download k8s.io/kubernetes)
    mkdir -p "$out/bin"
    gcc -Os -static -Wall -Werror -DVERSION="v$PAUSE_VERSION-kubefab-lab" -o "$out/bin/pause" "$src"
    strip "$out/bin/pause"
    touch "$out/.complete"
}

# gomod KIND VERSION: (maintainers) write a module's go.mod and go.sum from the proxy.
gomod() {
    local kind="$1" v="$2" dir tools="$K8S_TOOLS"
    case "$kind" in
        k8s|kubeadm)
            [[ "$kind" == kubeadm ]] && tools=kubeadm
            dir="$HERE/modules/$kind-$v"; mkdir -p "$dir"
            (cd /tmp && go mod download "k8s.io/kubernetes@$v")
            local staging="v0.${v#v1.}"
            {
                echo "// The real Kubernetes $v for the lab (built by tests/lab/k8s/build.sh)."
                echo "// k8s.io/kubernetes replaces its staging modules with local paths; here each one"
                echo "// is pinned to its published $staging."
                echo "module kubefab.local/lab/$kind"; echo; echo "go 1.26.0"; echo
                echo "require k8s.io/kubernetes $v"; echo; echo "replace ("
                sed -n '/^replace (/,/^)/p' "$GOMODCACHE/k8s.io/kubernetes@$v/go.mod" |
                    awk -v s="$staging" '/=>/{printf "\t%s => %s %s\n", $1, $1, s}'
                echo ")"; echo
                for t in $tools; do echo "tool k8s.io/kubernetes/cmd/$t"; done
            } > "$dir/go.mod" ;;
        etcd)
            dir="$HERE/modules/etcd-$v"; mkdir -p "$dir"
            printf 'module kubefab.local/lab/etcd\n\ngo 1.26.0\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n\tgo.etcd.io/etcd/etcdutl/v3 %s\n)\n\ntool (\n\tgo.etcd.io/etcd/server/v3\n\tgo.etcd.io/etcd/etcdctl/v3\n\tgo.etcd.io/etcd/etcdutl/v3\n)\n' "$v" "$v" "$v" > "$dir/go.mod" ;;
        coredns)
            dir="$HERE/modules/coredns-$v"; mkdir -p "$dir"
            printf 'module kubefab.local/lab/coredns\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns %s\n\ntool github.com/coredns/coredns\n' "$v" > "$dir/go.mod" ;;
        crictl)
            dir="$HERE/modules/crictl-$v"; mkdir -p "$dir"
            printf 'module kubefab.local/lab/crictl\n\ngo 1.26.0\n\nrequire sigs.k8s.io/cri-tools %s\n\ntool sigs.k8s.io/cri-tools/cmd/crictl\n' "$v" > "$dir/go.mod" ;;
        *) echo "gomod: unknown kind $kind" >&2; exit 2 ;;
    esac
    (cd "$dir" && go mod tidy)
    log "wrote $dir/go.mod and go.sum"
}

all() {   # each release with its etcd and CoreDNS, the default one (v1.36.3) first
    build_labimage
    build_pause
    build_crictl
    local v p etcd coredns
    for v in $K8S_VERSIONS; do
        p="$(pins "$v")"; read -r etcd coredns <<<"$p"
        build_k8s "$v"
        build_etcd "$etcd"
        build_coredns "$coredns"
    done
    for v in $KUBEADM_VERSIONS; do build_k8s "$v" kubeadm; done
}

main() {
    local cmd="${1:-all}"; shift || true
    mkdir -p "$CACHE"
    if [[ "$cmd" == gomod ]]; then gomod "$@"; return; fi
    if [[ "$cmd" == pins ]]; then pins "$1"; return; fi
    exec 9>"$CACHE/.build.lock"
    if ! flock -n 9; then log "another build holds $CACHE/.build.lock; waiting"; flock 9; fi
    local start=$SECONDS
    case "$cmd" in
        all) all ;;
        k8s) build_k8s "$1" ;;
        kubeadm) build_k8s "$1" kubeadm ;;
        etcd|coredns)
            local v vs; vs="${1:-$(all_pins "$cmd")}"
            for v in $vs; do "build_$cmd" "$v"; done ;;
        pause) build_pause ;;
        crictl) build_crictl ;;
        labimage) build_labimage ;;
        *) echo "usage: $0 [all|k8s V|kubeadm V|etcd [V]|coredns [V]|pause|crictl|labimage|pins V|gomod KIND V]" >&2; exit 2 ;;
    esac
    log "done in $((SECONDS - start)) s"
}

main "$@"
