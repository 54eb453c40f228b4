#pragma once
// The intrusive part of a cached entry that an eviction policy works on, and the doubly
// linked FIFO/LRU list the policies are built from.
//
// Policies never own or allocate entries: the store embeds a PolicyHook in each entry and
// hands the policy references to it. That keeps a policy plain synchronous code, testable
// with a few stack objects, and costs no allocation per insert.

#include <cstddef>
#include <cstdint>

namespace corocache::detail::memory {

/// Embedded in every entry a policy tracks. The policy owns every field but `fingerprint`,
/// which the store sets (from the key's hash) before insert.
struct PolicyHook {
  PolicyHook* prev = nullptr;
  PolicyHook* next = nullptr;
  /// A 32-bit digest of the key: what a ghost queue remembers once the entry is gone.
  std::uint32_t fingerprint = 0;
  /// Small saturating access counter (policy-defined meaning).
  std::uint8_t freq = 0;
  /// Which of the policy's lists holds the entry (0: none).
  std::uint8_t list = 0;
};

/// A doubly linked list of hooks: O(1) push at the back, removal anywhere, pop at the front.
/// Front = oldest.
class HookList {
 public:
  HookList() = default;
  HookList(const HookList&) = delete;
  HookList& operator=(const HookList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  PolicyHook* front() const noexcept { return head_; }
  PolicyHook* back() const noexcept { return tail_; }

  void push_back(PolicyHook& h) noexcept {
    h.prev = tail_;
    h.next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = &h;
    } else {
      head_ = &h;
    }
    tail_ = &h;
    ++size_;
  }

  void erase(PolicyHook& h) noexcept {
    if (h.prev != nullptr) {
      h.prev->next = h.next;
    } else {
      head_ = h.next;
    }
    if (h.next != nullptr) {
      h.next->prev = h.prev;
    } else {
      tail_ = h.prev;
    }
    h.prev = h.next = nullptr;
    --size_;
  }

  PolicyHook* pop_front() noexcept {
    PolicyHook* h = head_;
    if (h != nullptr) erase(*h);
    return h;
  }

 private:
  PolicyHook* head_ = nullptr;
  PolicyHook* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace corocache::detail::memory
