#pragma once
// Plain LRU with the same interface as S3Fifo (test and benchmark support, not installed):
// the baseline of benchmarks/hit_ratio and of tests/unit/memory_policy_test, and a
// drop-in for comparing policies. A hit moves the entry to the tail of one list; eviction
// takes the head (an expired entry at the head goes like any other; LRU has no notion of
// preferring dead entries further in).

#include <corocache/memory/detail/policy_hook.hpp>

#include <cstddef>

namespace corocache::detail::memory {

class Lru {
 public:
  static constexpr const char* name = "LRU";

  Lru() = default;
  Lru(const Lru&) = delete;
  Lru& operator=(const Lru&) = delete;

  std::size_t size() const noexcept { return list_.size(); }

  void insert(PolicyHook& h) {
    h.list = 1;
    list_.push_back(h);
  }
  void touch(PolicyHook& h) noexcept {
    list_.erase(h);
    list_.push_back(h);
  }
  void remove(PolicyHook& h) noexcept {
    if (h.list != 0) list_.erase(h);
    h.list = 0;
  }
  template <class IsDead>
  PolicyHook* evict(IsDead&&) {
    PolicyHook* h = list_.pop_front();
    if (h != nullptr) h->list = 0;
    return h;
  }
  PolicyHook* evict() { return evict(0); }

 private:
  HookList list_;
};

}  // namespace corocache::detail::memory
