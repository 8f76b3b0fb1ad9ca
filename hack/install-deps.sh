#!/usr/bin/env bash
# Installs what Ozwald needs from Debian's packages: Redis, a Docker engine and
# busybox-static (the root filesystem of the local images). Idempotent.
source "$(dirname "$0")/lib.sh"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker >/dev/null || missing+=(docker.io)
# docker-compose: the baseline the benchmarks compare against (hack/bench.mjs).
command -v docker-compose >/dev/null || missing+=(docker-compose)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -eq 0 ]; then say "dependencies present"; exit 0; fi
say "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start system services where systemd runs; ours are started by hack/.
say "installed"
