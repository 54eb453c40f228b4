// The smallest corocache program: what a user writes first. Exits 0 when a value stored in
// the memory backend reads back.

#include <corocache/corocache.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <exception>
#include <iostream>
#include <optional>
#include <string>

namespace asio = boost::asio;

int main() {
  asio::io_context io;
  corocache::Cache<corocache::MemoryBackend> cache{corocache::MemoryBackend{io.get_executor(), {}},
                                                   {.prefix = "consumer"}};
  std::optional<std::string> value;
  std::exception_ptr error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto scope = cache.tenant("acme").ns("users");
        co_await scope.set_key("u1", "payload");
        value = co_await scope.get_key("u1");
      },
      [&](std::exception_ptr e) {
        error = e;
        io.stop();  // the backend keeps background work scheduled
      });
  io.run();
  if (error) std::rethrow_exception(error);
  std::cout << "corocache consumer: u1 = " << value.value_or("<miss>") << "\n";
  return value == "payload" ? 0 : 1;
}
