#!/bin/sh
# `make demo`: Stockade's main job end to end, on this machine, with nothing left behind.
#
#   1. start a registry (Debian's docker-registry) on a free loopback port, configured in a temp dir
#   2. make a busybox root filesystem from /bin/busybox (busybox-static) and `stockade import` it
#   3. push it, remove it locally, pull it back (digest checked), list it
#   4. generate a key, sign the image, write a policy requiring that key (restricted hardening)
#   5. run the signed image: it prints its own uid, capabilities, no_new_privs and seccomp state,
#      and finds / read-only
#   6. an unsigned image and an over-privileged run are refused, with their reasons
#
# Every step is checked: the script exits 0 only if each behaved as expected (the refusals are
# expected). Everything lives in one temporary directory (store, registry storage, keys, policy,
# credentials) that the trap removes, with the registry, on exit. Needs `make setup` first (make demo
# does it) and root.
set -eu
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d /tmp/stockade-demo.XXXXXX)
REGISTRY_PID=
cleanup() {
    status=$?
    ids=$(stockade ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || stockade rm -f $ids > /dev/null 2>&1 || true
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
# Containers run as unprivileged users must be able to reach the store below $WORK (as /var/lib's 0711).
chmod 0711 "$WORK"
: > "$WORK/config.toml"
export STOCKADE_CONFIG="$WORK/config.toml"
export STOCKADE_PASSWORD="demo-only-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"  # no prompt: CI has no stdin
stockade() { REGISTRY_AUTH_FILE="$WORK/auth.json" "$PYTHON" -m stockade --root "$WORK/store" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
# expect_refused WHAT -- ARGS: `stockade ARGS` must be refused by the policy (exit 122), with its reasons.
expect_refused() {
    what=$1; shift 2
    if stockade "$@" > "$WORK/out" 2> "$WORK/err"; then
        cat "$WORK/out"; fail "$what was not refused"
    else
        code=$?
    fi
    cat "$WORK/err"
    [ "$code" -eq 122 ] || fail "$what: expected exit 122 (denied by policy), got $code"
    echo "-> refused as expected (exit $code)"
}

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
IMAGE="127.0.0.1:$PORT/demo/busybox:1.0"
UNSIGNED="127.0.0.1:$PORT/demo/unsigned:1.0"
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

step "stockade key generate, stockade sign (the manifest digest, cosign's format)"
stockade key generate --output-key-prefix "$WORK/demo"
stockade sign --key "$WORK/demo.key" "$IMAGE"
stockade verify --key "$WORK/demo.pub" "$IMAGE"

step "stockade policy new: the restricted profile, and images of demo/ signed by that key"
stockade policy new --name demo --profile restricted --images "127.0.0.1:$PORT/demo/**" \
    --key "$WORK/demo.pub" > "$WORK/policy.yaml"
stockade policy lint "$WORK/policy.yaml"
printf '[policy]\ndefault = "%s"\n' "$WORK/policy.yaml" > "$WORK/config.toml"   # what `run` applies
cat "$WORK/policy.yaml"

step "stockade policy explain: what run will do, without running anything"
stockade policy explain "$IMAGE"

step "stockade run: the signed image, hardened by the policy, looks at itself"
stockade run --rm "$IMAGE" sh -c '
    echo "uid: $(id -u)"
    grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status
    if touch /written 2>/dev/null; then echo "/ is writable"; else echo "/ is read-only"; fi' | tee "$WORK/inside"
for expected in "uid: 1000" "CapEff:	0000000000000000" "NoNewPrivs:	1" "Seccomp:	2" "/ is read-only"; do
    grep -qxF "$expected" "$WORK/inside" || fail "the signed container did not show '$expected'"
done

step "An unsigned image is refused before anything is pulled"
stockade import --change 'USER 1000:1000' --change 'LABEL signed=no' "$WORK/rootfs.tar" "$UNSIGNED"
stockade push "$UNSIGNED"
stockade rmi "$UNSIGNED" > /dev/null
expect_refused "the unsigned image" -- run --rm "$UNSIGNED" id
grep -q "\[signatures\]" "$WORK/err" || fail "the refusal does not name the signature rule"
stockade image inspect "$UNSIGNED" > /dev/null 2>&1 && fail "the refused image was pulled"

step "An over-privileged run of the signed image is refused, with every reason"
expect_refused "the privileged run" -- run --rm --privileged --cap-add SYS_ADMIN -u 0 "$IMAGE" id
for rule in runtime.privileged runtime.capabilities.add runtime.runAsNonRoot; do
    grep -q "\[$rule\]" "$WORK/err" || fail "the refusal does not list $rule"
done
[ -z "$(stockade ps -aq)" ] || fail "a refused run left a container behind"

step "Done: every step behaved as expected"
