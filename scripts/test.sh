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

if [ -n "${CI:-}" ]; then
    # Incremental compilation only costs time on a one-shot build.
    export CARGO_INCREMENTAL=0
fi

run cargo fmt --all --check
run cargo clippy --workspace --all-targets --all-features -- -D warnings
run cargo test --workspace --all-features
say "all checks passed"
