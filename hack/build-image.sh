#!/usr/bin/env bash
# Builds the local image ozwald-demo:latest from Debian's busybox-static
# (docker import of a tiny root filesystem; no registry involved). Rebuilds
# only when its inputs change.
source "$(dirname "$0")/lib.sh"
: "${DOCKER_HOST:?set DOCKER_HOST}"
IMAGE=${1:-ozwald-demo:latest}
BUSYBOX=$(command -v busybox || echo /bin/busybox)
sum=$(cat "$BUSYBOX" "$REPO/hack/image/ozwald-demo" | sha256sum | cut -c1-16)
if [ "$(docker image inspect --format '{{index .Config.Labels "ozwald-demo.inputs"}}' "$IMAGE" 2>/dev/null)" = "$sum" ]; then
  say "$IMAGE is up to date"; exit 0
fi
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/bin "$root"/tmp "$root"/etc "$root"/data
cp "$BUSYBOX" "$root/bin/busybox"
for app in $("$BUSYBOX" --list); do [ "$app" = busybox ] || ln -s busybox "$root/bin/$app"; done
install -m 0755 "$REPO/hack/image/ozwald-demo" "$root/bin/ozwald-demo"
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
tar -C "$root" -c . | docker import \
  -c 'ENTRYPOINT ["/bin/ozwald-demo"]' -c 'ENV PATH=/bin' -c "LABEL ozwald-demo.inputs=$sum" - "$IMAGE" >/dev/null
say "built $IMAGE"
