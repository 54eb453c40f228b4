// How a GET's and a plain SET's reply become the caller's result (value_results.hpp),
// without a server: every reply type, a hashed value's follow-up read, and the caller's
// cancellation, whether it came before the reply was handed over or during the read.

#include <corocache/errors.hpp>
#include <corocache/redis/detail/value_results.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <string>

namespace redis_value_results_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using corocache::detail::redis::GetResult;
using corocache::detail::redis::PlainStoreResult;
using corocache::detail::redis::Reply;
using Value = std::optional<std::string>;

namespace {

/// What a finisher handed to the caller.
struct Seen {
  bool called = false;
  std::exception_ptr error;
  Value value;
  bool stored = false;
};

/// The error code of `error` (a system_error), or none.
boost::system::error_code code_of(const std::exception_ptr& error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    return e.code();
  } catch (...) {
  }
  return {};
}

/// A hashed value's read: counts its starts, then answers "hashed" after `wait`.
struct ReadStub {
  int* starts;
  std::chrono::milliseconds wait{0};
  asio::awaitable<Value> operator()() {
    ++*starts;
    return read(wait);
  }
  static asio::awaitable<Value> read(std::chrono::milliseconds wait) {
    asio::steady_timer timer(co_await asio::this_coro::executor, wait);
    co_await timer.async_wait(asio::use_awaitable);
    co_return Value("hashed");
  }
};

}  // namespace

TEST_CASE("a GET's reply becomes the value, nullopt or the error the caller gets", "[unit][redis]") {
  int starts = 0;
  GetResult<ReadStub> get{ReadStub{&starts}};
  Seen seen;
  auto handler = [&](std::exception_ptr e, Value v) { seen = Seen{true, e, std::move(v)}; };
  get(Reply::make_string("v"), handler, asio::cancellation_type::none);
  CHECK((seen.called && !seen.error && seen.value == Value("v")));
  get(Reply::make_nil(), handler, asio::cancellation_type::none);
  CHECK((seen.called && !seen.error && !seen.value));
  get(Reply::make_error("ERR boom"), handler, asio::cancellation_type::none);
  CHECK(code_of(seen.error) == corocache::errc::server_error);
  get(Reply::make_integer(3), handler, asio::cancellation_type::none);
  CHECK(code_of(seen.error) == corocache::errc::protocol_error);
  // A cancellation that came too late to take back the GET ends the call before the read:
  // a read-limited value keeps its read.
  seen = Seen{};
  get(Reply::make_error("WRONGTYPE Operation against a key holding the wrong kind of value"), handler,
      asio::cancellation_type::terminal);
  CHECK(seen.called);
  CHECK(code_of(seen.error) == asio::error::operation_aborted);
  CHECK(starts == 0);
}

TEST_CASE("a hashed value is read for the caller, on its executor, and the caller can cancel the read",
          "[unit][redis]") {
  asio::io_context io;
  int starts = 0;
  Seen seen;
  auto on_io = [&] {
    return asio::bind_executor(io, [&](std::exception_ptr e, Value v) {
      CHECK(io.get_executor().running_in_this_thread());
      seen = Seen{true, e, std::move(v)};
    });
  };
  const Reply wrongtype =
      Reply::make_error("WRONGTYPE Operation against a key holding the wrong kind of value");
  {
    GetResult<ReadStub> get{ReadStub{&starts, 10ms}};
    get(Reply(wrongtype), on_io(), asio::cancellation_type::none);
    CHECK_FALSE(seen.called);  // completes from the read, not inline
    io.run_for(5s);
    CHECK(seen.called);
    CHECK(!seen.error);
    CHECK(seen.value == Value("hashed"));
    CHECK(starts == 1);
  }
  // Terminal and total cancellation: whatever the caller's filter let through reaches the
  // read, as it did when the read ran in the caller's own coroutine.
  for (const auto type : {asio::cancellation_type::terminal, asio::cancellation_type::total}) {
    io.restart();
    seen = Seen{};
    GetResult<ReadStub> get{ReadStub{&starts, 10s}};
    asio::cancellation_signal signal;
    get(Reply(wrongtype), asio::bind_cancellation_slot(signal.slot(), on_io()),
        asio::cancellation_type::none);
    asio::steady_timer later(io, 20ms);
    later.async_wait([&](boost::system::error_code) { signal.emit(type); });
    const auto start = std::chrono::steady_clock::now();
    io.run_for(5s);
    CHECK(seen.called);
    CHECK(code_of(seen.error) == asio::error::operation_aborted);
    CHECK(std::chrono::steady_clock::now() - start < 4s);  // not the read's 10 s
  }
  CHECK(starts == 3);
}

TEST_CASE("a plain SET's reply: stored, not stored under NX, or the server's error", "[unit][redis]") {
  PlainStoreResult set;
  Seen seen;
  auto handler = [&](std::exception_ptr e, bool stored) {
    seen.called = true;
    seen.error = e;
    seen.stored = stored;
  };
  set(Reply::make_status("OK"), handler, asio::cancellation_type::none);
  CHECK((seen.called && !seen.error && seen.stored));
  set(Reply::make_nil(), handler, asio::cancellation_type::none);
  CHECK((!seen.error && !seen.stored));
  set(Reply::make_error("OOM command not allowed when used memory > 'maxmemory'."), handler,
      asio::cancellation_type::none);
  CHECK(code_of(seen.error) == corocache::errc::capacity_exceeded);  // as a full memory backend
  set(Reply::make_error("OOMX not the server's refusal"), handler, asio::cancellation_type::none);
  CHECK(code_of(seen.error) == corocache::errc::server_error);
}

}  // namespace redis_value_results_test
