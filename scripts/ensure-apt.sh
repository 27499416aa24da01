#!/usr/bin/env bash
# Install the Debian packages the tests and the lab need, if any is missing.
# Idempotent and quiet when everything is there; needs root (as CI and the lab do).
set -euo pipefail
# The lab's hosts run Debian's container runtime (containerd, runc, CNI plugins); kube-proxy's image
# takes Debian's iptables and conntrack, the workload image busybox-static; gcc builds pause.
pkgs=(openssh-server openssh-client iproute2 haproxy openssl sudo curl python3-venv util-linux procps
      containerd runc containernetworking-plugins iptables conntrack busybox-static gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "ensure-apt: missing packages: ${missing[*]}; run 'make test' as root or install them with apt-get" >&2
  exit 1
fi
echo "ensure-apt: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
