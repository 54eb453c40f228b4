#pragma once
// Typed values and memoized-function arguments go through nlohmann::json.
//
// Canonical encoding (the func_cache key depends on it, so it must never change): the
// arguments form one JSON array, serialized by nlohmann::json::dump() with no indentation,
// UTF-8 left as is (ensure_ascii = false), object keys in byte order (nlohmann's default
// std::map), numbers in nlohmann's shortest round-trip form. Strings that are not valid
// UTF-8 are rejected rather than replaced, so two different arguments never encode alike.

#include <corocache/errors.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <typeinfo>

namespace corocache::detail {

inline std::string dump_strict(const nlohmann::json& j, std::string_view what) {
  try {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("corocache: cannot encode " + std::string(what) + " as JSON: " + e.what());
  }
}

/// The JSON text of `value`; throws std::invalid_argument if it cannot be encoded.
template <class T>
std::string encode_json(const T& value) {
  return dump_strict(nlohmann::json(value), "value");
}

/// Decodes JSON text into T; throws decode_error (a std::invalid_argument) on failure.
template <class T>
T decode_json(std::string_view text) {
  try {
    return nlohmann::json::parse(text).template get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw decode_error(std::string("corocache: stored value does not decode as the requested type (") +
                       typeid(T).name() + "): " + e.what());
  }
}

/// The canonical JSON array of `args` (see the header comment).
template <class... Args>
std::string canonical_arguments(const Args&... args) {
  nlohmann::json array = nlohmann::json::array();
  (array.push_back(nlohmann::json(args)), ...);
  return dump_strict(array, "func_cache arguments");
}

}  // namespace corocache::detail
