#pragma once
// Validation of the facade's options, and their translation into backend StoreParams.
// Runs before any backend work, so bad input never reaches a server.

#include <corocache/backend.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/options.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corocache::detail {

/// Throws std::invalid_argument unless `d` > 0.
inline void validate_expiry(std::string_view what, Duration d) {
  if (d <= Duration::zero())
    throw std::invalid_argument("corocache: " + std::string(what) + " must be positive, got " +
                                std::to_string(d.count()) + " ms");
}

inline StoreParams store_params(std::string_view scope_base, const SetOptions& options) {
  validate_expiry("expire", options.expire);
  StoreParams params{options.expire, options.nx, options.max_reads, {}};
  if (!options.indices.empty()) {
    params.index_keys.reserve(options.indices.size());
    for (const auto& index : options.indices) {
      validate_segment("index name", index);
      params.index_keys.push_back(make_key(scope_base, Kind::index, index));
    }
    // Listing an index twice means nothing more than listing it once.
    std::sort(params.index_keys.begin(), params.index_keys.end());
    params.index_keys.erase(std::unique(params.index_keys.begin(), params.index_keys.end()),
                            params.index_keys.end());
  }
  return params;
}

}  // namespace corocache::detail
