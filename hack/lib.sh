# Shared by the hack/ scripts: where the project keeps its own Redis and
# dockerd state. Sourced, not run.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV_DIR=${OZWALD_DEV_DIR:-$REPO/.dev}
# Unix socket paths must stay short (108 bytes); fall back to /tmp for deep checkouts.
if [ ${#DEV_DIR} -gt 70 ]; then
  DEV_DIR=/tmp/ozwald-dev-$(printf '%s' "$REPO" | sha1sum | cut -c1-10)
fi
PROJECT_DOCKER_HOST=unix://$DEV_DIR/docker.sock
mkdir -p "$DEV_DIR"

say() { printf '[hack] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

docker_ok() { DOCKER_HOST=$1 timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
redis_ok() { timeout 3 redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; }
