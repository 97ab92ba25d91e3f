#!/bin/sh
# fetch-cmocka.sh DEST SRC - put cmocka's source (Debian's cmocka 1.1.5
# source package, checked by sha256, kept in DEST) into SRC, for cross-building the test
# framework for Windows. Debian ships no cmocka for mingw, and shmcom does
# not keep cmocka's code in its repository.
#
# Where it comes from, first that works:
#   1. $SHMCOM_CMOCKA_TARBALL, a path to cmocka_1.1.5.orig.tar.xz;
#   2. DEST/cmocka_1.1.5.orig.tar.xz from an earlier run;
#   3. `apt-get source --download-only cmocka` with a private deb-src list
#      built from the system's own Debian sources (the system's apt
#      configuration is not touched; no root needed).
set -eu

dest=${1:?usage: fetch-cmocka.sh DEST SRC}
src=${2:?usage: fetch-cmocka.sh DEST SRC}
tarball=cmocka_1.1.5.orig.tar.xz
sha256=f0ccd8242d55e2fd74b16ba518359151f6f8383ff8aef4976e48393f77bba8b6

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

verify() {
    echo "$sha256  $1" | sha256sum -c --status -
}

if [ -n "${SHMCOM_CMOCKA_TARBALL:-}" ]; then
    cp "$SHMCOM_CMOCKA_TARBALL" "$dest/$tarball.part"
    mv "$dest/$tarball.part" "$dest/$tarball"
fi

if ! [ -f "$dest/$tarball" ] || ! verify "$dest/$tarball"; then
    rm -f "$dest/$tarball"
    command -v apt-get >/dev/null 2>&1 || {
        echo "fetch-cmocka: no apt-get here; set SHMCOM_CMOCKA_TARBALL to a copy of $tarball" >&2
        exit 1
    }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial"

    # The URIs and suite of the system's own Debian sources, as deb-src.
    uri=http://deb.debian.org/debian
    suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-bookworm}")
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        u=$(awk '/^URIs:/ {print $2; exit}' "$f")
        case "$u" in
        *debian-security*|"") ;;
        *) uri=$u; break ;;
        esac
    done
    if [ -f /etc/apt/sources.list ]; then
        u=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
        [ -n "$u" ] && uri=$u
    fi
    cat >"$tmp/parts/cmocka-src.sources" <<EOF
Types: deb-src
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$tmp/parts
              -o Dir::State::Lists=$tmp/lists -o Dir::Cache=$tmp/cache
              -o Debug::NoLocking=1 -o APT::Sandbox::User=$(id -un)"
    # shellcheck disable=SC2086
    apt-get -q $apt_opts update >"$tmp/update.log" 2>&1 || {
        cat "$tmp/update.log" >&2
        echo "fetch-cmocka: apt-get update of the private deb-src list failed" >&2
        exit 1
    }
    # shellcheck disable=SC2086
    (cd "$tmp" && apt-get -q $apt_opts source --download-only cmocka) >"$tmp/source.log" 2>&1 || {
        cat "$tmp/source.log" >&2
        echo "fetch-cmocka: apt-get source cmocka failed" >&2
        exit 1
    }
    [ -f "$tmp/$tarball" ] || {
        echo "fetch-cmocka: apt-get source did not bring $tarball" >&2
        ls "$tmp" >&2
        exit 1
    }
    cp "$tmp/$tarball" "$dest/$tarball.part"
    mv "$dest/$tarball.part" "$dest/$tarball"
fi

if ! verify "$dest/$tarball"; then
    echo "fetch-cmocka: $tarball does not have sha256 $sha256" >&2
    rm -f "$dest/$tarball"
    exit 1
fi

rm -rf "$src"
mkdir -p "$src"
tar -xJf "$dest/$tarball" -C "$src" --strip-components=1
echo "fetch-cmocka: cmocka 1.1.5 source in $src"
