#!/usr/bin/env bash
# make test: every test, in two pytest runs side by side on this machine's two cores.
#   - the lab tests (marked `lab`), one module after another: they bring up real clusters;
#   - everything else (unit, judge), whose output is printed once the lab run is done.
# The exit code is non-zero when either run fails.
set -u
py=${1:-.venv/bin/python}
rest_log=$(mktemp "${TMPDIR:-/tmp}/kubefab-tests.XXXXXX")
trap 'rm -f "$rest_log"' EXIT
"$py" -m pytest -m "not lab" >"$rest_log" 2>&1 &
rest=$!
"$py" -m pytest -m lab --durations=30
lab_rc=$?
wait "$rest"
rest_rc=$?
echo "======== the tests not marked lab (run beside the lab tests) ========"
cat "$rest_log"
echo "lab tests: exit $lab_rc; other tests: exit $rest_rc"
[ "$lab_rc" -eq 0 ] && [ "$rest_rc" -eq 0 ]
