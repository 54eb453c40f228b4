#pragma once
// The lock of one store shard.
//
// Why not std::mutex: a store get or set holds its shard lock for a few hundred
// instructions, and an uncontended std::mutex lock + unlock is two out-of-line
// pthread calls, ~50 instructions (memory_bench get-hit under callgrind), a large share of
// the backend's own cost. This is the classic three-state futex mutex (U. Drepper,
// "Futexes Are Tricky", mutex 3) on C++20 atomic wait/notify: uncontended, lock and unlock
// are one inline atomic read-modify-write each; contended, it spins briefly (the holder is
// usually about to leave) and then sleeps in the kernel like std::mutex. Not recursive,
// not fair; BasicLockable and Lockable, so lock_guard and unique_lock work.

#include <atomic>
#include <cstdint>

namespace corocache::detail::memory {

class ShardMutex {
 public:
  ShardMutex() = default;
  ShardMutex(const ShardMutex&) = delete;
  ShardMutex& operator=(const ShardMutex&) = delete;

  void lock() noexcept {
    std::uint32_t seen = unlocked;
    if (state_.compare_exchange_strong(seen, locked, std::memory_order_acquire)) [[likely]]
      return;
    lock_contended();
  }

  bool try_lock() noexcept {
    std::uint32_t seen = unlocked;
    return state_.compare_exchange_strong(seen, locked, std::memory_order_acquire);
  }

  void unlock() noexcept {
    // seq_cst, not just release: the store must be ordered before notify_one's check for
    // sleepers (a release store could pass that load and miss a waiter about to sleep).
    if (state_.exchange(unlocked, std::memory_order_seq_cst) == contended) [[unlikely]]
      state_.notify_one();
  }

 private:
  static constexpr std::uint32_t unlocked = 0;
  static constexpr std::uint32_t locked = 1;     // held, nobody sleeps on it
  static constexpr std::uint32_t contended = 2;  // held, and someone may sleep on it

  void lock_contended() noexcept {
    for (int spin = 0; spin < 100; ++spin) {
      std::uint32_t seen = state_.load(std::memory_order_relaxed);
      if (seen == unlocked &&
          state_.compare_exchange_weak(seen, locked, std::memory_order_acquire, std::memory_order_relaxed))
        return;
      if (seen == contended) break;  // others already sleep: queue up behind them
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    // Mark the lock contended whenever we may sleep, so that its unlock wakes someone. A
    // thread that takes it this way keeps it marked (it cannot know whether others sleep),
    // which costs at most one needless notify.
    while (state_.exchange(contended, std::memory_order_acquire) != unlocked)
      state_.wait(contended, std::memory_order_relaxed);
  }

  std::atomic<std::uint32_t> state_{unlocked};
};

}  // namespace corocache::detail::memory
