#!/usr/bin/env bash
# Runs the whole suite against the project's own Redis (port 6391) and dockerd,
# then prints one line: "N passed, N failed".
source "$(dirname "$0")/lib.sh"
cd "$REPO"
eval "$(bash hack/up.sh --test)"
export OZWALD_TEST_REDIS_URL=$OZWALD_REDIS_URL
unset OZWALD_REDIS_URL OZWALD_PROVISIONER OZWALD_MANIFESTS OZWALD_TOKEN
out=$DEV_DIR/test-output.tap
set +e
npx tap --reporter=tap "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
node hack/tap-summary.mjs < "$out"
exit "$rc"
