#pragma once
// The one way corocache turns a nlohmann::json into text: compact, UTF-8 as is, and strict
// (invalid UTF-8 is an error, never replaced, so two different values never print alike).
// NaN and infinities are errors too: nlohmann prints them as `null`, which would store a
// value that never decodes back to its type.

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corocache::detail {

/// True if `j` holds a NaN or an infinity anywhere.
inline bool has_non_finite(const nlohmann::json& j) {
  if (j.is_number_float()) return !std::isfinite(j.get<double>());
  if (j.is_structured())
    for (const auto& element : j)
      if (has_non_finite(element)) return true;
  return false;
}

/// Compact JSON text of `j`; throws std::invalid_argument naming `what` if it cannot be
/// encoded (invalid UTF-8, NaN or an infinity).
inline std::string dump_strict(const nlohmann::json& j, std::string_view what) {
  if (has_non_finite(j))
    throw std::invalid_argument("corocache: cannot encode " + std::string(what) +
                                " as JSON: NaN and infinities have no JSON form");
  try {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("corocache: cannot encode " + std::string(what) + " as JSON: " + e.what());
  }
}

}  // namespace corocache::detail
