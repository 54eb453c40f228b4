// The I/O-free policy that decides, wait by wait, whether a connection polls the socket for
// replies or sleeps in the reactor. Each test plays a machine: how long a polled and a slept
// wait take there, and how many replies each brings.
#include <corocache/redis/detail/loop_timing.hpp>
#include <corocache/redis/detail/reply_wait.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>

namespace redis_reply_wait_test {

using namespace std::chrono_literals;
using Policy = corocache::detail::redis::ReplyWaitPolicy;
using Mode = Policy::Mode;

namespace {

struct Outcome {
  std::chrono::nanoseconds waited;
  std::size_t replies;
};
using Machine = std::function<Outcome(Mode)>;

struct Tally {
  std::size_t polled = 0, slept = 0;
};

// Runs `waits` waits on `machine`; counts the mode each ran in.
Tally run(Policy& p, const Machine& machine, std::size_t waits) {
  Tally t;
  for (std::size_t i = 0; i < waits; ++i) {
    const auto budget = p.begin();
    const Mode m = budget > 0ns ? Mode::poll : Mode::sleep;
    REQUIRE(m == p.current());
    (m == Mode::poll ? t.polled : t.slept)++;
    const Outcome o = machine(m);
    p.end(o.waited, o.replies);
  }
  return t;
}

// Polled waits take `poll`, slept ones `sleep`, one reply each.
Machine fixed(std::chrono::nanoseconds poll, std::chrono::nanoseconds sleep) {
  return [=](Mode m) { return Outcome{m == Mode::poll ? poll : sleep, 1}; };
}

}  // namespace

TEST_CASE("busy_poll = 0: every wait sleeps and nothing is measured") {
  Policy p(0ns);
  CHECK_FALSE(p.enabled());
  const Tally t = run(p, fixed(1us, 100us), 10'000);
  CHECK(t.polled == 0);
  CHECK(p.estimate(Mode::poll) < 0);
  CHECK(p.estimate(Mode::sleep) < 0);
}

TEST_CASE("polling with the cap as budget while it is clearly faster (slow thread wake-ups)") {
  Policy p(50us);
  REQUIRE(p.begin() == 50us);  // starts by polling
  p.end(20us, 1);
  const Tally t = run(p, fixed(20us, 60us), 20'000);
  CHECK(p.best() == Mode::poll);
  // Sleeping is re-checked now and then, ever more rarely while it keeps losing.
  CHECK(t.slept > 0);
  CHECK(t.slept < 20'000 / 100);
}

TEST_CASE("sleeping when polling does not pay: a distant server answers after the cap") {
  Policy p(50us);
  // A polled wait runs out its 50 us and then sleeps as long as a slept wait.
  const Tally t = run(p, fixed(350us, 300us), 20'000);
  CHECK(p.best() == Mode::sleep);
  // What polling costs from then on: a few explorations, spaced out exponentially.
  const Tally later = run(p, fixed(350us, 300us), 20'000);
  CHECK(later.polled <= 2 * Policy::explore_waits * (20'000 / Policy::max_exploit + 1));
  CHECK(t.polled < 400);
}

TEST_CASE("a tie goes to sleeping, which costs no CPU") {
  Policy p(50us);
  run(p, fixed(20us, 20us), 5'000);
  CHECK(p.best() == Mode::sleep);
  // ... and polling needs a clear win (10%) to come back.
  run(p, fixed(19us, 20us), 5'000);
  CHECK(p.best() == Mode::sleep);
}

TEST_CASE("waits are compared per reply: short polled waits against fuller slept ones") {
  Policy p(50us);
  // Polling catches each reply alone after 10 us; a sleep wakes to 8 replies after 40 us
  // (5 us per reply): sleeping serves the pipeline better.
  run(
      p,
      [](Mode m) {
        return m == Mode::poll ? Outcome{10us, 1} : Outcome{40us, 8};
      },
      5'000);
  CHECK(p.best() == Mode::sleep);
}

TEST_CASE("the policy follows the machine when it changes") {
  Policy p(50us);
  run(p, fixed(20us, 60us), 10'000);
  REQUIRE(p.best() == Mode::poll);
  // The cores get busy: waking is fast now and the spinning thread slows the server down.
  // Within two of the longest runs between explorations, sleeping has taken over.
  run(p, fixed(60us, 25us), 2 * (Policy::max_exploit + Policy::explore_waits));
  CHECK(p.best() == Mode::sleep);
  // ... and back.
  run(p, fixed(20us, 60us), 2 * (Policy::max_exploit + Policy::explore_waits));
  CHECK(p.best() == Mode::poll);
}

TEST_CASE("a wait that brought no complete reply still counts its time") {
  Policy p(50us);
  // Polled waits often wake for a partial reply (no reply, 5 us), then one more with it:
  // 25 us per reply; slept waits bring one reply each in 20 us.
  bool partial = false;
  run(
      p,
      [&](Mode m) {
        if (m == Mode::sleep) return Outcome{20us, 1};
        partial = !partial;
        return partial ? Outcome{5us, 0} : Outcome{20us, 1};
      },
      5'000);
  CHECK(p.best() == Mode::sleep);
}

TEST_CASE("polls that mostly run out never win, however noisy the sleeps") {
  Policy p(50us);
  // A server 400 us away on a loaded machine: sleeps wake late and erratically (400 us to
  // 1.6 ms), polled waits run out at 50 us and then sleep as long. On wait time alone
  // polling would win some comparisons by luck; its polls never catch a reply.
  std::size_t i = 0;
  const Tally t = run(
      p,
      [&](Mode m) {
        const auto jitter = std::chrono::microseconds((++i * 7919) % 1200);
        return Outcome{m == Mode::poll ? 400us + jitter / 4 : 400us + jitter, 1};
      },
      20'000);
  CHECK(p.best() == Mode::sleep);
  CHECK(p.estimate(Mode::poll) == std::numeric_limits<double>::infinity());
  CHECK(t.polled < 200);
}

TEST_CASE("the handling of each batch counts: polling that splits replies into more batches can lose") {
  Policy p(50us);
  // 256 requests in flight. Polling wakes for 32 replies after 5 us, sleeping for all 256
  // after 60 us: by the waits alone polling wins (0.16 us per reply against 0.23). But
  // handing out a batch costs 20 us plus 0.3 us per reply (a read, a write, resuming
  // callers): whole cycles cost 1.08 us per reply polled against 0.61 slept.
  const auto handling = [](std::size_t replies) {
    return std::chrono::nanoseconds(20'000 + 300 * static_cast<long>(replies));
  };
  for (int i = 0; i < 5'000; ++i) {
    const bool poll = p.begin() > 0ns;
    const std::size_t replies = poll ? 32 : 256;
    p.end(poll ? 5us : 60us, replies, handling(replies));
  }
  CHECK(p.best() == Mode::sleep);
  // Where a batch costs little to hand out and a sleep costs a slow wake-up, polling wins.
  Policy q(50us);
  for (int i = 0; i < 5'000; ++i) {
    const bool poll = q.begin() > 0ns;
    q.end(poll ? 12us : 55us, 1, 2us);
  }
  CHECK(q.best() == Mode::poll);
}

TEST_CASE("loop timing: a wait counts from its start to the end of the loop it feeds, idle gaps never") {
  using corocache::detail::redis::LoopTiming;
  using T = LoopTiming::Clock::time_point;
  LoopTiming t(50us);
  T now{};
  REQUIRE(t.polls());
  REQUIRE(t.begin_wait(now));  // polls first
  CHECK(t.waiting());
  CHECK(t.poll_until() == now + 50us);
  now += 10us;
  CHECK(t.begin_loop(now));  // chunked first
  int clock_reads = 0;
  t.end_loop(1, /*in_flight=*/false, [&] {
    ++clock_reads;
    return now + 2us;
  });
  CHECK(clock_reads == 1);
  CHECK_FALSE(t.waiting());
  // The link went idle: the next loop, an hour later, is not a round of the write choice,
  // and with no timed wait under way it reads no clock.
  now += std::chrono::hours(1);
  t.begin_loop(now);
  t.end_loop(1, false, [&] {
    ++clock_reads;
    return now;
  });
  CHECK(clock_reads == 1);
  LoopTiming off(0us);
  CHECK_FALSE(off.polls());
  CHECK_FALSE(off.begin_wait(now));
}

TEST_CASE("loop timing: whole-loop writes take over only when 5% cheaper per reply") {
  using corocache::detail::redis::LoopTiming;
  // Loops of 16 replies costing `chunked` or `whole` per loop; how many of the last 200 of
  // 3000 loops were chunked.
  auto chunked_share = [](std::chrono::nanoseconds chunked, std::chrono::nanoseconds whole) {
    LoopTiming t(0us);
    LoopTiming::Clock::time_point now{};
    int share = 0;
    for (int i = 0; i < 3000; ++i) {
      const bool c = t.begin_loop(now);
      if (i >= 2800 && c) ++share;
      t.end_loop(16, /*in_flight=*/true, [&] { return now; });
      now += c ? chunked : whole;
    }
    return share;
  };
  CHECK(chunked_share(100us, 100us) >= 190);  // a tie stays chunked
  CHECK(chunked_share(100us, 97us) >= 190);   // whole 3% cheaper: not enough
  CHECK(chunked_share(100us, 90us) <= 10);    // whole 10% cheaper: whole
  CHECK(chunked_share(90us, 100us) >= 190);
}

}  // namespace redis_reply_wait_test
