#!/bin/sh
# kedge installer. For now it installs a kedge binary that you built
# (scripts/build) and prints how to start it; the one-command installer with
# systemd units arrives with the install issue.
# Usage: sudo sh install.sh [path/to/kedge]
set -eu
src=${1:-bin/kedge}
if [ ! -x "$src" ]; then
  echo "install.sh: $src is not an executable kedge binary; build it with scripts/build" >&2
  exit 1
fi
install -m 0755 "$src" /usr/local/bin/kedge
ln -sf kedge /usr/local/bin/kubectl 2>/dev/null || true
echo "installed /usr/local/bin/kedge; start a server with: kedge server"
