# kubefab facts probe: POSIX sh, no Python needed on the host, one round trip.
#
# kubefab prepends lines before this text: KF_BINARIES (names to look up on PATH),
# KF_SOCKETS (CRI socket paths to test), KF_PY (probe.py zlib+base64, or empty) and `set -- <paths>`
# (paths to inspect). Where the host has python3, probe.py prints the same object in one
# process; this sh code (~17 processes per path) is the fallback.
# It prints ONE JSON object whose values are mostly raw text; tasks/remote/facts.py parses
# them (pure functions, tested from fixtures), so this script stays small and dumb.
# It always exits 0: a missing tool yields null, never a failed probe.

export LC_ALL=C
if [ -n "$KF_PY" ] && command -v python3 >/dev/null 2>&1; then
	# its whole output or nothing: a python3 that fails half-way leaves the sh probe a clean stdout
	if kf_out=$(python3 -I -c "import base64,zlib;exec(zlib.decompress(base64.b64decode('$KF_PY')))" "$KF_BINARIES" "$KF_SOCKETS" "$PATH" "$@" 2>/dev/null); then
		printf '%s\n' "$kf_out"
		exit 0
	fi
fi
KF_TAB=$(printf '\t')

# stdin -> one JSON string literal. Control characters other than tab/newline are dropped;
# backslash, quote and tab escaped; lines joined with \n.
_esc() {
	tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e "s/$KF_TAB/\\\\t/g" |
		awk 'BEGIN { ORS = ""; printf "\"" } { if (NR > 1) printf "\\n"; printf "%s", $0 } END { printf "\"" }'
}
_str() { printf '%s' "$1" | _esc; }
_key() { printf ',\n"%s": ' "$1"; }
_has() { command -v "$1" >/dev/null 2>&1; }
# _file PATH: its content as a JSON string, or null when unreadable.
_file() { if [ -r "$1" ]; then _esc <"$1"; else printf 'null'; fi; }
# _run CMD...: stdout of CMD as a JSON string, or null when CMD is not on PATH.
_run() { if _has "$1"; then "$@" 2>/dev/null | _esc; else printf 'null'; fi; }
_bool() { if "$@"; then printf 'true'; else printf 'false'; fi; }
_limit() { if _has timeout; then timeout 10 "$@"; else "$@"; fi; }

printf '{"probe": 1'

# Binaries first, with the caller's own PATH (kubeadm's FileExisting checks use it).
_key binaries
printf '{'
kf_sep=''
for b in $KF_BINARIES; do
	printf '%s"%s": ' "$kf_sep" "$b"
	kf_sep=', '
	kf_path=$(command -v "$b" 2>/dev/null)
	if [ -n "$kf_path" ]; then _str "$kf_path"; else printf 'null'; fi
done
printf '}'
_key path; _str "$PATH"

# The probe's own tools may live in sbin directories a non-login PATH lacks.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"

_key uid; _run id -u
_key user; _run id -un
_key hostname; _run uname -n
_key kernel; _run uname -r
_key arch; _run uname -m
_key os_release
if [ -r /etc/os-release ]; then _file /etc/os-release; else _file /usr/lib/os-release; fi
_key nproc
if _has nproc; then _run nproc; else _run getconf _NPROCESSORS_ONLN; fi
_key meminfo; grep -E '^(MemTotal|SwapTotal):' /proc/meminfo 2>/dev/null | _esc
_key swaps; _file /proc/swaps
_key ip_forward; _file /proc/sys/net/ipv4/ip_forward
_key ipv6_forwarding; _file /proc/sys/net/ipv6/conf/default/forwarding
_key ipv6_forwarding_all; _file /proc/sys/net/ipv6/conf/all/forwarding
# cgroup version as kubeadm's SystemVerification tells it: v1 when the memory controller is
# mounted as a v1 hierarchy and no unified root exists (hybrid hosts count as v1 then).
_key cgroup_version
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then _str 2
elif [ -d /sys/fs/cgroup/memory ]; then _str 1
elif [ -d /sys/fs/cgroup ]; then _str 2
else printf 'null'; fi

# Listening TCP sockets with owning process where visible (ss, else netstat, else /proc).
_key listeners
if _has ss; then
	printf '{"tool": "ss", "out": '; ss -tlnp 2>/dev/null | _esc; printf '}'
elif _has netstat; then
	printf '{"tool": "netstat", "out": '; netstat -tlnp 2>/dev/null | _esc; printf '}'
else
	printf '{"tool": "proc", "out": '; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | _esc; printf '}'
fi

_key kubelet_version
if _has kubelet; then _limit kubelet --version 2>&1 | head -n 1 | _esc; else printf 'null'; fi
_key systemctl
if _has systemctl; then
	# one call for the three states: systemctl prints a line per unit, in order
	kf_active=$(_limit systemctl is-active kubelet firewalld systemd-resolved 2>/dev/null)
	printf '{"kubelet_active": '; _str "$(printf '%s\n' "$kf_active" | sed -n 1p)"
	printf ', "kubelet_enabled": '; _str "$(_limit systemctl is-enabled kubelet 2>/dev/null)"
	printf ', "firewalld_active": '; _str "$(printf '%s\n' "$kf_active" | sed -n 2p)"
	printf ', "systemd_resolved_active": '; _str "$(printf '%s\n' "$kf_active" | sed -n 3p)"
	printf '}'
else
	printf 'null'
fi

_key ip_route4; _run ip -4 route show default
_key ip_route6; _run ip -6 route show default
_key ip_addr; _run ip -o addr show scope global

_key proxy_env
env | grep -i '^[a-z_]*_proxy=' | _esc

_key ca_dirs
printf '{'
kf_sep=''
for d in /etc/ssl/certs /etc/pki/ca-trust /etc/pki/tls/certs /etc/ca-certificates \
	/usr/share/ca-certificates /usr/local/share/ca-certificates; do
	printf '%s"%s": ' "$kf_sep" "$d"; kf_sep=', '
	_bool test -d "$d"
done
printf '}'

_key cri_sockets
printf '{'
kf_sep=''
for s in $KF_SOCKETS; do
	printf '%s' "$kf_sep"; kf_sep=', '; _str "$s"; printf ': '
	_bool test -S "$s"
done
printf '}'

_key paths
printf '['
kf_sep=''
for p in "$@"; do
	printf '%s{"path": ' "$kf_sep"; kf_sep=', '
	_str "$p"
	if [ -e "$p" ] || [ -L "$p" ]; then
		printf ', "stat": '; _str "$(stat -c '%F|%a|%u|%g|%U|%G|%s' -- "$p" 2>/dev/null)"
		if [ -L "$p" ]; then printf ', "link": '; _str "$(readlink -- "$p")"; fi
		if [ -f "$p" ]; then
			printf ', "sha256": '
			if [ ! -r "$p" ]; then printf 'null'
			elif _has sha256sum; then _str "$(sha256sum <"$p" | cut -d ' ' -f 1)"
			else _str "$(openssl dgst -sha256 -r <"$p" 2>/dev/null | cut -d ' ' -f 1)"; fi
		fi
		if [ -d "$p" ]; then
			printf ', "nonempty": '
			_bool test -n "$(ls -A -- "$p" 2>/dev/null | head -n 1)"
		fi
	fi
	printf '}'
done
printf ']'

printf '}\n'
exit 0
