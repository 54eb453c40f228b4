#pragma once
// How long this machine takes to wake a thread sleeping on another, idle core. At N=1 a
// Redis round trip on loopback is mostly that wake-up, and on a VM it moves between a few
// microseconds and ~40 us within minutes, so every Redis benchmark prints it with its run.

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace corocache::bench {

/// At or above this one-way wake-up time the machine is in its "slow-wake" regime.
inline constexpr double slow_wake_threshold_us = 15.0;

/// The first two CPUs this process may run on, or {-1, -1} if it has fewer than two.
inline std::pair<int, int> first_two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {-1, -1};
  int found[2] = {-1, -1};
  int count = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && count < 2; ++cpu)
    if (CPU_ISSET(cpu, &set)) found[count++] = cpu;
  return count == 2 ? std::pair{found[0], found[1]} : std::pair{-1, -1};
}

inline bool pin_current_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// Median one-way wake-up time in microseconds: a thread pinned to one CPU notifies a
/// thread pinned to another, which sleeps on a condition variable; the time from just before
/// the notify to just after the sleeper returns from its wait (CLOCK_MONOTONIC is one clock
/// for all CPUs). Between rounds the notifier sleeps `gap`, so the sleeper's core has gone
/// idle, as a client's core does between a request and its reply. NaN if the process has
/// fewer than two CPUs or pinning fails. With `pin` false the scheduler places the threads,
/// and usually keeps two that take turns on one core: that times a context switch, which is
/// what a client and a server on loopback get when the scheduler co-locates them.
inline double thread_wake_up_us(bool pin = true, int rounds = 2000,
                                std::chrono::microseconds gap = std::chrono::microseconds(50)) {
  using clock = std::chrono::steady_clock;
  const std::pair<int, int> cpus = first_two_cpus();  // not a structured binding: clang 14 cannot capture one
  const int cpu_a = cpus.first, cpu_b = cpus.second;
  if (pin && cpu_a < 0) return NAN;

  std::mutex m;
  std::condition_variable to_b, to_a;
  int round = 0;        // the round the notifier has started (0: none yet)
  int answered = 0;     // the round the sleeper has answered
  bool failed = false;  // a thread could not be pinned
  clock::time_point sent{};
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(rounds));

  std::thread sleeper([&] {
    const bool pinned = !pin || pin_current_thread(cpu_b);
    std::unique_lock lock(m);
    if (!pinned) failed = true;
    for (int r = 1; r <= rounds && !failed; ++r) {
      to_b.wait(lock, [&] { return round >= r || failed; });
      if (failed) break;
      samples.push_back(std::chrono::duration<double, std::micro>(clock::now() - sent).count());
      answered = r;
      to_a.notify_one();
    }
    failed = failed || answered < rounds;  // stopped early: the notifier must not wait for it
    to_a.notify_one();
  });
  std::thread notifier([&] {
    const bool pinned = !pin || pin_current_thread(cpu_a);
    for (int r = 1; r <= rounds; ++r) {
      std::this_thread::sleep_for(gap);
      {
        std::lock_guard lock(m);
        if (!pinned) failed = true;
        if (failed) break;
        round = r;
        sent = clock::now();
      }
      to_b.notify_one();
      std::unique_lock lock(m);
      to_a.wait(lock, [&] { return answered >= r || failed; });
      if (failed) break;
    }
    to_b.notify_one();
  });
  notifier.join();
  sleeper.join();
  if (failed || samples.empty()) return NAN;
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(samples.size() / 2),
                   samples.end());
  return samples[samples.size() / 2];
}

/// The first three fields of /proc/loadavg ("?" if unreadable).
inline std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  double a = 0, b = 0, c = 0;
  const int n = std::fscanf(f, "%lf %lf %lf", &a, &b, &c);
  std::fclose(f);
  if (n != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", a, b, c);
  return buf;
}

/// Measures and prints the machine's wake-up regime as one line, e.g.
/// "machine: thread wake-up (pinned ping-pong, one way, median) 43.1 us -> slow-wake regime
/// (>= 15 us); unpinned 1.2 us; loadavg 0.52 0.61 0.70 [redis_bench start]". The regime is
/// the pinned (cross-core) time; the unpinned one shows whether the scheduler currently
/// avoids it by keeping two threads that take turns on one core. Returns the pinned time.
inline double print_wake_regime(const char* when) {
  const double us = thread_wake_up_us(true);
  const double unpinned = thread_wake_up_us(false);
  if (std::isnan(us)) {
    std::printf(
        "machine: thread wake-up not measured pinned (fewer than 2 CPUs, or pinning failed) -> regime "
        "unknown; "
        "unpinned %.1f us; loadavg %s [%s]\n",
        unpinned, load_average().c_str(), when);
  } else {
    const bool slow = us >= slow_wake_threshold_us;
    std::printf(
        "machine: thread wake-up (pinned ping-pong, one way, median) %.1f us -> %s regime (%s %.0f us); "
        "unpinned %.1f us; loadavg %s [%s]\n",
        us, slow ? "slow-wake" : "fast-wake", slow ? ">=" : "<", slow_wake_threshold_us, unpinned,
        load_average().c_str(), when);
  }
  std::fflush(stdout);
  return us;
}

}  // namespace corocache::bench
