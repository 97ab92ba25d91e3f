# bench-plots.gp - the report's three plots, from the data files that
# scripts/bench-report.awk writes (run by scripts/bench-report.sh):
#   gnuplot -e "datadir='DIR'; has_wine=1" scripts/bench-plots.gp
# writes latency.svg, size.svg and clients.svg into the current directory
# (PNG instead with -e "term_png=1", for a quick look).
# Missing figures are NaN in the data and leave a gap.

if (!exists("datadir")) datadir = "."
if (!exists("has_wine")) has_wine = 1

if (!exists("term_png")) {
    set terminal svg size 960,560 dynamic font "sans,13" background rgb "white"
    ext = ".svg"
} else {
    set terminal pngcairo size 960,560 font "sans,11" background rgb "white"
    ext = ".png"
}
set termoption noenhanced # labels are plain text (AF_UNIX, not AF subscript UNIX)
set datafile separator "\t"
set datafile missing "NaN"
set key top left opaque
set grid ytics mytics lc rgb "#dddddd"
native_c = "#1f77b4"
wine_c = "#d62728"

# ---- null-call latency per mechanism, floors beside the calls --------------
set output "latency".ext
set title "Null-call round trip per mechanism (median; log scale)"
set ylabel "µs per round trip"
set logscale y
set format y "%g"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by 30 right scale 0 font ",11"
set bmargin 10
set lmargin 10
set xrange [-0.7:*]
lat = datadir."/latency.dat"
if (has_wine) {
    plot lat using 2:xtic(1) title "native" lc rgb native_c, \
         lat using 3 title "Windows build under Wine" lc rgb wine_c
} else {
    plot lat using 2:xtic(1) title "native" lc rgb native_c
}
unset xrange
unset bmargin
unset lmargin
unset style
set xtics norotate scale 1 font ",13"

# ---- time against the [in] array's size, beside memcpy -----------------------
set output "size".ext
set title "Cross-process call with an [in] array, against memcpy of the same size (log-log)"
set xlabel "[in] array size"
set ylabel "µs per call / per copy"
set logscale xy
set xtics ("64 B" 64, "4 KiB" 4096, "64 KiB" 65536, "1 MiB" 1048576, \
           "4 MiB" 4194304, "16 MiB" 16777216, "64 MiB" 67108864)
set key top left
set style data linespoints
if (has_wine) {
    plot datadir."/size.dat" using 1:2 title "call, native" lw 2 pt 7 lc rgb native_c, \
         "" using 1:3 title "memcpy, native" lw 2 pt 6 dt 2 lc rgb native_c, \
         "" using 1:4 title "call, Windows build under Wine" lw 2 pt 5 lc rgb wine_c, \
         "" using 1:5 title "memcpy, under Wine" lw 2 pt 4 dt 2 lc rgb wine_c
} else {
    plot datadir."/size.dat" using 1:2 title "call, native" lw 2 pt 7 lc rgb native_c, \
         "" using 1:3 title "memcpy, native" lw 2 pt 6 dt 2 lc rgb native_c
}
unset logscale
set xtics autofreq

# ---- calls per second against client processes -----------------------------
set output "clients".ext
set title "Null calls per second, all clients together: N client processes, one MTA object"
set xlabel "client processes"
set ylabel "calls per second"
set xtics 1
set xrange [0.5:8.5]
set yrange [0:*]
set format y "%.1s%c"
set key top left
if (has_wine) {
    plot datadir."/clients.dat" using 1:2 title "native" lw 2 pt 7 lc rgb native_c, \
         "" using 1:3 title "Windows build under Wine" lw 2 pt 5 lc rgb wine_c
} else {
    plot datadir."/clients.dat" using 1:2 title "native" lw 2 pt 7 lc rgb native_c
}
set output
