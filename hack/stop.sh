#!/usr/bin/env bash
# Stops the Redis servers and the dockerd that hack/ started (not system ones).
source "$(dirname "$0")/lib.sh"
for pidf in "$DEV_DIR"/redis-*/redis.pid "$DEV_DIR/docker/dockerd.pid"; do
  [ -f "$pidf" ] || continue
  pid=$(cat "$pidf"); kill "$pid" 2>/dev/null && say "stopped pid $pid ($pidf)" || true
done
