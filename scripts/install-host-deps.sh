#!/bin/sh
# Install the Debian 12 packages Stockade's demo, tests and benchmarks use.
# Idempotent; needs root. Called by `make setup` (hence by `make demo` and `make test`).
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "install-host-deps: must run as root (apt-get)" >&2
    exit 1
fi

# What each group is for:
#   python3-venv                      the project's .venv
#   docker-registry apache2-utils     a real registry on 127.0.0.1 (htpasswd for basic auth)
#   openssl curl jq                   test CAs, probes
#   skopeo umoci busybox-static       independent image tools and the busybox fixture
#   runc crun podman bubblewrap       peer runtimes (interop tests, benchmarks)
#   uidmap                            newuidmap/newgidmap for rootless containers
#   libseccomp2                       seccomp filter compilation (pyseccomp loads it)
#   containerd                        the containerd integration tests
#   lynis                             the audit benchmark's peer
#   chromium                          renders the audit HTML report in tests
#   debootstrap                       the unpack benchmark's Debian minbase layer
#   gcc libc6-dev                     tiny C probes in tests and benchmarks (syscall loops)
PACKAGES="python3-venv docker-registry apache2-utils openssl curl jq ca-certificates \
skopeo umoci busybox-static runc crun podman bubblewrap uidmap libseccomp2 containerd \
lynis chromium debootstrap gcc libc6-dev iproute2 procps git make"

# Node.js and npm run sigstore-js, the independent bundle verifier. A machine that already has a
# Node.js (e.g. from NodeSource, whose package conflicts with Debian's npm) keeps its own.
command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $PACKAGES
