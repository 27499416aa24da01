#!/usr/bin/env bash
# Builds the real Kubernetes components for the lab from their Go modules, into a cache
# outside the repository, once: a component already in the cache is never built again.
#
#   tests/lab/k8s/build.sh [all]          everything the lab and the tests use
#   tests/lab/k8s/build.sh k8s v1.36.3    one Kubernetes release (all its binaries)
#   tests/lab/k8s/build.sh kubeadm v1.34.4
#   tests/lab/k8s/build.sh etcd | coredns | pause | crictl | labimage
#   tests/lab/k8s/build.sh gomod k8s v1.36.3   (maintainers) write modules/<name>/go.mod + go.sum
#
# The Go modules are in tests/lab/k8s/modules/<name>/ (go.mod and go.sum only; the sources come
# from the Go module cache). Output: $KUBEFAB_LAB_CACHE (default /var/cache/kubefab-lab)/
#   k8s/<version>/bin/{kube-apiserver,...}   etcd/<version>/bin/{etcd,etcdctl,etcdutl}
#   coredns/<version>/bin/coredns            pause/<version>/bin/pause   crictl/<version>/bin/crictl   labimage/current/bin/labimage
# A flock on $CACHE/.build.lock keeps two runs from building at once.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${KUBEFAB_LAB_CACHE:-/var/cache/kubefab-lab}"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0 GOTOOLCHAIN=local

# The versions the lab runs. Kubernetes: the newest served patch of 1.36 and of 1.35 (upgrades);
# kubeadm alone for the older minors kubefab supports. etcd, CoreDNS, pause: what kubeadm 1.36 pins
# (cmd/kubeadm/app/constants: DefaultEtcdVersion 3.6.8-0, CoreDNSVersion v1.14.2, PauseVersion 3.10.2).
K8S_VERSIONS="v1.36.3 v1.35.4"
KUBEADM_VERSIONS="v1.34.4 v1.33.13"
ETCD_VERSION=v3.6.8
COREDNS_VERSION=v1.14.2
PAUSE_VERSION=3.10.2
CRITOOLS_VERSION=v1.36.0
K8S_TOOLS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl"

log() { printf '[lab-k8s] %s\n' "$*" >&2; }

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

build_etcd() {   # the binaries are named after their packages' last element ("v3"): name them
    local out="$CACHE/etcd/$ETCD_VERSION"
    # a cache made before etcdutl was added has the marker without it: build again
    built "$out" && [[ -x "$out/bin/etcdutl" ]] && { log "etcd $ETCD_VERSION: cached in $out"; return; }
    log "building etcd $ETCD_VERSION into $out"
    mkdir -p "$out/bin"
    (cd "$HERE/modules/etcd-$ETCD_VERSION" &&
        go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3 &&
        go build -trimpath -ldflags "-s -w" -o "$out/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3 &&
        go build -trimpath -ldflags "-s -w" -o "$out/bin/etcdutl" go.etcd.io/etcd/etcdutl/v3)
    touch "$out/.complete"
}

build_coredns() {
    build_simple coredns "$COREDNS_VERSION" "coredns-$COREDNS_VERSION" github.com/coredns/coredns
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

all() {
    build_labimage
    build_pause
    build_k8s v1.36.3
    build_etcd
    build_coredns
    build_crictl
    local v; for v in $K8S_VERSIONS; do build_k8s "$v"; done
    for v in $KUBEADM_VERSIONS; do build_k8s "$v" kubeadm; done
}

main() {
    local cmd="${1:-all}"; shift || true
    mkdir -p "$CACHE"
    if [[ "$cmd" == gomod ]]; then gomod "$@"; return; fi
    exec 9>"$CACHE/.build.lock"
    if ! flock -n 9; then log "another build holds $CACHE/.build.lock; waiting"; flock 9; fi
    local start=$SECONDS
    case "$cmd" in
        all) all ;;
        k8s) build_k8s "$1" ;;
        kubeadm) build_k8s "$1" kubeadm ;;
        etcd) build_etcd ;;
        coredns) build_coredns ;;
        pause) build_pause ;;
        crictl) build_crictl ;;
        labimage) build_labimage ;;
        *) echo "usage: $0 [all|k8s V|kubeadm V|etcd|coredns|pause|crictl|labimage|gomod KIND V]" >&2; exit 2 ;;
    esac
    log "done in $((SECONDS - start)) s"
}

main "$@"
