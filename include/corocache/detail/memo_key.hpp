#pragma once
// The name a func_cache result is stored under (docs/func_cache_keys.md has the format and
// why it must never change):
//
//   <function name>:=<canonical arguments>        canonical text of at most 64 bytes
//   <function name>:#<sha256 hex of the canonical arguments>          longer ones
//
// The canonical text of the arguments is one JSON array,
// exactly as nlohmann::json::dump() prints it with no indentation, UTF-8 left as is
// (ensure_ascii = false), object keys in byte order, numbers in nlohmann's round-trip form.
//
// Strings, string views, C strings, bools, integers (not character types), float, double
// and nullptr are written directly (no json tree, no allocation beyond the output); every
// other argument goes through nlohmann::json. Both paths give the same text: unit tests
// compare them over many values. Strings that are not valid UTF-8 are rejected, and so are
// NaN and infinities anywhere in an argument (JSON has no text for them, and nlohmann would
// print all three as null, sharing one result): both throw std::invalid_argument.

#include <corocache/detail/json_dump.hpp>
#include <corocache/detail/sha256.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace corocache::detail {

/// Append-only text with 192 bytes inline, so the canonical text of ordinary arguments
/// costs no allocation (it is copied into the key name, or hashed, right after).
class TextBuffer {
 public:
  TextBuffer() noexcept : data_(inline_) {}
  TextBuffer(const TextBuffer&) = delete;
  TextBuffer& operator=(const TextBuffer&) = delete;

  void push_back(char c) {
    if (size_ == capacity_) grow(1);
    data_[size_++] = c;
  }
  void append(const char* s, std::size_t n) {
    if (n == 0) return;
    if (capacity_ - size_ < n) grow(n);
    std::memcpy(data_ + size_, s, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  std::string_view view() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

 private:
  [[gnu::noinline, gnu::cold]] void grow(std::size_t extra) {
    std::string bigger(std::max(capacity_ * 2, size_ + extra), '\0');
    std::memcpy(bigger.data(), data_, size_);
    heap_ = std::move(bigger);
    data_ = heap_.data();
    capacity_ = heap_.size();
  }

  char inline_[192];
  std::string heap_;
  char* data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = sizeof inline_;
};

/// Length of the longest well-formed UTF-8 prefix of `s` (s.size() when all of it is).
inline std::size_t utf8_valid_prefix(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII runs, 8 bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i == n) break;
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Unicode Table 3-7: the lead byte fixes the length and the range of the second byte.
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return n;
}

/// Bytes a JSON string must escape: control characters, quote and backslash.
inline constexpr auto json_escaped = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[static_cast<std::size_t>(c)] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}();

/// Appends `s` as a JSON string the way nlohmann's dump escapes it.
inline void append_json_string(TextBuffer& out, std::string_view s) {
  if (utf8_valid_prefix(s) != s.size())
    throw std::invalid_argument("corocache: cannot encode func_cache arguments as JSON: invalid UTF-8");
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!json_escaped[c]) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\t': out.push_back('t'); break;
      case '\n': out.push_back('n'); break;
      case '\f': out.push_back('f'); break;
      case '\r': out.push_back('r'); break;
      default:
        out.append("u00", 3);
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

[[noreturn]] inline void reject_non_finite() {
  throw std::invalid_argument(
      "corocache: func_cache arguments must not be NaN or infinite (JSON cannot encode them distinctly)");
}

/// Appends a finite double the way nlohmann's dump prints it (its own round-trip formatter).
inline void append_json_double(TextBuffer& out, double x) {
  if (!std::isfinite(x)) reject_non_finite();
  char buffer[64];
  char* end = nlohmann::detail::to_chars(buffer, buffer + sizeof buffer, x);
  out.append(buffer, static_cast<std::size_t>(end - buffer));
}

template <class T>
inline constexpr bool is_character_v =
    std::is_same_v<T, char> || std::is_same_v<T, signed char> || std::is_same_v<T, unsigned char> ||
    std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
    std::is_same_v<T, char32_t>;

/// Appends the canonical JSON of one argument.
template <class T>
void append_canonical(TextBuffer& out, const T& value) {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    out.append(value ? std::string_view("true") : std::string_view("false"));
  } else if constexpr (std::is_integral_v<U> && !is_character_v<U>) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, static_cast<std::size_t>(result.ptr - buffer));
  } else if constexpr (std::is_same_v<U, double> || std::is_same_v<U, float>) {
    append_json_double(out, static_cast<double>(value));
  } else if constexpr (std::is_same_v<U, std::string> || std::is_same_v<U, std::string_view>) {
    append_json_string(out, value);
  } else if constexpr (std::is_same_v<U, const char*> || std::is_same_v<U, char*> ||
                       (std::is_array_v<U> && std::is_same_v<std::remove_extent_t<U>, char>)) {
    if constexpr (!std::is_array_v<U>)
      if (value == nullptr)
        throw std::invalid_argument("corocache: a func_cache argument is a null char pointer");
    append_json_string(out, std::string_view(value));
  } else if constexpr (std::is_same_v<U, std::nullptr_t>) {
    out.append("null", 4);
  } else {
    out.append(dump_strict(nlohmann::json(value), "func_cache arguments"));  // rejects NaN, infinities
  }
}

/// Appends the canonical JSON array of `args` to `out`.
template <class... Args>
void append_canonical_arguments(TextBuffer& out, const Args&... args) {
  out.push_back('[');
  bool first = true;
  [[maybe_unused]] auto one = [&](const auto& arg) {
    if (!first) out.push_back(',');
    first = false;
    append_canonical(out, arg);
  };
  (one(args), ...);
  out.push_back(']');
}

/// The canonical JSON array of `args`.
template <class... Args>
std::string canonical_arguments(const Args&... args) {
  TextBuffer out;
  append_canonical_arguments(out, args...);
  return std::string(out.view());
}

/// The same text built through a nlohmann::json tree (the reference the fast path is
/// tested against; NaN and infinities rejected alike).
template <class... Args>
std::string canonical_arguments_via_json(const Args&... args) {
  nlohmann::json array = nlohmann::json::array();
  (array.push_back(nlohmann::json(args)), ...);
  return dump_strict(array, "func_cache arguments");
}

/// Canonical texts up to this many bytes are kept verbatim in the key; longer ones hashed.
inline constexpr std::size_t memo_verbatim_max = 64;

/// A memo name, held inline: function names are segments of at most 128 bytes
/// (keys.hpp), so `<function>:` plus a 65-byte argument part always fits and building one
/// allocates nothing. Converts to std::string_view.
class MemoName {
 public:
  std::string_view view() const noexcept {
    return on_heap_ ? std::string_view(heap_) : std::string_view(inline_, size_);
  }
  operator std::string_view() const noexcept { return view(); }
  std::string str() const { return std::string(view()); }
  std::size_t size() const noexcept { return view().size(); }
  friend bool operator==(const MemoName& a, std::string_view b) noexcept { return a.view() == b; }

  void append(std::string_view s) {
    if (!on_heap_ && s.size() <= sizeof inline_ - size_) {
      if (!s.empty()) std::memcpy(inline_ + size_, s.data(), s.size());
      size_ += s.size();
      return;
    }
    if (!on_heap_) heap_.assign(inline_, size_);  // only for names longer than keys allow
    on_heap_ = true;
    heap_.append(s);
  }

 private:
  char inline_[200];
  std::size_t size_ = 0;
  bool on_heap_ = false;
  std::string heap_;
};

/// `<function>:=<canonical>` or `<function>:#<sha256 hex>` (see the top of this header).
template <class... Args>
MemoName memo_name(std::string_view function, const Args&... args) {
  TextBuffer canonical;
  append_canonical_arguments(canonical, args...);
  const std::string_view text = canonical.view();
  MemoName out;
  out.append(function);
  if (text.size() <= memo_verbatim_max) {
    out.append(":=");
    out.append(text);
  } else {
    Sha256 hasher;
    hasher.update(text);
    std::string hex;
    hex.reserve(66);
    hex.append(":#");
    append_hex(hex, hasher.finish());
    out.append(hex);
  }
  return out;
}

}  // namespace corocache::detail
