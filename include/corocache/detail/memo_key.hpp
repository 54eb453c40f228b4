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

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace corocache::detail {

/// Length of the longest well-formed UTF-8 prefix of `s` (s.size() when all of it is).
inline std::size_t utf8_valid_prefix(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
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

/// Appends `s` as a JSON string the way nlohmann's dump escapes it.
inline void append_json_string(std::string& out, std::string_view s) {
  if (utf8_valid_prefix(s) != s.size())
    throw std::invalid_argument("corocache: cannot encode func_cache arguments as JSON: invalid UTF-8");
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
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
        out.append("u00");
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
inline void append_json_double(std::string& out, double x) {
  if (!std::isfinite(x)) reject_non_finite();
  char buffer[64];
  char* end = nlohmann::detail::to_chars(buffer, buffer + sizeof buffer, x);
  out.append(buffer, static_cast<std::size_t>(end - buffer));
}

/// Throws like reject_non_finite if `j` holds a NaN or infinity anywhere.
inline void check_finite(const nlohmann::json& j) {
  if (j.is_number_float()) {
    if (!std::isfinite(j.get<double>())) reject_non_finite();
  } else if (j.is_structured()) {
    for (const auto& element : j) check_finite(element);
  }
}

template <class T>
inline constexpr bool is_character_v =
    std::is_same_v<T, char> || std::is_same_v<T, signed char> || std::is_same_v<T, unsigned char> ||
    std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
    std::is_same_v<T, char32_t>;

/// Appends the canonical JSON of one argument.
template <class T>
void append_canonical(std::string& out, const T& value) {
  using U = std::remove_cvref_t<T>;
  if constexpr (std::is_same_v<U, bool>) {
    out.append(value ? "true" : "false");
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
    out.append("null");
  } else {
    const nlohmann::json j(value);
    check_finite(j);
    out.append(dump_strict(j, "func_cache arguments"));
  }
}

/// Appends the canonical JSON array of `args` to `out`.
template <class... Args>
void append_canonical_arguments(std::string& out, const Args&... args) {
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
  std::string out;
  out.reserve(64);
  append_canonical_arguments(out, args...);
  return out;
}

/// The same text built through a nlohmann::json tree (the reference the fast path is
/// tested against; NaN and infinities rejected alike).
template <class... Args>
std::string canonical_arguments_via_json(const Args&... args) {
  nlohmann::json array = nlohmann::json::array();
  (array.push_back(nlohmann::json(args)), ...);
  check_finite(array);
  return dump_strict(array, "func_cache arguments");
}

/// Canonical texts up to this many bytes are kept verbatim in the key; longer ones hashed.
inline constexpr std::size_t memo_verbatim_max = 64;

/// `<function>:=<canonical>` or `<function>:#<sha256 hex>` (see the top of this header).
template <class... Args>
std::string memo_name(std::string_view function, const Args&... args) {
  std::string out;
  out.reserve(function.size() + 2 + memo_verbatim_max);
  out.append(function).push_back(':');
  const std::size_t marker = out.size();
  out.push_back('=');
  append_canonical_arguments(out, args...);
  const std::size_t length = out.size() - marker - 1;
  if (length > memo_verbatim_max) {
    Sha256 hasher;
    hasher.update(std::string_view(out).substr(marker + 1));
    const auto digest = hasher.finish();
    out.resize(marker);
    out.push_back('#');
    append_hex(out, digest);
  }
  return out;
}

}  // namespace corocache::detail
