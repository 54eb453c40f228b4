#pragma once
// An encoded request: one or more commands in RESP, plus how many replies they produce.
// Built synchronously by the caller (so it owns its bytes):
//   Request r;
//   r.add("SET", key, value, "PX", ttl_ms);   // string_view-convertibles and integers
// Commands are encoded in RESP exactly as hiredis' redisFormatCommandArgv encodes them.

#include <corocache/backend.hpp>

#include <array>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace corocache::detail::redis {

/// A command argument: anything convertible to std::string_view, or an integer (written in
/// decimal). bool and char are rejected on purpose (ambiguous).
template <class T>
concept CommandArg = std::convertible_to<const T&, std::string_view> ||
    (std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>);

struct Request {
  std::string bytes;        ///< RESP-encoded commands, in order
  std::size_t replies = 0;  ///< replies these commands produce (one per command)
  /// How long the server may hold the reply on purpose: a blocking command's wait. Stall
  /// detection allows it while the request is the oldest; a long timeout alone does not.
  Duration server_wait{};
  /// When > 0 and shorter than the call's timeout: how long the request may wait unwritten
  /// while its connection has no link. Past it, it fails with not_connected (it did not run)
  /// so that the caller can route it elsewhere; once written, the whole timeout applies.
  Duration send_within{};
  /// A command of the backend's own whose reply is not a user value (a slot map, a SCAN
  /// page): its reply is bounded by ReaderLimits::control() (at least the default limits),
  /// so a small max_reply_bytes chosen for values does not break discovery or walks.
  bool control = false;

  /// Appends one command. Throws std::invalid_argument for an empty command.
  template <CommandArg... A>
  void add(const A&... args) {
    static_assert(sizeof...(A) > 0, "a command needs at least its name");
    std::array<char, 24 * sizeof...(A)> numbers;  // room for every integer argument
    std::size_t used = 0;
    std::array<std::string_view, sizeof...(A)> argv{as_view(args, numbers, used)...};
    add_argv(argv);
  }

  /// Appends one command given as its arguments (the first is the command name).
  void add_argv(std::span<const std::string_view> argv) {
    if (argv.empty()) throw std::invalid_argument("corocache: a Redis command needs at least its name");
    // RESP encoding, byte for byte what hiredis' redisFormatCommandArgv produces (the unit
    // tests compare both). Written here directly into `bytes`: hiredis 0.14's formatter
    // goes through sprintf per argument plus a malloc/free per command, which cost ~20% of
    // the client's CPU in a pipelined GET loop.
    std::size_t size = 1 + digits(argv.size()) + 2;
    for (const auto& a : argv) size += 1 + digits(a.size()) + 2 + a.size() + 2;
    const std::size_t start = bytes.size();
    bytes.resize(start + size);
    char* out = bytes.data() + start;
    out = put_header(out, '*', argv.size());
    for (const auto& a : argv) {
      out = put_header(out, '$', a.size());
      if (!a.empty()) std::memcpy(out, a.data(), a.size());
      out += a.size();
      *out++ = '\r';
      *out++ = '\n';
    }
    ++replies;
  }

  /// Appends another request's commands.
  void append(const Request& other) {
    bytes += other.bytes;
    replies += other.replies;
  }

  bool empty() const noexcept { return replies == 0; }

 private:
  // Lengths in a cache's commands are mostly below 100: those take no division.
  static std::size_t digits(std::size_t v) noexcept {
    if (v < 10) return 1;
    if (v < 100) return 2;
    std::size_t n = 3;
    for (v /= 1000; v != 0; v /= 10) ++n;
    return n;
  }
  // Writes "<type><n>\r\n" (room for it was reserved); returns the end.
  static char* put_header(char* out, char type, std::size_t n) noexcept {
    *out++ = type;
    if (n < 10) {
      *out++ = static_cast<char>('0' + n);
    } else if (n < 100) {
      *out++ = static_cast<char>('0' + n / 10);
      *out++ = static_cast<char>('0' + n % 10);
    } else {
      out = std::to_chars(out, out + 20, n).ptr;
    }
    *out++ = '\r';
    *out++ = '\n';
    return out;
  }

  template <class T, std::size_t N>
  static std::string_view as_view(const T& v, std::array<char, N>& numbers, std::size_t& used) {
    if constexpr (std::convertible_to<const T&, std::string_view>) {
      return std::string_view(v);
    } else {
      char* begin = numbers.data() + used;
      const auto res = std::to_chars(begin, begin + 24, v);
      used += static_cast<std::size_t>(res.ptr - begin);
      return std::string_view(begin, static_cast<std::size_t>(res.ptr - begin));
    }
  }
};

}  // namespace corocache::detail::redis
