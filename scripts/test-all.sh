#!/usr/bin/env bash
# test-all.sh - builds and runs every test suite of shmcom:
#   default   native build (RelWithDebInfo)
#   asan      native build with AddressSanitizer + UndefinedBehaviorSanitizer
#             (and each libFuzzer target for 60 s)
#   tsan      native build with ThreadSanitizer (clang)
#   memcheck  native build, every test program (and the processes it
#             starts) under Valgrind's memcheck
#   mingw     Windows build (mingw-w64), every test run under Wine
# Named presets run only those, in the order given.
# It fails if any suite fails, or if the Windows toolchain (mingw-w64 and
# Wine) is missing, unless --native-only is given.
#
#   scripts/test-all.sh [--native-only] [preset...]   e.g. test-all.sh tsan memcheck
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

native_only=0
presets=()
for a in "$@"; do
    case "$a" in
    --native-only) native_only=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) presets+=("$a") ;;
    esac
done

have_windows=0
if command -v x86_64-w64-mingw32-gcc >/dev/null && command -v wine >/dev/null &&
    command -v wineserver >/dev/null; then
    have_windows=1
fi
if [ ${#presets[@]} -eq 0 ]; then
    presets=(default asan tsan memcheck)
    if [ $have_windows = 1 ] && [ $native_only = 0 ]; then
        presets+=(mingw)
    elif [ $native_only = 0 ]; then
        echo "test-all: the Windows toolchain (x86_64-w64-mingw32-gcc, wine) is missing;" >&2
        echo "test-all: install it (scripts/install-deps.sh) or pass --native-only" >&2
        exit 1
    fi
fi

jobs=$(nproc 2>/dev/null || echo 2)
declare -A result
failed=0
for p in "${presets[@]}"; do
    echo
    echo "=== [$p] configure, build, test ==="
    start=$(date +%s)
    if cmake --preset "$p" && cmake --build --preset "$p" --parallel "$jobs" &&
        ctest --preset "$p" --parallel "$jobs"; then
        result[$p]="passed"
    else
        result[$p]="FAILED"
        failed=1
    fi
    result[$p]="${result[$p]} in $(( $(date +%s) - start )) s"
done

echo
echo "=== summary ==="
for p in "${presets[@]}"; do
    printf '  %-9s %s\n' "$p" "${result[$p]}"
done
[ $native_only = 1 ] && echo "  (--native-only: the Windows build was not tested)"
exit $failed
