#!/usr/bin/env bash
# The side-by-side peer harness (../shared/peerbench) with the wake-up regime printed around
# it and issue 10's ratio table at the end:
#   benchmarks/peers.sh PEERS_DIR [--busy]
#   benchmarks/peers.sh --summary RESULTS.csv      (the table of an earlier run)
# PEERS_DIR holds the peers built by ../shared/peerbench/build.sh (its run.sh included).
# --busy runs the harness under benchmarks/busy_cores.sh. The harness's own environment
# passes through (REPS, NS, CLIENTS, RESULTS); NS defaults to "1 4 16 32 64 256" and CLIENTS
# to corocache, raw hiredis 0.14 (libevent), Boost.Redis 1.86 and redis-benchmark.
# Prints, per op, corocache / the better of hiredis and Boost.Redis (medians over the reps)
# at each N, and corocache / redis-benchmark at N = 256. The peers' corocache client is built
# from the checkout build.sh was given: rebuild them after changing the library.
set -euo pipefail

# rep,client,op,N,ops_per_sec -> medians and ratios
summary() {
  awk -F, '
  function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  NR > 1 && $5 != "NA" { runs[$2 SUBSEP $3 SUBSEP $4] = runs[$2 SUBSEP $3 SUBSEP $4] " " $5; ns[$4] = 1 }
  END {
    count = 0
    for (n in ns) sorted[++count] = n + 0
    for (i = 2; i <= count; i++) for (j = i; j > 1 && sorted[j - 1] > sorted[j]; j--) { t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t }
    header = "op  "
    for (i = 1; i <= count; i++) header = header sprintf("  N=%-5d", sorted[i])
    print "corocache / the better of hiredis014-libevent and boostredis186-coro (medians):"
    print header "  N=256 vs redis-benchmark"
    split("get set", ops, " ")
    for (o = 1; o <= 2; o++) {
      line = sprintf("%-4s", toupper(ops[o]))
      for (i = 1; i <= count; i++) {
        n = sorted[i]
        c = runs["corocache" SUBSEP ops[o] SUBSEP n]
        h = runs["hiredis014-libevent" SUBSEP ops[o] SUBSEP n]
        b = runs["boostredis186-coro" SUBSEP ops[o] SUBSEP n]
        best = 0
        if (h != "") best = median(h)
        if (b != "" && median(b) > best) best = median(b)
        line = line (c != "" && best > 0 ? sprintf("  %-7.2f", median(c) / best) : "  -      ")
      }
      c = runs["corocache" SUBSEP ops[o] SUBSEP 256]; r = runs["redis-benchmark" SUBSEP ops[o] SUBSEP 256]
      line = line (c != "" && r != "" ? sprintf("  %.2f", median(c) / median(r)) : "  -")
      print line
    }
  }' "$1"
}

if [[ "${1:-}" == "--summary" ]]; then
  summary "${2:?usage: benchmarks/peers.sh --summary RESULTS.csv}"
  exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$(cd "${1:?usage: benchmarks/peers.sh PEERS_DIR [--busy]}" && pwd)"
busy=()
if [[ "${2:-}" == "--busy" ]]; then busy=("$root/benchmarks/busy_cores.sh"); fi

build="${COROCACHE_BENCH_BUILD_DIR:-${TMPDIR:-/tmp}/corocache-bench-build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCOROCACHE_BUILD_BENCHMARKS=ON \
  -DCOROCACHE_BUILD_TESTS=OFF -DCOROCACHE_BUILD_EXAMPLES=OFF -DCOROCACHE_INSTALL=OFF \
  -DCOROCACHE_SANITIZE=OFF >/dev/null
cmake --build "$build" --target wake_regime >/dev/null
regime() { "${busy[@]}" "$build/benchmarks/wake_regime" "$1"; }

export PEERS_DIR="$peers"
export NS="${NS:-1 4 16 32 64 256}"
export CLIENTS="${CLIENTS:-corocache hiredis014-libevent boostredis186-coro redis-benchmark}"
export RESULTS="${RESULTS:-$peers/results.csv}"
regime "before the peers${busy:+, busy cores}"
"${busy[@]}" "$peers/run.sh"
regime "after the peers${busy:+, busy cores}"
summary "$RESULTS"
