#!/usr/bin/env bash
# The test command (npm test): sets up what is missing, lints, and runs every test against real servers.
#   ZKFARM_LONG=1 npm test    also runs the long chaos suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all
npm run --silent lint
mkdir -p test-output
# Test files run one at a time: each starts its own JVMs, and the machine has 2 cores.
rc=0
node --import tsx --test --test-concurrency=1 --test-timeout=600000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./test/helpers/file-times-reporter.mjs --test-reporter-destination=test-output/file-times.txt \
  test/unit/*.test.ts test/*.test.ts || rc=$?
echo '# the longest test files (all: test-output/file-times.txt)'
head -12 test-output/file-times.txt || true
exit "$rc"
