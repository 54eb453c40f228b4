// Reply decoding without a server: bytes in, replies, too_large or one error out.
#include <corocache/redis/detail/reader.hpp>
#include <corocache/redis/detail/request.hpp>

#include "support/hiredis_format.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace redis_reader_test {

using corocache::detail::redis::Reader;
using corocache::detail::redis::ReaderLimits;
using corocache::detail::redis::Reply;
using corocache::detail::redis::ReplyType;
using corocache::detail::redis::Request;

namespace {

std::vector<Reply> drain(Reader& reader) {
  std::vector<Reply> out;
  Reply r;
  while (reader.next(r) == Reader::Status::reply) out.push_back(std::move(r));
  return out;
}

/// Everything next() reports until it needs more input: "R <reply>", "TOO_LARGE" or "ERROR".
std::vector<std::string> outcomes(Reader& reader) {
  std::vector<std::string> out;
  for (;;) {
    Reply r;
    const auto status = reader.next(r);
    if (status == Reader::Status::need_more) return out;
    if (status == Reader::Status::error) {
      out.push_back("ERROR");
      return out;
    }
    if (status == Reader::Status::too_large) {
      out.push_back("TOO_LARGE");
      continue;
    }
    std::ostringstream os;
    os << "R " << r;
    out.push_back(os.str());
  }
}

void append(std::vector<std::string>& to, std::vector<std::string> more) {
  for (auto& m : more) to.push_back(std::move(m));
}

std::string bulk(const std::string& payload) {
  return "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
}

constexpr std::size_t S = sizeof(Reply);

}  // namespace

// --- decoding -------------------------------------------------------------------------------

TEST_CASE("the reader decodes every RESP2 reply type") {
  Reader reader;
  reader.feed("+OK\r\n-ERR bad thing\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n$0\r\n\r\n*-1\r\n*0\r\n");
  const auto replies = drain(reader);
  REQUIRE(replies.size() == 8);
  CHECK(replies[0] == Reply::make_status("OK"));
  CHECK(replies[0].is_status("OK"));
  CHECK(replies[1] == Reply::make_error("ERR bad thing"));
  CHECK(replies[1].is_error("ERR"));
  CHECK(replies[2] == Reply::make_integer(-42));
  CHECK(replies[3] == Reply::make_string("hello"));
  CHECK(replies[4].is_nil());
  CHECK(replies[5] == Reply::make_string(""));
  CHECK(replies[6].is_nil());
  CHECK(replies[7] == Reply::make_array({}));
  CHECK_FALSE(reader.failed());
  CHECK(reader.buffered() == 0);
}

TEST_CASE("the reader decodes nested arrays in order") {
  Reader reader;
  reader.feed("*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n*1\r\n*1\r\n+x\r\n");
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  std::vector<Reply> inner{Reply::make_string("a"), Reply::make_nil()};
  std::vector<Reply> deepest{Reply::make_status("x")};
  std::vector<Reply> middle{Reply::make_array(deepest)};
  std::vector<Reply> all{Reply::make_integer(1), Reply::make_array(inner), Reply::make_array(middle)};
  CHECK(r == Reply::make_array(all));
}

TEST_CASE("the reader keeps binary-safe bulk strings intact") {
  Reader reader;
  std::string payload("a\0b\r\nc", 6);
  reader.feed("$6\r\n" + payload + "\r\n");
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.str == payload);
}

TEST_CASE("a lone CR inside a status line is text") {
  Reader reader;
  reader.feed("+a\rb\r\n-x\r\r\n");
  const auto replies = drain(reader);
  REQUIRE(replies.size() == 2);
  CHECK(replies[0] == Reply::make_status("a\rb"));
  CHECK(replies[1] == Reply::make_error("x\r"));
}

TEST_CASE("integers decode over the whole int64 range") {
  Reader reader;
  reader.feed(":9223372036854775807\r\n:-9223372036854775808\r\n:0\r\n");
  const auto replies = drain(reader);
  REQUIRE(replies.size() == 3);
  CHECK(replies[0].integer == INT64_MAX);
  CHECK(replies[1].integer == INT64_MIN);
  CHECK(replies[2].integer == 0);
}

TEST_CASE("the reader waits for input split at every byte") {
  const std::string wire = "*2\r\n$3\r\nfoo\r\n:7\r\n+PONG\r\n";
  Reader reader;
  std::vector<Reply> got;
  for (char c : wire) {
    reader.feed(&c, 1);
    auto more = drain(reader);
    for (auto& m : more) got.push_back(std::move(m));
    REQUIRE_FALSE(reader.failed());
  }
  REQUIRE(got.size() == 2);
  std::vector<Reply> arr{Reply::make_string("foo"), Reply::make_integer(7)};
  CHECK(got[0] == Reply::make_array(arr));
  CHECK(got[1] == Reply::make_status("PONG"));
}

TEST_CASE("random replies decode the same whatever the chunking") {
  std::mt19937 rng(12345);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  // A random value and its encoding.
  std::function<Reply(int, std::string&)> gen = [&](int depth, std::string& wire) -> Reply {
    switch (pick(depth < 4 ? 7 : 6)) {
      case 0: {
        std::string s(static_cast<std::size_t>(pick(20)), 's');
        wire += "+" + s + "\r\n";
        return Reply::make_status(s);
      }
      case 1: {
        std::string s = "ERR " + std::string(static_cast<std::size_t>(pick(20)), 'e');
        wire += "-" + s + "\r\n";
        return Reply::make_error(s);
      }
      case 2: {
        const long long v = static_cast<long long>(rng()) - (1LL << 31);
        wire += ":" + std::to_string(v) + "\r\n";
        return Reply::make_integer(v);
      }
      case 3:
      case 4: {
        std::string s;
        const int len = pick(3) == 0 ? pick(3000) : pick(30);
        for (int i = 0; i < len; ++i) s.push_back(static_cast<char>(rng()));
        wire += bulk(s);
        return Reply::make_string(s);
      }
      case 5: wire += pick(2) ? "$-1\r\n" : "*-1\r\n"; return Reply::make_nil();
      default: {
        const int n = pick(6);
        wire += "*" + std::to_string(n) + "\r\n";
        std::vector<Reply> elements;
        for (int i = 0; i < n; ++i) elements.push_back(gen(depth + 1, wire));
        return Reply::make_array(std::move(elements));
      }
    }
  };
  std::string wire;
  std::vector<Reply> expected;
  for (int i = 0; i < 300; ++i) expected.push_back(gen(0, wire));
  for (int round = 0; round < 30; ++round) {
    Reader reader;
    std::vector<Reply> got;
    std::size_t at = 0;
    while (at < wire.size()) {
      const std::size_t chunk =
          std::min(wire.size() - at, static_cast<std::size_t>(1 + pick(round < 10 ? 4 : 700)));
      reader.feed(wire.data() + at, chunk);
      at += chunk;
      for (auto& r : drain(reader)) got.push_back(std::move(r));
      REQUIRE_FALSE(reader.failed());
    }
    CHECK(got == expected);
    CHECK(reader.buffered() == 0);
    // Linear work: the bytes fed, searched, parsed and copied out, a few times each.
    CHECK(reader.bytes_examined() <= 4 * wire.size());
  }
}

// --- malformed input ------------------------------------------------------------------------

TEST_CASE("an invalid type byte is a protocol error after the valid replies before it") {
  Reader reader;
  reader.feed("+OK\r\n?what\r\n");
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.is_status("OK"));
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK(reader.failed());
  CHECK_THAT(reader.error_message(), Catch::Contains("type byte"));
  // Stays failed until reset.
  reader.feed("+OK\r\n");
  CHECK(reader.next(r) == Reader::Status::error);
  reader.reset();
  reader.feed("+OK\r\n");
  CHECK(reader.next(r) == Reader::Status::reply);
}

TEST_CASE("an invalid type byte fails at once, before any line end") {
  Reader reader;
  reader.feed("%");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
}

TEST_CASE("a bad length or integer is a protocol error") {
  for (std::string wire : {"$abc\r\n", "*x\r\n", "*-5\r\n", "$-2\r\n", ":12a\r\n", ":\r\n", "$\r\n",
                           "$+5\r\n", "$ 5\r\n", ":9223372036854775808\r\n", "*1\r\n:--1\r\n"}) {
    INFO(wire);
    Reader reader;
    reader.feed(wire);
    Reply r;
    CHECK(reader.next(r) == Reader::Status::error);
  }
}

TEST_CASE("a bulk string not followed by CRLF is a protocol error") {
  Reader reader;
  reader.feed("$3\r\nabcXY");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK_THAT(reader.error_message(), Catch::Contains("CRLF"));
}

TEST_CASE("nesting deeper than max_depth is a protocol error, at max_depth it decodes") {
  auto nested = [](int levels) {
    std::string wire;
    for (int i = 0; i < levels; ++i) wire += "*1\r\n";
    return wire + ":1\r\n";
  };
  {
    Reader reader;  // default: 8 levels, as hiredis 0.14
    reader.feed(nested(8));
    Reply r;
    CHECK(reader.next(r) == Reader::Status::reply);
  }
  for (int levels : {9, 12}) {
    Reader reader;
    reader.feed(nested(levels));
    Reply r;
    CHECK(reader.next(r) == Reader::Status::error);
    CHECK_THAT(reader.error_message(), Catch::Contains("nested"));
  }
}

// --- line limits and linear time ------------------------------------------------------------

TEST_CASE("a status or error line longer than max_line is an error, as soon as it is") {
  ReaderLimits limits;
  limits.max_line = 100;
  for (char type : {'+', '-'}) {
    {
      Reader reader(limits);
      reader.feed(std::string(1, type) + std::string(100, 'x') + "\r\n");
      Reply r;
      CHECK(reader.next(r) == Reader::Status::reply);
      CHECK(r.str.size() == 100);
    }
    {
      Reader reader(limits);
      reader.feed(std::string(1, type) + std::string(101, 'x') + "\r\n");
      Reply r;
      CHECK(reader.next(r) == Reader::Status::error);
    }
    {
      // No CRLF yet: 100 bytes and a CR could still end as a valid line, one more cannot.
      Reader reader(limits);
      reader.feed(std::string(1, type) + std::string(100, 'x'));
      Reply r;
      CHECK(reader.next(r) == Reader::Status::need_more);
      reader.feed("\r");
      CHECK(reader.next(r) == Reader::Status::need_more);
      reader.feed("x");
      CHECK(reader.next(r) == Reader::Status::error);
      CHECK_THAT(reader.error_message(), Catch::Contains("longer than 100"));
      CHECK(reader.buffered() <= 103);
    }
  }
}

TEST_CASE("an endless status line fails at the default line limit, not at max_reply_bytes") {
  Reader reader;  // max_bytes 64 MiB, max_line 64 KiB
  std::string chunk(4096, 'x');
  reader.feed("+");
  Reply r;
  Reader::Status status = Reader::Status::need_more;
  std::size_t fed = 1;
  while (status == Reader::Status::need_more && fed < (std::size_t{1} << 20)) {
    reader.feed(chunk);
    fed += chunk.size();
    status = reader.next(r);
  }
  CHECK(status == Reader::Status::error);
  CHECK(fed <= ReaderLimits{}.max_line + 2 * chunk.size());
  CHECK(reader.buffered() <= ReaderLimits{}.max_line + 2 * chunk.size());
}

TEST_CASE("an integer or length line longer than header_line_limit is an error") {
  for (char type : {':', '$', '*'}) {
    Reader reader;
    reader.feed(std::string(1, type) + std::string(Reader::header_line_limit + 1, '0'));
    Reply r;
    CHECK(reader.next(r) == Reader::Status::error);
  }
  Reader reader;  // leading zeros within the limit are still a number
  reader.feed("$" + std::string(Reader::header_line_limit - 1, '0') + "1\r\nx\r\n");
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.str == "x");
}

TEST_CASE("a 1 MB line fed byte by byte is examined a bounded number of times per byte") {
  ReaderLimits limits;
  limits.max_line = 2 << 20;
  Reader reader(limits);
  const std::size_t n = 1 << 20;
  const std::string wire = "+" + std::string(n, 'x') + "\r\n";
  Reply r;
  for (std::size_t i = 0; i + 2 < wire.size(); ++i) {
    reader.feed(&wire[i], 1);
    REQUIRE(reader.next(r) == Reader::Status::need_more);
  }
  reader.feed(&wire[wire.size() - 2], 2);
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.str.size() == n);
  // Copied in once, searched once, copied out once: a rescan per read would be ~n^2/2.
  CHECK(reader.bytes_examined() <= 4 * wire.size());
}

TEST_CASE("chunks that all end in a lone CR do not make the search quadratic") {
  ReaderLimits limits;
  limits.max_line = 2 << 20;
  Reader reader(limits);
  std::string text;
  for (int i = 0; i < 200000; ++i) text += "a\r";
  const std::string wire = "-" + text + "\r\n";
  Reply r;
  reader.feed(wire.data(), 1);
  for (std::size_t i = 1; i + 2 < wire.size(); i += 2) {
    reader.feed(&wire[i], 2);  // each chunk ends with its CR
    REQUIRE(reader.next(r) == Reader::Status::need_more);
  }
  reader.feed(&wire[wire.size() - 2], 2);
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.str == text);
  CHECK(reader.bytes_examined() <= 5 * wire.size());
}

TEST_CASE("a large bulk string fed byte by byte is linear and never buffered") {
  Reader reader;
  const std::size_t n = 1 << 20;
  const std::string wire = "$" + std::to_string(n) + "\r\n" + std::string(n, 'v') + "\r\n";
  Reply r;
  std::size_t most_buffered = 0;
  for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
    reader.feed(&wire[i], 1);
    REQUIRE(reader.next(r) == Reader::Status::need_more);
    most_buffered = std::max(most_buffered, reader.buffered());
  }
  reader.feed(&wire.back(), 1);
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.str.size() == n);
  CHECK(most_buffered <= Reader::header_line_limit + 2);
  CHECK(reader.bytes_examined() <= 4 * wire.size());
}

// --- too_large: skip one reply, keep the stream ---------------------------------------------

TEST_CASE("a bulk string at the limit is accepted, one byte more is too_large") {
  const std::size_t limit = 4096;
  {
    Reader reader(ReaderLimits{.max_bytes = limit, .max_elements = 10});
    reader.feed(bulk(std::string(limit - S, 'x')));
    Reply r;
    CHECK(reader.next(r) == Reader::Status::reply);
  }
  {
    Reader reader(ReaderLimits{.max_bytes = limit, .max_elements = 10});
    reader.feed(bulk(std::string(limit - S + 1, 'x')) + "+next\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::too_large);
    CHECK_FALSE(reader.failed());
    CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_bytes"));
    REQUIRE(reader.next(r) == Reader::Status::reply);
    CHECK(r.is_status("next"));
  }
}

TEST_CASE("control limits are at least the defaults, and a reply over the limits may ask for them") {
  const ReaderLimits small{.max_bytes = 4096, .max_elements = 10};
  CHECK(small.control().max_bytes == ReaderLimits{}.max_bytes);
  CHECK(small.control().max_elements == ReaderLimits{}.max_elements);
  const ReaderLimits large{.max_bytes = std::size_t{1} << 30, .max_elements = std::size_t{1} << 24};
  CHECK(large.control().max_bytes == large.max_bytes);  // never lowered
  CHECK(large.control().max_elements == large.max_elements);

  // allow_wider: a reply over the limits asks once; one within them asks nothing.
  struct Asked {
    int count = 0;
    bool answer = true;
  } asked;
  Reader reader(small);
  reader.allow_wider(
      small.control(),
      [](void* a) {
        auto* asked_here = static_cast<Asked*>(a);
        ++asked_here->count;
        return asked_here->answer;
      },
      &asked);
  const std::string big = bulk(std::string(8000, 'x'));
  reader.feed(bulk("small") + big + "*2\r\n" + big + big + big);
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(asked.count == 0);
  REQUIRE(reader.next(r) == Reader::Status::reply);  // a slot map or SCAN page: wider
  CHECK(r.str.size() == 8000);
  CHECK(asked.count == 1);
  REQUIRE(reader.next(r) == Reader::Status::reply);  // an array: asks once for its whole reply
  CHECK(r.elements.size() == 2);
  CHECK(asked.count == 2);
  asked.answer = false;  // a value: the configured limits again
  CHECK(reader.next(r) == Reader::Status::too_large);
  CHECK(asked.count == 3);
}

TEST_CASE("a widened reply may outgrow the element limit, and after a skip the configured limits return") {
  const ReaderLimits small{.max_bytes = 4096, .max_elements = 10};
  bool answer = true;
  Reader reader(small);
  ReaderLimits wide = small;
  wide.max_bytes = 6000;
  wide.max_elements = 20;
  reader.allow_wider(
      wide, [](void* a) { return *static_cast<bool*>(a); }, &answer);
  std::string eleven = "*11\r\n";
  for (int i = 0; i < 11; ++i) eleven += ":1\r\n";
  reader.feed(eleven + bulk(std::string(8000, 'x')) + bulk(std::string(5000, 'y')));
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);  // 11 > 10 elements: widened
  CHECK(r.elements.size() == 11);
  CHECK(reader.next(r) == Reader::Status::too_large);  // over even the wider limits: skipped
  // The message gives the limit that applied, and says it is not the configured one.
  CHECK_THAT(
      reader.error_message(),
      Catch::Equals("bulk string of 8000 bytes exceeds max_reply_bytes (6000, raised for a reply to the "
                    "backend's own command)"));
  answer = false;
  CHECK(reader.next(r) == Reader::Status::too_large);  // 5000 > 4096: narrow again after the skip
  CHECK_THAT(reader.error_message(),
             Catch::Equals("bulk string of 5000 bytes exceeds max_reply_bytes (4096)"));
  CHECK_FALSE(reader.failed());

  // Configured limits at or above the wide ones: widening raises nothing, and says nothing.
  Reader large(wide);
  large.allow_wider(
      small, [](void* a) { return *static_cast<bool*>(a); }, &answer);
  answer = true;
  large.feed(bulk(std::string(7000, 'z')));
  CHECK(large.next(r) == Reader::Status::too_large);
  CHECK_THAT(large.error_message(),
             Catch::Equals("bulk string of 7000 bytes exceeds max_reply_bytes (6000)"));
}

TEST_CASE("too_large is reported at the header, before the payload streams past") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 1000});
  reader.feed("$99999999\r\n");  // ~100 MB declared
  Reply r = Reply::make_status("untouched");
  CHECK(reader.next(r) == Reader::Status::too_large);
  CHECK(r.is_status("untouched"));
  CHECK(reader.skipping());
  CHECK(reader.next(r) == Reader::Status::need_more);
  std::string chunk(1 << 20, 'z');
  for (int i = 0; i < 95; ++i) {
    reader.feed(chunk);
    REQUIRE(reader.next(r) == Reader::Status::need_more);
    REQUIRE(reader.buffered() == 0);
  }
  reader.feed(std::string(99999999 - 95 * chunk.size(), 'z') + "\r\n:7\r\n");
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.integer == 7);
  CHECK_FALSE(reader.skipping());
}

TEST_CASE("skipping a 16 MB value holds no more than a few bytes at a time") {
  Reader reader(ReaderLimits{.max_bytes = 64 * 1024, .max_elements = 1000});
  const std::size_t n = 16 << 20;
  std::string wire = "*2\r\n:1\r\n$" + std::to_string(n) + "\r\n" + std::string(n, 'b') + "\r\n+after\r\n";
  std::vector<std::string> seen;
  std::size_t most_buffered = 0;
  for (std::size_t at = 0; at < wire.size(); at += 65536) {
    reader.feed(wire.data() + at, std::min<std::size_t>(65536, wire.size() - at));
    append(seen, outcomes(reader));
    most_buffered = std::max(most_buffered, reader.buffered());
  }
  CHECK(seen == std::vector<std::string>{"TOO_LARGE", "R +after"});
  CHECK(most_buffered <= 2);
  CHECK(reader.bytes_examined() <= 4 * wire.size());
}

TEST_CASE("an array holding a too-large bulk string is one too_large reply") {
  Reader reader(ReaderLimits{.max_bytes = 4 * S + 64, .max_elements = 10});
  reader.feed("*3\r\n$1\r\na\r\n" + bulk(std::string(5 * S, 'x')) + "*2\r\n:1\r\n+deep\r\n" + ":42\r\n");
  CHECK(outcomes(reader) == std::vector<std::string>{"TOO_LARGE", "R 42"});
}

TEST_CASE("an aggregate too large in total is skipped from where it crosses the limit") {
  // Each element fits; together they do not.
  Reader reader(ReaderLimits{.max_bytes = 6 * S, .max_elements = 10});
  std::string wire = "*5\r\n";
  for (int i = 0; i < 5; ++i) wire += bulk(std::string(S, static_cast<char>('a' + i)));
  reader.feed(wire + "*2\r\n$1\r\nx\r\n:3\r\n");
  CHECK(outcomes(reader) == std::vector<std::string>{"TOO_LARGE", "R [\"x\", 3]"});
}

TEST_CASE("many small elements are too_large from the array header") {
  Reader reader(ReaderLimits{.max_bytes = 64 * 1024, .max_elements = 1 << 20});
  std::string wire = "*100000\r\n";
  Reply r;
  reader.feed(wire);
  CHECK(reader.next(r) == Reader::Status::too_large);  // 100001 values cannot fit in 64 KiB
  CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_bytes"));
  std::string elements;
  for (int i = 0; i < 100000; ++i) elements += ":1\r\n";
  reader.feed(elements + "+OK\r\n");
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.is_status("OK"));
}

TEST_CASE("an array over max_elements is skipped by counting, nested arrays included") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 2});
  reader.feed(
      "*3\r\n*2\r\n:1\r\n*1\r\n+x\r\n*0\r\n$-1\r\n"
      "*2\r\n:1\r\n:2\r\n");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::too_large);
  CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_elements"));
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r == Reply::make_array({Reply::make_integer(1), Reply::make_integer(2)}));
}

TEST_CASE("nesting is still limited while a reply is skipped") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 1});
  std::string wire = "*2\r\n";  // too many elements: skipped
  for (int i = 0; i < 12; ++i) wire += "*1\r\n";
  reader.feed(wire);
  Reply r;
  CHECK(reader.next(r) == Reader::Status::too_large);
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK_THAT(reader.error_message(), Catch::Contains("nested"));
}

TEST_CASE("malformed input inside a skipped reply is still an error") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 1});
  reader.feed("*2\r\n:1\r\n?bad\r\n");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::too_large);
  CHECK(reader.next(r) == Reader::Status::error);
}

TEST_CASE("a reply that would take more than max_skip_bytes to skip is an error") {
  ReaderLimits limits{.max_bytes = 1024, .max_elements = 10};
  limits.max_skip_bytes = 10000;
  {
    Reader reader(limits);  // declared: 9000 bytes + CRLF fit the budget
    reader.feed("$9000\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::too_large);
  }
  {
    Reader reader(limits);  // declared: 10000 bytes + CRLF do not
    reader.feed("$10000\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::error);
    CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_bytes"));
    CHECK_THAT(reader.error_message(), Catch::Contains("skip"));
  }
  {
    Reader reader(limits);  // 4000 elements need at least 3 bytes each
    reader.feed("*4000\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::error);
    CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_elements"));
  }
  {
    Reader reader(limits);  // declared counts fit, the actual elements are longer
    reader.feed("*11\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::too_large);
    std::string wire;
    for (int i = 0; i < 11; ++i) wire += "+" + std::string(1000, 's') + "\r\n";
    reader.feed(wire);
    CHECK(reader.next(r) == Reader::Status::error);
  }
}

TEST_CASE("a huge declared bulk length fails as soon as its header arrives") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 1000});
  reader.feed("$999999999999\r\n");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_bytes"));
}

TEST_CASE("an array count beyond what can be skipped is rejected") {
  Reader reader;
  reader.feed("*4294967297\r\n$1\r\na\r\n");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
}

TEST_CASE("too_large replies between normal ones, split at every point") {
  // Tiny limits: a bulk of 4*S bytes is too large alone, arrays of up to 3 elements fit.
  const ReaderLimits limits{.max_bytes = 4 * S, .max_elements = 3};
  const std::string big(4 * S, 'B');
  std::string nested_too_many = "*4\r\n*1\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n*0\r\n$-1\r\n";
  std::string total_too_large = "*3\r\n" + bulk(std::string(S, 'x')) + bulk(std::string(S, 'y')) + ":9\r\n";
  const std::string wire = "+A\r\n" + bulk(big) + ":5\r\n" + "*2\r\n$1\r\na\r\n" + bulk(big) +
                           "*3\r\n:1\r\n:2\r\n:3\r\n" + nested_too_many + total_too_large + "$-1\r\n" +
                           bulk(big) + "+END\r\n";
  const std::vector<std::string> expected{"R +A",      "TOO_LARGE", "R 5",   "TOO_LARGE", "R [1, 2, 3]",
                                          "TOO_LARGE", "TOO_LARGE", "R nil", "TOO_LARGE", "R +END"};
  {
    Reader reader(limits);
    reader.feed(wire);
    CHECK(outcomes(reader) == expected);
  }
  for (std::size_t split = 0; split <= wire.size(); ++split) {
    Reader reader(limits);
    reader.feed(wire.data(), split);
    auto got = outcomes(reader);
    reader.feed(wire.data() + split, wire.size() - split);
    append(got, outcomes(reader));
    INFO("split at " << split);
    REQUIRE(got == expected);
    CHECK(reader.buffered() == 0);
  }
  {
    Reader reader(limits);
    std::vector<std::string> got;
    for (char c : wire) {
      reader.feed(&c, 1);
      append(got, outcomes(reader));
      REQUIRE(reader.buffered() <= Reader::header_line_limit + 2);
    }
    CHECK(got == expected);
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Reader reader(limits);
    std::vector<std::string> got;
    for (std::size_t at = 0; at < wire.size();) {
      const std::size_t chunk = std::min<std::size_t>(wire.size() - at, 1 + rng() % 40);
      reader.feed(wire.data() + at, chunk);
      at += chunk;
      append(got, outcomes(reader));
    }
    INFO("round " << round);
    REQUIRE(got == expected);
  }
}

TEST_CASE("reset drops a skip in progress") {
  Reader reader(ReaderLimits{.max_bytes = 1024, .max_elements = 10});
  reader.feed("$5000\r\nxxxx");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::too_large);
  CHECK(reader.skipping());
  reader.reset();
  CHECK_FALSE(reader.skipping());
  reader.feed("+OK\r\n");
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.is_status("OK"));
}

// --- request encoding -----------------------------------------------------------------------

TEST_CASE("a request encodes commands in RESP and counts replies") {
  Request req;
  req.add("SET", std::string("key"), std::string_view("va\r\nl"), "PX", 1500);
  CHECK(req.replies == 1);
  CHECK(req.bytes == "*5\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n$2\r\nPX\r\n$4\r\n1500\r\n");
  req.add("GET", "key");
  CHECK(req.replies == 2);
  std::vector<std::string_view> argv{"DEL", "a", "b"};
  req.add_argv(argv);
  CHECK(req.replies == 3);
  CHECK(req.bytes.ends_with("*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n"));
  std::vector<std::string_view> none;
  CHECK_THROWS_AS(req.add_argv(none), std::invalid_argument);
}

TEST_CASE("a request takes more arguments than fit on the stack and negative integers") {
  Request req;
  std::vector<std::string> args{"SADD", "s"};
  for (int i = 0; i < 40; ++i) args.push_back(std::to_string(i));
  std::vector<std::string_view> views(args.begin(), args.end());
  req.add_argv(views);
  CHECK(req.bytes.starts_with("*42\r\n$4\r\nSADD\r\n"));
  Request neg;
  neg.add("INCRBY", "k", -7LL);
  CHECK(neg.bytes == "*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$2\r\n-7\r\n");
}

TEST_CASE("an encoded request decodes back as the array of its arguments") {
  // The reader accepts the request encoding too (arrays of bulk strings): a round trip.
  Request req;
  req.add("HSET", "h", "f", std::string(1000, 'z'));
  Reader reader;
  reader.feed(req.bytes);
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  REQUIRE(r.elements.size() == 4);
  CHECK(r.elements[3].str == std::string(1000, 'z'));
}

TEST_CASE("requests are encoded byte for byte as hiredis' formatter encodes them") {
  std::vector<std::vector<std::string>> commands = {
      {"PING"},
      {"GET", "k"},
      {"SET", "key", std::string("bin\0ary", 7), "PX", "100"},
      {"SET", "", ""},
      {"MSET", std::string(1000, 'a'), std::string(123456, 'b')},
  };
  std::vector<std::string> many{"SADD", "s"};
  for (int i = 0; i < 123; ++i) many.push_back(std::to_string(i * 7919));
  commands.push_back(many);
  for (const auto& cmd : commands) {
    std::vector<std::string_view> argv(cmd.begin(), cmd.end());
    Request req;
    req.add_argv(argv);
    CHECK(req.bytes == corocache::test::format_with_hiredis(argv));
  }
}

}  // namespace redis_reader_test
