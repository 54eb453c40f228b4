#pragma once
// Typed values and memoized-function results go through nlohmann::json; func_cache
// arguments have their own canonical encoding (memo_key.hpp, included here).
//
// Decoding a bool, an integer, a float/double or a std::string first tries a direct parse
// of the plain forms encode_json writes (no json tree); any other text, and every other
// type, goes through nlohmann::json::parse and then from_json_strict (json_strict.hpp: a
// number that T does not hold exactly, or within range for floating T, is a decode_error).
// The direct parse only accepts texts for which it gives exactly what the json path gives,
// so results and errors are the same either way.

#include <corocache/detail/json_dump.hpp>
#include <corocache/detail/json_strict.hpp>
#include <corocache/detail/memo_key.hpp>
#include <corocache/errors.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <typeinfo>

namespace corocache::detail {

/// The JSON text of `value`; throws std::invalid_argument if it cannot be encoded.
template <class T>
std::string encode_json(const T& value) {
  return dump_strict(nlohmann::json(value), "value");
}

/// True when `text` is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
/// `integral` is set when it has neither fraction nor exponent.
inline bool is_json_number(std::string_view text, bool& integral) noexcept {
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto digits = [&] {
    const std::size_t from = i;
    while (i < n && text[i] >= '0' && text[i] <= '9') ++i;
    return i > from;
  };
  if (i < n && text[i] == '-') ++i;
  if (i < n && text[i] == '0')
    ++i;
  else if (!digits())
    return false;
  integral = true;
  if (i < n && text[i] == '.') {
    ++i;
    integral = false;
    if (!digits()) return false;
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    integral = false;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

/// The value of `text` when a direct parse surely agrees with the json path, else nullopt.
template <class T>
std::optional<T> decode_plain(std::string_view text) {
  if constexpr (std::is_same_v<T, bool>) {
    if (text == "true") return true;
    if (text == "false") return false;
  } else if constexpr (std::is_integral_v<T>) {
    bool integral = false;
    if (!is_json_number(text, integral) || !integral) return std::nullopt;
    // A value out of T's range ("300" as std::uint8_t, "-1" as unsigned) fails here and is
    // left to the json path, which refuses it with its reason.
    T v{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc{} && end == text.data() + text.size()) return v;
  } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
    bool integral = false;
    if (!is_json_number(text, integral)) return std::nullopt;
    if (integral) {
      // nlohmann reads these as 64-bit integers, then converts: do the same.
      if (text.starts_with('-')) {
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc{} && end == text.data() + text.size()) return static_cast<T>(v);
      } else {
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc{} && end == text.data() + text.size()) return static_cast<T>(v);
      }
      return std::nullopt;
    }
    double v = 0;  // nlohmann parses into double (strtod, correctly rounded), then converts
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v)) return std::nullopt;
    if constexpr (std::is_same_v<T, float>) {
      // Converting it would be undefined behaviour; the json path refuses it too.
      if (std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max()))
        strict_mismatch<T>("out of range");
    }
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    // Only strings with nothing to unescape: no backslash, quote or control byte inside.
    if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::nullopt;
    const std::string_view body = text.substr(1, text.size() - 2);
    for (const char c : body)
      if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') return std::nullopt;
    if (utf8_valid_prefix(body) != body.size()) return std::nullopt;
    return std::string(body);
  }
  return std::nullopt;
}

/// Decodes JSON text into T; throws decode_error (a std::invalid_argument) on failure.
template <class T>
T decode_json(std::string_view text) {
  if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
    if (auto plain = decode_plain<T>(text)) return std::move(*plain);
  }
  try {
    return from_json_strict<T>(nlohmann::json::parse(text));
  } catch (const nlohmann::json::exception& e) {
    throw decode_error(std::string("corocache: stored value does not decode as the requested type (") +
                       typeid(T).name() + "): " + e.what());
  }
}

}  // namespace corocache::detail
