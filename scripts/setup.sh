#!/usr/bin/env bash
# Set up zkfarm on a fresh machine. Idempotent: re-running it only does what is missing.
#
#   scripts/setup.sh            Java + ZooKeeper (Debian packages) if missing, npm ci, build
#   scripts/setup.sh --bench    also Redis (for the BullMQ comparison in the benchmarks)
#   scripts/setup.sh --browser  also Chromium (for the dashboard's browser test)
#
# Needs root or sudo for apt-get when packages are missing; says so when it has neither.
set -euo pipefail
cd "$(dirname "$0")/.."

want_redis=0
want_browser=0
for arg in "$@"; do
  case "$arg" in
    --bench) want_redis=1 ;;
    --browser) want_browser=1 ;;
    --all) want_redis=1; want_browser=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup: need to install $* but I am not root and sudo is missing." >&2
      echo "       Install them yourself: apt-get install -y $*  (or set ZOOKEEPER_HOME to an unpacked ZooKeeper)" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: need $* but this machine has no apt-get. Install Java 11+ and Apache ZooKeeper 3.6+ and set ZOOKEEPER_HOME." >&2
    exit 1
  fi
  say "installing $* (apt-get)"
  local stamp=/var/lib/apt/periodic/zkfarm-update-stamp
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo mkdir -p "$(dirname "$stamp")" && $sudo touch "$stamp"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

zk_present() {
  if [ -n "${ZOOKEEPER_HOME:-}" ] && ls "$ZOOKEEPER_HOME"/lib/*.jar >/dev/null 2>&1; then return 0; fi
  [ -f /usr/share/java/zookeeper.jar ]
}

pkgs=()
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || pkgs+=(default-jre-headless)
zk_present || pkgs+=(zookeeper)
# TLS certificates (the embedded ZooKeeper's own, the TLS tests' throwaway ones) are made with openssl.
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
if [ "$want_redis" = 1 ] && ! command -v redis-server >/dev/null 2>&1; then pkgs+=(redis-server); fi
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then pkgs+=(chromium); fi
if [ "${#pkgs[@]}" -gt 0 ]; then apt_install "${pkgs[@]}"; else say "Java, ZooKeeper and openssl present"; fi

# Debian's zookeeper package may ship a service; zkfarm starts its own servers and never needs it.
if [ "$want_redis" = 1 ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
else
  say "npm packages up to date"
fi

say "building (tsc)"
npm run --silent build
say "ready. Start a farm:  npx runtime --masters 2 --workers 8"
