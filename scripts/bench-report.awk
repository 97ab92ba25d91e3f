# bench-report.awk - reads the --tsv output of the benchmarks (format in
# tests/bench/benchtsv.h) and writes the report's table and plot data.
# Run by scripts/bench-report.sh; POSIX awk (Debian's mawk is enough).
#
#   awk -f bench-report.awk -v dir=OUT -v required=... -v headline=... \
#       -v bars=... side=native FILE... side=wine FILE...
#
# Each FILE is [SIDE-]PROGRAM.tsv. Writes OUT/table.md (every figure),
# OUT/headline.md (the rows named in `headline`), OUT/latency.dat,
# OUT/size.dat and OUT/clients.dat (for gnuplot). Lists are "a|b|c;..."
# strings. Fails (exit 1, message on stderr) on a malformed line, a file
# without its header, or a required row that is missing.

function fail(msg) {
    print "bench-report: " msg > "/dev/stderr"
    failed = 1
    exit 1
}

function isnum(s) {
    return s ~ /^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ || s == "inf" || s == "nan"
}

# Inserts key k of program p after position `after` (0: at the front).
function insert_key(p, k, after,    i) {
    for (i = nord[p]; i > after; i--)
        ord[p, i + 1] = ord[p, i]
    ord[p, after + 1] = k
    nord[p]++
    has[p, k] = 1
}

function key_pos(p, k,    i) {
    for (i = 1; i <= nord[p]; i++)
        if (ord[p, i] == k)
            return i
    return 0
}

# ---- number formatting ----

function num(x,    a) {
    a = x < 0 ? -x : x
    if (a >= 100) return sprintf("%.0f", x)
    if (a >= 10) return sprintf("%.1f", x)
    if (a >= 1) return sprintf("%.2f", x)
    return sprintf("%.3f", x)
}

# Sets SCALE and SUFFIX for a value v of unit u.
function scale(v, u) {
    SCALE = 1; SUFFIX = u
    if (u == "us") {
        SUFFIX = "µs"
        if (v >= 1e6) { SCALE = 1e-6; SUFFIX = "s" }
        else if (v >= 1e3) { SCALE = 1e-3; SUFFIX = "ms" }
    } else if (u == "calls/s") {
        if (v >= 1e6) { SCALE = 1e-6; SUFFIX = "M calls/s" }
        else if (v >= 1e3) { SCALE = 1e-3; SUFFIX = "k calls/s" }
    }
}

function cell(s, p, k,    m, a, b, t) {
    if (!((s, p, k) in med))
        return "—"
    m = med[s, p, k]; a = lo[s, p, k]; b = hi[s, p, k]
    if (a > b) { t = a; a = b; b = t }
    scale(m, unit[p, k])
    if (nrounds_one[s, p])
        return num(m * SCALE) " " SUFFIX
    return num(m * SCALE) " " SUFFIX " (" num(a * SCALE) "–" num(b * SCALE) ")"
}

function rnum(v,    a) {
    a = v < 0 ? -v : v
    if (a >= 100) return sprintf("%.0f", v)
    if (a >= 10) return sprintf("%.1f", v)
    if (a >= 0.1) return sprintf("%.2f", v)
    return sprintf("%.3f", v)
}

function ratios(s, p, k,    i, out, v, r) {
    out = ""
    for (i = 1; i <= nrat[s, p, k]; i++) {
        v = rat_v[s, p, k, i]; r = rat_ref[s, p, k, i]
        if (out != "") out = out "; "
        out = out rnum(v) "x " rat_text[s, p, k, i]
        if (kind[p, r] == "ref" && v > 0 && v < 1)
            out = out " (" rnum(1 / v) "x faster)"
    }
    return out
}

function row_md(p, k,    l) {
    l = label[p, k]
    if (kind[p, k] == "floor") l = "floor: " l
    if (kind[p, k] == "ref") l = "*" l "*"
    gsub(/\|/, "\\|", l)
    return "| " l " | " cell("native", p, k) " | " ratios("native", p, k) " | " \
        cell("wine", p, k) " | " ratios("wine", p, k) " |"
}

function table_head(f) {
    print "| figure | native | ratio | Windows build under Wine | ratio |" > f
    print "|---|---|---|---|---|" > f
}

function datum(s, p, k) {
    return ((s, p, k) in med) ? med[s, p, k] : "NaN"
}

FNR == 1 {
    prog = FILENAME
    sub(/.*\//, "", prog)
    sub(/\.tsv$/, "", prog)
    sub(/^(native|wine)-/, "", prog)
    if (side != "native" && side != "wine")
        fail(FILENAME ": side is '" side "', not native or wine")
    sides[side] = 1
    prevpos = 0
    got_header = 0
}

{
    sub(/\r$/, "") # the Windows build's stdout is in text mode
    n = split($0, f, "\t")
    where = FILENAME ":" FNR
}

f[1] == "#shmcom-bench" {
    if (FNR != 1 || n != 6 || f[2] != "1" || f[3] != prog)
        fail(where ": not a version 1 header of " prog ": " $0)
    got_header = 1
    platform[side, prog] = f[4]
    cpus[side, prog] = f[5]
    quickrun[side, prog] = f[6]
    nrounds_one[side, prog] = (prog == "bench_clients" && f[6] == "1")
    next
}

!got_header { fail(where ": no #shmcom-bench header before: " $0) }

f[1] == "row" {
    if (n != 8 || f[2] !~ /^[a-z0-9._]+$/ || !isnum(f[3]) || !isnum(f[4]) || !isnum(f[5]) ||
        f[6] !~ /^(us|ns|GB\/s|calls\/s)$/ || f[7] !~ /^(floor|call|ref)$/)
        fail(where ": malformed row: " $0)
    k = f[2]
    if ((side, prog, k) in med)
        fail(where ": row " k " twice")
    med[side, prog, k] = f[3] + 0; lo[side, prog, k] = f[4] + 0; hi[side, prog, k] = f[5] + 0
    if ((prog, k) in unit && (unit[prog, k] != f[6] || kind[prog, k] != f[7]))
        fail(where ": row " k " has another unit or kind than on the other side")
    unit[prog, k] = f[6]; kind[prog, k] = f[7]
    if (!((prog, k) in label) || side == "native")
        label[prog, k] = f[8]
    if (!has[prog, k])
        insert_key(prog, k, prevpos)
    prevpos = key_pos(prog, k)
    progs_seen[prog] = 1
    next
}

f[1] == "ratio" {
    if (n != 5 || !isnum(f[4]))
        fail(where ": malformed ratio: " $0)
    k = f[2]
    nchk++
    chk_where[nchk] = where; chk_line[nchk] = $0
    chk_a[nchk] = side SUBSEP prog SUBSEP k; chk_b[nchk] = side SUBSEP prog SUBSEP f[3]
    i = ++nrat[side, prog, k]
    rat_ref[side, prog, k, i] = f[3]; rat_v[side, prog, k, i] = f[4] + 0
    rat_text[side, prog, k, i] = f[5]
    next
}

{ fail(where ": unknown line: " $0) }

END {
    if (failed)
        exit 1

    # every ratio compares two rows of its file
    for (i = 1; i <= nchk; i++)
        if (!(chk_a[i] in med) || !(chk_b[i] in med))
            fail(chk_where[i] ": ratio of rows not given: " chk_line[i])

    # every required row, on every side that ran
    nreq = split(required, req, ";")
    for (i = 1; i <= nreq; i++) {
        split(req[i], r, "|") # program|key|side ("" for both)
        for (s in sides) {
            if (r[3] != "" && r[3] != s)
                continue
            if (!((s, r[1], r[2]) in med))
                fail(s ": " r[1] " printed no row " r[2])
        }
    }

    # the table: every figure, grouped by program
    np = split("bench_calls|bench_xproc|bench_clients|bench_stream", plist, "|")
    title["bench_calls"] = "Calls between apartments of one process"
    title["bench_xproc"] = "Calls between two processes, and a call's time against its [in] array's size"
    title["bench_clients"] = "Null calls per second: client processes calling one MTA object in a server process"
    title["bench_stream"] = "The shared-memory stream"
    short["bench_calls"] = "Between apartments"
    short["bench_xproc"] = "Between processes"
    short["bench_clients"] = "Client processes, one server"
    short["bench_stream"] = "Shared-memory stream"
    out = dir "/table.md"
    table_head(out)
    for (j = 1; j <= np; j++) {
        p = plist[j]
        if (!(p in progs_seen))
            continue
        print "| **" title[p] "** (`" p "`) | | | | |" > out
        for (i = 1; i <= nord[p]; i++)
            print row_md(p, ord[p, i]) > out
    }
    close(out)

    out = dir "/headline.md"
    table_head(out)
    nh = split(headline, hl, ";")
    last = ""
    for (i = 1; i <= nh; i++) {
        split(hl[i], r, "|")
        if (!has[r[1], r[2]])
            continue
        if (r[1] != last)
            print "| **" short[r[1]] "** | | | | |" > out
        last = r[1]
        print row_md(r[1], r[2]) > out
    }
    close(out)

    # the bar chart: null-call latency per mechanism (µs)
    out = dir "/latency.dat"
    nb = split(bars, bl, ";")
    for (i = 1; i <= nb; i++) {
        split(bl[i], r, "|") # program|key|label
        if (has[r[1], r[2]])
            printf "\"%s\"\t%s\t%s\n", r[3], datum("native", r[1], r[2]),
                datum("wine", r[1], r[2]) > out
    }
    close(out)

    # time against size (µs), sizes above 0 (a log axis)
    out = dir "/size.dat"
    for (i = 1; i <= nord["bench_xproc"]; i++) {
        k = ord["bench_xproc", i]
        if (k !~ /^size\.call\.[0-9]+$/)
            continue
        sz = substr(k, 11) + 0
        if (sz == 0)
            continue
        mk = "size.memcpy." sz
        printf "%d\t%s\t%s\t%s\t%s\n", sz, datum("native", "bench_xproc", k),
            datum("native", "bench_xproc", mk), datum("wine", "bench_xproc", k),
            datum("wine", "bench_xproc", mk) > out
    }
    close(out)

    # calls per second against clients
    out = dir "/clients.dat"
    for (i = 1; i <= nord["bench_clients"]; i++) {
        k = ord["bench_clients", i]
        if (k !~ /^clients\.[0-9]+$/)
            continue
        printf "%d\t%s\t%s\n", substr(k, 9) + 0, datum("native", "bench_clients", k),
            datum("wine", "bench_clients", k) > out
    }
    close(out)
}
