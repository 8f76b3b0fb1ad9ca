#!/usr/bin/env bash
# Starts the project's own dockerd (own data root, exec root and socket under
# the dev directory) unless it already answers. Prints its DOCKER_HOST.
source "$(dirname "$0")/lib.sh"
if docker_ok "$PROJECT_DOCKER_HOST"; then say "dockerd already answering at $PROJECT_DOCKER_HOST"; echo "$PROJECT_DOCKER_HOST"; exit 0; fi
d=$DEV_DIR/docker
mkdir -p "$d/data" "$d/exec"
rm -f "$DEV_DIR/docker.sock"
if [ -f "$d/dockerd.pid" ] && kill -0 "$(cat "$d/dockerd.pid")" 2>/dev/null; then
  kill "$(cat "$d/dockerd.pid")" 2>/dev/null || true; sleep 2
fi
# --bridge=none: no docker0 of our own, so we never clash with a system engine.
setsid nohup dockerd --data-root "$d/data" --exec-root "$d/exec" --host "$PROJECT_DOCKER_HOST" \
  --pidfile "$d/dockerd.pid" --bridge=none \
  >"$d/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 120); do
  if docker_ok "$PROJECT_DOCKER_HOST"; then say "dockerd started at $PROJECT_DOCKER_HOST"; echo "$PROJECT_DOCKER_HOST"; exit 0; fi
  sleep 0.5
done
say "dockerd did not start; last lines of $d/dockerd.log:"; tail -n 30 "$d/dockerd.log" >&2 || true; exit 1
