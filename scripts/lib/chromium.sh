# Debian's Chromium for the headless browser checks, sourced after env.sh.
#   ensure_chromium   installs the package if the command is missing (needs root)

ensure_chromium() {
  command -v chromium >/dev/null && return
  [[ $(id -u) == 0 ]] || fail "chromium is missing and installing it needs root (apt-get install chromium)"
  say "installing Debian's chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >>"$SETTLE_LOGS/apt.log" 2>&1 \
    || fail "apt-get install chromium failed: see $SETTLE_LOGS/apt.log"
}
