#pragma once
// Scripts that only batches use (inside MULTI, sent as EVAL). Kept apart from scripts.hpp,
// whose scripts also run on their own through EVALSHA.

#include <corocache/detail/redis/scripts.hpp>

namespace corocache::detail::redis::batch_scripts {

/// erase_prefix as one atomic step: SCANs the whole database for ARGV[1] (the prefix as an
/// escaped MATCH pattern, detail/redis/glob.hpp) and UNLINKs what it finds. KEYS[1] = the
/// prefix itself, declared only so that the script is routed to the prefix's slot (a batch
/// clears one scope's keys, which share its hash tag). Returns how many keys went.
/// Its cost grows with the database, not with what it removes, and the server serves
/// nobody else while it runs: README, Batches.
inline constexpr Script erase_prefix{R"lua(
local cursor = '0'
local n = 0
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  if #page[2] > 0 then n = n + redis.call('UNLINK', unpack(page[2])) end
until cursor == '0'
return n
)lua"};

}  // namespace corocache::detail::redis::batch_scripts
