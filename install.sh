#!/bin/sh
# kedge installer: downloads kedge, checks it against the published sha256
# list, installs it with a systemd unit or an OpenRC script and starts it.
#
#   curl -sfL https://github.com/kedge/kedge/releases/latest/download/install.sh | sh -
#   curl -sfL .../install.sh | KEDGE_URL=https://server:6443 KEDGE_TOKEN=... sh -
#
# Settings (environment variables, all optional):
#   INSTALL_KEDGE_VERSION        release to install (default: the latest)
#   INSTALL_KEDGE_DOWNLOAD_URL   base URL laid out like dist/ (kedge-ARCH,
#                                kedge-ARCH.xz, sha256sum-ARCH.txt); default
#                                https://github.com/kedge/kedge/releases/latest/download,
#                                or .../releases/download/$INSTALL_KEDGE_VERSION
#   INSTALL_KEDGE_SKIP_DOWNLOAD  true: no download; use BIN_DIR/kedge or
#   INSTALL_KEDGE_BINARY         this file (air-gapped installs)
#   INSTALL_KEDGE_BIN_DIR        default /usr/local/bin
#   INSTALL_KEDGE_SYSTEMD_DIR    default /etc/systemd/system
#   INSTALL_KEDGE_EXEC           command and flags: "server ...", "agent ..."
#                                (default: server, or agent when KEDGE_URL is set)
#   INSTALL_KEDGE_NAME           service name suffix: kedge-NAME
#   INSTALL_KEDGE_SKIP_ENABLE    true: do not enable the service
#   INSTALL_KEDGE_SKIP_START     true: do not start or restart the service
#   INSTALL_KEDGE_SYMLINK        skip: no kubectl/crictl/ctr links;
#                                force: replace them even if not kedge's
#   KEDGE_*                      written to the service's environment file
#                                (mode 0600): KEDGE_URL and KEDGE_TOKEN (or
#                                KEDGE_TOKEN_FILE) join a server, and so on.
# Running it again with the same settings changes nothing; with a new binary,
# unit or environment it restarts the service.
set -eu

DEFAULT_DOWNLOAD_URL=https://github.com/kedge/kedge/releases/latest/download
RELEASES_URL=https://github.com/kedge/kedge/releases/download

info() { echo "[INFO] $*"; }
fatal() {
	echo "[ERROR] $*" >&2
	exit 1
}
istrue() { [ "${1:-}" = true ]; }
have() { command -v "$1" >/dev/null 2>&1; }

TMP_DIR= TMP_FILE=
cleanup() {
	[ -z "$TMP_DIR" ] || rm -rf "$TMP_DIR"
	[ -z "$TMP_FILE" ] || rm -f "$TMP_FILE"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# --- settings, all checked before anything is touched ---
[ "$(id -u)" = 0 ] || fatal "run the installer as root (curl ... | sudo sh -)"
BIN_DIR=${INSTALL_KEDGE_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_KEDGE_SYSTEMD_DIR:-/etc/systemd/system}
case ${INSTALL_KEDGE_SYMLINK:-} in '' | skip | force) ;; *) fatal "INSTALL_KEDGE_SYMLINK is skip or force" ;; esac

# Arguments (sh -s - agent --flag) stand for INSTALL_KEDGE_EXEC.
if [ $# -gt 0 ]; then INSTALL_KEDGE_EXEC="$*"; fi
set -f # INSTALL_KEDGE_EXEC is split into words, never globbed
# shellcheck disable=SC2086
set -- ${INSTALL_KEDGE_EXEC:-}
set +f
case ${1:-} in
server | agent) CMD=$1 && shift ;;
*) if [ -n "${KEDGE_URL:-}" ]; then CMD=agent; else CMD=server; fi ;;
esac
ARGS=$CMD DATA_DIR=${KEDGE_DATA_DIR:-/var/lib/kedge} prev=
for a in "$@"; do
	case $a in *[\'\"\\\$%\`]*) fatal "INSTALL_KEDGE_EXEC: quotes, backslashes, \$, % and backquotes are not supported; set such values as KEDGE_* variables" ;; esac
	case $prev in --data-dir | -d) DATA_DIR=$a ;; esac
	case $a in --data-dir=* | -d=*) DATA_DIR=${a#*=} ;; esac
	ARGS="$ARGS $a" prev=$a
done
case $DATA_DIR in /*) ;; *) fatal "the data dir must be an absolute path" ;; esac

if [ -n "${KEDGE_URL:-}" ]; then
	case $KEDGE_URL in https://?*) ;; *) fatal "KEDGE_URL must be an https:// URL" ;; esac
	[ -n "${KEDGE_TOKEN:-}${KEDGE_TOKEN_FILE:-}" ] || fatal "KEDGE_URL is set: KEDGE_TOKEN or KEDGE_TOKEN_FILE is needed to join"
fi
# The environment file: every KEDGE_* variable, sorted, single-quoted (a
# format both systemd's EnvironmentFile and sh read). Values are never printed.
ENV_CONTENT=
for v in $(env | sed -n 's/^\(KEDGE_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
	eval "val=\${$v-}"
	case $val in *[\'\\]* | *"
"*) fatal "$v: quotes, backslashes and newlines are not supported in KEDGE_* values" ;; esac
	ENV_CONTENT="$ENV_CONTENT$v='$val'
"
done

if [ -n "${INSTALL_KEDGE_NAME:-}" ]; then
	case $INSTALL_KEDGE_NAME in *[!A-Za-z0-9_.-]*) fatal "INSTALL_KEDGE_NAME: letters, digits, . _ - only" ;; esac
	SVC=kedge-$INSTALL_KEDGE_NAME
elif [ "$CMD" = agent ]; then
	SVC=kedge-agent
else
	SVC=kedge
fi

SKIP_MGR=false
if istrue "${INSTALL_KEDGE_SKIP_ENABLE:-}" && istrue "${INSTALL_KEDGE_SKIP_START:-}"; then SKIP_MGR=true; fi
if [ -d /run/systemd/system ]; then
	MGR=systemd
elif have openrc-run; then
	MGR=openrc
elif istrue "$SKIP_MGR"; then
	MGR=systemd # files only
else
	fatal "no service manager: systemd is not running and openrc-run is missing (INSTALL_KEDGE_SKIP_ENABLE=true INSTALL_KEDGE_SKIP_START=true installs the files only)"
fi
if [ "$MGR" = systemd ]; then
	SERVICE_FILE=$SYSTEMD_DIR/$SVC.service
	ENV_FILE=$SERVICE_FILE.env
else
	SERVICE_FILE=/etc/init.d/$SVC
	ENV_FILE=/etc/kedge/$SVC.env
fi

sha256() {
	if have sha256sum; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

# --- the binary ---
BIN=$BIN_DIR/kedge
BIN_CHANGED=false
# install_tmp FILE: TMP_FILE (in BIN_DIR) replaces BIN.
install_tmp() {
	chmod 755 "$TMP_FILE"
	mv -f "$TMP_FILE" "$BIN"
	TMP_FILE=
	BIN_CHANGED=true
	info "installed $BIN"
}
if istrue "${INSTALL_KEDGE_SKIP_DOWNLOAD:-}"; then
	if [ -n "${INSTALL_KEDGE_BINARY:-}" ]; then
		[ -f "$INSTALL_KEDGE_BINARY" ] || fatal "INSTALL_KEDGE_BINARY: $INSTALL_KEDGE_BINARY is not a file"
		if [ -f "$BIN" ] && cmp -s "$INSTALL_KEDGE_BINARY" "$BIN"; then
			info "$BIN is up to date"
		else
			mkdir -p "$BIN_DIR"
			TMP_FILE=$(mktemp "$BIN_DIR/.kedge.XXXXXX")
			cp "$INSTALL_KEDGE_BINARY" "$TMP_FILE"
			chmod 755 "$TMP_FILE"
			"$TMP_FILE" --version >/dev/null 2>&1 || fatal "$INSTALL_KEDGE_BINARY does not run here (wrong architecture?)"
			install_tmp
		fi
	else
		[ -x "$BIN" ] || fatal "INSTALL_KEDGE_SKIP_DOWNLOAD=true but $BIN is missing: copy kedge there or set INSTALL_KEDGE_BINARY"
	fi
else
	case $(uname -m) in
	x86_64 | amd64) ARCH=amd64 ;;
	aarch64 | arm64) if [ "$(getconf LONG_BIT 2>/dev/null)" = 32 ]; then ARCH=armv7; else ARCH=arm64; fi ;;
	armv7l | armv8l) ARCH=armv7 ;;
	*) fatal "unsupported architecture $(uname -m): kedge runs on x86_64, aarch64 and armv7" ;;
	esac
	if [ -n "${INSTALL_KEDGE_DOWNLOAD_URL:-}" ]; then
		BASE_URL=${INSTALL_KEDGE_DOWNLOAD_URL%/}
	elif [ -n "${INSTALL_KEDGE_VERSION:-}" ]; then
		BASE_URL=$RELEASES_URL/$INSTALL_KEDGE_VERSION
	else
		BASE_URL=$DEFAULT_DOWNLOAD_URL
	fi
	if have curl; then
		download() { curl -fsSL --connect-timeout 20 -o "$2" "$1" 2>/dev/null || fatal "cannot download $1"; }
	elif have wget; then
		download() { wget -q -O "$2" "$1" 2>/dev/null || fatal "cannot download $1"; }
	else
		fatal "neither curl nor wget is installed"
	fi
	TMP_DIR=$(mktemp -d)
	download "$BASE_URL/sha256sum-$ARCH.txt" "$TMP_DIR/sums"
	listed() { awk -v f="$1" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP_DIR/sums"; }
	RAW_SUM=$(listed "kedge-$ARCH")
	if [ -n "$RAW_SUM" ] && [ -f "$BIN" ] && [ "$(sha256 "$BIN")" = "$RAW_SUM" ]; then
		info "$BIN is up to date"
	else
		if have xz; then
			UNXZ="xz -dc"
		elif have unxz; then
			UNXZ="unxz -c"
		elif have xzcat; then
			UNXZ=xzcat
		else
			UNXZ=
		fi
		FILE=kedge-$ARCH SUM=
		if [ -n "$UNXZ" ]; then
			SUM=$(listed "$FILE.xz")
			if [ -n "$SUM" ]; then FILE=$FILE.xz; else UNXZ=; fi
		fi
		[ -n "$SUM" ] || SUM=$RAW_SUM
		[ -n "$SUM" ] || fatal "kedge-$ARCH is not in $BASE_URL/sha256sum-$ARCH.txt"
		download "$BASE_URL/$FILE" "$TMP_DIR/$FILE"
		GOT=$(sha256 "$TMP_DIR/$FILE")
		[ "$GOT" = "$SUM" ] || fatal "checksum mismatch for $FILE: sha256 $GOT, the list says $SUM"
		mkdir -p "$BIN_DIR"
		TMP_FILE=$(mktemp "$BIN_DIR/.kedge.XXXXXX")
		if [ -n "$UNXZ" ]; then
			$UNXZ "$TMP_DIR/$FILE" >"$TMP_FILE" || fatal "cannot decompress $FILE"
			[ -z "$RAW_SUM" ] || [ "$(sha256 "$TMP_FILE")" = "$RAW_SUM" ] || fatal "checksum mismatch for kedge-$ARCH decompressed from $FILE"
		else
			cat "$TMP_DIR/$FILE" >"$TMP_FILE"
		fi
		install_tmp
	fi
fi

# --- kubectl, crictl and ctr: the binary dispatches on its name ---
ours() { [ -L "$1" ] && case $(readlink "$1") in kedge | "$BIN") true ;; *) false ;; esac }
if [ "${INSTALL_KEDGE_SYMLINK:-}" != skip ]; then
	for name in kubectl crictl ctr; do
		link=$BIN_DIR/$name
		if ours "$link"; then
			continue
		elif [ -e "$link" ] || [ -L "$link" ]; then
			if [ "${INSTALL_KEDGE_SYMLINK:-}" != force ]; then
				info "left $link alone: it is not kedge's (INSTALL_KEDGE_SYMLINK=force replaces it)"
				continue
			fi
			rm -f "$link"
		fi
		ln -s kedge "$link"
		info "linked $link to kedge"
	done
fi

# --- files ---
CHANGED=false
# put FILE MODE: writes stdin to FILE (atomically, through a temporary file
# next to it) unless FILE already holds exactly that; sets CHANGED.
put() {
	CHANGED=false
	mkdir -p "$(dirname "$1")"
	TMP_FILE=$(mktemp "$1.XXXXXX")
	cat >"$TMP_FILE"
	if [ -f "$1" ] && cmp -s "$TMP_FILE" "$1"; then
		rm -f "$TMP_FILE"
		TMP_FILE=
		if [ "$(stat -c %a "$1")" != "$2" ]; then
			chmod "$2" "$1"
			info "set mode $2 on $1"
		fi
		return 0
	fi
	chmod "$2" "$TMP_FILE"
	mv -f "$TMP_FILE" "$1"
	TMP_FILE=
	CHANGED=true
	info "wrote $1"
}

put "$BIN_DIR/kedge-killall.sh" 755 <<EOF
#!/bin/sh
# Written by kedge's install.sh. Stops kedge and everything it started: the
# service, every process running $BIN, the containerd shims and the
# containers under them; unmounts what they mounted; deletes kedge's network
# devices, nftables tables and iptables chains. Files stay
# (kedge-uninstall.sh removes them).
set -u
[ "\$(id -u)" = 0 ] || { echo "kedge-killall.sh: run as root" >&2; exit 1; }
BIN=$BIN
DATA_DIR=$DATA_DIR
SYSTEMD_DIR=$SYSTEMD_DIR

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	for u in "\$SYSTEMD_DIR"/kedge.service "\$SYSTEMD_DIR"/kedge-*.service; do
		[ ! -f "\$u" ] || systemctl stop "\${u##*/}"
	done
fi
if command -v rc-service >/dev/null 2>&1; then
	for s in /etc/init.d/kedge /etc/init.d/kedge-*; do
		[ ! -f "\$s" ] || rc-service "\${s##*/}" stop
	done
fi

# ours: the pids whose executable is kedge or a runtime program it unpacked
# (same file, whoever started it; or kedge's replaced binary, in this mount
# namespace), then all their descendants (the containers).
ours() {
	ids=
	for f in "\$BIN" "\$DATA_DIR"/data/*/bin/*; do
		[ ! -f "\$f" ] || ids="\$ids \$(stat -L -c %d:%i "\$f")"
	done
	self=\$(readlink /proc/self/ns/mnt)
	{
		stat -L -c '%d:%i %n' /proc/[0-9]*/exe 2>/dev/null | awk -v ids="\$ids" '
			BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
			\$1 in want { split(\$2, p, "/"); print p[3] }'
		for e in /proc/[0-9]*/exe; do
			[ "\$(readlink "\$e" 2>/dev/null)" = "\$BIN (deleted)" ] || continue
			p=\${e%/exe}
			[ "\$(readlink "\$p/ns/mnt" 2>/dev/null)" != "\$self" ] || echo "\${p#/proc/}"
		done
	} | descendants
}
# descendants: the pids on stdin and every descendant of them.
descendants() {
	roots=\$(cat)
	[ -n "\$roots" ] || return 0
	cat /proc/[0-9]*/stat 2>/dev/null | sed -n 's/^\([0-9]*\) .*) . \([0-9]*\) .*/\1 \2/p' |
		awk -v roots="\$roots" '
			BEGIN { n = split(roots, r); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
			{ parent[\$1] = \$2 }
			END {
				do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
				for (p in keep) print p
			}'
}
alive() {
	for p in "\$@"; do
		[ -d "/proc/\$p" ] && ! grep -q '^State:.*Z' "/proc/\$p/status" 2>/dev/null && return 0
	done
	return 1
}
for round in 1 2 3 4 5 6 7 8 9 10; do
	pids=\$(ours)
	[ -n "\$pids" ] || break
	# shellcheck disable=SC2086
	kill -9 \$pids 2>/dev/null
	for i in 1 2 3 4 5 6 7 8 9 10; do
		# shellcheck disable=SC2086
		alive \$pids || break
		sleep 1
	done
done

# Mounts strictly below kedge's directories (never a directory itself: it
# may be a partition of its own), deepest first.
set -f
for m in \$(awk '{ print \$5 }' /proc/self/mountinfo | grep -E "^(/run/kedge|\$DATA_DIR|/var/lib/kubelet)/|^/run/netns/cni-" | sort -r -u); do
	umount "\$m" 2>/dev/null || umount -l "\$m" 2>/dev/null || echo "kedge-killall.sh: cannot unmount \$m" >&2
done
set +f
rm -rf /run/kedge /run/netns/cni-* 2>/dev/null

if command -v ip >/dev/null 2>&1; then
	for v in \$(ip -o link show master kedge0 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", \$2); print \$2 }'); do
		ip link delete "\$v" 2>/dev/null
	done
	for l in flannel.1 flannel-v6.1 kedge0 kube-ipvs0 nodelocaldns; do
		! ip link show "\$l" >/dev/null 2>&1 || ip link delete "\$l"
	done
fi
if command -v nft >/dev/null 2>&1; then
	for t in "ip kube-proxy" "ip6 kube-proxy" "ip flannel-ipv4" "ip6 flannel-ipv6" "ip masqueradeTest" "ip6 masqueradeTest"; do
		# shellcheck disable=SC2086
		! nft list table \$t >/dev/null 2>&1 || nft delete table \$t
	done
fi
for ipt in iptables ip6tables; do
	command -v \$ipt-save >/dev/null 2>&1 && command -v \$ipt-restore >/dev/null 2>&1 || continue
	rules=\$(\$ipt-save 2>/dev/null) || continue
	printf '%s\n' "\$rules" | grep -qiE 'KUBE-|CNI-|flannel' || continue
	printf '%s\n' "\$rules" | grep -vE 'KUBE-|CNI-' | grep -iv flannel | \$ipt-restore
done
exit 0
EOF

# The uninstall script removes this service; the binary, its links and the
# data go with the last kedge service on the machine.
UNINSTALL=$BIN_DIR/$SVC-uninstall.sh
put "$UNINSTALL" 755 <<EOF
#!/bin/sh
# Written by kedge's install.sh. Removes the $SVC service and, unless another
# kedge service remains, stops everything kedge started (kedge-killall.sh)
# and removes kedge: its binary and links, /etc/kedge, $DATA_DIR, the kubelet's
# directories and kedge's CNI state, and this script.
set -u
[ "\$(id -u)" = 0 ] || { echo "$SVC-uninstall.sh: run as root" >&2; exit 1; }
BIN_DIR=$BIN_DIR
DATA_DIR=$DATA_DIR

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now $SVC >/dev/null 2>&1
fi
if [ -f /etc/init.d/$SVC ] && command -v rc-service >/dev/null 2>&1; then
	rc-service $SVC stop
	rc-update delete $SVC default >/dev/null 2>&1
fi
rm -f "$SYSTEMD_DIR/$SVC.service" "$SYSTEMD_DIR/$SVC.service.env" /etc/init.d/$SVC /etc/kedge/$SVC.env /etc/logrotate.d/$SVC /var/log/$SVC.log
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload
fi
for other in "$SYSTEMD_DIR"/kedge.service "$SYSTEMD_DIR"/kedge-*.service /etc/init.d/kedge /etc/init.d/kedge-*; do
	if [ -f "\$other" ]; then
		echo "$SVC-uninstall.sh: removed $SVC; \$other remains, so kedge itself stays"
		rm -f "$UNINSTALL"
		exit 0
	fi
done

"\$BIN_DIR/kedge-killall.sh"
for name in kubectl crictl ctr; do
	if [ -L "\$BIN_DIR/\$name" ]; then
		case \$(readlink "\$BIN_DIR/\$name") in kedge | "\$BIN_DIR/kedge") rm -f "\$BIN_DIR/\$name" ;; esac
	fi
done
rm -f "\$BIN_DIR/kedge" "\$BIN_DIR/kedge-killall.sh"

# remove DIR: deletes DIR unless something is still mounted below it; a DIR
# that is itself a mount point is emptied. Never crosses into another file system.
onefs=
if rm --help 2>&1 | grep -q one-file-system; then onefs=--one-file-system; fi
remove() {
	[ -e "\$1" ] || return 0
	if awk '{ print \$5 }' /proc/self/mountinfo | grep -q "^\$1/"; then
		echo "$SVC-uninstall.sh: left \$1: something is still mounted below it" >&2
	elif awk '{ print \$5 }' /proc/self/mountinfo | grep -qx "\$1"; then
		rm -rf \$onefs "\$1"/* "\$1"/.[!.]* "\$1"/..?*
	else
		rm -rf \$onefs "\$1"
	fi
}
for d in /etc/kedge "\$DATA_DIR" /var/lib/kubelet /run/kedge /var/log/pods /var/log/containers /var/lib/cni/networks/kedge; do
	remove "\$d"
done
rm -f /var/lib/cni/results/kedge-*
rmdir /var/lib/cni/networks /var/lib/cni/results 2>/dev/null
echo "$SVC-uninstall.sh: kedge is uninstalled"
rm -f "$UNINSTALL"
EOF

if [ -n "$ENV_CONTENT" ]; then
	printf '%s' "$ENV_CONTENT" | put "$ENV_FILE" 600
else
	: | put "$ENV_FILE" 600
fi
ENV_CHANGED=$CHANGED

if [ "$MGR" = systemd ]; then
	put "$SERVICE_FILE" 644 <<EOF
# Written by kedge's install.sh.
[Unit]
Description=kedge $CMD: lightweight Kubernetes
Documentation=https://github.com/kedge/kedge
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
EnvironmentFile=-$ENV_FILE
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe overlay
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStart=$BIN $ARGS

[Install]
WantedBy=multi-user.target
EOF
else
	put "$SERVICE_FILE" 755 <<EOF
#!/sbin/openrc-run
# Written by kedge's install.sh.
description="kedge $CMD: lightweight Kubernetes"
supervisor=supervise-daemon
command=$BIN
command_args="$ARGS"
output_log=/var/log/$SVC.log
error_log=/var/log/$SVC.log
pidfile=/run/$SVC.pid
respawn_delay=5
respawn_max=0

depend() {
	need net
	after net-online firewall
}

start_pre() {
	modprobe overlay 2>/dev/null || true
	modprobe br_netfilter 2>/dev/null || true
}

set -o allexport
if [ -f $ENV_FILE ]; then . $ENV_FILE; fi
set +o allexport
EOF
fi
UNIT_CHANGED=$CHANGED
if [ "$MGR" = openrc ]; then
	put /etc/logrotate.d/$SVC 644 <<EOF
/var/log/$SVC.log {
	missingok
	notifempty
	copytruncate
}
EOF
fi

# --- the service ---
RESTART=false
if istrue "$BIN_CHANGED" || istrue "$UNIT_CHANGED" || istrue "$ENV_CHANGED"; then RESTART=true; fi
if istrue "$SKIP_MGR"; then
	info "not enabling or starting $SVC (INSTALL_KEDGE_SKIP_ENABLE, INSTALL_KEDGE_SKIP_START)"
elif [ "$MGR" = systemd ]; then
	if istrue "$UNIT_CHANGED"; then systemctl daemon-reload; fi
	if ! istrue "${INSTALL_KEDGE_SKIP_ENABLE:-}" && ! systemctl is-enabled --quiet "$SVC" 2>/dev/null; then
		systemctl enable --quiet "$SVC"
		info "enabled $SVC"
	fi
	if ! istrue "${INSTALL_KEDGE_SKIP_START:-}"; then
		if ! systemctl is-active --quiet "$SVC"; then
			systemctl start "$SVC"
			info "started $SVC"
		elif istrue "$RESTART"; then
			systemctl restart "$SVC"
			info "restarted $SVC"
		else
			info "$SVC is running and unchanged"
		fi
	fi
else
	if ! istrue "${INSTALL_KEDGE_SKIP_ENABLE:-}" && [ ! -e "/etc/runlevels/default/$SVC" ]; then
		rc-update add "$SVC" default >/dev/null
		info "enabled $SVC"
	fi
	if ! istrue "${INSTALL_KEDGE_SKIP_START:-}"; then
		if ! rc-service "$SVC" status >/dev/null 2>&1; then
			rc-service "$SVC" start
			info "started $SVC"
		elif istrue "$RESTART"; then
			rc-service "$SVC" restart
			info "restarted $SVC"
		else
			info "$SVC is running and unchanged"
		fi
	fi
fi
