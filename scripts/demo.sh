#!/usr/bin/env bash
# `make demo`: kubefab's main job on the built-in lab.
# Today: an offline dry-run of the example HA inventory (plan printed, files written to out/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
out=out/demo
rm -rf "$out"
echo "--> kubefab: offline dry-run of inventory/hosts.yaml (first control plane)"
"$PY" -m fabric -H master1 init --dry-run --offline --upload-certs --output "$out" --state-dir "$out/state"
echo "--> files written under $out/master1, plan in $out/plan.json"
find "$out/master1" -type f | sort
