#pragma once
// SCAN MATCH patterns built from caller-supplied prefixes. Redis glob patterns give
// * ? [ ] and \ special meaning; a prefix holding them (key names may hold any bytes) must
// match only itself, never other keys, so every one of them is escaped with a backslash.

#include <string>
#include <string_view>

namespace corocache::detail::redis {

/// True for the bytes Redis's glob matcher treats specially.
constexpr bool is_glob_special(char c) noexcept {
  return c == '*' || c == '?' || c == '[' || c == ']' || c == '\\';
}

/// `text` with every glob-special byte preceded by '\', so the pattern matches it literally.
inline std::string escape_glob(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (is_glob_special(c)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

/// The SCAN MATCH pattern for "every key starting with `prefix`".
inline std::string prefix_match_pattern(std::string_view prefix) {
  std::string out = escape_glob(prefix);
  out.push_back('*');
  return out;
}

}  // namespace corocache::detail::redis
