#pragma once
// S3-FIFO eviction (Yang et al., "FIFO queues are all you need for cache eviction", SOSP'23).
//
// Why S3-FIFO and not W-TinyLFU (both beat LRU on skewed and scan-heavy traffic):
// - A hit only bumps a tiny saturating counter in the entry: no list surgery, no shared sketch to
//   update. In a sharded, mutex-protected store that keeps the read path to one cache line
//   of the entry, where LRU moves the entry and W-TinyLFU also updates a count-min sketch
//   (4 random memory writes) and periodically halves it.
// - Scan resistance comes from the small probationary FIFO: a one-hit wonder enters the
//   small queue and leaves it after about 10% of the cache's turnover, never disturbing
//   the main queue. W-TinyLFU gets the same from its frequency sketch, but needs the
//   sketch sized to the cache and its admission duel tuned (window size, hill climbing).
// - Per entry it costs two list pointers, one byte of counter and one of list id, plus
//   8 bytes per remembered ghost (ghost.hpp); W-TinyLFU needs the sketch plus an LRU window
//   and a segmented LRU, i.e. the same pointers and more code on every path.
// benchmarks/hit_ratio compares it with plain LRU and Belady's optimum: on Zipf 0.7-1.1
// traces it is 3-12 points above LRU, on a Zipf trace mixed with one-off scans 7-10 points
// above, and on a shifting working set 0.2-11 points above.
//
// Algorithm, in entries (not bytes): new keys enter the small queue S (target: 10% of the
// entries), unless the ghost queue G remembers them, then they enter the main queue M.
// Eviction takes from S while S holds at least its share, else from M:
// - from S: an entry hit at least `promote_hits` times since it came in moves to M (counter
//   reset), otherwise it is evicted and remembered by G;
// - from M: an entry with a non-zero counter is reinserted at M's tail with the counter
//   decremented (so it survives at most two extra rounds without hits), otherwise evicted.
// An entry the caller reports dead (expired) is evicted as soon as the walk meets it
// (never promoted, reinserted or remembered by G). The store itself reclaims expired
// entries before it asks the policy for a live victim (store.hpp, make_room).

#include <corocache/memory/detail/ghost.hpp>
#include <corocache/memory/detail/policy_hook.hpp>

#include <cstddef>
#include <cstdint>

namespace corocache::detail::memory {

class S3Fifo {
 public:
  static constexpr const char* name = "S3-FIFO";

  /// `small_percent`: share of entries the small queue holds before it is drained first.
  /// `promote_hits`: hits in the small queue that earn a move to the main queue.
  explicit S3Fifo(unsigned small_percent = 10, std::uint8_t promote_hits = 1) noexcept
      : small_percent_(small_percent), promote_hits_(promote_hits) {}
  S3Fifo(const S3Fifo&) = delete;
  S3Fifo& operator=(const S3Fifo&) = delete;

  std::size_t size() const noexcept { return small_.size() + main_.size(); }
  std::size_t small_size() const noexcept { return small_.size(); }
  std::size_t main_size() const noexcept { return main_.size(); }

  /// Starts tracking a new entry (its fingerprint already set).
  void insert(PolicyHook& h) {
    h.freq = 0;
    if (ghost_.take(h.fingerprint)) {
      h.list = in_main;
      main_.push_back(h);
    } else {
      h.list = in_small;
      small_.push_back(h);
    }
  }

  /// A hit (or an overwrite) on a tracked entry: a counter bump, nothing moves.
  void touch(PolicyHook& h) noexcept {
    if (h.freq < max_freq) ++h.freq;
  }

  /// Stops tracking an entry removed for another reason than eviction (erase, expiry,
  /// read limit): it does not become a ghost.
  void remove(PolicyHook& h) noexcept {
    if (h.list == in_small) {
      small_.erase(h);
    } else if (h.list == in_main) {
      main_.erase(h);
    }
    h.list = 0;
  }

  /// Picks the next entry to evict, stops tracking it and returns it (nullptr when empty).
  /// `is_dead(const PolicyHook&)` reports expired entries: those go first, wherever met.
  template <class IsDead>
  PolicyHook* evict(IsDead&& is_dead) {
    ghost_.set_capacity(main_.size() + small_.size());
    for (;;) {
      if (small_.empty() && main_.empty()) return nullptr;
      const std::size_t small_share = (size() * small_percent_) / 100;
      if (!small_.empty() && (small_.size() > small_share || main_.empty())) {
        PolicyHook* h = small_.pop_front();
        if (is_dead(*h)) return untracked(h);
        if (h->freq >= promote_hits_) {
          h->freq = 0;
          h->list = in_main;
          main_.push_back(*h);
          continue;
        }
        ghost_.add(h->fingerprint);
        return untracked(h);
      }
      PolicyHook* h = main_.pop_front();
      if (is_dead(*h)) return untracked(h);
      if (h->freq > 0) {
        --h->freq;
        main_.push_back(*h);
        continue;
      }
      return untracked(h);
    }
  }

  PolicyHook* evict() {
    return evict([](const PolicyHook&) { return false; });
  }

 private:
  static constexpr std::uint8_t in_small = 1;
  static constexpr std::uint8_t in_main = 2;
  // 2, not the paper's 3: an entry that stopped being hit leaves M after at most two
  // extra rounds, which keeps S3-FIFO at or above LRU when the working set shifts
  // (benchmarks/hit_ratio, "shifting" trace) at a cost of < 0.5 points on static Zipf.
  static constexpr std::uint8_t max_freq = 2;

  static PolicyHook* untracked(PolicyHook* h) noexcept {
    h->list = 0;
    return h;
  }

  HookList small_;
  HookList main_;
  GhostQueue ghost_;
  unsigned small_percent_;
  std::uint8_t promote_hits_;
};

}  // namespace corocache::detail::memory
