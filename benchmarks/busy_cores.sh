#!/usr/bin/env bash
# Runs a command while every CPU is kept busy by a spinner at the lowest scheduling class
# (SCHED_IDLE): any other runnable thread preempts it at once, but no vCPU ever halts. On
# this VM that moves a cross-core wake-up from ~40 us (idle cores) to ~16 us: the "busy
# cores" regime of docs/redis_connection.md. The Redis benchmarks print the wake-up time at
# their start and end, so the regime shows in their output.
#
#   benchmarks/busy_cores.sh build/benchmarks/redis_bench --filter "GET N=16"
#   benchmarks/busy_cores.sh ../shared/peerbench/run.sh
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 command [args...]" >&2; exit 2; }
spinners=()
stop() { [[ ${#spinners[@]} -eq 0 ]] || kill "${spinners[@]}" 2>/dev/null || true; }
trap stop EXIT
for cpu in $(seq 0 $(($(nproc) - 1))); do
  chrt --idle 0 taskset -c "$cpu" sh -c 'while :; do :; done' &
  spinners+=($!)
done
"$@"
