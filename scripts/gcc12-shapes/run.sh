#!/usr/bin/env bash
# Builds shapes.cpp with a compiler (default g++) under AddressSanitizer at -O0 and -O2 and
# runs every case in its own process; prints one line per case and level. See
# docs/compilers.md for what the cases are and what g++ 12 and clang 19 did.
#   scripts/gcc12-shapes/run.sh [compiler]      e.g. g++, clang++-19
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
cxx=${1:-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cases=$(sed -n 's/.*c == "\([a-z_]*\)".*/\1/p' "$here/shapes.cpp")
echo "$($cxx --version | head -1)"
for level in -O0 -O2; do
  "$cxx" -std=c++20 $level -g -fsanitize=address -fno-omit-frame-pointer -I"$root/include" \
    "$here/shapes.cpp" -o "$work/shapes$level" -pthread
  for c in $cases; do
    rc=0
    # A subshell, so that bash does not report the case's own crash.
    (ASAN_OPTIONS=detect_leaks=1:exitcode=86 timeout 60 "$work/shapes$level" "$c" >"$work/out" 2>&1) 2>/dev/null || rc=$?
    what=$(sed -n 's/.*ERROR: AddressSanitizer: \(.*\) on .*/\1/p' "$work/out" | head -1)
    case $rc in
      0) verdict=ok ;;
      1) verdict="WRONG RESULT" ;;
      3) verdict=THREW ;;
      86) verdict="ASan: $what" ;;
      132) verdict="SIGILL" ;;
      *) verdict="FAILED (exit $rc) $what" ;;
    esac
    printf '%-4s %-28s %s\n' "$level" "$c" "$verdict"
  done
done
