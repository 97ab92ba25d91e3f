#!/bin/sh
# quickstart.sh - on a fresh machine: install what is needed, build shmcom
# (native, default preset) and run its main sample.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default
cmake --build --preset default --parallel
echo
echo "=== running the main sample: build/default/samples/plugin-host/plugin-host ==="
echo "=== (a host and 3 plugin processes; try --crash-plugin 2 or --hang-plugin 2) ==="
build/default/samples/plugin-host/plugin-host
