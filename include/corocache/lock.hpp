#pragma once
// A held distributed lock: what attempt_distributed_lock returns and
// release_distributed_lock takes back.

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace corocache {

/// One acquisition of a named lock. Its token is unique to this acquisition, so a holder
/// whose lock expired and was taken by someone else cannot release the new owner's lock.
/// A plain value: copy it, store it, hand it to another coroutine.
class Lock {
 public:
  Lock(std::string key, std::string name, std::string token)
      : key_(std::move(key)), name_(std::move(name)), token_(std::move(token)) {}

  /// The name given to attempt_distributed_lock.
  const std::string& name() const noexcept { return name_; }
  /// The random owner token of this acquisition (128 bits, hex).
  const std::string& token() const noexcept { return token_; }
  /// The backend key of the lock, e.g. `myapp:{acme:default}:l:nightly-job`.
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
  std::string name_;
  std::string token_;
};

namespace detail {
/// 128 random bits as hex. Seeded per thread from std::random_device, so tokens from
/// different processes and threads do not collide.
inline std::string make_lock_token() {
  thread_local std::mt19937_64 engine{[] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string token(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = engine();
    for (int i = 0; i < 16; ++i, bits >>= 4) token[half * 16 + i] = hex[bits & 0xf];
  }
  return token;
}
}  // namespace detail

}  // namespace corocache
