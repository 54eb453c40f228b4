// Reply decoding without a server: bytes in, replies or one error out.
#include <corocache/detail/redis/reader.hpp>
#include <corocache/detail/redis/request.hpp>

#include "support/hiredis_format.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

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

}  // namespace

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

TEST_CASE("an invalid type byte is a protocol error after the valid replies before it") {
  Reader reader;
  reader.feed("+OK\r\n?what\r\n");
  Reply r;
  REQUIRE(reader.next(r) == Reader::Status::reply);
  CHECK(r.is_status("OK"));
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK(reader.failed());
  CHECK_FALSE(reader.error_message().empty());
  // Stays failed until reset.
  reader.feed("+OK\r\n");
  CHECK(reader.next(r) == Reader::Status::error);
  reader.reset();
  reader.feed("+OK\r\n");
  CHECK(reader.next(r) == Reader::Status::reply);
}

TEST_CASE("a bad length is a protocol error") {
  for (std::string wire : {"$abc\r\n", "*x\r\n", "*-5\r\n", ":12a\r\n"}) {
    Reader reader;
    reader.feed(wire);
    Reply r;
    INFO(wire);
    // hiredis ignores garbage after an integer's digits, everything else must fail
    if (wire[0] == ':') continue;
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

TEST_CASE("a huge bulk length inside an array fails while its digits still arrive") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 1000});
  reader.feed("*2\r\n$1\r\na\r\n$99999999");  // no CRLF yet
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
}

TEST_CASE("a bulk string at the limit is accepted, one byte more is not") {
  const std::size_t limit = 4096;
  {
    Reader reader(ReaderLimits{.max_bytes = limit, .max_elements = 10});
    reader.feed("$" + std::to_string(limit - sizeof(Reply)) + "\r\n" +
                std::string(limit - sizeof(Reply), 'x') + "\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::reply);
  }
  {
    Reader reader(ReaderLimits{.max_bytes = limit, .max_elements = 10});
    reader.feed("$" + std::to_string(limit + 1) + "\r\n");
    Reply r;
    CHECK(reader.next(r) == Reader::Status::error);
  }
}

TEST_CASE("an array with more elements than allowed is rejected at its header") {
  Reader reader(ReaderLimits{.max_bytes = 1 << 20, .max_elements = 100});
  reader.feed("*101\r\n");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_elements"));
}

TEST_CASE("an array count beyond int range is rejected") {
  Reader reader;
  reader.feed("*4294967297\r\n$1\r\na\r\n");
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
}

TEST_CASE("nesting deeper than hiredis' limit is a protocol error") {
  Reader reader;
  std::string wire;
  for (int i = 0; i < 12; ++i) wire += "*1\r\n";
  wire += ":1\r\n";
  reader.feed(wire);
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
}

TEST_CASE("many small elements cannot exceed the reply size bound") {
  Reader reader(ReaderLimits{.max_bytes = 64 * 1024, .max_elements = 1 << 20});
  std::string wire = "*100000\r\n";
  for (int i = 0; i < 100000; ++i) wire += ":1\r\n";
  reader.feed(wire);
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
  CHECK_THAT(reader.error_message(), Catch::Contains("max_reply_bytes"));
}

TEST_CASE("an endless status line is bounded by the buffered-input limit") {
  Reader reader(ReaderLimits{.max_bytes = 4096, .max_elements = 10});
  reader.feed("+" + std::string(8192, 'x'));
  Reply r;
  CHECK(reader.next(r) == Reader::Status::error);
}

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
