# Debian's Chromium for the headless browser checks, sourced after env.sh.
#   ensure_chromium     installs the package if the command is missing (needs root)
#   ensure_playwright   and playwright-core (npm, pinned) into ~/.cache/settle/ once per machine, to
#                       drive it without downloading a browser; sets PLAYWRIGHT_NODE_PATH for NODE_PATH

PLAYWRIGHT_VERSION=${PLAYWRIGHT_VERSION:-1.65.2}

ensure_chromium() {
  command -v chromium >/dev/null && return
  [[ $(id -u) == 0 ]] || fail "chromium is missing and installing it needs root (apt-get install chromium)"
  say "installing Debian's chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >>"$SETTLE_LOGS/apt.log" 2>&1 \
    || fail "apt-get install chromium failed: see $SETTLE_LOGS/apt.log"
}

ensure_playwright() {
  ensure_chromium
  local home=${XDG_CACHE_HOME:-$HOME/.cache}/settle/playwright-core-$PLAYWRIGHT_VERSION
  if [[ ! -d $home/node_modules/playwright-core ]]; then
    say "installing playwright-core $PLAYWRIGHT_VERSION into $home (once per machine; it drives Debian's chromium)"
    mkdir -p "$home"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix "$home" \
      "playwright-core@$PLAYWRIGHT_VERSION" >>"$SETTLE_LOGS/npm.log" 2>&1 || fail "npm install failed: see $SETTLE_LOGS/npm.log"
  fi
  PLAYWRIGHT_NODE_PATH=$home/node_modules
}
