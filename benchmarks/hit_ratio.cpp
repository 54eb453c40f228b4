// hit_ratio: replays synthetic key traces against the memory backend's eviction policy
// (S3-FIFO), plain LRU and Belady's offline optimum, and prints the hit ratios as a
// markdown table. Every trace comes from a fixed seed, so the table is reproducible.
//
// Traces (100'000 distinct hot keys, 2'000'000 requests each):
// - zipf-0.7 / zipf-0.9 / zipf-1.1: independent Zipf-distributed requests;
// - zipf-1.0 + scans: Zipf 1.0 requests, and after every 20'000 of them a scan of 10'000
//   keys never seen before or again (a report job, a crawler);
// - shifting zipf-0.9: the popularity ranking moves by 5% of the keys every 100'000
//   requests, so yesterday's hot keys cool down.
// Cache sizes are 0.1%, 1% and 10% of the distinct hot keys, counted in entries.

#include <corocache/memory/detail/s3fifo.hpp>
#include "support/lru.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using corocache::detail::memory::Lru;
using corocache::detail::memory::PolicyHook;
using corocache::detail::memory::S3Fifo;
using Trace = std::vector<std::uint64_t>;

constexpr std::size_t distinct_keys = 100'000;
constexpr std::size_t trace_length = 2'000'000;

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Draws ranks 0..n-1 with P(rank r) proportional to 1 / (r + 1)^alpha.
class Zipf {
 public:
  Zipf(std::size_t n, double alpha) : cdf_(n) {
    double sum = 0;
    for (std::size_t r = 0; r < n; ++r) cdf_[r] = (sum += 1.0 / std::pow(static_cast<double>(r + 1), alpha));
    for (double& c : cdf_) c /= sum;
  }
  template <class Rng>
  std::size_t operator()(Rng& rng) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return std::min<std::size_t>(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

/// Rank -> key id, so popularity is not correlated with the id.
std::vector<std::uint64_t> shuffled_ids(std::mt19937_64& rng) {
  std::vector<std::uint64_t> ids(distinct_keys);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  return ids;
}

Trace zipf_trace(double alpha, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto ids = shuffled_ids(rng);
  Zipf zipf(distinct_keys, alpha);
  Trace t(trace_length);
  for (auto& k : t) k = ids[zipf(rng)];
  return t;
}

Trace scan_mixed_trace(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto ids = shuffled_ids(rng);
  Zipf zipf(distinct_keys, 1.0);
  Trace t;
  t.reserve(trace_length);
  std::uint64_t next_one_off = distinct_keys;
  while (t.size() < trace_length) {
    for (int i = 0; i < 20'000 && t.size() < trace_length; ++i) t.push_back(ids[zipf(rng)]);
    for (int i = 0; i < 10'000 && t.size() < trace_length; ++i) t.push_back(next_one_off++);
  }
  return t;
}

Trace shifting_trace(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto ids = shuffled_ids(rng);
  Zipf zipf(distinct_keys, 0.9);
  Trace t(trace_length);
  std::size_t offset = 0;
  for (std::size_t i = 0; i < trace_length; ++i) {
    if (i != 0 && i % 100'000 == 0) offset += distinct_keys / 20;
    t[i] = ids[(zipf(rng) + offset) % distinct_keys];
  }
  return t;
}

/// Hit ratio of `Policy` managing `capacity` entries over the trace.
template <class Policy, class... Args>
double simulate(const Trace& trace, std::size_t capacity, Args... args) {
  struct Node : PolicyHook {
    std::uint64_t key = 0;
  };
  Policy policy(args...);
  std::unordered_map<std::uint64_t, Node> cache;
  cache.reserve(capacity * 2);
  std::size_t hits = 0;
  for (const std::uint64_t key : trace) {
    if (auto it = cache.find(key); it != cache.end()) {
      ++hits;
      policy.touch(it->second);
      continue;
    }
    if (cache.size() >= capacity) {
      auto* victim = static_cast<Node*>(policy.evict());
      cache.erase(victim->key);
    }
    Node& n = cache[key];
    n.key = key;
    n.fingerprint = static_cast<std::uint32_t>(mix(key) >> 32);
    policy.insert(n);
  }
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

/// Belady's MIN: on a miss with a full cache, evict the entry used again furthest ahead.
double belady(const Trace& trace, std::size_t capacity) {
  constexpr std::size_t never = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> next_use(trace.size());
  std::unordered_map<std::uint64_t, std::size_t> seen;
  for (std::size_t i = trace.size(); i-- > 0;) {
    const auto it = seen.find(trace[i]);
    next_use[i] = it == seen.end() ? never : it->second;
    seen[trace[i]] = i;
  }
  std::set<std::pair<std::size_t, std::uint64_t>> by_next_use;  // (next use, key)
  std::unordered_map<std::uint64_t, std::size_t> cached;        // key -> its next use
  std::size_t hits = 0;
  for (std::size_t i = 0; i < trace.size(); ++i) {
    const std::uint64_t key = trace[i];
    if (auto it = cached.find(key); it != cached.end()) {
      ++hits;
      by_next_use.erase({it->second, key});
      it->second = next_use[i];
      by_next_use.insert({next_use[i], key});
      continue;
    }
    if (cached.size() >= capacity) {
      const auto furthest = std::prev(by_next_use.end());
      cached.erase(furthest->second);
      by_next_use.erase(furthest);
    }
    cached.emplace(key, next_use[i]);
    by_next_use.insert({next_use[i], key});
  }
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

}  // namespace

int main() {
  const auto start = std::chrono::steady_clock::now();
  struct Named {
    const char* name;
    Trace trace;
  };
  std::vector<Named> traces;
  traces.push_back({"zipf-0.7", zipf_trace(0.7, 1)});
  traces.push_back({"zipf-0.9", zipf_trace(0.9, 2)});
  traces.push_back({"zipf-1.1", zipf_trace(1.1, 3)});
  traces.push_back({"zipf-1.0 + scans", scan_mixed_trace(4)});
  traces.push_back({"shifting zipf-0.9", shifting_trace(5)});

  std::printf("| trace | cache size | LRU | S3-FIFO | S3-FIFO - LRU | Belady (OPT) |\n");
  std::printf("|---|---|---:|---:|---:|---:|\n");
  for (const auto& [name, trace] : traces) {
    for (const double share : {0.001, 0.01, 0.1}) {
      const auto capacity = static_cast<std::size_t>(share * distinct_keys);
      const double lru = simulate<Lru>(trace, capacity);
      const double s3 = simulate<S3Fifo>(trace, capacity);
      const double opt = belady(trace, capacity);
      std::printf("| %s | %.1f%% (%zu) | %.2f%% | %.2f%% | %+.2f | %.2f%% |\n", name, share * 100, capacity,
                  lru * 100, s3 * 100, (s3 - lru) * 100, opt * 100);
      std::fflush(stdout);
    }
  }
  std::printf("\n%zu requests per trace, %zu distinct hot keys; %.1f s\n", trace_length, distinct_keys,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}
