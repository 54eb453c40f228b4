#!/usr/bin/env bash
# Builds and runs corocache's whole test suite, the way CI does:
#
#   gcc          g++ 12 at -O2 (what a release build of a user's program on Debian 12 runs),
#                -Werror; examples and benchmarks are built too, and the README examples test
#                and the quickstart once more with AddressSanitizer (g++ 12 miscompiles some
#                coroutine forms: README "Compilers")
#   clang-asan   clang++ 14, -O0 -g, -Werror, AddressSanitizer + UndefinedBehaviorSanitizer
#   clang19      clang++ 19 (the compiler the README recommends), -Werror, every test, and
#                the check that each public header compiles on its own (tests/headers)
#   tsan         clang++ 19, -O1 -g, ThreadSanitizer: builds and runs only the tests labelled
#                `tsan` (tests/CMakeLists.txt: memory concurrency, Redis connection and faults,
#                shutdown, Cluster and Sentinel backends)
#
# Each stage configures and builds into build/<stage> (reused between runs), then runs its
# tests with ctest (every test, except in tsan). Tests against Redis start their own redis-server processes on free ports,
# so they run in parallel and need no server started beforehand.
#
# Usage: scripts/test.sh [stage...]     (default: all stages, in the order above)
# Environment: COROCACHE_BUILD_ROOT (default <repo>/build), COROCACHE_JOBS (default 2).
# Exits non-zero if any stage fails to configure, build or pass its tests; runs the later
# stages anyway so one run reports everything.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${COROCACHE_BUILD_ROOT:-$root/build}
jobs=${COROCACHE_JOBS:-2}
all_stages=(gcc clang-asan clang19 tsan)
stages=("$@")
((${#stages[@]})) || stages=("${all_stages[@]}")
for stage in "${stages[@]}"; do
  [[ " ${all_stages[*]} " == *" $stage "* ]] || { echo "test.sh: unknown stage '$stage' (have: ${all_stages[*]})" >&2; exit 2; }
done

"$root/scripts/setup-debian.sh"

# The tests find redis-server on PATH; without it the Redis tests fail (never skip).
command -v redis-server >/dev/null || { echo "test.sh: redis-server not found on PATH" >&2; exit 1; }
# Tests configure their own servers: a developer's Redis settings must not leak into them.
unset USE_REDIS REDIS_HOST REDIS_PORT REDIS_DB REDIS_PASSWORD REDIS_URL

started=$SECONDS
summary=()
failed=0
mkdir -p "$build_root"

log() { printf '\n==> [%s] %s\n' "$1" "$2"; }

# Sanitizer settings: stop at the first error with a stack trace. LeakSanitizer needs ptrace
# rights that some containers lack; probe it once and say so loudly if it must be off.
sanitizer_env() {
  local probe_dir leaks=1
  probe_dir=$(mktemp -d)
  printf 'int main() { return 0; }\n' >"$probe_dir/probe.cpp"
  if clang++-14 -fsanitize=address "$probe_dir/probe.cpp" -o "$probe_dir/probe" &&
     ! ASAN_OPTIONS=detect_leaks=1 "$probe_dir/probe" >"$probe_dir/out" 2>&1; then
    leaks=0
    echo "test.sh: WARNING: LeakSanitizer does not work here; running without leak detection:" >&2
    cat "$probe_dir/out" >&2
  fi
  rm -rf "$probe_dir"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=$leaks:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
  echo "ASAN_OPTIONS=$ASAN_OPTIONS"
  echo "UBSAN_OPTIONS=$UBSAN_OPTIONS"
}

# ThreadSanitizer settings: any report fails the test. Races reported inside corocache are
# bugs to fix, never to suppress; scripts/tsan.supp holds only what is proven to be outside
# corocache (libstdc++ or Boost internals), each entry with its reason.
tsan_env() {
  local symbolizer
  symbolizer=$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer-14 || true)
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/scripts/tsan.supp${symbolizer:+:external_symbolizer_path=$symbolizer}}"
  echo "TSAN_OPTIONS=$TSAN_OPTIONS"
}

# run_stage <stage> <status file>: writes a one-line result to the status file; returns
# non-zero on failure. Runs in a subshell, where set -e is off: every step is checked.
run_stage() {
  local stage=$1 status_file=$2 dir=$build_root/$1 t0 t_build t_test tests redis_tests
  note() { echo "$stage: $*" >"$status_file"; }
  local -a args=(-G Ninja -S "$root" -B "$dir" -DCOROCACHE_WERROR=ON -DCOROCACHE_BUILD_TESTS=ON
                 -DCOROCACHE_BUILD_EXAMPLES=ON)
  # What to build and which tests to run: everything, unless the stage narrows it.
  local -a build_target=() test_filter=()
  case $stage in
    gcc)
      # -O2: the whole suite as users ship it (the clang stages cover -O0). Two of g++ 12's
      # -O2 warnings are off here, as they fire only on code inlined from libstdc++ and Asio
      # (maybe-uninitialized in co_spawn's binder, restrict in char_traits' memcpy);
      # mismatched-new-delete is off for g++ project-wide (CMakeLists.txt).
      sanitizer_env   # for the *_asan targets
      args+=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=
             "-DCMAKE_CXX_FLAGS=-O2 -Wno-maybe-uninitialized -Wno-restrict"
             -DCOROCACHE_BUILD_BENCHMARKS=ON -DCOROCACHE_ASAN_EXAMPLES=ON -DCOROCACHE_HEADER_CHECK=OFF) ;;
    clang-asan)
      sanitizer_env
      args+=(-DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug -DCOROCACHE_SANITIZE=ON
             -DCOROCACHE_HEADER_CHECK=OFF) ;;
    clang19)
      # The header self-containment check (one translation unit per public header) runs here only:
      # every stage uses the same libstdc++, so what one header fails to include, it fails
      # to include for every compiler.
      args+=(-DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE= -DCOROCACHE_HEADER_CHECK=ON) ;;
    tsan)
      tsan_env
      # Whole program instrumented (Catch2's main too); the consumer tests are not run here.
      # BOOST_ASIO_DISABLE_STD_ATOMIC: Asio's own reference counts (any_io_executor's shared
      # target) then use boost::detail::atomic_count (acq_rel read-modify-writes) instead of
      # a release decrement plus std::atomic_thread_fence, which TSan does not model and
      # reports as a race between the last two owners. Nothing is suppressed for it.
      args+=(-DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE=
             "-DCMAKE_CXX_FLAGS=-fsanitize=thread -O1 -g -fno-omit-frame-pointer -DBOOST_ASIO_DISABLE_STD_ATOMIC"
             -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCOROCACHE_BUILD_EXAMPLES=OFF)
      build_target=(--target tests_tsan)
      test_filter=(-L tsan) ;;
  esac

  log "$stage" "configure"
  t0=$SECONDS
  if ! cmake "${args[@]}"; then
    note "FAILED to configure"; return 1
  fi
  log "$stage" "build (-j$jobs)"
  # -k 0: build everything that can be built and report every broken target; the tests of
  # what did build still run, so one CI run shows as much as possible.
  local built=yes
  cmake --build "$dir" -j "$jobs" "${build_target[@]}" -- -k 0 || built=no
  t_build=$((SECONDS - t0))

  tests=$(ctest --test-dir "$dir" -N "${test_filter[@]}" | sed -n 's/^Total Tests: //p')
  redis_tests=$(ctest --test-dir "$dir" -N "${test_filter[@]}" -R '[Rr]edis' | sed -n 's/^Total Tests: //p')
  log "$stage" "test (${tests:-0} tests, ${redis_tests:-0} named redis; -j$jobs)"
  t0=$SECONDS
  local tested=passed
  rm -f "$dir/Testing/Temporary/LastTestsFailed.log"  # ctest leaves an old one in place
  ctest --test-dir "$dir" "${test_filter[@]}" -j "$jobs" --timeout 300 --output-on-failure --no-tests=error ||
    tested=FAILED
  t_test=$((SECONDS - t0))

  local times="build ${t_build}s, test ${t_test}s"
  # Name the failures in the summary: CI often keeps only the tail of the log.
  local failures="" failed_count=0
  if [[ -f $dir/Testing/Temporary/LastTestsFailed.log ]]; then
    failed_count=$(wc -l <"$dir/Testing/Temporary/LastTestsFailed.log")
    failures=$(sed 's/^[0-9]*://' "$dir/Testing/Temporary/LastTestsFailed.log" | head -5 | paste -sd '|' -)
    if ((failed_count > 5)); then failures+=" (+$((failed_count - 5)) more)"; fi
  fi
  if [[ $built == no ]]; then
    note "FAILED to build; tests of what built: $tested ($times)${failures:+: $failures}"; return 1
  elif [[ $tested != passed ]]; then
    note "FAILED tests ($times): ${failures:-see above}"; return 1
  elif ((${redis_tests:-0} == 0)); then
    # Redis tests must never go missing silently (e.g. a target dropped from tests/CMakeLists.txt).
    note "FAILED: no Redis tests registered ($times)"; return 1
  fi
  note "passed $tests tests, $redis_tests of them named redis ($times)"
}

for stage in "${stages[@]}"; do
  status_file=$build_root/.status-$stage
  rm -f "$status_file"
  # A subshell per stage keeps the sanitizer settings out of the other stages.
  (run_stage "$stage" "$status_file") || failed=1
  summary+=("$(cat "$status_file" 2>/dev/null || echo "$stage: FAILED (see above)")")
  rm -f "$status_file"
done

printf '\n==> summary\n'
printf '  %s\n' "${summary[@]}"
if ((failed)); then
  echo "test.sh: FAILED after $((SECONDS - started))s"
  exit 1
fi
echo "test.sh: ALL PASSED (${stages[*]}) in $((SECONDS - started))s"
