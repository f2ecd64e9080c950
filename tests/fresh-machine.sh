#!/bin/sh
# fresh-machine.sh - make test-fresh: the README's commands on a fresh Debian machine.
#
# A minimal Debian bookworm (debootstrap --variant=minbase) plus only what a fresh machine of the
# kind this project runs on ships - gcc, make, git and Debian's reference BLAS (libblas-dev, whose
# cblas.h is the look-alike that once fooled the dependency check) - is built once into a cache
# folder outside the repository and reused. Each run copies it afresh, puts a `git archive` of HEAD
# into the copy and, inside a chroot, runs the README's first command (`make demo`, which must
# install what the build needs by itself) and then a fast part of `make test`: the test-time
# dependency check, the unit tests and tests/run-deps.sh. It fails if any of them fails.
#
# Needs root (debootstrap, chroot, mounts) and Debian's package mirror. The log, with the packages
# the run installed, is written to build/test-fresh.log.
#   SALIGN_FRESH_CACHE   cache folder (default ~/.cache/salign-fresh)
#   SALIGN_FRESH_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   SALIGN_SHARED        ../shared (test models; bound read-only into the chroot)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
cache=${SALIGN_FRESH_CACHE:-$HOME/.cache/salign-fresh}
mirror=${SALIGN_FRESH_MIRROR:-http://deb.debian.org/debian}
shared=${SALIGN_SHARED:-$top/../shared}
suite=bookworm
log=$top/build/test-fresh.log
mkdir -p "$top/build"
: > "$log"
say() { echo "test-fresh: $*" | tee -a "$log" >&2; }

[ "$(id -u)" = 0 ] || { echo "test-fresh: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
[ -d "$shared/models" ] || { echo "test-fresh: $shared/models is missing (set SALIGN_SHARED)" >&2; exit 1; }
git rev-parse --verify -q HEAD >/dev/null || { echo "test-fresh: not a git checkout (it tests a git archive of HEAD)" >&2; exit 1; }
if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$log" 2>&1 ||
        { apt-get update -qq >>"$log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$log" 2>&1; } ||
        { echo "test-fresh: cannot install debootstrap (see $log)" >&2; exit 1; }
fi

# ---- the cached base root: what a fresh machine has -------------------------------------------
base=$cache/base-$suite
base_pkgs="gcc,make,git,libblas-dev,ca-certificates"
mkdir -p "$cache/archives"
if [ ! -f "$base/.salign-base" ] || [ "$(cat "$base/.salign-base")" != "$base_pkgs" ]; then
    say "building the base root $base (debootstrap $suite minbase + $base_pkgs; once, then cached)"
    rm -rf "$base.tmp" "$base"
    t0=$(date +%s)
    debootstrap --variant=minbase --include="$base_pkgs" "$suite" "$base.tmp" "$mirror" >>"$log" 2>&1 ||
        { echo "test-fresh: debootstrap failed (see $log)" >&2; exit 1; }
    cat > "$base.tmp/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
    # downloaded .debs are kept apart (bound at run time) so runs do not fetch them twice
    rm -f "$base.tmp"/var/cache/apt/archives/*.deb
    echo "$base_pkgs" > "$base.tmp/.salign-base"
    mv "$base.tmp" "$base"
    say "base root ready in $(( $(date +%s) - t0 )) s"
fi

# ---- a fresh copy for this run ----------------------------------------------------------------
root=$(mktemp -d "$cache/run.XXXXXX")
mounted=""
cleanup() {
    st=$?
    for m in $mounted; do umount -l "$m" 2>/dev/null || true; done
    # only remove the copy when nothing is mounted in it any more (never delete through a bind mount)
    if ! grep -q " $root/" /proc/mounts 2>/dev/null; then rm -rf "$root"; else
        echo "test-fresh: $root still has mounts; left in place" >&2; fi
    exit $st
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bind() { # source target [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2"
    mounted="$2 $mounted"
    [ "${3:-}" = ro ] && mount -o remount,bind,ro "$2"
    return 0
}
cp -a "$base/." "$root/"
bind /dev "$root/dev"
bind /dev/pts "$root/dev/pts"
mkdir -p "$root/proc" "$root/sys"
mount -t proc proc "$root/proc" && mounted="$root/proc $mounted"
mount -t sysfs sysfs "$root/sys" && mounted="$root/sys $mounted"
bind "$cache/archives" "$root/var/cache/apt/archives"
bind "$shared" "$root/work/shared" ro
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$root/work/salign"
git archive --format=tar HEAD | tar -x -C "$root/work/salign"
say "testing $(git rev-parse --short HEAD) in $root"

# what the run is allowed to start from, and what it installed
chroot "$root" dpkg-query -W -f '${Package}\n' | sort > "$root/tmp/pkgs-before"
set +e
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM=dumb sh -c '
set -e
cd /work/salign
echo "== make demo"
make demo
echo "== make test (fast part): deps, build, unit tests, run-deps"
sh tools/deps.sh test
make -j2 all
bin/salign-tests --exclude archs_model_   # run-archs.sh runs those, with llama.cpp as the oracle
sh tests/run-deps.sh
' >>"$log" 2>&1
st=$?
set -e
chroot "$root" dpkg-query -W -f '${Package}\n' | sort > "$root/tmp/pkgs-after"
installed=$(comm -13 "$root/tmp/pkgs-before" "$root/tmp/pkgs-after" | tr '\n' ' ')
say "packages the run installed: ${installed:-none}"
grep -E '^(salign: installing|[0-9]+ passed, [0-9]+ failed)' "$log" >&2 || true
if [ $st != 0 ]; then
    tail -n 30 "$log" >&2
    say "FAILED (status $st); whole log: $log"
    exit 1
fi
say "passed: make demo and the fast tests work on a fresh $suite root (log: $log)"
