#!/usr/bin/env bash
# Installs everything corocache needs to build, test and benchmark on Debian 12 (bookworm):
# compilers, CMake/Ninja, the library's dependencies, Catch2 and a redis-server binary for
# the tests (which start their own servers; nothing is started here).
#
# Idempotent: when every package is already installed it does not touch apt at all.
# Runs apt as root, through sudo when needed; never asks a question.
set -euo pipefail

packages=(
  g++ clang-14 libclang-rt-14-dev clang-format   # compilers, sanitizer runtimes, formatter
  clang-19 libclang-rt-19-dev                    # the recommended compiler; ThreadSanitizer runtime
  cmake ninja-build pkg-config git               # build tools (.ci/run lists files with git)
  libboost1.81-dev nlohmann-json3-dev libssl-dev      # the library's dependencies
  libhiredis-dev openssl                         # tests: reference encoder, fixtures' client, certificates
  catch2 redis-server redis-tools                # tests
  libevent-dev gnuplot-nox                       # benchmarks
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "setup-debian: all ${#packages[@]} packages already installed"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "setup-debian: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi

echo "setup-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# In CI, keep the package scripts from starting the distribution's redis-server service: a
# stray server on port 6379 could let a test that wrongly uses the default port pass.
# policy-rc.d is Debian's switch for that; it is removed again when we are done.
policy=/usr/sbin/policy-rc.d
if [[ ${CI:-} == true && ! -e $policy ]]; then
  "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi

"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup-debian: done"
