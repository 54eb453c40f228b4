#pragma once
// RedisBackend's scripted value operations (hashed stores and reads, erase, expire, index
// listing and removal, erase_if's conditional delete, batches), each over run_declaring: a
// script that needs keys it was not given (a value's indices, an index's members) answers
// with a retry marker and runs again with them declared (docs/redis_scripts.md). The script
// is a parameter so that tests can run instrumented copies of the texts.

#include <corocache/backend.hpp>
#include <corocache/redis/detail/budget.hpp>
#include <corocache/redis/detail/commands.hpp>
#include <corocache/redis/detail/connection.hpp>
#include <corocache/redis/detail/reply.hpp>
#include <corocache/redis/detail/request.hpp>
#include <corocache/redis/detail/script_runner.hpp>
#include <corocache/redis/detail/scripts.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

/// A script whose KEYS are `first` and then the learned keys, followed by `args`.
template <class Target, class... Args>
asio::awaitable<Reply> run_declaring_on(Target& conn, const Script& script, Deadline deadline,
                                        std::string_view first, Args... args) {
  return run_declaring(conn, script, deadline,
                       [first, args...](Request& r, std::string_view verb, std::string_view id,
                                        std::span<const std::string> learned) {
                         const Decimal numkeys(static_cast<long long>(learned.size() + 1));
                         std::vector<std::string_view> argv;
                         argv.reserve(learned.size() + 4 + sizeof...(Args));
                         argv.insert(argv.end(), {verb, id, numkeys.view(), first});
                         argv.insert(argv.end(), learned.begin(), learned.end());
                         (argv.emplace_back(std::string_view(args)), ...);
                         r.add_argv(argv);
                       });
}

/// A value with indices or max_reads (scripts::store_hash). True if stored. `on_cluster`:
/// a plain value turned into a hash waits out a migration of its slot (migration_probe_key).
template <class Target>
asio::awaitable<bool> store_hashed(Target& conn, const Script& script, const std::string& key,
                                   const std::string& value, const StoreParams& params, Deadline deadline,
                                   bool on_cluster = false) {
  const std::string probe = on_cluster ? migration_probe_key(key) : std::string();
  const Reply reply = co_await run_declaring(
      conn, script, deadline,
      [&](Request& r, std::string_view verb, std::string_view id, std::span<const std::string> learned) {
        add_store_script(r, verb, id, key, value, params, learned, probe);
      });
  if (!reply.is_integer()) throw_unexpected("the store script");
  co_return reply.integer == 1;
}

/// A value GET could not read (scripts::read_hash).
template <class Target>
asio::awaitable<std::optional<std::string>> read_hashed(Target& conn, const Script& script,
                                                        const std::string& key, Deadline deadline) {
  Reply reply = co_await run_declaring_on(conn, script, deadline, key);
  if (reply.is_string()) co_return std::optional<std::string>(std::move(reply.str));
  if (reply.is_nil()) co_return std::nullopt;
  throw_unexpected("the read script");
}

/// scripts::erase: true if the value existed.
template <class Target>
asio::awaitable<bool> erase_value(Target& conn, const Script& script, const std::string& key,
                                  Deadline deadline) {
  const Reply reply = co_await run_declaring_on(conn, script, deadline, key);
  if (!reply.is_integer()) throw_unexpected("the erase script");
  co_return reply.integer > 0;
}

/// scripts::expire: true if the value exists.
template <class Target>
asio::awaitable<bool> expire_value(Target& conn, const Script& script, const std::string& key, Duration ttl,
                                   Deadline deadline) {
  const Decimal ms(px(ttl));
  const std::string_view ms_view = ms.view();
  const Reply reply = co_await run_declaring_on(conn, script, deadline, key, ms_view);
  if (!reply.is_integer()) throw_unexpected("the expire script");
  co_return reply.integer == 1;
}

/// scripts::index_members: the live members of an index.
template <class Target>
asio::awaitable<std::vector<std::string>> list_index(Target& conn, const Script& script,
                                                     const std::string& index_key, Deadline deadline) {
  Reply reply = co_await run_declaring_on(conn, script, deadline, index_key);
  if (!reply.is_array()) throw_unexpected("the index listing script");
  std::vector<std::string> keys;
  keys.reserve(reply.elements.size());
  for (auto& e : reply.elements) {
    if (!e.is_string()) throw_unexpected("the index listing script");
    keys.push_back(std::move(e.str));
  }
  co_return keys;
}

/// scripts::erase_index: how many values went.
template <class Target>
asio::awaitable<std::size_t> erase_index_values(Target& conn, const Script& script,
                                                const std::string& index_key, Deadline deadline) {
  const Reply reply = co_await run_declaring_on(conn, script, deadline, index_key);
  if (!reply.is_integer() || reply.integer < 0) throw_unexpected("the index erase script");
  co_return static_cast<std::size_t>(reply.integer);
}

/// scripts::erase_if_same: deletes each of `keys` still holding its `values` entry; how
/// many went.
template <class Target>
asio::awaitable<std::size_t> erase_if_unchanged(Target& conn, const Script& script,
                                                const std::vector<std::string_view>& keys,
                                                const std::vector<std::string_view>& values,
                                                Deadline deadline) {
  const Reply reply = co_await run_declaring(
      conn, script, deadline,
      [&](Request& r, std::string_view verb, std::string_view id, std::span<const std::string> learned) {
        const Decimal numkeys(static_cast<long long>(keys.size() + learned.size()));
        std::vector<std::string_view> argv;
        argv.reserve(keys.size() + learned.size() + values.size() + 3);
        argv.insert(argv.end(), {verb, id, numkeys.view()});
        argv.insert(argv.end(), keys.begin(), keys.end());
        argv.insert(argv.end(), learned.begin(), learned.end());
        argv.insert(argv.end(), values.begin(), values.end());
        r.add_argv(argv);
      });
  if (!reply.is_integer() || reply.integer < 0) throw_unexpected("the erase_if script");
  co_return static_cast<std::size_t>(reply.integer);
}

/// scripts::batch over `ops` (not empty), atomically; `scanned`: the keys found under each
/// ErasePrefix's prefix, in order (add_batch_script). Throws server_error if an operation
/// failed (the others still applied).
template <class Target>
asio::awaitable<void> commit_batch(Target& conn, const Script& script, const std::vector<BatchOp>& ops,
                                   const std::vector<std::vector<std::string>>& scanned, Deadline deadline) {
  const Reply reply = co_await run_declaring(
      conn, script, deadline,
      [&](Request& r, std::string_view verb, std::string_view id, std::span<const std::string> learned) {
        add_batch_script(r, verb, id, ops, learned, scanned);
      });
  if (!reply.is_array() || reply.elements.size() != ops.size()) throw_unexpected("the batch script");
  for (const auto& e : reply.elements) throw_if_error(e);
}

}  // namespace corocache::detail::redis
