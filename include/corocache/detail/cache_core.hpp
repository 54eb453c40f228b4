#pragma once
// What a Cache and all its scopes, batches and memoized functions share: the backend and
// the validated options. Held by shared_ptr so a Scope stays usable while any copy lives.

#include <corocache/backend.hpp>
#include <corocache/options.hpp>

#include <utility>

namespace corocache::detail {

template <Backend B>
struct CacheCore {
  CacheCore(B b, CacheOptions o) : backend(std::move(b)), options(std::move(o)) {}
  B backend;
  const CacheOptions options;
};

}  // namespace corocache::detail
