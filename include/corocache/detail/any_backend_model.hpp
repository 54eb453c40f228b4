#pragma once
// The erased interface behind AnyBackend: one virtual function per Backend operation.
// Each override returns the concrete backend's own awaitable (every backend returns
// asio::awaitable<T>), so an erased call costs one virtual call and no coroutine frame of
// its own. The model lives on the heap: awaitables that refer to the concrete backend stay
// valid when the AnyBackend that owns it is moved.

#include <corocache/backend.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

namespace corocache::detail::any {

class Concept {
 public:
  virtual ~Concept() = default;

  virtual asio::awaitable<bool> set(std::string&& key, std::string&& value, StoreParams&& params,
                                    Deadline deadline) = 0;
  virtual asio::awaitable<std::optional<std::string>> get(std::string&& key, Deadline deadline) = 0;
  virtual asio::awaitable<bool> erase(std::string&& key, Deadline deadline) = 0;
  virtual asio::awaitable<bool> expire(std::string&& key, Duration ttl, Deadline deadline) = 0;
  virtual asio::awaitable<std::vector<std::string>> index_members(std::string&& index_key,
                                                                  Deadline deadline) = 0;
  virtual asio::awaitable<std::size_t> erase_index(std::string&& index_key, Deadline deadline) = 0;
  virtual asio::awaitable<void> push(std::string&& queue_key, std::string&& value, Deadline deadline) = 0;
  virtual asio::awaitable<std::optional<std::string>> pop(std::string&& queue_key, Duration wait,
                                                          Deadline deadline) = 0;
  virtual asio::awaitable<bool> try_lock(std::string&& lock_key, std::string&& token, Duration ttl,
                                         Deadline deadline) = 0;
  virtual asio::awaitable<bool> unlock(std::string&& lock_key, std::string&& token, Deadline deadline) = 0;
  virtual asio::awaitable<std::size_t> erase_prefix(std::string&& prefix, Deadline deadline) = 0;
  virtual asio::awaitable<std::size_t> erase_if(std::string&& prefix, EntryPredicate&& predicate,
                                                std::int64_t limit, Deadline deadline) = 0;
  virtual asio::awaitable<void> commit(std::vector<BatchOp>&& ops, Deadline deadline) = 0;

  /// Calls the concrete backend's close() if it has one.
  virtual void close() noexcept = 0;
  virtual const std::type_info& type() const noexcept = 0;
  virtual void* target() noexcept = 0;
};

template <Backend B>
class Model final : public Concept {
 public:
  explicit Model(B&& b) : backend_(std::move(b)) {}

  asio::awaitable<bool> set(std::string&& key, std::string&& value, StoreParams&& params,
                            Deadline deadline) override {
    return backend_.set(std::move(key), std::move(value), std::move(params), deadline);
  }
  asio::awaitable<std::optional<std::string>> get(std::string&& key, Deadline deadline) override {
    return backend_.get(std::move(key), deadline);
  }
  asio::awaitable<bool> erase(std::string&& key, Deadline deadline) override {
    return backend_.erase(std::move(key), deadline);
  }
  asio::awaitable<bool> expire(std::string&& key, Duration ttl, Deadline deadline) override {
    return backend_.expire(std::move(key), ttl, deadline);
  }
  asio::awaitable<std::vector<std::string>> index_members(std::string&& index_key,
                                                          Deadline deadline) override {
    return backend_.index_members(std::move(index_key), deadline);
  }
  asio::awaitable<std::size_t> erase_index(std::string&& index_key, Deadline deadline) override {
    return backend_.erase_index(std::move(index_key), deadline);
  }
  asio::awaitable<void> push(std::string&& queue_key, std::string&& value, Deadline deadline) override {
    return backend_.push(std::move(queue_key), std::move(value), deadline);
  }
  asio::awaitable<std::optional<std::string>> pop(std::string&& queue_key, Duration wait,
                                                  Deadline deadline) override {
    return backend_.pop(std::move(queue_key), wait, deadline);
  }
  asio::awaitable<bool> try_lock(std::string&& lock_key, std::string&& token, Duration ttl,
                                 Deadline deadline) override {
    return backend_.try_lock(std::move(lock_key), std::move(token), ttl, deadline);
  }
  asio::awaitable<bool> unlock(std::string&& lock_key, std::string&& token, Deadline deadline) override {
    return backend_.unlock(std::move(lock_key), std::move(token), deadline);
  }
  asio::awaitable<std::size_t> erase_prefix(std::string&& prefix, Deadline deadline) override {
    return backend_.erase_prefix(std::move(prefix), deadline);
  }
  asio::awaitable<std::size_t> erase_if(std::string&& prefix, EntryPredicate&& predicate, std::int64_t limit,
                                        Deadline deadline) override {
    return backend_.erase_if(std::move(prefix), std::move(predicate), limit, deadline);
  }
  asio::awaitable<void> commit(std::vector<BatchOp>&& ops, Deadline deadline) override {
    return backend_.commit(std::move(ops), deadline);
  }

  void close() noexcept override {
    if constexpr (requires(B & b) { b.close(); }) backend_.close();
  }
  const std::type_info& type() const noexcept override { return typeid(B); }
  void* target() noexcept override { return &backend_; }

 private:
  B backend_;
};

}  // namespace corocache::detail::any
