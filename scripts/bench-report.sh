#!/usr/bin/env bash
# bench-report.sh - builds the benchmarks (tests/bench) in Release, runs
# each once natively and, where mingw-w64 and Wine are installed, the
# Windows build under Wine, and writes one report: every figure with its
# floor and ratio (docs/bench/report.md), the raw figures
# (docs/bench/data/*.tsv), three plots (docs/bench/*.svg, with gnuplot) and
# the headline rows in README.md's "Benchmarks" section. Prints the table.
#
#   scripts/bench-report.sh [--native-only] [--quick] [options]
#
#   --native-only    leave out the Windows build even if Wine is there
#   --quick          the benchmarks' --quick mode: seconds, not minutes;
#                    the numbers mean nothing (a check of the whole path)
#   --no-plots       no gnuplot (otherwise gnuplot is required)
#   --no-build       use the binaries already built
#   --out DIR        write the report to DIR instead of docs/bench, and
#                    leave README.md alone
#   --native-build DIR   the native build tree (default build/release)
#   --wine-build DIR     the mingw build tree (default build/mingw)
#   --wine-only      only the Windows build (for its ctest)
#   --wine-running   WINEPREFIX names a prefix whose wineserver is running
#                    (ctest's fixture): neither start nor stop one
#
# Speed figures are only worth comparing on a quiet machine. Right before
# the first benchmark and right after the last, the script samples for 3 s
# how busy the CPUs are with nothing of its own running (/proc/stat), and
# the report says the figures are noise if either sample is above 25%. The
# load average is not used for that: the benchmarks' own spinning threads
# raise it, and a build just before leaves it high for minutes.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
start_s=$(date +%s)

native=1 wine=1 quick=0 plots=1 build=1 wine_running=0
out="" native_build=build/release wine_build=build/mingw
while [ $# -gt 0 ]; do
    case "$1" in
    --native-only) wine=0 ;;
    --wine-only) native=0 ;;
    --quick) quick=1 ;;
    --no-plots) plots=0 ;;
    --no-build) build=0 ;;
    --wine-running) wine_running=1 ;;
    --out) out=$2; shift ;;
    --native-build) native_build=$2; shift ;;
    --wine-build) wine_build=$2; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "bench-report: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
update_readme=0
if [ -z "$out" ]; then
    out=docs/bench
    update_readme=1
fi
mkdir -p "$out/data" || exit 1
out=$(cd "$out" && pwd)

benches=(bench_calls bench_xproc bench_stream bench_clients)
say() { echo "bench-report: $*" >&2; }
notes=()
failed=0

# ---- what is there -------------------------------------------------------------

if [ $plots = 1 ] && ! command -v gnuplot >/dev/null; then
    say "gnuplot is missing: install it (Debian: apt-get install gnuplot-nox, or"
    say "scripts/install-deps.sh), or pass --no-plots"
    exit 1
fi
if [ $wine = 1 ]; then
    missing=""
    for t in x86_64-w64-mingw32-gcc wine wineserver wineboot; do
        command -v $t >/dev/null || missing="$missing $t"
    done
    if [ -n "$missing" ]; then
        say "no Windows column: missing$missing (scripts/install-deps.sh installs them)"
        notes+=("The Windows build was not measured: missing$missing.")
        wine=0
    fi
elif [ $native = 1 ]; then
    notes+=("The Windows build was not measured (--native-only).")
fi
if [ $native = 0 ] && [ $wine = 0 ]; then
    say "nothing to run"
    exit 1
fi

# ---- the machine ---------------------------------------------------------------

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no -- . ":!docs/bench" ":!README.md" 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
cpus=$(nproc 2>/dev/null || echo "?")
say "$(date -u '+%Y-%m-%d %H:%M UTC'), $cpus CPUs (${cpu_model:-unknown CPU}), commit $commit"

# How busy the CPUs are (percent, all CPUs together) over 3 s, with nothing
# of ours running: other processes' load. "?" where /proc/stat is missing.
others_busy() {
    local a b
    a=$(awk '/^cpu /{ idle = $5 + $6; t = 0; for (i = 2; i <= 9; i++) t += $i; print t, idle }' /proc/stat 2>/dev/null)
    sleep 3
    b=$(awk '/^cpu /{ idle = $5 + $6; t = 0; for (i = 2; i <= 9; i++) t += $i; print t, idle }' /proc/stat 2>/dev/null)
    if [ -z "$a" ] || [ -z "$b" ]; then echo "?"; return; fi
    echo "$a $b" | awk '{ dt = $3 - $1; di = $4 - $2; printf "%.0f", (dt > 0 ? 100 * (dt - di) / dt : 0) }'
}

# "TOTAL STEAL": the CPUs' ticks so far, and those the hypervisor gave to
# other guests (steal); on a VM the runs lose that time unseen by the load
# average, and the figures with it.
cpu_ticks() {
    awk '/^cpu /{ t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9 }' /proc/stat 2>/dev/null
}

# ---- build ---------------------------------------------------------------------

jobs=$(nproc 2>/dev/null || echo 2)
if [ $build = 1 ]; then
    if [ $native = 1 ]; then
        say "building the release preset"
        { cmake --preset release >/dev/null &&
            cmake --build --preset release --parallel "$jobs" --target "${benches[@]}"; } ||
            { say "the native build failed"; exit 1; }
        native_build=build/release
    fi
    if [ $wine = 1 ]; then
        say "building the mingw preset"
        { cmake --preset mingw >/dev/null &&
            cmake --build --preset mingw --parallel "$jobs" --target "${benches[@]}"; } ||
            { say "the mingw build failed"; exit 1; }
        wine_build=build/mingw
    fi
fi
[ $native = 1 ] && { native_build=$(cd "$native_build" 2>/dev/null && pwd) || { say "no native build tree"; exit 1; }; }
[ $wine = 1 ] && { wine_build=$(cd "$wine_build" 2>/dev/null && pwd) || { say "no mingw build tree"; exit 1; }; }

flags=(--tsv)
[ $quick = 1 ] && flags+=(--quick)

# Runs one benchmark; its lines go to data/SIDE-NAME.tsv (nothing through a
# pipe: under Wine a pipe stays open as long as Wine's services run).
run_one() { # side name command...
    local side=$1 name=$2
    shift 2
    local tsv="$out/data/$side-$name.tsv" err="$out/data/$side-$name.err" t0 rc
    t0=$(date +%s)
    "$@" "${flags[@]}" >"$tsv" 2>"$err" </dev/null
    rc=$?
    if [ $rc != 0 ]; then
        say "$side $name failed (exit $rc):"
        sed 's/^/    /' "$err" >&2
        failed=1
        rm -f "$tsv"
    else
        say "$side $name: $(( $(date +%s) - t0 )) s"
        [ -s "$err" ] || rm -f "$err"
    fi
}

rm -f "$out"/data/*.tsv "$out"/data/*.err
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
busy_before=$(others_busy)
say "CPUs busy with other work: ${busy_before}% (load average $load_before)"
ticks_before=$(cpu_ticks)
if [ $native = 1 ]; then
    for b in "${benches[@]}"; do
        run_one native "$b" "$native_build/tests/bench/$b"
    done
fi

wine_version=""
if [ $wine = 1 ]; then
    export WINEDEBUG=-all
    if [ $wine_running = 0 ]; then
        # its own prefix and one wineserver for all the runs, stdio on
        # /dev/null (or the daemon holds our descriptors open)
        export WINEPREFIX="$wine_build/bench-wineprefix"
        mkdir -p "$WINEPREFIX"
        say "starting wineserver and booting $WINEPREFIX"
        wineserver -p </dev/null >/dev/null 2>&1
        wineboot -i </dev/null >/dev/null 2>&1
        trap 'wineserver -k </dev/null >/dev/null 2>&1' EXIT
    elif [ -z "${WINEPREFIX:-}" ]; then
        say "--wine-running needs WINEPREFIX"
        exit 1
    fi
    wine_version=$(wine --version 2>/dev/null </dev/null)
    for b in "${benches[@]}"; do
        run_one wine "$b" wine "$wine_build/tests/bench/$b.exe"
    done
fi
if [ $wine = 1 ] && [ $wine_running = 0 ]; then
    wineserver -k </dev/null >/dev/null 2>&1
    wineserver -w </dev/null >/dev/null 2>&1
fi
ticks_after=$(cpu_ticks)
steal=$(echo "$ticks_before $ticks_after" |
    awk 'NF == 4 && $3 > $1 { printf "%.0f", 100 * ($4 - $2) / ($3 - $1); exit } { print "?" }')
say "CPU time taken by the hypervisor (steal) during the runs: ${steal}%"
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
busy_after=$(others_busy)
say "CPUs busy with other work: ${busy_after}% (load average $load_after)"

# ---- the table -----------------------------------------------------------------

# Rows every run must have (program|key|side, side empty for both).
required="bench_calls|floor.spin|;bench_calls|floor.wait|;bench_calls|null.mta_sta.running|"
required+=";bench_calls|null.mta_sta.asleep|;bench_calls|null.sta_mta.running|"
required+=";bench_calls|null.sta_mta.asleep|;bench_calls|pair|"
required+=";bench_calls|ole32.null.mta_sta|wine;bench_calls|ole32.pair|wine"
required+=";bench_xproc|floor.spin|;bench_xproc|floor.wait|;bench_xproc|floor.events|wine"
required+=";bench_xproc|floor.socket|native;bench_xproc|null.running|;bench_xproc|null.asleep|"
required+=";bench_xproc|null.b2b|;bench_xproc|put.1048576|;bench_xproc|memcpy.1048576|"
for s in 0 64 4096 65536 1048576 4194304 16777216; do
    required+=";bench_xproc|size.call.$s|;bench_xproc|size.memcpy.$s|"
done
[ $quick = 0 ] && required+=";bench_xproc|size.call.67108864|;bench_xproc|size.memcpy.67108864|"
for c in 1 2 8; do required+=";bench_clients|clients.$c|"; done
[ $quick = 0 ] && for c in 3 4 5 6 7; do required+=";bench_clients|clients.$c|"; done
required+=";bench_stream|stream.write.1048576|;bench_stream|memcpy.write.1048576|"
required+=";bench_stream|heap.64|"

# The README's rows.
headline="bench_calls|floor.spin;bench_calls|floor.wait;bench_calls|null.mta_sta.running"
headline+=";bench_calls|null.mta_sta.asleep;bench_calls|ole32.null.mta_sta;bench_calls|pair"
headline+=";bench_calls|ole32.pair;bench_xproc|floor.spin;bench_xproc|floor.wait"
headline+=";bench_xproc|floor.events;bench_xproc|floor.socket;bench_xproc|null.running"
headline+=";bench_xproc|null.asleep;bench_xproc|put.1048576;bench_xproc|put.16777216"
headline+=";bench_xproc|size.call.67108864;bench_clients|clients.1;bench_clients|clients.2"
headline+=";bench_clients|clients.8"

# The bar chart's bars (program|key|label).
bars="bench_calls|floor.spin|threads: spin floor"
bars+=";bench_calls|floor.wait|threads: wait/wake floor"
bars+=";bench_calls|null.mta_sta.running|MTA->STA, both running"
bars+=";bench_calls|null.mta_sta.asleep|MTA->STA, callee asleep"
bars+=";bench_calls|null.sta_mta.running|STA->MTA, both running"
bars+=";bench_calls|null.sta_mta.asleep|STA->MTA, callee asleep"
bars+=";bench_calls|ole32.null.mta_sta|Wine ole32 MTA->STA"
bars+=";bench_xproc|floor.spin|processes: spin floor"
bars+=";bench_xproc|floor.wait|processes: wait/wake floor"
bars+=";bench_xproc|floor.events|processes: named events floor"
bars+=";bench_xproc|floor.socket|processes: AF_UNIX socket floor"
bars+=";bench_xproc|null.running|process->process, both running"
bars+=";bench_xproc|null.asleep|process->process, server asleep"

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"; [ $wine = 1 ] && [ $wine_running = 0 ] && wineserver -k </dev/null >/dev/null 2>&1' EXIT
args=()
for side in native wine; do
    files=()
    for b in "${benches[@]}"; do
        [ -f "$out/data/$side-$b.tsv" ] && files+=("$out/data/$side-$b.tsv")
    done
    [ ${#files[@]} -gt 0 ] && args+=("side=$side" "${files[@]}")
done
if [ ${#args[@]} = 0 ]; then
    say "no benchmark produced figures"
    exit 1
fi
awk -f scripts/bench-report.awk -v dir="$work" -v required="$required" \
    -v headline="$headline" -v bars="$bars" "${args[@]}" || { say "the figures could not be read"; exit 1; }

# ---- plots ---------------------------------------------------------------------

if [ $plots = 1 ]; then
    cp "$work/latency.dat" "$work/size.dat" "$work/clients.dat" "$out/data/"
    (cd "$out" && gnuplot -e "datadir='data'; has_wine=$wine" "$root/scripts/bench-plots.gp") ||
        { say "gnuplot failed"; exit 1; }
    rm -f "$out/data/latency.dat" "$out/data/size.dat" "$out/data/clients.dat"
fi

# ---- the report ----------------------------------------------------------------

runtime=$(( $(date +%s) - start_s ))
busy=""
if awk -v a="$busy_before" -v b="$busy_after" \
    'BEGIN { exit !(a == "?" || b == "?" || a + 0 > 25 || b + 0 > 25) }' 2>/dev/null; then
    busy="**The machine was busy (other work kept its CPUs ${busy_before}% busy before the runs and ${busy_after}% after; more than 25% makes the figures noise, floors included): run the script again on a quiet machine.**"
    say "the machine was busy: the figures are noise"
elif awk -v s="$steal" 'BEGIN { exit !(s != "?" && s + 0 > 5) }' 2>/dev/null; then
    busy="**The hypervisor took ${steal}% of the CPUs' time during the runs (steal): floors and calls lost time at random, so their ratios are noise. Run the script again when the host is quieter.**"
    say "the host took ${steal}% of the CPUs: the figures are noise"
fi
builds=""
if [ $native = 1 ]; then
    builds="native: release preset ($(cc --version 2>/dev/null | head -n1))"
fi
if [ $wine = 1 ]; then
    [ -n "$builds" ] && builds="$builds; "
    builds="${builds}Windows: mingw preset, RelWithDebInfo ($(x86_64-w64-mingw32-gcc --version 2>/dev/null | head -n1)), under $wine_version"
fi
{
    echo "# shmcom benchmark report"
    echo
    echo "Written by \`scripts/bench-report.sh$([ $quick = 1 ] && echo " --quick")$([ $wine = 0 ] && [ $native = 1 ] && echo " --native-only")\`; do not edit, run it again."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| commit | $commit ($branch) |"
    echo "| machine | $cpus CPUs, ${cpu_model:-unknown CPU}, $(uname -sr) |"
    echo "| other work on the CPUs (3 s samples) | before the runs: ${busy_before}%; after: ${busy_after}% |"
    echo "| CPU time the hypervisor took (steal) | during the runs: ${steal}% |"
    echo "| load average (1, 5, 15 min) | before the runs: $load_before; after: $load_after (the benchmarks' own threads count in it) |"
    echo "| builds | $builds |"
    echo "| run time | $runtime s |"
    [ $quick = 1 ] && echo "| mode | **--quick: too few iterations for the numbers to mean anything** |"
    echo
    [ -n "$busy" ] && { echo "$busy"; echo; }
    for n in "${notes[@]}"; do
        echo "$n"
        echo
    done
    cat <<'EOF'
Each figure is the median of the benchmark's rounds, with the fastest and
the slowest round in brackets. A *floor* is what the machine itself does
for the same job, measured in the same run (a spin or wait/wake ping-pong,
a socket round trip, memcpy); *ratio* compares a figure with the floor or
figure it names (for times, this time over that one; for bandwidths, this
bandwidth over that one). Figures taken while other work ran on the
machine can be off by 3x, floors included. The raw lines are in `data/` (format: `tests/bench/benchtsv.h`).

EOF
    cat "$work/table.md"
    if [ $plots = 1 ]; then
        echo
        echo "![null-call latency per mechanism](latency.svg)"
        echo
        echo "![time against size](size.svg)"
        echo
        echo "![calls per second against clients](clients.svg)"
    fi
} >"$out/report.md"

if [ $update_readme = 1 ]; then
    begin='<!-- bench-report:begin -->' end='<!-- bench-report:end -->'
    if grep -q "^$begin\$" README.md && grep -q "^$end\$" README.md; then
        {
            echo "$begin"
            echo "Measured $(date -u '+%Y-%m-%d') at commit $commit on $cpus CPUs (${cpu_model:-unknown CPU}),"
            echo "other work kept the CPUs ${busy_before}% busy before the runs and ${busy_after}% after, the hypervisor took ${steal}% of their time during them$([ $quick = 1 ] && echo " (**--quick: meaningless numbers**)")."
            echo "Medians (fastest–slowest round); the full table is in [docs/bench/report.md](docs/bench/report.md)."
            echo
            [ -n "$busy" ] && { echo "$busy"; echo; }
            cat "$work/headline.md"
            if [ $plots = 1 ]; then
                echo
                echo "![null-call latency per mechanism](docs/bench/latency.svg)"
                echo "![time against size](docs/bench/size.svg)"
                echo "![calls per second against clients](docs/bench/clients.svg)"
            fi
            echo "$end"
        } >"$work/block.md"
        awk -v begin="$begin" -v end="$end" -v block="$work/block.md" '
            $0 == begin { while ((getline l < block) > 0) print l; skip = 1; next }
            $0 == end { skip = 0; next }
            !skip' README.md >"$work/README.md" && cp "$work/README.md" README.md
    else
        say "README.md has no $begin/$end block: not updated"
    fi
fi

cat "$work/table.md"
echo
say "report: $out/report.md ($runtime s; other work on the CPUs: ${busy_before}% before, ${busy_after}% after)"
[ $failed = 1 ] && say "some benchmarks failed (see above)"
exit $failed
