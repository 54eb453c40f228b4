#pragma once
// The one way corocache turns a nlohmann::json into text: compact, UTF-8 as is, and strict
// (invalid UTF-8 is an error, never replaced, so two different values never print alike).

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace corocache::detail {

/// Compact JSON text of `j`; throws std::invalid_argument naming `what` if it cannot be encoded.
inline std::string dump_strict(const nlohmann::json& j, std::string_view what) {
  try {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("corocache: cannot encode " + std::string(what) + " as JSON: " + e.what());
  }
}

}  // namespace corocache::detail
