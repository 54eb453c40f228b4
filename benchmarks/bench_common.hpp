#pragma once
// Small helpers shared by the benchmark programs: timing, the summary-line format that
// run.sh collects, resident-memory readings and fixed-seed workloads.

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// CPU time the calling thread has used, in seconds. On a shared machine, CPU per
/// operation is steadier than throughput: it does not count time spent waiting for a core.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// The one line per comparison that run.sh greps for ("<name>: corocache ... ratio ...").
inline void print_summary(std::string_view name, double corocache_ops, double baseline_ops) {
  const double ratio = baseline_ops > 0 ? corocache_ops / baseline_ops : 0.0;
  std::printf("%.*s: corocache %.0f ops/s, baseline %.0f ops/s, ratio %.2f\n", static_cast<int>(name.size()),
              name.data(), corocache_ops, baseline_ops, ratio);
  std::fflush(stdout);
}

/// A detail line (indented, so it never looks like a summary line).
__attribute__((format(printf, 1, 2))) inline void detail(const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  std::printf("  ");
  std::vprintf(format, args);
  std::printf("\n");
  std::fflush(stdout);
  va_end(args);
}

/// CPU time all threads of this process have used, in seconds.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// Makes `value` look used to the optimizer, so the work that computed it stays.
template <class T>
inline void keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// COROCACHE_BENCH_QUICK=1 shrinks every workload (a smoke run, not a measurement).
inline bool quick() {
  const char* q = std::getenv("COROCACHE_BENCH_QUICK");
  return q != nullptr && *q != '\0' && std::string_view(q) != "0";
}

/// Resident set size of this process in bytes (second field of /proc/self/statm).
inline long long rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (n != 2) return -1;
  return resident * static_cast<long long>(sysconf(_SC_PAGESIZE));
}

/// `count` distinct names of exactly `width` bytes: `<lead><zero-padded number>`.
inline std::vector<std::string> make_names(std::size_t count, char lead, std::size_t width = 16) {
  std::vector<std::string> names;
  names.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string digits = std::to_string(i);
    std::string name(1, lead);
    name.append(width - 1 - std::min(width - 1, digits.size()), '0');
    name.append(digits);
    names.push_back(std::move(name));
  }
  return names;
}

/// `count` uniform indices in [0, range), the same on every run and platform
/// (mt19937_64's output is fixed by the standard; the reduction below is ours, not a
/// distribution's, whose algorithm is implementation-defined).
inline std::vector<std::uint32_t> make_indices(std::size_t count, std::size_t range, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> out(count);
  for (auto& i : out) i = static_cast<std::uint32_t>(rng() % range);
  return out;
}

/// Same, as a 0/1 pattern with `percent`% ones (which operations of a mix are writes).
inline std::vector<std::uint8_t> make_pattern(std::size_t count, unsigned percent, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> out(count);
  for (auto& b : out) b = rng() % 100 < percent ? 1 : 0;
  return out;
}

}  // namespace corocache::bench
