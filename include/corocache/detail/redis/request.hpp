#pragma once
// An encoded request: one or more commands in RESP, plus how many replies they produce.
// Built synchronously by the caller (so it owns its bytes):
//   Request r;
//   r.add("SET", key, value, "PX", ttl_ms);   // string_view-convertibles and integers
// Commands are encoded by hiredis' formatter (redisFormatCommandArgv).

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace corocache::detail::redis {

/// A command argument: anything convertible to std::string_view, or an integer (written in
/// decimal). bool and char are rejected on purpose (ambiguous).
template <class T>
concept CommandArg = std::convertible_to<const T&, std::string_view> ||
                     (std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>);

struct Request {
  std::string bytes;        ///< RESP-encoded commands, in order
  std::size_t replies = 0;  ///< replies these commands produce (one per command)

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
    constexpr std::size_t small = 16;
    const char* ptr_small[small];
    std::size_t len_small[small];
    std::vector<const char*> ptr_big;
    std::vector<std::size_t> len_big;
    const char** ptrs = ptr_small;
    std::size_t* lens = len_small;
    if (argv.size() > small) {
      ptr_big.resize(argv.size());
      len_big.resize(argv.size());
      ptrs = ptr_big.data();
      lens = len_big.data();
    }
    for (std::size_t i = 0; i < argv.size(); ++i) {
      ptrs[i] = argv[i].data() ? argv[i].data() : "";
      lens[i] = argv[i].size();
    }
    char* encoded = nullptr;
    const int n = redisFormatCommandArgv(&encoded, static_cast<int>(argv.size()), ptrs, lens);
    if (n < 0 || encoded == nullptr) throw std::bad_alloc();
    bytes.append(encoded, static_cast<std::size_t>(n));
    redisFreeCommand(encoded);
    ++replies;
  }

  /// Appends another request's commands.
  void append(const Request& other) {
    bytes += other.bytes;
    replies += other.replies;
  }

  bool empty() const noexcept { return replies == 0; }

 private:
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
