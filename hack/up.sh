#!/usr/bin/env bash
# Makes sure Redis and a Docker engine are reachable and the local image is
# built; prints the environment to use them (eval "$(hack/up.sh)").
#   hack/up.sh            Redis on 6379 unless OZWALD_REDIS_URL is set; an existing
#                         engine (DOCKER_HOST or the default socket) or the project's own
#   hack/up.sh --test     Redis on 6391 and always the project's own dockerd
source "$(dirname "$0")/lib.sh"
mode=${1:-dev}
bash "$REPO/hack/install-deps.sh"
if [ "$mode" = --test ]; then
  port=${OZWALD_TEST_REDIS_PORT:-6391}
  bash "$REPO/hack/start-redis.sh" "$port"
  redis_url=redis://127.0.0.1:$port/0
  docker_host=$(bash "$REPO/hack/start-dockerd.sh")
else
  if [ -n "${OZWALD_REDIS_URL:-}" ]; then redis_url=$OZWALD_REDIS_URL; else
    bash "$REPO/hack/start-redis.sh" 6379 persist; redis_url=redis://127.0.0.1:6379/0; fi
  if [ -n "${DOCKER_HOST:-}" ] && docker_ok "$DOCKER_HOST"; then docker_host=$DOCKER_HOST
  elif docker_ok unix:///var/run/docker.sock; then docker_host=unix:///var/run/docker.sock
  else docker_host=$(bash "$REPO/hack/start-dockerd.sh"); fi
fi
DOCKER_HOST=$docker_host bash "$REPO/hack/build-image.sh" ozwald-demo:latest
printf 'export DOCKER_HOST=%q\nexport OZWALD_REDIS_URL=%q\n' "$docker_host" "$redis_url"
