// The I/O-free core of a Redis connection, driven by scripted events without a server:
// batching, reply matching, abandonment, short writes, link loss, unsolicited and oversized
// replies, max_pending, deadlines, stall detection and the health check.
#include <corocache/redis/detail/multiplexer.hpp>
#include <corocache/redis/detail/request.hpp>

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace redis_multiplexer_test {

using namespace std::chrono_literals;
using corocache::Duration;
using corocache::errc;
using corocache::detail::redis::Clock;
using corocache::detail::redis::Multiplexer;
using corocache::detail::redis::MultiplexerConfig;
using corocache::detail::redis::PendingOp;
using corocache::detail::redis::Reply;
using corocache::detail::redis::Request;
using corocache::detail::redis::saturating_add;
using Kind = Multiplexer::ReplyKind;
using Submit = Multiplexer::Submit;

namespace {

struct Script {
  explicit Script(MultiplexerConfig config = {}) : mux(config) { mux.on_link_up(); }

  Multiplexer mux;
  std::vector<std::unique_ptr<PendingOp>> ops;
  Clock::time_point now = Clock::time_point{} + 1h;
  std::vector<PendingOp*> failed;

  static std::string encode(const std::string& command, const std::string& arg) {
    Request r;
    r.add(command, arg);
    return r.bytes;
  }
  PendingOp* make(const std::string& key, Duration timeout = 1s, std::uint32_t replies = 1) {
    ops.push_back(std::make_unique<PendingOp>());
    PendingOp* op = ops.back().get();
    op->bytes = encode("GET", key);
    op->replies = replies;
    op->timeout = timeout;
    return op;
  }
  /// make(), with a send window (PendingOp::send_within).
  PendingOp* make_windowed(const std::string& key, Duration timeout, Duration window) {
    PendingOp* op = make(key, timeout);
    op->send_within = window;
    return op;
  }
  Submit submit(PendingOp* op) {
    return mux.submit(op, [this] { return now; });
  }
  PendingOp* queue(const std::string& key, Duration timeout = 1s, std::uint32_t replies = 1) {
    PendingOp* op = make(key, timeout, replies);
    REQUIRE(submit(op) == Submit::queued);
    return op;
  }
  /// Writes everything the multiplexer wants written, completely; returns the bytes.
  std::string write_all() {
    const std::string bytes(mux.prepare_write());
    if (!bytes.empty()) CHECK(mux.on_written(bytes.size()));
    return bytes;
  }
  Multiplexer::Tick tick() {
    return mux.on_tick(now, [this](PendingOp* op) { failed.push_back(op); });
  }
  void link_down() {
    mux.on_link_down(make_error_code(errc::connection_lost), [this](PendingOp* op) { failed.push_back(op); });
  }
  Multiplexer::Delivery reply(const std::string& value) {
    mux.on_bytes_received();
    return mux.on_reply(Reply::make_string(value));
  }
};

}  // namespace

TEST_CASE("requests queued together leave in one write and replies complete them in order") {
  Script s;
  auto* a = s.queue("a");
  auto* b = s.queue("b");
  auto* c = s.queue("c");
  CHECK(s.write_all() ==
        Script::encode("GET", "a") + Script::encode("GET", "b") + Script::encode("GET", "c"));
  CHECK(s.write_all().empty());  // nothing left
  for (auto [op, v] : {std::pair{a, "A"}, std::pair{b, "B"}, std::pair{c, "C"}}) {
    const auto d = s.reply(v);
    REQUIRE(d.kind == Kind::completed);
    CHECK(d.op == op);
    CHECK(d.op->reply.str == v);
    CHECK_FALSE(d.op->ec);
  }
  CHECK(s.mux.in_use() == 0);
}

TEST_CASE("a multi-command request owns all its replies and returns the first error") {
  Script s;
  auto* tx = s.queue("tx", 1s, 3);
  auto* next = s.queue("next");
  s.write_all();
  CHECK(s.reply("1").kind == Kind::more);
  CHECK(s.mux.on_reply(Reply::make_error("ERR first")).kind == Kind::more);
  const auto done = s.mux.on_reply(Reply::make_string("3"));
  REQUIRE(done.kind == Kind::completed);
  CHECK(done.op == tx);
  CHECK(tx->reply.is_error("ERR first"));
  CHECK(s.reply("n").op == next);
}

TEST_CASE("a cancelled unwritten request is never sent and frees its slot at once") {
  Script s;
  auto* a = s.queue("a");
  auto* b = s.queue("b");
  CHECK(s.mux.in_use() == 2);
  auto* gone = s.mux.cancel(b, /*may_abandon_written=*/false);
  REQUIRE(gone == b);
  CHECK(b->ec == boost::asio::error::operation_aborted);
  CHECK(s.mux.in_use() == 1);
  CHECK(s.write_all() == Script::encode("GET", "a"));
  CHECK(s.reply("A").op == a);
  CHECK(s.mux.cancel(b, true) == nullptr);  // twice is harmless
}

TEST_CASE("a written request's late reply is discarded after cancellation, never given to the next caller") {
  Script s;
  auto* a = s.queue("a");
  s.write_all();
  REQUIRE(s.mux.cancel(a, true) == a);
  CHECK(s.mux.in_use() == 1);  // still owed a reply on this link
  auto* b = s.queue("b");
  s.write_all();
  CHECK(s.reply("late A").kind == Kind::discarded);
  const auto d = s.reply("B");
  REQUIRE(d.kind == Kind::completed);
  CHECK(d.op == b);
  CHECK(b->reply.str == "B");
  CHECK(s.mux.in_use() == 0);
}

TEST_CASE("the next reply is known to be a control reply, even after its caller left") {
  Script s;
  CHECK_FALSE(s.mux.next_reply_is_control());  // nothing written
  auto* scan = s.make("page");
  scan->control = true;
  REQUIRE(s.submit(scan) == Submit::queued);
  CHECK_FALSE(s.mux.next_reply_is_control());  // not written: no reply is owed yet
  auto* value = s.queue("v");
  s.write_all();
  CHECK(s.mux.next_reply_is_control());
  REQUIRE(s.mux.cancel(scan, true) == scan);  // abandoned: its reply is still read
  CHECK(s.mux.next_reply_is_control());
  CHECK(s.reply("keys").kind == Kind::discarded);
  CHECK_FALSE(s.mux.next_reply_is_control());
  const auto d = s.reply("V");
  REQUIRE(d.kind == Kind::completed);
  CHECK(d.op == value);
}

TEST_CASE("total cancellation leaves a written request alone, terminal abandons it") {
  Script s;
  auto* unwritten = s.queue("u");
  CHECK(s.mux.cancel(unwritten, /*may_abandon_written=*/false) == unwritten);  // total: not sent yet
  auto* a = s.queue("a");
  s.write_all();
  CHECK(s.mux.cancel(a, /*may_abandon_written=*/false) == nullptr);  // total: it may have run
  CHECK_FALSE(a->ec);
  CHECK(s.reply("A").op == a);  // it still gets its reply
  auto* b = s.queue("b");
  s.write_all();
  CHECK(s.mux.cancel(b, /*may_abandon_written=*/true) == b);  // terminal
  CHECK(s.reply("B").kind == Kind::discarded);
}

TEST_CASE("a short write keeps its bytes, requests queued meanwhile wait for the next write") {
  Script s;
  auto* a = s.queue("a");
  auto* b = s.queue("b");
  const std::string first(s.mux.prepare_write());
  REQUIRE(first.size() > 5);
  CHECK_FALSE(s.mux.on_written(5));
  CHECK(s.mux.writing());
  CHECK(s.mux.unsent() == first.substr(5));
  auto* c = s.queue("c");
  CHECK(s.mux.prepare_write().empty());  // a write is under way: nothing may be appended
  // Bytes in the buffer are committed: cancelling b abandons it (its reply will come).
  CHECK(s.mux.cancel(b, false) == nullptr);
  CHECK(s.mux.cancel(b, true) == b);
  CHECK(s.mux.on_written(first.size() - 5));
  CHECK_FALSE(s.mux.writing());
  CHECK(s.write_all() == Script::encode("GET", "c"));
  CHECK(s.reply("A").op == a);
  CHECK(s.reply("B").kind == Kind::discarded);
  CHECK(s.reply("C").op == c);
}

TEST_CASE("a link loss fails every written request with connection_lost, unwritten ones wait") {
  Script s;
  std::vector<PendingOp*> written;
  for (int i = 0; i < 5; ++i) written.push_back(s.queue("w" + std::to_string(i)));
  s.write_all();
  auto* abandoned = written[1];
  REQUIRE(s.mux.cancel(abandoned, true) == abandoned);
  auto* waiting1 = s.queue("x");
  auto* waiting2 = s.queue("y");
  s.link_down();
  CHECK(s.failed.size() == 4);  // the abandoned one was already handed back
  for (auto* op : s.failed) CHECK(op->ec == errc::connection_lost);
  CHECK(s.mux.in_use() == 2);
  CHECK(s.mux.prepare_write().empty());  // no link
  s.mux.on_link_up();
  CHECK(s.write_all() == Script::encode("GET", "x") + Script::encode("GET", "y"));
  CHECK(s.reply("X").op == waiting1);
  CHECK(s.reply("Y").op == waiting2);
}

TEST_CASE("a link loss during an asynchronous write keeps the buffer until the write ends") {
  Script s;
  s.queue("a");
  const auto first = s.mux.prepare_write();
  CHECK_FALSE(s.mux.on_written(1));
  s.link_down();
  CHECK(s.failed.size() == 1);
  s.mux.on_link_up();
  auto* b = s.queue("b");
  CHECK(s.mux.prepare_write().empty());  // the old write still owns the buffer
  s.mux.on_write_aborted();
  CHECK(s.write_all() == Script::encode("GET", "b"));
  CHECK(s.reply("B").op == b);
  (void)first;
}

TEST_CASE("a reply when nothing is outstanding is unsolicited, never given to a later caller") {
  Script s;
  CHECK(s.reply("forged").kind == Kind::unsolicited);
  auto* a = s.queue("a");
  CHECK(s.reply("forged").kind == Kind::unsolicited);  // queued but not written: still nobody's
  s.write_all();
  CHECK(s.reply("A").op == a);
  CHECK(s.reply("extra").kind == Kind::unsolicited);
}

TEST_CASE("a reply read before a request was written never answers it, even when the request leaves inline") {
  Script s;
  PendingOp* a = s.queue("a");
  s.write_all();
  // One read brought a's reply and an extra one; a's caller, resumed inside the batch,
  // sends its next request at once (written inline as a chunk of the reply loop).
  s.mux.on_bytes_received();
  s.mux.begin_batch();
  CHECK(s.mux.on_reply(Reply::make_string("a")).op == a);
  PendingOp* b = s.make("b");
  s.submit(b);
  CHECK(s.mux.written() == 1);
  CHECK(s.mux.on_reply(Reply::make_string("forged")).kind == Kind::unsolicited);
  s.mux.end_batch([&] { return s.now; });
  // In the next read, b's own reply is matched to it.
  s.mux.begin_batch();
  const auto d = s.mux.on_reply(Reply::make_string("b"));
  s.mux.end_batch([&] { return s.now; });
  CHECK(d.kind == Kind::completed);
  CHECK(d.op == b);
}

TEST_CASE("a reply over the limits fails only its own request and the link goes on") {
  Script s;
  auto* a = s.queue("a");
  auto* b = s.queue("b");
  auto* tx = s.queue("tx", 1s, 2);
  auto* abandoned = s.queue("gone");
  auto* c = s.queue("c");
  s.write_all();
  REQUIRE(s.mux.cancel(abandoned, true) == abandoned);
  CHECK(s.reply("A").op == a);
  auto d = s.mux.on_reply_too_large();
  REQUIRE(d.kind == Kind::completed);
  CHECK(d.op == b);
  CHECK(b->ec == errc::reply_too_large);
  // The first of two replies too large: the request fails now, its second reply is dropped.
  d = s.mux.on_reply_too_large();
  REQUIRE(d.kind == Kind::completed);
  CHECK(d.op == tx);
  CHECK(tx->ec == errc::reply_too_large);
  CHECK(s.reply("second of tx").kind == Kind::discarded);
  CHECK(s.mux.on_reply_too_large().kind == Kind::discarded);  // the abandoned request's
  d = s.reply("C");
  CHECK(d.op == c);
  CHECK_FALSE(c->ec);
  CHECK(s.mux.on_reply_too_large().kind == Kind::unsolicited);
}

TEST_CASE("max_pending counts abandoned written requests until their link is gone") {
  MultiplexerConfig config;
  config.max_pending = 3;
  Script s(config);
  for (int i = 0; i < 3; ++i) s.queue("p" + std::to_string(i), 50ms);
  s.write_all();
  CHECK(s.submit(s.make("over")) == Submit::overloaded);
  s.now += 60ms;
  s.tick();
  REQUIRE(s.failed.size() == 3);
  for (auto* op : s.failed) CHECK(op->ec == errc::timeout);
  CHECK(s.mux.in_use() == 3);  // their replies are still owed on this link
  CHECK(s.submit(s.make("over")) == Submit::overloaded);
  s.link_down();  // nothing live was written: no new failures
  CHECK(s.failed.size() == 3);
  CHECK(s.mux.in_use() == 0);
  CHECK(s.submit(s.make("fine")) == Submit::queued);
}

TEST_CASE("late replies of timed-out requests free their slots") {
  MultiplexerConfig config;
  config.max_pending = 2;
  Script s(config);
  s.queue("a", 50ms);
  s.queue("b", 50ms);
  s.write_all();
  s.now += 51ms;
  s.tick();
  CHECK(s.submit(s.make("c")) == Submit::overloaded);
  CHECK(s.reply("late a").kind == Kind::discarded);
  auto* c = s.make("c");
  CHECK(s.submit(c) == Submit::queued);
}

TEST_CASE("a deadline is a timeout once written or while a link is up, not_connected otherwise") {
  Script s;
  auto* written = s.queue("w", 100ms);
  s.write_all();
  s.link_down();  // `written` fails with connection_lost
  REQUIRE(s.failed.size() == 1);
  CHECK(written->ec == errc::connection_lost);
  s.failed.clear();
  auto* waiting = s.queue("n", 100ms);
  CHECK(s.mux.next_deadline() == s.now + 100ms);
  s.now += 99ms;
  s.tick();
  CHECK(s.failed.empty());
  s.now += 1ms;
  s.tick();
  REQUIRE(s.failed.size() == 1);
  CHECK(waiting->ec == errc::not_connected);
  s.mux.on_link_up();
  auto* unsent = s.queue("u", 100ms);
  s.now += 100ms;
  s.tick();
  CHECK(unsent->ec == errc::timeout);
  CHECK(s.write_all().empty());  // an expired request is never sent
}

TEST_CASE("a send limit fails an unwritten request with no link, not_connected, before its timeout") {
  Script s;
  s.link_down();
  auto* op = s.make_windowed("k", 5s, 300ms);
  REQUIRE(s.submit(op) == Submit::queued);
  CHECK(s.mux.next_deadline() == s.now + 300ms);
  s.now += 299ms;
  s.tick();
  CHECK(s.failed.empty());
  s.now += 1ms;
  s.tick();
  REQUIRE(s.failed.size() == 1);
  CHECK(op->ec == errc::not_connected);
  s.mux.on_link_up();
  CHECK(s.write_all().empty());  // never sent
}

TEST_CASE("a request written within its send limit gets its whole timeout") {
  Script s;
  s.link_down();
  auto* op = s.make_windowed("k", 5s, 300ms);
  REQUIRE(s.submit(op) == Submit::queued);
  s.now += 100ms;
  s.mux.on_link_up();  // the link comes back inside the limit: the request goes out
  CHECK_FALSE(s.write_all().empty());
  s.now += 400ms;  // past the send limit, the server still working on it
  s.tick();
  CHECK(s.failed.empty());
  CHECK(s.mux.next_deadline() == s.now - 500ms + 5s);
  auto d = s.reply("v");
  CHECK(d.kind == Kind::completed);
  CHECK(d.op == op);
  CHECK_FALSE(op->ec);
  CHECK(s.mux.next_deadline() == Clock::time_point::max());
}

TEST_CASE("past its send limit, a written request times out at its call's deadline, not before") {
  Script s;
  auto* op = s.make_windowed("k", 1s, 200ms);
  REQUIRE(s.submit(op) == Submit::queued);
  s.write_all();
  s.now += 200ms;
  s.tick();
  CHECK(s.failed.empty());
  s.now += 799ms;
  s.tick();
  CHECK(s.failed.empty());
  s.now += 1ms;
  s.tick();
  REQUIRE(s.failed.size() == 1);
  CHECK(op->ec == errc::timeout);
}

TEST_CASE("an unwritten request behind a write in progress keeps waiting past its send limit") {
  Script s;
  auto* first = s.queue("a", 5s);
  const std::string bytes(s.mux.prepare_write());  // a write under way
  REQUIRE_FALSE(bytes.empty());
  auto* op = s.make_windowed("k", 5s, 100ms);
  REQUIRE(s.submit(op) == Submit::queued);
  s.now += 150ms;
  s.tick();  // the link is up: it is about to be written, not failed
  CHECK(s.failed.empty());
  CHECK(s.mux.next_deadline() == s.now + 100ms);  // another window
  CHECK(s.mux.on_written(bytes.size()));
  CHECK_FALSE(s.write_all().empty());
  CHECK(s.reply("1").op == first);
  CHECK(s.reply("2").op == op);
  CHECK_FALSE(op->ec);
}

TEST_CASE("an unwritten request given another window fails when its link drops before the write") {
  Script s;
  auto* first = s.queue("a", 5s);
  const std::string bytes(s.mux.prepare_write());  // a write under way
  auto* op = s.make_windowed("k", 5s, 100ms);
  REQUIRE(s.submit(op) == Submit::queued);
  s.now += 100ms;
  s.tick();  // a live link: another window
  CHECK(s.failed.empty());
  s.mux.on_write_aborted();
  s.link_down();  // `first` was written: connection_lost; `op` waits unwritten
  REQUIRE(s.failed.size() == 1);
  CHECK(s.failed.front() == first);
  s.now += 100ms;
  s.tick();
  REQUIRE(s.failed.size() == 2);
  CHECK(s.failed.back() == op);
  CHECK(op->ec == errc::not_connected);  // at the end of the window, not at 5 s
}

TEST_CASE("a send limit at or over the timeout changes nothing") {
  Script s;
  auto* op = s.make_windowed("k", 100ms, 100ms);
  REQUIRE(s.submit(op) == Submit::queued);
  CHECK(op->deadline == s.now + 100ms);
  CHECK(op->call_deadline == op->deadline);
}

TEST_CASE("Duration::max() and huge timeouts mean forever, never an overflow") {
  Script s;
  auto* forever = s.queue("f", Duration::max());
  const auto years = [](int n) {
    return std::chrono::duration_cast<Duration>(std::chrono::hours(24 * 365 * n));
  };
  auto* centuries = s.queue("c", years(200));
  auto* beyond_the_clock = s.queue("b", years(300));  // past steady_clock's range
  CHECK(forever->deadline == Clock::time_point::max());
  CHECK(beyond_the_clock->deadline == Clock::time_point::max());
  CHECK(centuries->deadline == s.now + std::chrono::duration_cast<Clock::duration>(years(200)));
  CHECK(s.mux.next_deadline() == centuries->deadline);
  s.now += years(1);
  s.tick();
  CHECK(s.failed.empty());
  CHECK(saturating_add(Clock::time_point::max() - 1ms, Duration::max()) == Clock::time_point::max());
  CHECK(saturating_add(s.now, Duration::zero()) == s.now);
}

TEST_CASE("in a reply batch, requests are buffered in chunks and stamped with one time at the end") {
  Script s;
  std::vector<PendingOp*> first;
  for (int i = 0; i < 16; ++i) first.push_back(s.queue("f" + std::to_string(i)));
  s.write_all();
  s.mux.begin_batch();  // 16 written: chunks of 4
  std::vector<Submit> results;
  std::vector<PendingOp*> again;
  for (int i = 0; i < 6; ++i) {
    CHECK(s.reply("r").op == first[static_cast<std::size_t>(i)]);
    again.push_back(s.make("g" + std::to_string(i)));
    results.push_back(s.submit(again.back()));
  }
  CHECK(results == std::vector<Submit>{Submit::queued, Submit::queued, Submit::queued, Submit::write_now,
                                       Submit::queued, Submit::queued});
  for (auto* op : again) CHECK_FALSE(op->in_deadlines);  // not stamped yet: no clock read
  s.now += 5ms;
  s.mux.end_batch([&] { return s.now; });
  for (auto* op : again) {
    CHECK(op->in_deadlines);
    CHECK(op->deadline == s.now + 1s);
  }
  std::string expected;
  for (int i = 0; i < 6; ++i) expected += Script::encode("GET", "g" + std::to_string(i));
  CHECK(s.write_all() == expected);
}

TEST_CASE("a reply batch that writes once at its end buffers everything and never asks for a write") {
  Script s;
  std::vector<PendingOp*> first;
  for (int i = 0; i < 16; ++i) first.push_back(s.queue("f" + std::to_string(i)));
  s.write_all();
  s.mux.begin_batch(/*chunked=*/false);
  std::string expected;
  for (int i = 0; i < 16; ++i) {
    CHECK(s.reply("r").op == first[static_cast<std::size_t>(i)]);
    CHECK(s.submit(s.make("g" + std::to_string(i))) == Submit::queued);
    expected += Script::encode("GET", "g" + std::to_string(i));
  }
  s.mux.end_batch([&] { return s.now; });
  CHECK(s.write_all() == expected);  // all 16 in one write
}

TEST_CASE("the write policy writes a quarter of what is in flight, at least four requests") {
  using corocache::detail::redis::WritePolicy;
  CHECK(WritePolicy::loop_chunk(0) == 4);
  CHECK(WritePolicy::loop_chunk(16) == 4);
  CHECK(WritePolicy::loop_chunk(256) == 64);
}

TEST_CASE("a link whose oldest written request gets no byte for stall_timeout is dropped") {
  MultiplexerConfig config;
  config.stall_timeout = 1s;
  Script s(config);
  CHECK(s.mux.check_period() == 250ms);
  s.queue("a", 50ms);
  s.write_all();
  CHECK_FALSE(s.tick().drop_link);  // samples the wait
  s.now += 50ms;
  CHECK_FALSE(s.tick().drop_link);
  CHECK(s.failed.size() == 1);  // timed out, abandoned, still owed a reply
  s.now += 500ms;
  CHECK_FALSE(s.tick().drop_link);
  s.mux.on_bytes_received();  // a byte restarts the wait
  s.now += 500ms;
  CHECK_FALSE(s.tick().drop_link);
  s.now += 999ms;
  CHECK_FALSE(s.tick().drop_link);
  s.now += 1ms;
  CHECK(s.tick().drop_link);
  s.link_down();
  CHECK(s.mux.in_use() == 0);
}

TEST_CASE("a blocking command's wait extends the stall limit while it is the oldest") {
  MultiplexerConfig config;
  config.stall_timeout = 1s;
  Script s(config);
  PendingOp* blmove = s.make("blmove", 12s);
  blmove->server_wait = 10s;
  REQUIRE(s.submit(blmove) == Submit::queued);
  s.write_all();
  s.tick();
  s.now += 10s + 999ms;  // the server's wait, and the reply's time to come back
  CHECK_FALSE(s.tick().drop_link);
  s.now += 1ms;
  CHECK(s.tick().drop_link);
}

// A caller's long deadline (with_timeout) says nothing of how long the server may be silent.
TEST_CASE("a request's long timeout alone does not extend the stall limit") {
  MultiplexerConfig config;
  config.stall_timeout = 1s;
  Script s(config);
  s.queue("get", 30s);
  s.write_all();
  s.tick();
  s.now += 999ms;
  CHECK_FALSE(s.tick().drop_link);
  s.now += 1ms;
  CHECK(s.tick().drop_link);
  CHECK(s.failed.empty());  // its own deadline is still ahead: the dropped link fails it
}

TEST_CASE("stall detection off: a silent server never drops the link") {
  Script s;
  s.queue("a", 50ms);
  s.write_all();
  for (int i = 0; i < 10; ++i) {
    s.now += 1h;
    CHECK_FALSE(s.tick().drop_link);
  }
  CHECK(s.mux.check_period() == Duration::zero());
}

// With stall detection off only the health check's PING is watched: a written request whose
// caller left (abandoned, no op) is not a PING, however long the server takes.
TEST_CASE("stall detection off: an abandoned written request is not taken for an unanswered PING") {
  MultiplexerConfig config;
  config.health_check_interval = 1s;
  Script s(config);
  s.queue("slow", 50ms);
  s.write_all();
  s.tick();
  s.now += 60ms;
  s.tick();  // its deadline passed: abandoned, its reply still owed
  REQUIRE(s.failed.size() == 1);
  for (int i = 0; i < 10; ++i) {
    s.now += 1s;
    CHECK_FALSE(s.tick().drop_link);
  }
}

TEST_CASE("an idle link sends a PING every health_check_interval and drops when it is not answered") {
  MultiplexerConfig config;
  config.health_check_interval = 1s;
  Script s(config);
  CHECK_FALSE(s.tick().write);  // samples the idle time
  s.now += 999ms;
  CHECK_FALSE(s.tick().write);
  s.now += 1ms;
  REQUIRE(s.tick().write);
  CHECK(s.write_all() == "*1\r\n$4\r\nPING\r\n");
  CHECK(s.mux.on_reply(Reply::make_status("PONG")).kind == Kind::discarded);
  // Traffic postpones the next check.
  auto* a = s.queue("a");
  s.write_all();
  s.now += 700ms;
  s.tick();
  CHECK(s.reply("A").op == a);
  s.now += 700ms;
  CHECK_FALSE(s.tick().write);
  s.now += 1s;
  REQUIRE(s.tick().write);
  s.write_all();
  // No PONG: the link is dropped one interval later (stall detection is off).
  s.now += 500ms;
  CHECK_FALSE(s.tick().drop_link);
  s.now += 500ms;
  CHECK(s.tick().drop_link);
}

}  // namespace redis_multiplexer_test
