#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then checks formatting, lints
# and runs every test of the workspace (unit, integration and doc tests) against private
# MariaDB and osmem-server instances that the tests start and remove themselves.
#
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/setup.sh
source scripts/setup.sh
# Debian's chromium and playwright-core, for the web UI's browser test.
run bash scripts/setup-browser.sh

if [ -n "${CI:-}" ]; then
    # A one-shot build: incremental compilation and full debug info only cost time there.
    export CARGO_INCREMENTAL=0
    export CARGO_PROFILE_DEV_DEBUG=line-tables-only
    say "CI: CARGO_INCREMENTAL=0, CARGO_PROFILE_DEV_DEBUG=line-tables-only"
fi
say "$(cargo --version), $(rustc --version)"

run cargo fmt --all --check
run cargo clippy --workspace --all-targets --all-features -- -D warnings
run cargo test --workspace --all-features --no-fail-fast
say "all checks passed"
