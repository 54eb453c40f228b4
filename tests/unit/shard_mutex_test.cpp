// The memory store's shard lock (a hand-written futex mutex): mutual exclusion under
// contention, try_lock, and that a thread asleep on the lock is woken by the unlock.

#include <corocache/memory/detail/shard_mutex.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace shard_mutex_test {

using corocache::detail::memory::ShardMutex;
using namespace std::chrono_literals;

TEST_CASE("a shard mutex admits one thread at a time and loses no update under contention") {
  ShardMutex mutex;
  long counter = 0;            // guarded by mutex, deliberately not atomic
  std::atomic<int> inside{0};  // threads in the critical section right now
  std::atomic<int> overlaps{0};
  constexpr int threads = 4, rounds = 50'000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        std::lock_guard lock(mutex);
        if (inside.fetch_add(1) != 0) overlaps++;
        ++counter;
        // Now and then hold the lock long enough that the others give up spinning and sleep,
        // so the contended (futex wait / wake) path runs too.
        if (i % 4096 == 0) std::this_thread::sleep_for(100us);
        inside.fetch_sub(1);
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(overlaps == 0);
  CHECK(counter == long{threads} * rounds);
}

TEST_CASE("try_lock fails while a shard mutex is held and succeeds once it is free") {
  ShardMutex mutex;
  REQUIRE(mutex.try_lock());
  bool other_got_it = true;
  std::thread([&] { other_got_it = mutex.try_lock(); }).join();
  CHECK_FALSE(other_got_it);
  mutex.unlock();
  std::thread([&] {
    other_got_it = mutex.try_lock();
    if (other_got_it) mutex.unlock();
  }).join();
  CHECK(other_got_it);
}

TEST_CASE("a thread asleep on a held shard mutex gets it when it is released") {
  ShardMutex mutex;
  mutex.lock();
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    mutex.lock();  // spins briefly, then sleeps until the unlock below wakes it
    acquired = true;
    mutex.unlock();
  });
  std::this_thread::sleep_for(50ms);  // long past the spin: the waiter is asleep
  CHECK_FALSE(acquired);
  mutex.unlock();
  waiter.join();  // hangs (and the test times out) if the unlock did not wake it
  CHECK(acquired);
  // Free again afterwards, uncontended.
  CHECK(mutex.try_lock());
  mutex.unlock();
}

}  // namespace shard_mutex_test
