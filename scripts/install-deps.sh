#!/bin/sh
# install-deps.sh - installs what building and testing shmcom needs, from
# Debian's archive (Debian 12; Ubuntu has the same package names). Uses sudo
# when not run as root. Does nothing when everything is already there.
set -eu

packages="
    build-essential cmake ninja-build pkg-config libcmocka-dev
    gcc-mingw-w64-x86-64 mingw-w64-tools wine wine64 wine64-tools libwine-dev
    clang clang-format libclang-rt-14-dev valgrind
    ca-certificates xz-utils
    gnuplot-nox
"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: everything is installed"
    exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (missing:$missing)" >&2; exit 1; }
    sudo=sudo
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q $missing
