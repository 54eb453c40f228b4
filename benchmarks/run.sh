#!/usr/bin/env bash
# The one command for corocache's benchmarks:
#   benchmarks/run.sh [--quick]
# Configures a Release build with the benchmarks on (COROCACHE_BENCH_BUILD_DIR, default
# ${TMPDIR:-/tmp}/corocache-bench-build), builds them, runs every benchmark program (each
# starts what it needs, e.g. its own redis-server), regenerates docs/redis_throughput.png,
# and prints the machine, the "machine: thread wake-up" lines and every summary line
#   <name>: corocache <x> ops/s, baseline <y> ops/s, ratio <x/y>
# --quick (or COROCACHE_BENCH_QUICK=1) shrinks every workload: a smoke run, not a measurement.
# The full output goes to <build dir>/benchmarks.log, the summary to
# benchmarks/results/summary.txt. Takes a few minutes on 2 cores.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${COROCACHE_BENCH_BUILD_DIR:-${TMPDIR:-/tmp}/corocache-bench-build}"
results="$root/benchmarks/results"
if [[ "${1:-}" == "--quick" ]]; then export COROCACHE_BENCH_QUICK=1; fi
"$root/scripts/setup-debian.sh"  # libevent (raw hiredis baseline), redis-server, gnuplot, ...

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ -f "$build/CMakeCache.txt" ]]; then generator=(); fi  # keep the generator it has
cmake "${generator[@]}" -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCOROCACHE_BUILD_BENCHMARKS=ON -DCOROCACHE_BUILD_TESTS=OFF -DCOROCACHE_BUILD_EXAMPLES=OFF \
  -DCOROCACHE_INSTALL=OFF -DCOROCACHE_SANITIZE=OFF >/dev/null
targets=(memory_bench func_cache_bench redis_bench redis_tls_bench redis_cluster_bench)
if cmake --build "$build" --target help 2>/dev/null | grep -qw hit_ratio; then targets+=(hit_ratio); fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

mkdir -p "$results" "$root/docs"
log="$build/benchmarks.log"
: >"$log"
run() {  # run <program> [args...]: output to the terminal and the log
  echo "== $*" | tee -a "$log"
  "$@" 2>&1 | tee -a "$log"
}
bin="$build/benchmarks"
run "$bin/memory_bench"
run "$bin/func_cache_bench"
run "$bin/redis_bench" --csv "$results/redis_throughput.csv"
run "$bin/redis_tls_bench"
run "$bin/redis_cluster_bench"
if [[ -x "$bin/hit_ratio" ]]; then run "$bin/hit_ratio"; fi

if command -v gnuplot >/dev/null 2>&1; then
  (cd "$root" && gnuplot -e "csv='benchmarks/results/redis_throughput.csv'; out='docs/redis_throughput.png'" \
    benchmarks/plot_redis.gp)
else
  echo "gnuplot not found: docs/redis_throughput.png not regenerated" >&2
fi

compiler="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")"
{
  echo "== machine"
  echo "nproc: $(nproc)"
  echo "compiler: $("${compiler:-c++}" --version | head -n 1)"
  echo "redis-server: $(redis-server --version)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  if [[ -n "${COROCACHE_BENCH_QUICK:-}" ]]; then echo "QUICK RUN: workloads shrunk, numbers are not measurements"; fi
  echo "== summary"
  grep -E '^[^ ].*: corocache .*, baseline .*, ratio |^memory machine check: |^machine: ' "$log" || true
} | tee "$results/summary.txt"
