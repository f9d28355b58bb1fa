#!/usr/bin/env bash
# The test command (npm test): sets up what is missing, lints, and runs every test against real servers.
#   ZKFARM_LONG=1 npm test    also runs the long chaos suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all
npm run --silent lint
mkdir -p test-output

# Test files that may share the machine's 2 cores with one other file: their waits are generous next to
# what they measure (no session-timeout arithmetic, rate windows, due times or fault plans that a busy
# CPU could skew). Two of them run at a time (about 390 s instead of 650 s one by one); every other
# file runs alone afterwards, so a new file is alone until it is added here.
SHARED=(
  acl acl-layout backlog bad-input cli-embedded cli-runtime cli-tls cli config examples example-nzc
  exec-handlers exec-pool exec-retention exec-service-process exec-shell exec-workdir exports farm inbox
  fault-proxy lifecycle-cancel lifecycle-events lifecycle-keys lifecycle-progress lifecycle-traces
  metrics metrics-units queues recipes-children-cache recipes-node-waits recipes-election recipes-multi-batcher
  results-layout results-upgrade retention-catch-up retry cli-wait services-cli services-farm stop submit-stream task-ids testing
  host-tasks-waiting
  zk-client zk-differential zk-server zk-tls
)
shared=() alone=()
for f in test/*.test.ts; do
  name=$(basename "$f" .test.ts)
  if [[ " ${SHARED[*]} " == *" $name "* ]]; then shared+=("$f"); else alone+=("$f"); fi
done

# One phase: node's test runner over the files, the spec report on stdout, each file's wall time in
# test-output/file-times-<phase>.txt (longest first; in a phase of 2 at a time, times overlap).
rc=0
phase() {
  local name=$1 concurrency=$2
  shift 2
  echo "# tests: $name ($# files, $concurrency at a time)"
  node --import tsx --test --test-concurrency="$concurrency" --test-timeout=600000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=./test/helpers/file-times-reporter.mjs \
    --test-reporter-destination="test-output/file-times-$name.txt" \
    "$@" || rc=1
}
phase unit 2 test/unit/*.test.ts
phase shared 2 "${shared[@]}"
phase alone 1 "${alone[@]}"
for name in shared alone; do
  echo "# the longest test files, $name (all: test-output/file-times-$name.txt)"
  head -8 "test-output/file-times-$name.txt" || true
done
exit "$rc"
