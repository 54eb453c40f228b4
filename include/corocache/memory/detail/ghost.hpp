#pragma once
// The ghost queue of S3-FIFO: remembers the fingerprints of roughly the last `capacity`
// entries evicted from the small queue, without their keys or values, so that a key which
// comes back soon after being evicted is admitted straight into the main queue.
//
// Stored as a direct-mapped table of (fingerprint, eviction stamp) pairs: 8 bytes per slot,
// no allocation per eviction, no FIFO to maintain. A slot is valid while fewer than
// `capacity` evictions happened since its stamp. Collisions overwrite the older ghost; the
// resulting loss is a few percent of ghost hits, which costs far less hit ratio than the
// 40+ bytes per ghost of an exact FIFO + hash set would cost memory.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace corocache::detail::memory {

class GhostQueue {
 public:
  /// How many recent evictions to remember. Grows the table (forgetting its content) when
  /// the capacity outgrows it; never allocates while capacity is 0.
  void set_capacity(std::size_t capacity) {
    capacity_ = static_cast<std::uint32_t>(capacity < (1u << 30) ? capacity : (1u << 30));
    const std::size_t wanted = std::bit_ceil(capacity_ < 16 ? std::size_t{16} : std::size_t{capacity_});
    if (capacity_ != 0 && wanted > slots_.size()) slots_.assign(wanted, Slot{});
  }
  std::size_t capacity() const noexcept { return capacity_; }

  /// Records an eviction.
  void add(std::uint32_t fingerprint) noexcept {
    if (slots_.empty()) return;
    ++clock_;
    if (clock_ == 0) clock_ = 1;  // 0 marks an empty slot
    slots_[index(fingerprint)] = Slot{fingerprint, clock_};
  }

  /// True (and forgets it) when `fingerprint` was evicted recently.
  bool take(std::uint32_t fingerprint) noexcept {
    if (slots_.empty()) return false;
    Slot& s = slots_[index(fingerprint)];
    if (s.stamp == 0 || s.fingerprint != fingerprint) return false;
    const bool recent = static_cast<std::uint32_t>(clock_ - s.stamp) < capacity_;
    s = Slot{};
    return recent;
  }

  std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    std::uint32_t fingerprint = 0;
    std::uint32_t stamp = 0;
  };
  std::size_t index(std::uint32_t fingerprint) const noexcept {
    // Fibonacci hashing spreads fingerprints that share low bits.
    return static_cast<std::size_t>((fingerprint * 2654435769u) >> (32 - std::countr_zero(slots_.size()))) &
           (slots_.size() - 1);
  }

  std::vector<Slot> slots_;
  std::uint32_t capacity_ = 0;
  std::uint32_t clock_ = 0;
};

}  // namespace corocache::detail::memory
