#pragma once
// The Lua scripts behind RedisBackend's multi-step operations (data model: README, "Redis
// data model"). Each one runs atomically inside Redis, so no other client ever sees half of
// an operation. Rules every script follows:
// - constant text; every input arrives through KEYS / ARGV (nothing is spliced in);
// - every key a script touches shares the scope's hash tag `{tenant:ns}`: the value key, the
//   index keys it lists and the index's members, except peek / erase_if_same whose keys come
//   from one SCAN prefix. Not every one is declared in KEYS yet: index keys read from a
//   value's `i` field and an index's members are reached without being declared (fine on
//   one server and, sharing the slot, on a cluster node; declaring them needs a read first);
// - queue pops and lock attempts go through pending records (docs/redis_queues.md), each
//   declared in KEYS next to its queue or lock (same hash tag);
// - a value stored with indices or max_reads is a hash {v: value, r: reads left (only with
//   max_reads), i: its index keys joined by '\n'}; a plain value is a string. Index keys
//   never contain '\n' (the facade escapes it in index names: make_index_key in
//   detail/keys.hpp), so the join is unambiguous;
// - a member of an index set counts only while it is a hash whose `i` lists that index:
//   an overwrite by a plain SET, a delete or an expiry makes it stale without touching the
//   index set, and the listing scripts prune stale members.
//
// Scripts are sent as EVALSHA <sha1> with a fallback to EVAL on NOSCRIPT (script cache
// flushed or server restarted); inside MULTI they are sent as EVAL, which cannot fail that way.

#include <corocache/detail/redis/sha1.hpp>

#include <string_view>

namespace corocache::detail::redis {

/// A script's text and its SHA-1 name (computed by the compiler).
struct Script {
  std::string_view text;
  Sha1Hex sha;

  constexpr explicit Script(std::string_view t) noexcept : text(t), sha(sha1_hex(t)) {}
  constexpr std::string_view sha_view() const noexcept { return {sha.data(), sha.size()}; }
};

namespace scripts {

/// Stores a value as a hash. KEYS[1] = value key, KEYS[2..] = index keys (duplicates
/// ignored). ARGV[1] = value, ARGV[2] = ttl in ms (> 0), ARGV[3] = "1" for nx,
/// ARGV[4] = max_reads ("0": unlimited). Returns 1 if stored, 0 if nx found a live value.
/// Drops the key from its previous indices that are not in the new list, and extends each
/// index set's ttl to at least the value's (never shortens it).
inline constexpr Script store_hash{R"lua(
local key = KEYS[1]
local ttl = tonumber(ARGV[2])
if ARGV[3] == '1' and redis.call('EXISTS', key) == 1 then return 0 end
local old = redis.pcall('HGET', key, 'i')
local seen, list = {}, {}
for n = 2, #KEYS do
  local idx = KEYS[n]
  if not seen[idx] then seen[idx] = true; list[#list + 1] = idx end
end
if type(old) == 'string' then
  for idx in string.gmatch(old, '[^\n]+') do
    if not seen[idx] then redis.call('SREM', idx, key) end
  end
end
redis.call('DEL', key)
if ARGV[4] ~= '0' then
  redis.call('HSET', key, 'v', ARGV[1], 'r', ARGV[4])
else
  redis.call('HSET', key, 'v', ARGV[1])
end
if #list > 0 then redis.call('HSET', key, 'i', table.concat(list, '\n')) end
redis.call('PEXPIRE', key, ttl)
for _, idx in ipairs(list) do
  redis.call('SADD', idx, key)
  if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
end
return 1
)lua"};

/// Reads a value that GET could not (not a string). KEYS[1] = value key. Returns the value
/// or nil. A read-limited value loses one read; its last read deletes it (and its index
/// memberships) in the same step, so of N concurrent readers exactly max_reads get it.
/// A plain value written since the failed GET is returned as is.
inline constexpr Script read_hash{R"lua(
local key = KEYS[1]
local f = redis.pcall('HMGET', key, 'v', 'r', 'i')
if f.err then
  local s = redis.pcall('GET', key)
  if type(s) == 'string' then return s end
  return false
end
local v, r, i = f[1], f[2], f[3]
if not v then return false end
if r then
  if redis.call('HINCRBY', key, 'r', -1) <= 0 then
    if i then
      for idx in string.gmatch(i, '[^\n]+') do redis.call('SREM', idx, key) end
    end
    redis.call('DEL', key)
  end
end
return v
)lua"};

/// Deletes a value and its index memberships. KEYS[1] = value key. Returns 1 if it existed.
inline constexpr Script erase{R"lua(
local key = KEYS[1]
local i = redis.pcall('HGET', key, 'i')
if type(i) == 'string' then
  for idx in string.gmatch(i, '[^\n]+') do redis.call('SREM', idx, key) end
end
return redis.call('DEL', key)
)lua"};

/// Gives a live value a new ttl. KEYS[1] = value key, ARGV[1] = ttl in ms (> 0). Returns 1
/// if the value exists; its index sets' ttls are extended to at least the new one.
inline constexpr Script expire{R"lua(
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
if redis.call('PEXPIRE', key, ttl) == 0 then return 0 end
local i = redis.pcall('HGET', key, 'i')
if type(i) == 'string' then
  for idx in string.gmatch(i, '[^\n]+') do
    local left = redis.call('PTTL', idx)
    if left ~= -2 and left < ttl then redis.call('PEXPIRE', idx, ttl) end
  end
end
return 1
)lua"};

/// Lists an index. KEYS[1] = index key. Returns the members that are live hashes whose `i`
/// lists this index; removes the others from the set.
inline constexpr Script index_members{R"lua(
local idx = KEYS[1]
local live = {}
for _, m in ipairs(redis.call('SMEMBERS', idx)) do
  local listed = false
  local i = redis.pcall('HGET', m, 'i')
  if type(i) == 'string' then
    for x in string.gmatch(i, '[^\n]+') do
      if x == idx then listed = true; break end
    end
  end
  if listed then live[#live + 1] = m else redis.call('SREM', idx, m) end
end
return live
)lua"};

/// Deletes every live member of an index (and its memberships in other indices), then the
/// index. KEYS[1] = index key. Returns how many values went.
inline constexpr Script erase_index{R"lua(
local idx = KEYS[1]
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', idx)) do
  local i = redis.pcall('HGET', m, 'i')
  if type(i) == 'string' then
    local listed = false
    for x in string.gmatch(i, '[^\n]+') do
      if x == idx then listed = true; break end
    end
    if listed then
      for x in string.gmatch(i, '[^\n]+') do
        if x ~= idx then redis.call('SREM', x, m) end
      end
      redis.call('DEL', m)
      n = n + 1
    end
  end
end
redis.call('DEL', idx)
return n
)lua"};

/// Releases a lock only for its owner. KEYS[1] = lock key, ARGV[1] = token. Returns 1 if
/// the token held the lock (now released), else 0 (and the lock is left as it is).
inline constexpr Script unlock{R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua"};

/// Reads values without consuming reads. KEYS = keys (from a SCAN); ARGV[1] = byte budget
/// of the reply, ARGV[2] = what each element costs besides its bytes. Returns one element per
/// key, for the first keys only when the budget ends (always at least one): the value of a
/// plain (string) or hashed value, nil for anything else or missing. The caller peeks the
/// rest again, so no reply exceeds what the client reads (max_reply_bytes).
inline constexpr Script peek{R"lua(
local budget, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, used = {}, 0
for n, key in ipairs(KEYS) do
  local v = false
  local s = redis.pcall('GET', key)
  if type(s) == 'string' then
    v = s
  else
    local h = redis.pcall('HGET', key, 'v')
    if type(h) == 'string' then v = h end
  end
  local cost = per + (v and #v or 0)
  if n > 1 and used + cost > budget then break end
  used = used + cost
  out[n] = v
end
return out
)lua"};

/// Deletes values that still hold what peek saw. KEYS[n] = key, ARGV[n] = its expected
/// value. A hashed value also leaves its indices. Returns how many keys were deleted.
inline constexpr Script erase_if_same{R"lua(
local n = 0
for k, key in ipairs(KEYS) do
  local s = redis.pcall('GET', key)
  if type(s) == 'string' then
    if s == ARGV[k] then n = n + redis.call('DEL', key) end
  else
    local f = redis.pcall('HMGET', key, 'v', 'i')
    if not f.err and f[1] == ARGV[k] then
      if f[2] then
        for idx in string.gmatch(f[2], '[^\n]+') do redis.call('SREM', idx, key) end
      end
      n = n + redis.call('DEL', key)
    end
  end
end
return n
)lua"};

/// A pop into a ledger (docs/redis_queues.md). KEYS[1] = queue, KEYS[2] = the pop's fresh
/// ledger. Moves the queue's head into the ledger and returns it (nil when empty). Does
/// nothing (nil) when the ledger exists: then it is the tombstone of this very pop, whose
/// caller gave up and whose recovery already ran, and the pop must not take anything.
inline constexpr Script pop_to_ledger{R"lua(
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local v = redis.call('LPOP', KEYS[1])
if v then redis.call('RPUSH', KEYS[2], v) end
return v
)lua"};

/// Settles a pop whose caller is gone. KEYS[1] = queue, KEYS[2] = the pop's ledger,
/// ARGV[1] = tombstone ttl in ms. Puts what the ledger holds back at the queue's head (in
/// order) and leaves a tombstone (an empty string) under the ledger's name, so a pop still
/// on its way to the server takes nothing (pop_to_ledger checks it; BLMOVE fails with
/// WRONGTYPE before popping). Idempotent. Returns how many elements went back.
inline constexpr Script return_ledger{R"lua(
local moved = 0
if redis.call('TYPE', KEYS[2]).ok == 'list' then
  local v = redis.call('RPOP', KEYS[2])
  while v do
    redis.call('LPUSH', KEYS[1], v)
    moved = moved + 1
    v = redis.call('RPOP', KEYS[2])
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], '', 'PX', ARGV[1]) end
return moved
)lua"};

/// A lock attempt that can be disowned. KEYS[1] = lock key, KEYS[2] = the attempt's fresh
/// record, ARGV[1] = token, ARGV[2] = ttl in ms. SET NX PX unless the record exists (the
/// attempt was given up and released already). Returns OK when taken, else nil.
inline constexpr Script lock_attempt{R"lua(
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
)lua"};

/// Settles a lock attempt whose caller is gone. KEYS[1] = lock key, KEYS[2] = the attempt's
/// record, ARGV[1] = token, ARGV[2] = tombstone ttl in ms. Releases the lock if the token
/// holds it and leaves a tombstone so the attempt, still on its way, takes nothing. Idempotent.
inline constexpr Script release_attempt{R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[2], '', 'PX', ARGV[2])
return 1
)lua"};

}  // namespace scripts
}  // namespace corocache::detail::redis
