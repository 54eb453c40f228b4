// EarliestDeadlineTimer, the connection's one timer for the deadlines of all its requests:
// it wakes once for the earliest deadline it was given, a later one costs nothing, an
// earlier one takes over, and a cancelled or superseded wait runs nothing. No server.

#include <corocache/redis/detail/earliest_deadline_timer.hpp>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

namespace redis_deadline_timer_test {

using namespace corocache;
using namespace corocache::detail::redis;
using namespace std::chrono_literals;
using Clock = EarliestDeadlineTimer::Clock;

namespace {

struct Fixture {
  boost::asio::io_context io;
  EarliestDeadlineTimer timer{io.get_executor()};
  std::vector<int> fired;  // which arm()'s callback ran, in order
  Clock::time_point start = Clock::now();

  void arm(Clock::duration after, int id) {
    timer.arm(start + after, [this, id] { fired.push_back(id); });
  }
};

}  // namespace

TEST_CASE("the deadline timer wakes once, for the earliest deadline it was given", "[unit][redis]") {
  Fixture f;
  f.arm(20ms, 1);
  f.arm(1h, 2);  // later: changes nothing
  f.arm(30ms, 3);
  f.io.run_for(200ms);
  CHECK(f.fired == std::vector<int>{1});
  CHECK(Clock::now() - f.start >= 20ms);
}

TEST_CASE("an earlier deadline supersedes the armed one, whose wait then runs nothing", "[unit][redis]") {
  Fixture f;
  f.arm(1h, 1);
  f.arm(10ms, 2);
  f.io.run_for(200ms);
  CHECK(f.fired == std::vector<int>{2});
}

TEST_CASE("after it fired, the deadline timer can be armed again, later than before", "[unit][redis]") {
  Fixture f;
  f.arm(5ms, 1);
  f.io.run_for(100ms);
  REQUIRE(f.fired == std::vector<int>{1});
  f.io.restart();
  f.arm(10ms, 2);  // later than the expired deadline: armed, since nothing waits now
  f.io.run_for(200ms);
  CHECK(f.fired == std::vector<int>{1, 2});
}

TEST_CASE("a cancelled deadline timer runs nothing, and time_point::max() arms nothing", "[unit][redis]") {
  Fixture f;
  f.arm(5ms, 1);
  f.timer.cancel();
  f.io.run_for(50ms);
  CHECK(f.fired.empty());

  f.io.restart();
  f.timer.arm(Clock::time_point::max(), [&] { f.fired.push_back(2); });
  // Nothing to wait for: run() finds no work (no handler ran) instead of blocking "forever".
  CHECK(f.io.run() == 0);
  CHECK(f.fired.empty());
}

}  // namespace redis_deadline_timer_test
