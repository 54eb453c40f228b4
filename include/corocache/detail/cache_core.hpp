#pragma once
// What a Cache and all its scopes, batches and memoized functions share: the backend and
// the validated options, and the memoized-function clears made in this process. Held by shared_ptr so a Scope
// stays usable while any copy lives.

#include <corocache/backend.hpp>
#include <corocache/detail/memo_clears.hpp>
#include <corocache/options.hpp>

#include <utility>

namespace corocache::detail {

template <Backend B>
struct CacheCore {
  CacheCore(B b, CacheOptions o) : backend(std::move(b)), options(std::move(o)) {}
  B backend;
  const CacheOptions options;
  MemoClears memo_clears;  // func_cache: the clears seen in this process
};

}  // namespace corocache::detail
