#!/usr/bin/env bash
# Installs what corocache needs (Debian 12), builds examples/quickstart.cpp and runs it on
# the in-memory backend. Build directory: COROCACHE_BUILD_ROOT (default <repo>/build)/quickstart.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
dir=${COROCACHE_BUILD_ROOT:-$root/build}/quickstart

"$root/scripts/setup-debian.sh"
cmake -G Ninja -S "$root" -B "$dir" \
  -DCOROCACHE_BUILD_EXAMPLES=ON -DCOROCACHE_BUILD_TESTS=OFF -DCOROCACHE_INSTALL=OFF
cmake --build "$dir" --target quickstart -j "${COROCACHE_JOBS:-2}"
echo "==> $dir/examples/quickstart"
# The memory backend: no Redis settings from the environment.
env -u USE_REDIS -u REDIS_HOST -u REDIS_PORT -u REDIS_DB -u REDIS_PASSWORD -u REDIS_URL "$dir/examples/quickstart"
