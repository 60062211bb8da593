#!/usr/bin/env bash
# Installs what the web UI's browser test needs, when it is missing:
#  - Debian's chromium (/usr/bin/chromium), through apt-get;
#  - playwright-core from npm into datatrace-server/tests/browser/node_modules
#    (versions pinned by the package-lock.json there; playwright downloads no browser).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "setup-browser: installing chromium (apt-get)"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi

if ! command -v npm >/dev/null; then
  echo "setup-browser: npm is missing (apt-get install nodejs npm)" >&2
  exit 1
fi

dir=datatrace-server/tests/browser
if [ ! -d "$dir/node_modules/playwright-core" ]; then
  echo "setup-browser: installing playwright-core into $dir"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
