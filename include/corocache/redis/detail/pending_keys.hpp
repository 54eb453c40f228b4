#pragma once
// Keys of pending records (Kind::pending, see docs/redis_queues.md): a pop's ledger, which
// holds the popped element until its caller has it, and the tombstone an abandoned pop or lock
// attempt leaves so that a late execution of it does nothing. A record's key is derived from
// the queue or lock key it belongs to and a fresh id:
//
//     <prefix>:{<tenant>:<ns>}:q:<name>   ->   <prefix>:{<tenant>:<ns>}:p:<id>:q:<name>
//
// It keeps the scope's hash tag (same Redis Cluster slot as its queue, so one script may
// touch both), lives under the scope's base (a flush removes it), and cannot alias a user
// key (the kind differs). Ids are unique per backend instance and random across instances.

#include <corocache/detail/keys.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corocache::detail::redis {

/// Length of the scope part `<prefix>:{<tenant>:<ns>}:` of `key`, or 0 when `key` does not
/// have that layout (no non-empty `{...}` hash tag followed by ':' and more).
constexpr std::size_t scope_length(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return 0;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return 0;
  if (close + 2 > key.size() || key[close + 1] != ':') return 0;
  return close + 2;
}

/// The pending record of `key` (a queue or lock key in the facade's layout) named `id` (no
/// ':'). Throws invalid_backend_argument, before any I/O, for a key without the layout.
inline std::string pending_key(std::string_view key, std::string_view id) {
  const std::size_t scope = scope_length(key);
  if (scope == 0)
    throw invalid_backend_argument(
        "corocache: RedisBackend queue and lock keys need the layout <prefix>:{<tenant>:<ns>}:<kind>:<name>");
  std::string name;
  name.reserve(id.size() + 1 + key.size() - scope);
  name.append(id).push_back(':');
  name.append(key.substr(scope));
  return make_key(key.substr(0, scope), Kind::pending, name);
}

/// Fresh record ids: 16 random hex digits per instance, then a counter in hex.
class PendingIds {
 public:
  PendingIds() {
    std::random_device device;
    const std::uint64_t seed = (std::uint64_t{device()} << 32) ^ device();
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; ++i) prefix_[static_cast<std::size_t>(i)] = hex[(seed >> (4 * i)) & 0xf];
  }

  std::string next() {
    std::uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
    std::string id(prefix_.data(), prefix_.size());
    id.push_back('-');
    static constexpr char hex[] = "0123456789abcdef";
    do {
      id.push_back(hex[n & 0xf]);
      n >>= 4;
    } while (n != 0);
    return id;
  }

 private:
  std::array<char, 16> prefix_{};
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace corocache::detail::redis
