#!/usr/bin/env bash
# `make demo`: kubefab's main job on the built-in lab (needs root: network namespaces).
#
# 1. the lab: 3 control-plane hosts, 2 workers and an haproxy load balancer, each a real sshd
#    host in its own namespaces with its own containerd (tests/lab); the real Kubernetes v1.36.3,
#    built once by `make lab-k8s` into /var/cache/kubefab-lab;
# 2. `fab cluster-up` brings the HA cluster up over SSH;
# 3. the result, through the load balancer, with the real kubectl.
# The lab stays up afterwards; `KUBEFAB_LAB_DIR=/var/tmp/kubefab-demo python -m tests.lab down`
# removes it. Re-running converges.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export KUBEFAB_LAB_DIR=${KUBEFAB_LAB_DIR:-/var/tmp/kubefab-demo}
lab() { "$PY" -m tests.lab "$@"; }
KUBECTL="${KUBEFAB_LAB_CACHE:-/var/cache/kubefab-lab}/k8s/${KUBEFAB_LAB_K8S_VERSION:-v1.36.3}/bin/kubectl"

echo "--> Lab: 5 hosts and a load balancer in $KUBEFAB_LAB_DIR"
lab up 5 --lb
inv="$KUBEFAB_LAB_DIR/inventory.yaml"
state="$KUBEFAB_LAB_DIR/state"

echo "--> fab cluster-up (init node1, join node2 and node3 one at a time, workers node4 and node5 in parallel)"
lab sw -- "$PY" -m fabric -r . cluster-up --inventory "$inv" --state-dir "$state"

admin="$state/nodes/node1/admin.conf"
echo "--> kubectl --kubeconfig $admin get nodes -o wide (through the load balancer)"
lab sw -- "$KUBECTL" --kubeconfig "$admin" get nodes -o wide
# The add-ons' pods start after the nodes are Ready: give them a minute to be Running.
lab sw -- "$KUBECTL" --kubeconfig "$admin" -n kube-system wait --for=condition=Ready pods --all --timeout=180s >/dev/null
echo "--> kubectl get pods -A -o wide"
lab sw -- "$KUBECTL" --kubeconfig "$admin" get pods -A -o wide
lab sw -- "$KUBECTL" --kubeconfig "$admin" get --raw /readyz; echo
echo "--> The lab is still up: try"
echo "      KUBEFAB_LAB_DIR=$KUBEFAB_LAB_DIR $PY -m tests.lab sw -- $KUBECTL --kubeconfig $admin get pods -A"
echo "      KUBEFAB_LAB_DIR=$KUBEFAB_LAB_DIR $PY -m tests.lab down    # to remove it"
