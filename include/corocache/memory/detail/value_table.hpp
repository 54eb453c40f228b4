#pragma once
// The memory backend's values: storing, reading, expiry and capacity (room is made by
// dropping expired values first, then by the shard's eviction policy), and the incremental
// expiry sweep. Each operation locks the key's shard `mu`; the *_locked ones expect the
// caller (Store::commit) to hold it. A value's index memberships follow it through
// IndexTable.

#include <corocache/backend.hpp>
#include <corocache/errors.hpp>
#include <corocache/memory/detail/clock.hpp>
#include <corocache/memory/detail/index_table.hpp>
#include <corocache/memory/detail/key_map.hpp>
#include <corocache/memory/detail/shard.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::memory {

class ValueTable {
 public:
  ValueTable(const ShardArray& shards, const TimeSource& time, IndexTable& indices, bool reject_when_full)
      : shards_(shards), time_(time), indices_(indices), reject_(reject_when_full) {}

  /// Takes what it keeps of key, value and params (by rvalue reference: the caller's
  /// coroutine frame already owns them, so nothing is moved on the way here).
  bool set(std::string&& key, std::string&& value, StoreParams&& params) {
    const KeyRef k(key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    return set_locked(s, k, std::move(key), std::move(value), std::move(params), time_.now());
  }

  std::optional<std::string> get(std::string_view key) {
    const KeyRef k(key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    const auto it = s.values.find(k);
    if (it == s.values.end()) {
      ++s.misses;
      return std::nullopt;
    }
    ValueEntry& e = it->second;
    if (e.deadline <= time_.now()) {
      drop(s, it, Removal::expired);
      ++s.misses;
      return std::nullopt;
    }
    ++s.hits;
    if (e.reads_left != 0 && --e.reads_left == 0) {
      std::string last;
      drop(s, it, Removal::consumed, &last);
      return last;
    }
    s.policy.touch(e);
    return e.value;
  }

  bool erase(std::string_view key) {
    const KeyRef k(key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    return erase_locked(s, k, time_.now());
  }

  bool expire(std::string_view key, Duration ttl) {
    const KeyRef k(key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    return expire_locked(s, k, ttl, time_.now());
  }

  /// Whether `key` holds a live value stored as `version` (an index member is live).
  bool is_live(std::string_view key, std::uint32_t version, Nanos now) {
    const KeyRef k(key);
    Shard& s = shards_.for_hash(k.hash);
    std::lock_guard lock(s.mu);
    const auto it = s.values.find(k);
    return it != s.values.end() && it->second.version == version && it->second.deadline > now;
  }

  /// Drops `key` if it is still stored as `version`; true if it was live.
  /// `shard_held`: the caller holds the key's shard `mu` already (a batch).
  bool erase_version(std::string_view key, std::uint32_t version, Nanos now, bool shard_held = false) {
    const KeyRef k(key);
    Shard& s = shards_.for_hash(k.hash);
    std::unique_lock lock(s.mu, std::defer_lock);
    if (!shard_held) lock.lock();
    const auto it = s.values.find(k);
    if (it == s.values.end() || it->second.version != version) return false;
    const bool live = it->second.deadline > now;
    drop(s, it, live ? Removal::erased : Removal::expired);
    return live;
  }

  /// Drops every value of shard `s` (whose `mu` the caller holds) whose key matches;
  /// counts the live ones.
  template <class Matches>
  std::size_t erase_matching(Shard& s, const Matches& matches, Nanos now) {
    std::size_t removed = 0;
    for (auto it = s.values.begin(); it != s.values.end();) {
      if (!matches(it->first)) {
        ++it;
        continue;
      }
      const bool live = it->second.deadline > now;
      removed += live ? 1 : 0;
      it = drop(s, it, live ? Removal::erased : Removal::expired);
    }
    return removed;
  }

  /// The predicate runs without any lock held (it is user code); a value stored again
  /// between the predicate seeing it and the removal is left alone.
  std::size_t erase_if(std::string_view prefix, const EntryPredicate& predicate, std::int64_t limit) {
    std::size_t removed = 0;
    const auto budget_left = [&] { return limit < 0 || removed < static_cast<std::size_t>(limit); };
    const std::size_t max_removals =
        limit < 0 ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(limit);
    struct Candidate {
      std::string key, value;
      std::uint32_t version;
    };
    std::vector<Candidate> candidates;
    std::vector<std::size_t> chosen;
    for (std::size_t i = 0; i < shards_.size() && budget_left(); ++i) {
      Shard& s = shards_[i];
      candidates.clear();
      chosen.clear();
      {
        std::lock_guard lock(s.mu);
        const Nanos now = time_.now();
        for (const auto& [key, e] : s.values) {
          if (e.deadline > now && key.starts_with(prefix)) candidates.push_back({key, e.value, e.version});
        }
      }
      for (std::size_t c = 0; c < candidates.size() && removed + chosen.size() < max_removals; ++c) {
        if (predicate(candidates[c].key, candidates[c].value)) chosen.push_back(c);
      }
      if (chosen.empty()) continue;
      std::lock_guard lock(s.mu);
      const Nanos now = time_.now();
      for (const std::size_t c : chosen) {
        if (!budget_left()) break;
        const auto it = s.values.find(KeyRef(candidates[c].key));
        if (it == s.values.end() || it->second.version != candidates[c].version || it->second.deadline <= now)
          continue;
        drop(s, it, Removal::erased);
        ++removed;
      }
    }
    return removed;
  }

  bool set_locked(Shard& s, const KeyRef& k, std::string&& key, std::string&& value, StoreParams&& params,
                  Nanos now) {
    auto it = s.values.find(k);
    if (it != s.values.end() && it->second.deadline <= now) {
      drop(s, it, Removal::expired);
      it = s.values.end();
    }
    if (it != s.values.end() && params.nx) return false;
    const std::size_t charge = charge_of(k.key, value);
    if (s.max_bytes != 0 && charge > s.max_bytes) {
      ++s.rejections;
      throw_error(errc::capacity_exceeded,
                  "corocache: value larger than a memory backend shard's share of max_bytes");
    }
    const Nanos deadline = deadline_after(now, params.ttl);
    std::unique_ptr<std::vector<std::string>> indices;
    if (!params.index_keys.empty()) [[unlikely]]
      indices = std::make_unique<std::vector<std::string>>(std::move(params.index_keys));

    if (it != s.values.end()) {
      // Overwrite: counts as an access; the entry leaves the policy while room is made so
      // it can never evict itself, then re-enters with its hit recorded.
      ValueEntry& e = it->second;
      const std::size_t old_charge = charge_of(k.key, e.value);
      s.policy.remove(e);
      const std::size_t growth = charge > old_charge ? charge - old_charge : 0;
      if (over_limit(s, growth, 0) && !make_room(s, growth, 0, now)) {
        s.policy.insert(e);
        s.policy.touch(e);
        ++s.rejections;
        throw_full();
      }
      s.bytes = s.bytes - old_charge + charge;
      e.value = std::move(value);
      e.deadline = deadline;
      e.reads_left = params.max_reads;
      const std::uint32_t old_version = e.version;
      e.version = ++s.next_version;
      auto old_indices = std::exchange(e.indices, std::move(indices));
      s.policy.insert(e);
      s.policy.touch(e);
      // List first, then unlist: an index in both sets never loses the key, not even
      // to a concurrent listing.
      if (e.indices) indices_.list(*e.key, e.version, *e.indices);
      if (old_indices) indices_.unlist(*e.key, old_version, *old_indices);
    } else {
      if (over_limit(s, charge, 1) && !make_room(s, charge, 1, now)) {
        ++s.rejections;
        throw_full();
      }
      it = s.values.try_emplace(std::move(key)).first;
      ValueEntry& e = it->second;
      e.key = &it->first;
      e.fingerprint =
          static_cast<std::uint32_t>((static_cast<std::uint64_t>(k.hash) * 0xD6E8FEB86659FD93ull) >> 32);
      e.value = std::move(value);
      e.deadline = deadline;
      e.reads_left = params.max_reads;
      e.version = ++s.next_version;
      e.indices = std::move(indices);
      s.bytes += charge;
      s.policy.insert(e);
      if (e.indices) indices_.list(*e.key, e.version, *e.indices);
    }
    s.note_deadline(deadline);
    ++s.stores_since_full_scan;
    return true;
  }

  bool erase_locked(Shard& s, const KeyRef& k, Nanos now) {
    const auto it = s.values.find(k);
    if (it == s.values.end()) return false;
    const bool live = it->second.deadline > now;
    drop(s, it, live ? Removal::erased : Removal::expired);
    return live;
  }

  bool expire_locked(Shard& s, const KeyRef& k, Duration ttl, Nanos now) {
    const auto it = s.values.find(k);
    if (it == s.values.end()) return false;
    if (it->second.deadline <= now) {
      drop(s, it, Removal::expired);
      return false;
    }
    it->second.deadline = deadline_after(now, ttl);
    s.note_deadline(it->second.deadline);
    return true;
  }

  /// The sweep's share of shard `s` (whose `mu` the caller holds): if something there may
  /// have expired, visits the next slice of the table (at least 1024 buckets, an eighth of
  /// it for large tables; more rounds while over a quarter of what it visits is dead) and
  /// drops what has expired. A full pass over a table takes at most 8 calls.
  void sweep(Shard& s, Nanos now) {
    if (now < s.earliest_deadline) return;
    for (int round = 0; round < 4; ++round) {
      const std::size_t budget = std::max<std::size_t>(1024, s.values.bucket_count() / 8);
      const auto [visited, dropped] = sweep_values(s, now, budget);
      if (dropped * 4 <= visited) break;
    }
  }

  /// Drops every expired value of shard `s` (whose `mu` the caller holds) at once.
  void sweep_all(Shard& s, Nanos now) { full_expiry_scan(s, now); }

 private:
  [[noreturn]] static void throw_full() {
    throw_error(errc::capacity_exceeded,
                "corocache: memory backend is full (MemoryOptions::when_full = reject)");
  }

  /// Removes a value: policy, byte count, counters, index memberships. With `take`, the
  /// value is moved there. Returns the next iterator.
  KeyMap<ValueEntry>::iterator drop(Shard& s, KeyMap<ValueEntry>::iterator it, Removal why,
                                    std::string* take = nullptr) {
    ValueEntry& e = it->second;
    s.policy.remove(e);
    s.bytes -= charge_of(it->first, e.value);
    if (why == Removal::expired) ++s.expirations;
    if (why == Removal::evicted) ++s.evictions;
    if (e.indices) indices_.unlist(it->first, e.version, *e.indices);
    if (take != nullptr) *take = std::move(e.value);
    return s.values.erase(it);
  }

  bool over_limit(const Shard& s, std::size_t add_bytes, std::size_t add_entries) const noexcept {
    return (s.max_entries != 0 && s.values.size() + add_entries > s.max_entries) ||
           (s.max_bytes != 0 && s.bytes + add_bytes > s.max_bytes);
  }

  /// Frees room for `add_bytes` / `add_entries` more. Expired values always go first: when
  /// something may have expired, all of the shard is scanned (at most once per size/8
  /// stores; in between, a bounded slice); live values are evicted by the policy only
  /// after that, and never in reject mode. False when the room cannot be made.
  bool make_room(Shard& s, std::size_t add_bytes, std::size_t add_entries, Nanos now) {
    if (!over_limit(s, add_bytes, add_entries)) return true;
    if (now >= s.earliest_deadline) {
      if (s.stores_since_full_scan >= s.values.size() / 8) {
        full_expiry_scan(s, now);
      } else {
        sweep_values(s, now, 64);
      }
      if (!over_limit(s, add_bytes, add_entries)) return true;
    }
    if (reject_) return false;
    const auto is_dead = [now](const PolicyHook& h) {
      return static_cast<const ValueEntry&>(h).deadline <= now;
    };
    while (over_limit(s, add_bytes, add_entries)) {
      PolicyHook* victim = s.policy.evict(is_dead);
      if (victim == nullptr) return false;
      auto& e = static_cast<ValueEntry&>(*victim);
      drop(s, s.values.find(KeyRef(*e.key)), e.deadline <= now ? Removal::expired : Removal::evicted);
    }
    return true;
  }

  void full_expiry_scan(Shard& s, Nanos now) {
    Nanos earliest = never;
    for (auto it = s.values.begin(); it != s.values.end();) {
      if (it->second.deadline <= now) {
        it = drop(s, it, Removal::expired);
      } else {
        earliest = std::min(earliest, it->second.deadline);
        ++it;
      }
    }
    s.earliest_deadline = earliest;
    s.stores_since_full_scan = 0;
  }

  /// Visits up to `budget` buckets of the value table from the sweep cursor; returns
  /// (values visited, values dropped).
  std::pair<std::size_t, std::size_t> sweep_values(Shard& s, Nanos now, std::size_t budget) {
    const std::size_t buckets = s.values.bucket_count();
    if (buckets != s.pass_buckets) {
      // The table was rehashed: entries moved between buckets, so restart the pass (its
      // running minimum would miss entries that moved behind the cursor).
      s.pass_buckets = buckets;
      s.value_cursor = 0;
      s.pass_earliest = never;
    }
    std::size_t visited = 0;
    s.scratch.clear();
    for (std::size_t n = 0; n < budget; ++n) {
      if (s.value_cursor >= buckets) {
        // Pass complete: every value present now was seen or stored since the pass began.
        s.earliest_deadline = s.pass_earliest;
        s.pass_earliest = never;
        s.value_cursor = 0;
        break;
      }
      for (auto it = s.values.begin(s.value_cursor); it != s.values.end(s.value_cursor); ++it) {
        ++visited;
        if (it->second.deadline <= now) {
          s.scratch.push_back(&it->first);
        } else {
          s.pass_earliest = std::min(s.pass_earliest, it->second.deadline);
        }
      }
      ++s.value_cursor;
    }
    // Dropping one node leaves every other node (and so every other scratch key) in place.
    for (const std::string* key : s.scratch) drop(s, s.values.find(KeyRef(*key)), Removal::expired);
    const std::size_t dropped = s.scratch.size();
    s.scratch.clear();
    return {visited, dropped};
  }

  const ShardArray& shards_;
  const TimeSource& time_;
  IndexTable& indices_;
  bool reject_;
};

}  // namespace corocache::detail::memory
