#pragma once
// The memory backend's locks: a token per lock key with a deadline (the lock's ttl). An
// expired lock is free: the next try_lock takes it over, unlock of it fails, and the sweep
// (or erase_prefix) reclaims its record. Each operation locks the key's shard `mu`.

#include <corocache/backend.hpp>
#include <corocache/memory/detail/clock.hpp>
#include <corocache/memory/detail/key_map.hpp>
#include <corocache/memory/detail/shard.hpp>

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace corocache::detail::memory {

class LockTable {
 public:
  LockTable(const ShardArray& shards, const TimeSource& time) : shards_(shards), time_(time) {}

  bool try_lock(std::string lock_key, std::string token, Duration ttl) {
    const KeyRef k(lock_key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    const Nanos now = time_.now();
    const auto it = s.locks.find(k);
    if (it == s.locks.end()) {
      s.locks.try_emplace(std::move(lock_key), LockEntry{std::move(token), deadline_after(now, ttl)});
      return true;
    }
    if (it->second.deadline > now) return false;
    it->second = LockEntry{std::move(token), deadline_after(now, ttl)};
    return true;
  }

  bool unlock(std::string_view lock_key, std::string_view token) {
    const KeyRef k(lock_key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    const auto it = s.locks.find(k);
    if (it == s.locks.end()) return false;
    if (it->second.deadline <= time_.now()) {
      s.locks.erase(it);
      return false;
    }
    if (it->second.token != token) return false;
    s.locks.erase(it);
    return true;
  }

  /// Removes every lock of shard `s` (whose `mu` the caller holds) whose key matches;
  /// counts the live ones.
  template <class Matches>
  std::size_t erase_matching(Shard& s, const Matches& matches, Nanos now) {
    std::size_t removed = 0;
    for (auto it = s.locks.begin(); it != s.locks.end();) {
      if (!matches(it->first)) {
        ++it;
        continue;
      }
      removed += it->second.deadline > now ? 1 : 0;
      it = s.locks.erase(it);
    }
    return removed;
  }

  /// The sweep's share of shard `s` (whose `mu` the caller holds): visits the next
  /// `budget` buckets of its lock table and drops the expired locks there.
  void sweep(Shard& s, Nanos now, std::size_t budget) {
    const std::size_t buckets = s.locks.bucket_count();
    s.scratch.clear();
    for (std::size_t n = 0; n < budget && n < buckets; ++n) {
      if (s.lock_cursor >= buckets) s.lock_cursor = 0;
      for (auto it = s.locks.begin(s.lock_cursor); it != s.locks.end(s.lock_cursor); ++it) {
        if (it->second.deadline <= now) s.scratch.push_back(&it->first);
      }
      ++s.lock_cursor;
    }
    for (const std::string* key : s.scratch) s.locks.erase(s.locks.find(KeyRef(*key)));
    s.scratch.clear();
  }

 private:
  const ShardArray& shards_;
  const TimeSource& time_;
};

}  // namespace corocache::detail::memory
