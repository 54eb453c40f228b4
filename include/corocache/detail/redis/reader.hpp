#pragma once
// Reply decoding without I/O: feed bytes, take replies (or one error). hiredis' redisReader
// does the RESP parsing; custom reply-object functions build our Reply tree directly, and
// this class adds the bounds hiredis 0.14 lacks:
//  - an array header with more than max_elements elements is rejected;
//  - a bulk string whose declared length exceeds max_bytes is rejected as soon as its
//    header arrives (hiredis alone would wait for, and buffer, all of it);
//  - the decoded size of one reply and the input buffered for an incomplete reply are
//    bounded by max_bytes.
// hiredis itself rejects nesting deeper than 7 levels, invalid type bytes and malformed
// lengths. After an error the reader stays failed until reset(); the connection using it
// then drops the link.

#include <corocache/detail/redis/reply.hpp>

#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

namespace corocache::detail::redis {

struct ReaderLimits {
  std::size_t max_bytes = std::size_t{64} << 20;
  std::size_t max_elements = std::size_t{1} << 20;
};

class Reader {
 public:
  /// reply: `out` holds the next reply. need_more: feed more bytes. error: the input is
  /// invalid (the link must be reset; error_message() says why). too_large: one whole reply
  /// exceeded the limits and was skipped (its bytes consumed, nothing kept); the stream stays
  /// usable: the reply belongs to the next request, which alone fails (error_message()).
  enum class Status { reply, need_more, error, too_large };

  explicit Reader(ReaderLimits limits = {}) {
    state_.limits = limits;
    create();
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() = default;

  /// Appends bytes received from the server. No-op once the reader has failed.
  void feed(const char* data, std::size_t size) {
    if (failed_ || size == 0) return;
    if (redisReaderFeed(reader_.get(), data, size) != REDIS_OK) fail_from_hiredis();
  }
  void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

  /// Takes the next complete reply into `out` (Status::reply), or reports that more input is
  /// needed, or that the input is invalid or exceeds a limit (error_message() says why).
  Status next(Reply& out) {
    if (failed_) return Status::error;
    void* obj = nullptr;
    if (redisReaderGetReply(reader_.get(), &obj) != REDIS_OK) {
      fail_from_hiredis();
      return Status::error;
    }
    if (obj != nullptr) {
      out = std::move(state_.root);
      state_.root.type = ReplyType::nil;  // cheaper than assigning a fresh Reply
      state_.root.integer = 0;
      state_.root.str.clear();
      state_.root.elements.clear();
      state_.cost = 0;
      return Status::reply;
    }
    check_incomplete();
    return failed_ ? Status::error : Status::need_more;
  }

  bool failed() const noexcept { return failed_; }
  /// Why the reader failed (no reply content, so it is safe to put in an exception).
  const std::string& error_message() const noexcept { return error_; }
  /// Bytes fed but not yet consumed as complete replies.
  std::size_t buffered() const noexcept { return reader_->len - reader_->pos; }

  /// Forgets all input and any error (used for a new connection).
  void reset() {
    create();
    state_.root = Reply{};
    state_.cost = 0;
    state_.limit_error.clear();
    failed_ = false;
    error_.clear();
  }

 private:
  struct State {
    ReaderLimits limits;
    Reply root;               // the reply being built (hiredis' root object)
    std::size_t cost = 0;     // approximate memory of `root` so far
    std::string limit_error;  // set when a create function refused for a limit
  };

  struct ReaderDeleter {
    void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
  };

  // --- hiredis reply-object functions: build the tree under State::root ----------------
  // hiredis passes each child's parent object; an open array's children arrive in index
  // order, and only the last element of an open array can itself be open, so appending to
  // a vector never moves an object hiredis still refers to.
  static Reply* place(const redisReadTask* task, ReplyType type, std::size_t payload) {
    auto* st = static_cast<State*>(task->privdata);
    st->cost += sizeof(Reply) + payload;
    if (st->cost > st->limits.max_bytes) {
      st->limit_error = "reply larger than max_reply_bytes (" + std::to_string(st->limits.max_bytes) + ")";
      return nullptr;
    }
    Reply* r;
    if (task->parent == nullptr) {
      r = &st->root;
    } else {
      auto* parent = static_cast<Reply*>(task->parent->obj);
      r = &parent->elements.emplace_back();
    }
    r->type = type;
    return r;
  }

  static void* create_string(const redisReadTask* task, char* str, std::size_t len) {
    const ReplyType type = task->type == REDIS_REPLY_ERROR    ? ReplyType::error
                           : task->type == REDIS_REPLY_STATUS ? ReplyType::status
                                                              : ReplyType::string;
    Reply* r = place(task, type, len);
    if (r) r->str.assign(str, len);
    return r;
  }
  static void* create_array(const redisReadTask* task, int elements) {
    auto* st = static_cast<State*>(task->privdata);
    if (elements < 0 || static_cast<std::size_t>(elements) > st->limits.max_elements) {
      st->limit_error = "array reply of " + std::to_string(elements) +
                        " elements exceeds max_reply_elements (" + std::to_string(st->limits.max_elements) +
                        ")";
      return nullptr;
    }
    Reply* r = place(task, ReplyType::array, 0);
    // Reserve what is plausible, not what was announced: memory follows received data.
    if (r) r->elements.reserve(static_cast<std::size_t>(elements < 64 ? elements : 64));
    return r;
  }
  static void* create_integer(const redisReadTask* task, long long value) {
    Reply* r = place(task, ReplyType::integer, 0);
    if (r) r->integer = value;
    return r;
  }
  static void* create_nil(const redisReadTask* task) { return place(task, ReplyType::nil, 0); }
  static void free_object(void*) {}  // objects live in State::root; reset() clears it

  static redisReplyObjectFunctions* functions() {
    static redisReplyObjectFunctions fns{create_string, create_array, create_integer, create_nil,
                                         free_object};
    return &fns;
  }

  void create() {
    reader_.reset(redisReaderCreateWithFunctions(functions()));
    if (!reader_) throw std::bad_alloc();
    reader_->privdata = &state_;  // redisReaderSetPrivdata's cast does not compile as C++
  }

  void fail(std::string message) {
    failed_ = true;
    error_ = std::move(message);
  }

  void fail_from_hiredis() {
    if (!state_.limit_error.empty())
      fail(state_.limit_error);
    else
      fail(std::string("invalid reply: ") + reader_->errstr);
  }

  // Called when no complete reply is available. hiredis parses a bulk string's header
  // again each time and only proceeds once the whole payload is buffered; while it waits,
  // the current task is a string and the unconsumed input starts at the length digits.
  void check_incomplete() {
    const redisReader* r = reader_.get();
    const std::size_t pending = r->len - r->pos;
    if (pending > state_.limits.max_bytes + 1024) {
      fail("reply larger than max_reply_bytes (" + std::to_string(state_.limits.max_bytes) + ")");
      return;
    }
    if (r->ridx < 0 || r->rstack[r->ridx].type != REDIS_REPLY_STRING) return;
    // Declared length so far (digits may still be arriving): large enough already -> fail.
    unsigned long long declared = 0;
    for (std::size_t i = r->pos; i < r->len; ++i) {
      const char c = r->buf[i];
      if (c < '0' || c > '9') break;
      declared = declared * 10 + static_cast<unsigned>(c - '0');
      if (declared > state_.limits.max_bytes) {
        fail("bulk string reply larger than max_reply_bytes (" + std::to_string(state_.limits.max_bytes) +
             ")");
        return;
      }
    }
  }

  State state_;
  std::unique_ptr<redisReader, ReaderDeleter> reader_;
  bool failed_ = false;
  std::string error_;
};

}  // namespace corocache::detail::redis
