#!/usr/bin/env bash
# Starts a Redis on 127.0.0.1:PORT (default 6379) unless one answers there.
# State lives in the project's dev directory. With "persist" as the second
# argument it keeps an append-only file there (sealed lockers survive
# `make stop`); the test Redis keeps nothing.
source "$(dirname "$0")/lib.sh"
PORT=${1:-6379}
if [ "${2:-}" = persist ]; then persist=(--appendonly yes --appendfsync everysec); else persist=(--save '' --appendonly no); fi
if redis_ok "$PORT"; then say "redis already answering on 127.0.0.1:$PORT"; exit 0; fi
dir=$DEV_DIR/redis-$PORT
mkdir -p "$dir"
redis-server --port "$PORT" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
  --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "${persist[@]}" >/dev/null
for _ in $(seq 1 50); do redis_ok "$PORT" && { say "redis started on 127.0.0.1:$PORT"; exit 0; }; sleep 0.1; done
say "redis did not start; see $dir/redis.log"; tail -n 20 "$dir/redis.log" >&2 || true; exit 1
