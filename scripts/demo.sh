#!/bin/sh
# `make demo`: Stockade's main job end to end, on this machine, with nothing left behind.
#
#   1. start a registry (Debian's docker-registry) on a free loopback port, configured in a temp dir
#   2. make a busybox root filesystem from /bin/busybox (busybox-static) and `stockade import` it
#   3. push it, remove it locally, pull it back (digest checked), list it
#
# Everything lives in one temporary directory (store, registry storage, credentials) that the trap
# removes, with the registry, on exit. Needs `make setup` first (make demo does it) and root.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d /tmp/stockade-demo.XXXXXX)
REGISTRY_PID=
cleanup() {
    status=$?
    if [ -n "$REGISTRY_PID" ]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A store, configuration and credentials of the demo's own: the machine's are not touched.
# (REGISTRY_AUTH_FILE is set for stockade only: docker-registry reads REGISTRY_* as its own settings.)
: > "$WORK/config.toml"
export STOCKADE_CONFIG="$WORK/config.toml"
stockade() { REGISTRY_AUTH_FILE="$WORK/auth.json" "$PYTHON" -m stockade --root "$WORK/store" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting a registry on loopback"
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/registry"
cat > "$WORK/registry/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/registry/storage}, delete: {enabled: true}}
http: {addr: "127.0.0.1:$PORT", secret: demo-only}
EOF
docker-registry serve "$WORK/registry/config.yml" > "$WORK/registry/log" 2>&1 &
REGISTRY_PID=$!
tries=0
until curl -sf "http://127.0.0.1:$PORT/v2/" > /dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
        echo "demo: the registry did not start:" >&2; cat "$WORK/registry/log" >&2; exit 1
    fi
    sleep 0.1
done
IMAGE="127.0.0.1:$PORT/demo/busybox:latest"
echo "registry at 127.0.0.1:$PORT (pid $REGISTRY_PID)"

step "Making a busybox root filesystem from /bin/busybox"
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/home/app"
chmod 1777 "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $("$ROOTFS/bin/busybox" --list-full); do
    mkdir -p "$ROOTFS/$(dirname "$applet")"
    [ -e "$ROOTFS/$applet" ] || ln -s /bin/busybox "$ROOTFS/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' > "$ROOTFS/etc/group"
chown 1000:1000 "$ROOTFS/home/app"
tar -C "$ROOTFS" -cf "$WORK/rootfs.tar" .
echo "$(tar -tf "$WORK/rootfs.tar" | wc -l) entries, $(du -h "$WORK/rootfs.tar" | cut -f1)"

step "stockade import (non-root user, a shell as command)"
stockade import --change 'USER 1000:1000' --change 'WORKDIR /home/app' --change 'CMD ["/bin/sh"]' \
    "$WORK/rootfs.tar" "$IMAGE"

step "stockade push"
stockade push "$IMAGE"

step "stockade rmi, then stockade pull (verified against its digest)"
stockade rmi "$IMAGE"
stockade pull "$IMAGE"

step "stockade images"
stockade images
stockade history "$IMAGE"
