#!/bin/sh
# format.sh - format every C file with the repository's .clang-format.
set -eu
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format)
find runtime posix win32 idl tests samples -name '*.[ch]' -not -path '*/golden/*' -print0 |
    xargs -0 "$cf" -i
