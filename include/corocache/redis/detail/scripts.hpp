#pragma once
// The Lua scripts behind RedisBackend's multi-step operations (data model: README, "Redis
// data model"; key declaration and retries: docs/redis_scripts.md). Each one runs atomically
// inside Redis, so no other client ever sees half of an operation. Rules every script follows:
// - constant text; every input arrives through KEYS / ARGV (nothing is spliced in);
// - every key a script touches is declared in its KEYS (Redis Cluster's contract), and all
//   of them share the scope's hash tag `{tenant:ns}` (one slot). A key a script can only
//   learn from the data (an index named in a value's `i` field, a member of an index set) is
//   first asked for: the script then changes nothing and returns a *retry marker*, an array
//   whose only element is the array of keys it needs; the caller runs it again with those
//   keys declared too (script_runner.hpp, run_declaring). Declared keys it does not need are
//   left alone, so a caller may declare more than needed;
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
// flushed or server restarted).

#include <corocache/redis/detail/sha1.hpp>

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string_view>

namespace corocache::detail::redis {

/// A script's text and its SHA-1 name (computed by the compiler).
struct Script {
  std::string_view text;
  Sha1Hex sha;

  constexpr explicit Script(std::string_view t) noexcept : text(t), sha(sha1_hex(t)) {}
  constexpr std::string_view sha_view() const noexcept { return {sha.data(), sha.size()}; }
};

/// Texts joined at compile time (a script is its shared functions plus its own body).
template <const std::string_view&... Parts>
struct JoinedText {
  static constexpr std::size_t size = (Parts.size() + ...);
  static constexpr std::array<char, size> chars = [] {
    std::array<char, size> out{};
    std::size_t n = 0;
    for (std::string_view part : {Parts...})
      for (char c : part) out[n++] = c;
    return out;
  }();
  static constexpr std::string_view view{chars.data(), size};
};

namespace scripts {

/// Functions shared by the value scripts. `declared` is the set of all KEYS; `missing`
/// collects keys a script needs but was not given.
inline constexpr std::string_view value_functions = R"lua(
local function declared_keys()
  local d = {}
  for _, k in ipairs(KEYS) do d[k] = true end
  return d
end
local function index_list(key)
  local out = {}
  local i = redis.pcall('HGET', key, 'i')
  if type(i) == 'string' then
    for idx in string.gmatch(i, '[^\n]+') do out[#out + 1] = idx end
  end
  return out
end
local function add_missing(missing, list, declared)
  for _, k in ipairs(list) do
    if not declared[k] then missing[#missing + 1] = k end
  end
end
local function erase_value(key)
  for _, idx in ipairs(index_list(key)) do redis.call('SREM', idx, key) end
  return redis.call('DEL', key)
end
local function expire_value(key, ttl)
  if redis.call('PEXPIRE', key, ttl) == 0 then return 0 end
  for _, idx in ipairs(index_list(key)) do
    local left = redis.call('PTTL', idx)
    if left ~= -2 and left < ttl then redis.call('PEXPIRE', idx, ttl) end
  end
  return 1
end
local function store_value(key, value, ttl, nx, reads, indices)
  if nx and redis.call('EXISTS', key) == 1 then return 0 end
  local seen, list = {}, {}
  for _, idx in ipairs(indices) do
    if not seen[idx] then seen[idx] = true; list[#list + 1] = idx end
  end
  for _, idx in ipairs(index_list(key)) do
    if not seen[idx] then redis.call('SREM', idx, key) end
  end
  if redis.call('TYPE', key).ok == 'hash' then
    redis.call('HDEL', key, 'r', 'i')
  else
    redis.call('DEL', key)
  end
  if reads ~= '0' then
    redis.call('HSET', key, 'v', value, 'r', reads)
  else
    redis.call('HSET', key, 'v', value)
  end
  if #list > 0 then redis.call('HSET', key, 'i', table.concat(list, '\n')) end
  redis.call('PEXPIRE', key, ttl)
  for _, idx in ipairs(list) do
    redis.call('SADD', idx, key)
    if redis.call('PTTL', idx) < ttl then redis.call('PEXPIRE', idx, ttl) end
  end
  return 1
end
)lua";

inline constexpr std::string_view store_hash_body = R"lua(
local key, n, probe = KEYS[1], tonumber(ARGV[5]), ARGV[6]
local nx = ARGV[3] == '1'
if nx and redis.call('EXISTS', key) == 1 then return 0 end
local declared, missing, indices = declared_keys(), {}, {}
for k = 2, n + 1 do indices[#indices + 1] = KEYS[k] end
add_missing(missing, index_list(key), declared)
if probe ~= '' and redis.call('TYPE', key).ok == 'string' then
  if declared[probe] then redis.call('EXISTS', probe) else missing[#missing + 1] = probe end
end
if #missing > 0 then return {missing} end
return store_value(key, ARGV[1], tonumber(ARGV[2]), nx, ARGV[4], indices)
)lua";

/// Stores a value as a hash. KEYS[1] = value key, KEYS[2..ARGV[5]+1] = its index keys
/// (duplicates ignored), further KEYS = keys learned from a retry. ARGV[1] = value, ARGV[2] =
/// ttl in ms (> 0), ARGV[3] = "1" for nx, ARGV[4] = max_reads ("0": unlimited), ARGV[5] = how
/// many index keys, ARGV[6] = the migration probe's name ("": none). Returns 1 if stored, 0
/// if nx found a live value, or a retry marker naming the current indices not declared, and
/// the probe when the key holds a plain value. Drops the key from its previous indices that
/// are not in the new list, and extends each index set's ttl to at least the value's (never
/// shortens it). Turning a plain value into a hash deletes the key first: declaring the
/// probe, which never exists, keeps the script off a slot being migrated away (the server
/// redirects it until the migration ends), so it never stops between the delete and the
/// write with the old value gone (migration_probe_key in commands.hpp).
inline constexpr Script store_hash{JoinedText<value_functions, store_hash_body>::view};

inline constexpr std::string_view read_hash_body = R"lua(
local key = KEYS[1]
local f = redis.pcall('HMGET', key, 'v', 'r', 'i')
if f.err then
  local s = redis.pcall('GET', key)
  if type(s) == 'string' then return s end
  return false
end
local v, r = f[1], f[2]
if not v then return false end
if r then
  if tonumber(r) <= 1 then
    local missing = {}
    add_missing(missing, index_list(key), declared_keys())
    if #missing > 0 then return {missing} end
  end
  if redis.call('HINCRBY', key, 'r', -1) <= 0 then erase_value(key) end
end
return v
)lua";

/// Reads a value that GET could not (not a string). KEYS[1] = value key, further KEYS = its
/// indices as learned from a retry. Returns the value, nil, or (for the last read of a value
/// whose indices were not declared) a retry marker. A read-limited value loses one read; its
/// last read deletes it (and its index memberships) in the same step, so of N concurrent
/// readers exactly max_reads get it. A plain value written since the failed GET is returned.
inline constexpr Script read_hash{JoinedText<value_functions, read_hash_body>::view};

inline constexpr std::string_view erase_body = R"lua(
local missing = {}
add_missing(missing, index_list(KEYS[1]), declared_keys())
if #missing > 0 then return {missing} end
return erase_value(KEYS[1])
)lua";

/// Deletes a value and its index memberships. KEYS[1] = value key, further KEYS = its
/// indices as learned from a retry. Returns 1 if it existed, 0, or a retry marker.
inline constexpr Script erase{JoinedText<value_functions, erase_body>::view};

inline constexpr std::string_view expire_body = R"lua(
local missing = {}
add_missing(missing, index_list(KEYS[1]), declared_keys())
if #missing > 0 then return {missing} end
return expire_value(KEYS[1], tonumber(ARGV[1]))
)lua";

/// Gives a live value a new ttl. KEYS[1] = value key, further KEYS = its indices as learned
/// from a retry; ARGV[1] = ttl in ms (> 0). Returns 1 if the value exists (its index sets'
/// ttls are extended to at least the new one), 0 if not, or a retry marker.
inline constexpr Script expire{JoinedText<value_functions, expire_body>::view};

inline constexpr std::string_view index_members_body = R"lua(
local idx = KEYS[1]
local members, missing = redis.call('SMEMBERS', idx), {}
add_missing(missing, members, declared_keys())
if #missing > 0 then return {missing} end
local live = {}
for _, m in ipairs(members) do
  local listed = false
  for _, x in ipairs(index_list(m)) do
    if x == idx then listed = true; break end
  end
  if listed then live[#live + 1] = m else redis.call('SREM', idx, m) end
end
return live
)lua";

/// Lists an index. KEYS[1] = index key, further KEYS = its members as learned from a retry.
/// Returns the members that are live hashes whose `i` lists this index (removing the
/// others from the set), or a retry marker naming the members not declared.
inline constexpr Script index_members{JoinedText<value_functions, index_members_body>::view};

inline constexpr std::string_view erase_index_body = R"lua(
local idx = KEYS[1]
local declared, missing = declared_keys(), {}
local members = redis.call('SMEMBERS', idx)
add_missing(missing, members, declared)
if #missing > 0 then return {missing} end
local doomed = {}
for _, m in ipairs(members) do
  local list = index_list(m)
  for _, x in ipairs(list) do
    if x == idx then
      doomed[#doomed + 1] = m
      add_missing(missing, list, declared)
      break
    end
  end
end
if #missing > 0 then return {missing} end
for _, m in ipairs(doomed) do erase_value(m) end
redis.call('DEL', idx)
return #doomed
)lua";

/// Deletes every live member of an index (and its memberships in other indices), then the
/// index. KEYS[1] = index key, further KEYS = its members and their indices as learned from
/// retries (two at most: the members, then their other indices). Returns how many values
/// went, or a retry marker.
inline constexpr Script erase_index{JoinedText<value_functions, erase_index_body>::view};

inline constexpr std::string_view erase_if_same_body = R"lua(
local count = #ARGV
local declared, missing, doomed = declared_keys(), {}, {}
for k = 1, count do
  local key = KEYS[k]
  local s = redis.pcall('GET', key)
  if type(s) == 'string' then
    if s == ARGV[k] then doomed[#doomed + 1] = key end
  else
    local v = redis.pcall('HGET', key, 'v')
    if v == ARGV[k] then
      doomed[#doomed + 1] = key
      add_missing(missing, index_list(key), declared)
    end
  end
end
if #missing > 0 then return {missing} end
local n = 0
for _, key in ipairs(doomed) do n = n + erase_value(key) end
return n
)lua";

/// Deletes values that still hold what peek saw. KEYS[n] = key, ARGV[n] = its expected
/// value (n <= #ARGV); further KEYS = indices of those values as learned from a retry. A
/// hashed value also leaves its indices. Returns how many keys were deleted, or a retry
/// marker (then nothing was deleted).
inline constexpr Script erase_if_same{JoinedText<value_functions, erase_if_same_body>::view};

inline constexpr std::string_view batch_body = R"lua(
local ops, a = {}, 2
for _ = 1, tonumber(ARGV[1]) do
  local op = {kind = ARGV[a], key = KEYS[tonumber(ARGV[a + 1])]}
  a = a + 2
  if op.kind == 'S' or op.kind == 'H' then
    op.value, op.px, op.nx = ARGV[a], ARGV[a + 1], ARGV[a + 2] == '1'
    op.ttl = tonumber(op.px)
    a = a + 3
  elseif op.kind == 'X' then
    op.ttl = tonumber(ARGV[a]); a = a + 1
  elseif op.kind == 'Q' then
    op.value = ARGV[a]; a = a + 1
  elseif op.kind == 'P' then
    op.keys = {}
    for k = 1, tonumber(ARGV[a]) do op.keys[k] = KEYS[tonumber(ARGV[a + k])] end
    a = a + 1 + #op.keys
  end
  if op.kind == 'H' then
    op.reads, op.indices = ARGV[a], {}
    for k = 1, tonumber(ARGV[a + 1]) do op.indices[k] = KEYS[tonumber(ARGV[a + 1 + k])] end
    a = a + 2 + #op.indices
  end
  ops[#ops + 1] = op
end
local probe = tonumber(ARGV[a])
local declared, missing = declared_keys(), {}
for _, op in ipairs(ops) do
  if op.kind == 'H' or op.kind == 'E' or op.kind == 'X' then
    add_missing(missing, index_list(op.key), declared)
  elseif op.kind == 'I' then
    local members = redis.call('SMEMBERS', op.key)
    add_missing(missing, members, declared)
    for _, m in ipairs(members) do
      if declared[m] then add_missing(missing, index_list(m), declared) end
    end
  elseif op.kind == 'P' then
    for _, k in ipairs(op.keys) do add_missing(missing, index_list(k), declared) end
  end
end
if #missing > 0 then return {missing} end
if probe > 0 then redis.call('EXISTS', KEYS[probe]) end
local function apply(op)
  if op.kind == 'S' then
    if op.nx then return redis.pcall('SET', op.key, op.value, 'PX', op.px, 'NX') end
    return redis.pcall('SET', op.key, op.value, 'PX', op.px)
  elseif op.kind == 'H' then
    return store_value(op.key, op.value, op.ttl, op.nx, op.reads, op.indices)
  elseif op.kind == 'E' then
    return erase_value(op.key)
  elseif op.kind == 'X' then
    return expire_value(op.key, op.ttl)
  elseif op.kind == 'I' then
    local n = 0
    for _, m in ipairs(redis.call('SMEMBERS', op.key)) do
      for _, x in ipairs(index_list(m)) do
        if x == op.key then n = n + erase_value(m); break end
      end
    end
    redis.call('DEL', op.key)
    return n
  elseif op.kind == 'P' then
    local n = 0
    for _, k in ipairs(op.keys) do n = n + erase_value(k) end
    return n
  end
  return redis.pcall('RPUSH', op.key, op.value)
end
local out = {}
for n, op in ipairs(ops) do
  local ok, res = pcall(apply, op)
  if not ok then
    if type(res) ~= 'table' then res = {err = tostring(res)} end
  end
  out[n] = res
end
return out
)lua";

/// Applies a batch atomically. KEYS = every key the batch names (values, index keys,
/// queues) and the indices learned from a retry; ARGV[1] = number of operations, then per
/// operation a kind and the position of its key in KEYS, followed by:
/// - "S" (plain SET): value, ttl ms, nx ("1"/"0");
/// - "H" (hashed store): value, ttl ms, nx, max_reads, index count, index key positions;
/// - "E" (erase); "X" (expire): ttl ms; "Q" (push): value;
/// - "I" (erase an index: its live members, and the index);
/// - "P" (erase what SCAN found under a prefix before the batch; the key position is "0"):
///   key count, key positions;
/// and last the position of the migration probe in KEYS ("0": none; declared for batches
/// with operations that delete keys). Returns one result per operation (a failed one as an
/// error element, the others still applied, as in MULTI/EXEC), or a retry marker (then
/// nothing was applied). The probe never exists: declaring it keeps the script off a slot
/// being migrated away (the server redirects it until the migration ends), where a key
/// deleted by one operation and written by a later one would stop the script between the
/// two (migration_probe_key in commands.hpp).
inline constexpr Script batch{JoinedText<value_functions, batch_body>::view};

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

/// Every script above (tests run each one under a key-declaration check).
inline constexpr std::array<const Script*, 14> all{
    &store_hash, &read_hash, &erase, &expire,        &index_members, &erase_index,  &erase_if_same,
    &batch,      &unlock,    &peek,  &pop_to_ledger, &return_ledger, &lock_attempt, &release_attempt};

}  // namespace scripts
}  // namespace corocache::detail::redis
