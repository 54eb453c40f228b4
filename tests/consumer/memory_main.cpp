// A memory-only corocache program: links corocache::core alone and is built where hiredis
// cannot be found (tests/consumer/CMakeLists.txt, COROCACHE_CONSUMER_CORE_ONLY). Exits 0
// when values stored in the memory backend read back and the null backend misses.

#include <corocache/cache.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/null_backend.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <optional>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

int main() {
  asio::io_context io;
  corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{io.get_executor(), {}},
                                                   {.prefix = "consumer"}};
  corocache::Cache<corocache::NullBackend> off{corocache::NullBackend{}, {.prefix = "consumer"}};
  std::optional<std::string> value;
  std::optional<std::string> listed;
  std::optional<std::string> null_value;
  std::exception_ptr error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto scope = cache.tenant("acme").ns("users");
        co_await scope.set_key("u1", "payload", 10min);
        co_await scope.set_key("u2", "other", corocache::expire_in(10min).with_indices("active"));
        value = co_await scope.get_key("u1");
        const auto keys = co_await scope.list_keys_by_index("active");
        if (keys.size() == 1) listed = keys.front();
        auto null_scope = off.tenant("acme");
        co_await null_scope.set_key("u1", "payload");
        null_value = co_await null_scope.get_key("u1");
      },
      [&](std::exception_ptr e) {
        error = e;
        io.stop();  // the backend keeps background work scheduled
      });
  io.run();
  if (error) std::rethrow_exception(error);
  std::cout << "corocache memory-only consumer: u1 = " << value.value_or("<miss>") << ", index lists "
            << listed.value_or("<nothing>") << "\n";
  return value == "payload" && listed == "u2" && !null_value ? 0 : 1;
}
