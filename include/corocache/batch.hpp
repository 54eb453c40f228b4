#pragma once
// Batch: operations queued on a scope and applied together by commit(): on Redis in one
// atomic script (docs/redis_scripts.md), in memory all at once. A batch holds stores,
// deletes, refreshes, pushes, index invalidations and memoized-function clears. A batch
// dropped without commit applies nothing, which makes it a post-commit hook for a database
// transaction: queue the cache changes while the transaction runs, commit the batch only
// after the database commit.

#include <corocache/backend.hpp>
#include <corocache/detail/cache_core.hpp>
#include <corocache/detail/clear_token.hpp>
#include <corocache/detail/json_codec.hpp>
#include <corocache/detail/keys.hpp>
#include <corocache/detail/store_params.hpp>
#include <corocache/options.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache {

template <Backend B, class Fn>
class FuncCache;

template <Backend B>
class Batch {
 public:
  /// Queues set_key; arguments are validated now (bad input throws here, not in commit).
  Batch& set_key(std::string_view name, std::string value, const SetOptions& options = {}) {
    ops_.emplace_back(batch_op::Store{detail::make_key(base_, detail::Kind::value, name), std::move(value),
                                      detail::store_params(base_, options)});
    return *this;
  }
  /// Queues a typed set (the value is encoded as JSON now).
  template <class T>
  Batch& set(std::string_view name, const T& value, const SetOptions& options = {}) {
    return set_key(name, detail::encode_json(value), options);
  }
  Batch& delete_key(std::string_view name) {
    ops_.emplace_back(batch_op::Erase{detail::make_key(base_, detail::Kind::value, name)});
    return *this;
  }
  Batch& refresh_key(std::string_view name, Duration expire) {
    detail::validate_expiry("expire", expire);
    ops_.emplace_back(batch_op::Expire{detail::make_key(base_, detail::Kind::value, name), expire});
    return *this;
  }
  Batch& push_to_queue(std::string_view queue, std::string value) {
    ops_.emplace_back(batch_op::Push{detail::make_key(base_, detail::Kind::queue, queue), std::move(value)});
    return *this;
  }
  /// Queues Scope::invalidate_index: the live values `index` (any bytes) lists, and the index.
  Batch& invalidate_index(std::string_view index) {
    ops_.emplace_back(batch_op::EraseIndex{detail::make_index_key(base_, index)});
    return *this;
  }
  /// Queues FuncCache::cache_clear: every memoized result of `fn` in this batch's scope. On
  /// Redis this one scans the whole database inside the transaction (README, Batches).
  template <class Fn>
  Batch& cache_clear(const FuncCache<B, Fn>& fn) {
    return cache_clear(std::string_view(fn.name()));
  }
  /// The same, for the function given to Cache::func_cache under `function_name`. Throws
  /// invalid_name for a name func_cache would refuse.
  /// As FuncCache::cache_clear, a computation of the function running when commit() is
  /// awaited does not cache its result.
  Batch& cache_clear(std::string_view function_name) {
    detail::validate_segment("func_cache name", function_name);
    ops_.emplace_back(batch_op::ErasePrefix{detail::memo_prefix(base_, function_name)});
    cleared_.emplace_back(function_name);
    return *this;
  }

  /// How many operations are queued.
  std::size_t size() const noexcept { return ops_.size(); }
  /// Drops every queued operation (what a rolled-back transaction does).
  void discard() noexcept {
    ops_.clear();
    cleared_.clear();
  }

  /// Applies the queued operations together, in order, and empties the batch, within the
  /// deadline of the scope that made the batch (Scope::with_timeout), counted from now.
  /// Completes when the backend has applied them; throws the backend's system_error if it
  /// could not (on Redis a transport failure may leave it unknown whether EXEC ran). A batch
  /// with cache_clear first marks each clear (generation, token: clear_token.hpp) outside
  /// the batch, one round trip each; a failure there fails commit() with nothing of the
  /// batch applied, and the marks already made stay.
  asio::awaitable<void> commit() {
    std::vector<BatchOp> ops = std::exchange(ops_, {});
    if (ops.empty()) return nothing();
    const Deadline deadline = timeout_ == Duration::zero() ? Deadline{} : Deadline::after(timeout_);
    auto applied = core_->backend.commit(std::move(ops), deadline);
    if (cleared_.empty()) return applied;
    return clear_then(core_, base_, std::exchange(cleared_, {}), std::move(applied), deadline);
  }

 private:
  template <Backend>
  friend class Scope;
  Batch(std::shared_ptr<detail::CacheCore<B>> core, std::string base, Duration timeout)
      : core_(std::move(core)), base_(std::move(base)), timeout_(timeout) {}
  static asio::awaitable<void> nothing() { co_return; }
  /// Marks the batch's func_cache clears (clear_token.hpp), then applies it: the tokens
  /// change before the batch looks for the results to erase, as in FuncCache::cache_clear.
  static asio::awaitable<void> clear_then(std::shared_ptr<detail::CacheCore<B>> core, std::string base,
                                          std::vector<std::string> functions, asio::awaitable<void> applied,
                                          Deadline deadline) {
    for (std::string& function : functions)
      co_await detail::mark_clear(core, base, std::move(function), deadline);
    co_await std::move(applied);
  }

  std::shared_ptr<detail::CacheCore<B>> core_;
  std::string base_;
  Duration timeout_;  // the scope's with_timeout (zero: the backend's default)
  std::vector<BatchOp> ops_;
  std::vector<std::string> cleared_;  // the functions of its cache_clear ops
};

}  // namespace corocache
