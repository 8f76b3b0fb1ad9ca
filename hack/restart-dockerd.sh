#!/usr/bin/env bash
# Stops the project's own dockerd and starts it again (tests of the events
# stream and of recovery after an engine restart use it).
source "$(dirname "$0")/lib.sh"
pidf=$DEV_DIR/docker/dockerd.pid
if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
  pid=$(cat "$pidf"); kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
fi
exec bash "$REPO/hack/start-dockerd.sh" >/dev/null
