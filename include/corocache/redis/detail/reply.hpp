#pragma once
// A decoded RESP2 reply, owned (no pointers into any buffer).

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace corocache::detail::redis {

enum class ReplyType { nil, string, integer, status, error, array };

struct Reply {
  ReplyType type = ReplyType::nil;
  std::string str;              ///< string / status / error text
  long long integer = 0;        ///< integer
  std::vector<Reply> elements;  ///< array

  bool is_nil() const noexcept { return type == ReplyType::nil; }
  bool is_error() const noexcept { return type == ReplyType::error; }
  bool is_string() const noexcept { return type == ReplyType::string; }
  bool is_integer() const noexcept { return type == ReplyType::integer; }
  bool is_status() const noexcept { return type == ReplyType::status; }
  bool is_array() const noexcept { return type == ReplyType::array; }
  /// An error reply whose text starts with `prefix` (e.g. "NOSCRIPT", "WRONGTYPE").
  bool is_error(std::string_view prefix) const noexcept {
    return type == ReplyType::error && std::string_view(str).starts_with(prefix);
  }
  /// A status reply equal to `text` (e.g. "OK").
  bool is_status(std::string_view text) const noexcept { return type == ReplyType::status && str == text; }

  static Reply make_nil() { return {}; }
  static Reply make_string(std::string s) { return {ReplyType::string, std::move(s), 0, {}}; }
  static Reply make_status(std::string s) { return {ReplyType::status, std::move(s), 0, {}}; }
  static Reply make_error(std::string s) { return {ReplyType::error, std::move(s), 0, {}}; }
  static Reply make_integer(long long v) { return {ReplyType::integer, {}, v, {}}; }
  static Reply make_array(std::vector<Reply> e) { return {ReplyType::array, {}, 0, std::move(e)}; }

  friend bool operator==(const Reply&, const Reply&) = default;

  /// Debug text, e.g. `["a", nil, 7, +OK, -ERR x]` (strings quoted, not escaped).
  friend std::ostream& operator<<(std::ostream& os, const Reply& r) {
    switch (r.type) {
      case ReplyType::nil: return os << "nil";
      case ReplyType::string: return os << '"' << r.str << '"';
      case ReplyType::integer: return os << r.integer;
      case ReplyType::status: return os << '+' << r.str;
      case ReplyType::error: return os << '-' << r.str;
      case ReplyType::array:
        os << '[';
        for (std::size_t i = 0; i < r.elements.size(); ++i) os << (i ? ", " : "") << r.elements[i];
        return os << ']';
    }
    return os;
  }
};

}  // namespace corocache::detail::redis
