// corocache quickstart: every feature once, on the embedded memory backend, or on Redis
// when USE_REDIS=1 (REDIS_HOST, REDIS_PORT, ...) or REDIS_URL=redis://... is set.
//
// The application code (`tour`) is written once against Cache<Backend>; main() picks the
// backend. That is the pattern for your own code: unit-test it on MemoryBackend, ship it on
// RedisBackend.

#include <corocache/corocache.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <iostream>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Profile {
  std::string name;
  int visits = 0;
};
void to_json(nlohmann::json& j, const Profile& p) { j = {{"name", p.name}, {"visits", p.visits}}; }
void from_json(const nlohmann::json& j, Profile& p) {
  j.at("name").get_to(p.name);
  j.at("visits").get_to(p.visits);
}

template <class Backend>
asio::awaitable<void> tour(corocache::Cache<Backend>& cache) {
  auto acme = cache.tenant("acme");
  auto users = acme.ns("users");

  // Key/value with expiry, nx and indices. Options live in named variables: g++ 12 rejects
  // braced initializer lists inside a co_await expression.
  co_await users.set_key("u1", "Ada");
  corocache::SetOptions active{.expire = 10min, .indices = corocache::indices("active")};
  co_await users.set_key("u2", "Grace", active);
  corocache::SetOptions only_if_absent{.expire = 10s, .nx = true};
  const bool stored_again = co_await users.set_key("u1", "someone else", only_if_absent);
  const auto u1 = co_await users.get_key("u1");
  std::cout << "u1 = " << u1.value_or("<miss>") << " (nx overwrite stored: " << std::boolalpha << stored_again
            << ")\n";
  const auto listed = co_await users.list_keys_by_index("active");
  std::cout << "index 'active' lists " << listed.size()
            << " key(s): " << (listed.empty() ? "" : listed.front()) << "\n";
  co_await users.refresh_key("u2", 1h);

  // Typed values through nlohmann::json.
  corocache::SetOptions five_minutes{.expire = 5min};
  const Profile ada{"Ada", 3};
  co_await users.set("profile:7", ada, five_minutes);
  const auto profile =
      co_await users.get("profile:7", corocache::as<Profile>);  // template-friendly get<Profile>
  std::cout << "profile:7 = " << profile->name << ", " << profile->visits << " visits\n";

  // A one-time token: gone after its first read.
  corocache::SetOptions once{.expire = 15min, .max_reads = 1};
  co_await users.set_key("reset-token", "t0k3n", once);
  const auto first_read = co_await users.get_key("reset-token");
  const auto second_read = co_await users.get_key("reset-token");
  std::cout << "one-time token: first read " << first_read.value_or("<miss>") << ", second read "
            << second_read.value_or("<miss>") << "\n";

  // FIFO queue.
  co_await acme.push_to_queue("emails", "msg-1");
  co_await acme.push_to_queue("emails", "msg-2");
  const auto message = co_await acme.pop_from_queue("emails");
  std::cout << "popped " << message.value_or("<empty>") << "\n";

  // Distributed lock: the acquisition carries its own owner token.
  auto lock = co_await acme.attempt_distributed_lock("nightly-job", 30s);
  const auto contender = co_await acme.attempt_distributed_lock("nightly-job", 30s);
  std::cout << "lock taken: " << lock.has_value() << ", second attempt: " << contender.has_value() << "\n";
  if (lock) {
    const bool released = co_await acme.release_distributed_lock(*lock);
    std::cout << "released: " << released << "\n";
  }

  // Memoized async function: runs once per (scope, arguments).
  int runs = 0;
  auto price = cache.func_cache("price",
                                [&runs](std::string sku, int qty) -> asio::awaitable<double> {
                                  ++runs;
                                  co_return 9.99 * qty + static_cast<double>(sku.size());
                                },
                                {.expire = 2min});
  const double p1 = co_await price(acme, "sku-1", 3);
  const double p2 = co_await price(acme, "sku-1", 3);
  std::cout << "price " << p1 << " / " << p2 << ", function ran " << runs << " time(s)\n";
  co_await price.cache_clear(acme);

  // Batch: applied together on commit (e.g. after your database transaction commits).
  auto batch = users.batch();
  batch.set_key("u3", "Linus").delete_key("u1");
  co_await batch.commit();

  // Invalidation.
  const auto by_prefix = co_await users.invalidate_prefix("profile:");
  const auto by_predicate =
      co_await users.invalidate_if([](std::string_view name, std::string_view) { return name == "u3"; });
  std::cout << "invalidated " << by_prefix << " by prefix, " << by_predicate << " by predicate\n";

  // The global (master) tenant is shared by everyone and isolated from each tenant.
  co_await cache.global().set_key("feature-flags", R"({"beta":true})");
  co_await users.flush();
  co_await cache.flush_all();
  std::cout << "done\n";
}

template <class Backend>
int run(asio::io_context& io, Backend backend) {
  corocache::Cache<Backend> cache{std::move(backend), {.prefix = "quickstart"}};
  int status = 0;
  asio::co_spawn(io, tour(cache), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        std::cerr << "quickstart failed: " << error.what() << "\n";
        status = 1;
      }
    }
    io.stop();  // the backends keep background work (sweeps, reconnects) scheduled
  });
  io.run();
  return status;
}

int main() {
  asio::io_context io;
  if (corocache::RedisOptions::enabled_in_env()) {
    const auto options = corocache::RedisOptions::from_env();
    std::cout << "backend: redis " << options << "\n";  // the password is masked
    return run(io, corocache::RedisBackend{io.get_executor(), options});
  }
  std::cout << "backend: memory\n";
  return run(io, corocache::MemoryBackend{io.get_executor(), {.max_entries = 100'000}});
}
