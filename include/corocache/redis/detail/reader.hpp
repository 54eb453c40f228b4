#pragma once
// Reply decoding without I/O: feed bytes, take replies one at a time. A small RESP2 parser
// of our own (docs/redis_reader.md says why hiredis' redisReader could not stay), built for
// hostile input:
//  - linear time: every byte is examined a bounded number of times, however it is chunked
//    (an incomplete line remembers how far it was searched for CRLF);
//  - bounded lines: status/error text (ReaderLimits::max_line) and integer/length lines
//    (header_line_limit); longer is an error;
//  - bounded memory: bulk payloads go straight into the reply under construction, so the
//    input buffer only ever holds an incomplete line plus the last chunk fed;
//  - a reply over max_bytes / max_elements is reported once (Status::too_large) and then
//    skipped as its bytes stream past, counted, not buffered; the next reply decodes
//    normally;
//  - malformed input (type byte, lengths, CRLF, nesting deeper than max_depth) is an error,
//    after which the reader stays failed until reset().

#include <corocache/redis/detail/reply.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace corocache::detail::redis {

struct ReaderLimits {
  /// Decoded size of one reply: every value costs sizeof(Reply) plus its text.
  std::size_t max_bytes = std::size_t{64} << 20;
  /// Elements of one array.
  std::size_t max_elements = std::size_t{1} << 20;
  /// Text of one status or error line (integer and length lines: Reader::header_line_limit).
  std::size_t max_line = std::size_t{64} << 10;
  /// Nested arrays (8, as hiredis 0.14 accepted); deeper is malformed input.
  std::size_t max_depth = 8;
  /// A reply over max_bytes / max_elements is skipped unless skipping it is known to take
  /// more than this many bytes (its declared lengths say so, or it did): then it is an
  /// error, because a new link is cheaper than streaming that much past every other caller.
  std::uint64_t max_skip_bytes = std::uint64_t{1} << 30;

  /// The limits of a reply to the backend's own commands (Request::control): these, with
  /// max_bytes and max_elements raised to at least their defaults.
  ReaderLimits control() const noexcept {
    ReaderLimits c = *this;
    c.max_bytes = std::max(max_bytes, ReaderLimits{}.max_bytes);
    c.max_elements = std::max(max_elements, ReaderLimits{}.max_elements);
    return c;
  }
};

class Reader {
 public:
  /// reply: `out` holds the next reply. need_more: feed more bytes. error: the input is
  /// invalid (the link must be reset; error_message() says why). too_large: the next reply
  /// exceeds the limits; it is reported as soon as that is known, nothing of it is kept,
  /// and the reader skips the rest of it internally (next() says need_more until it has
  /// streamed past). The stream stays usable: the reply belongs to the next request, which
  /// alone fails (error_message() says why).
  enum class Status { reply, need_more, error, too_large };

  /// Longest integer or length line (":", "$", "*"): any int64 fits in 20 characters.
  static constexpr std::size_t header_line_limit = 32;

  explicit Reader(ReaderLimits limits = {}) : limits_(limits), narrow_(limits) {
    levels_.reserve(std::min<std::size_t>(limits_.max_depth, 64));
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader() = default;

  /// Appends bytes received from the server. No-op once the reader has failed.
  void feed(const char* data, std::size_t size) {
    if (failed_ || size == 0) return;
    compact();
    buf_.append(data, size);
    work_ += size;
  }
  void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

  /// Takes the next complete reply into `out` (Status::reply; `out` is untouched otherwise),
  /// or reports that more input is needed, that the input is invalid, or that the next
  /// reply is too large.
  Status next(Reply& out) {
    if (failed_) return Status::error;
    for (;;) {
      const Step step = phase_ == Phase::line ? step_line() : step_bulk();
      if (step == Step::error) return Status::error;
      if (skipping_ && skip_exceeds_budget()) {
        fail(message_ + ", and skipping it would take more than max_skip_bytes (" +
             std::to_string(limits_.max_skip_bytes) + ")");
        return Status::error;
      }
      if (std::exchange(report_too_large_, false)) return Status::too_large;
      if (step == Step::need_more) return Status::need_more;
      if (step == Step::reply) {
        out = std::move(root_);
        root_.type = ReplyType::nil;  // cheaper than assigning a fresh Reply
        root_.integer = 0;
        root_.str.clear();
        root_.elements.clear();
        cost_ = 0;
        return Status::reply;
      }
    }
  }

  bool failed() const noexcept { return failed_; }
  /// Why the reader failed, or why the last too_large reply was too large (no reply
  /// content, so it is safe to put in an exception).
  const std::string& error_message() const noexcept { return message_; }
  /// Bytes fed but not yet consumed. Payloads are consumed as they arrive (into the reply
  /// or skipped), so when next() runs after every feed this stays below one line's limit
  /// plus the last chunk fed.
  std::size_t buffered() const noexcept { return buf_.size() - pos_; }
  /// True while the rest of a too_large reply is being skipped.
  bool skipping() const noexcept { return skipping_; }
  /// Bytes examined since construction: copied in, moved, searched, parsed, copied out or
  /// skipped. A measure of work for tests (linear in the bytes fed).
  std::uint64_t bytes_examined() const noexcept { return work_; }

  /// Lets a reply that would exceed the limits ask `may_widen(context)` once whether it may
  /// have `wide` instead (the connection answers from the request the reply belongs to:
  /// Request::control); after that reply the configured limits apply again. Replies within
  /// the limits ask nothing, so the common path pays nothing for it.
  void allow_wider(const ReaderLimits& wide, bool (*may_widen)(void*), void* context) noexcept {
    wide_ = wide;  // never narrower than the configured limits (cost_ may have reached them)
    wide_.max_bytes = std::max(wide.max_bytes, narrow_.max_bytes);
    wide_.max_elements = std::max(wide.max_elements, narrow_.max_elements);
    may_widen_ = may_widen;
    widen_context_ = context;
  }

  /// What allow_wider() set, so that a phase answering for itself (the handshake) can put
  /// the connection's answer back afterwards.
  struct Widening {
    ReaderLimits wide;
    bool (*may_widen)(void*) = nullptr;
    void* context = nullptr;
  };
  Widening widening() const noexcept { return Widening{wide_, may_widen_, widen_context_}; }
  void allow_wider(const Widening& w) noexcept { allow_wider(w.wide, w.may_widen, w.context); }
  /// The limits given at construction (those in force for every reply not widened).
  const ReaderLimits& configured_limits() const noexcept { return narrow_; }

  /// Forgets all input and any error (used for a new connection).
  void reset() {
    buf_.clear();
    if (buf_.capacity() > shrink_above) std::string().swap(buf_);
    pos_ = 0;
    phase_ = Phase::line;
    line_scanned_ = 0;
    bulk_left_ = 0;
    bulk_target_ = nullptr;
    levels_.clear();
    root_ = Reply{};
    cost_ = 0;
    narrow();
    skipping_ = false;
    report_too_large_ = false;
    skip_left_ = 0;
    failed_ = false;
    message_.clear();
  }

 private:
  enum class Phase { line, bulk };
  enum class Step { progress, need_more, reply, error };

  struct Level {
    Reply* node;         // the array being filled; null while skipping
    std::uint64_t left;  // elements not yet complete
  };

  static constexpr std::size_t shrink_above = std::size_t{1} << 20;
  static constexpr std::size_t max_reserve = 1024;     // elements reserved before they arrive
  static constexpr std::uint64_t min_value_bytes = 3;  // "+\r\n": no value is shorter

  // Drops consumed input. Only when the consumed prefix is at least as long as what
  // remains, so the bytes moved never exceed the bytes consumed: linear overall.
  void compact() {
    if (pos_ == 0) return;
    if (pos_ == buf_.size()) {
      buf_.clear();
      if (buf_.capacity() > shrink_above) std::string().swap(buf_);
      pos_ = 0;
    } else if (pos_ >= buf_.size() - pos_) {
      work_ += buf_.size() - pos_;
      buf_.erase(0, pos_);
      pos_ = 0;
    }
  }

  Step fail(std::string message) {
    failed_ = true;
    message_ = std::move(message);
    return Step::error;
  }

  // Consumes `n` bytes; while skipping they count against the skip budget.
  bool consume(std::size_t n) {
    pos_ += n;
    if (!skipping_) return true;
    if (n > skip_left_) {
      fail(message_ + ", and skipping it took more than max_skip_bytes (" +
           std::to_string(limits_.max_skip_bytes) + ")");
      return false;
    }
    skip_left_ -= n;
    return true;
  }

  // One line: a simple value, or the header of a bulk string or an array.
  Step step_line() {
    const std::size_t avail = buf_.size() - pos_;
    if (avail == 0) return Step::need_more;
    const char* p = buf_.data() + pos_;
    const char type = p[0];
    std::size_t limit;
    switch (type) {
      case '+':
      case '-': limit = limits_.max_line; break;
      case ':':
      case '$':
      case '*': limit = header_line_limit; break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        const auto byte = static_cast<unsigned char>(type);
        return fail(std::string("invalid reply type byte 0x") + hex[byte >> 4] + hex[byte & 15]);
      }
    }
    // Find CRLF, starting where the previous attempt stopped (a CR that ended the input is
    // looked at again). A CR not followed by LF is text.
    std::size_t from = std::max<std::size_t>(line_scanned_, 1);
    std::size_t cr = 0;
    bool found = false;
    while (from < avail) {
      const void* hit = std::memchr(p + from, '\r', avail - from);
      if (hit == nullptr) {
        work_ += avail - from;
        from = avail;
        break;
      }
      cr = static_cast<std::size_t>(static_cast<const char*>(hit) - p);
      work_ += cr - from + 1;
      if (cr + 1 == avail) {
        from = cr;
        break;
      }
      if (p[cr + 1] == '\n') {
        found = true;
        break;
      }
      from = cr + 1;
    }
    if (!found) {
      line_scanned_ = from;
      if (from - 1 > limit) return line_too_long(type, limit);
      return Step::need_more;
    }
    line_scanned_ = 0;
    const std::size_t len = cr - 1;
    if (len > limit) return line_too_long(type, limit);
    const std::string_view text(p + 1, len);
    const std::size_t line_bytes = cr + 2;

    if (type == '+' || type == '-') {
      if (!skipping_) {
        if (Reply* r = place(type == '+' ? ReplyType::status : ReplyType::error, len)) {
          r->str.assign(text);
          work_ += len;
        }
      }
      if (!consume(line_bytes)) return Step::error;
      return finish_value();
    }
    std::int64_t value = 0;
    {
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      work_ += len;
      if (ec != std::errc{} || end != text.data() + text.size())
        return fail(std::string("invalid ") + (type == ':' ? "integer" : "length") + " line '" +
                    std::string(text) + "'");
    }
    if (type == ':') {
      if (!skipping_)
        if (Reply* r = place(ReplyType::integer, 0)) r->integer = value;
      if (!consume(line_bytes)) return Step::error;
      return finish_value();
    }
    if (type == '*' && levels_.size() >= limits_.max_depth)
      return fail("arrays nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    if (value < -1) return fail(std::string("negative ") + (type == '$' ? "bulk" : "array") + " length");
    if (!consume(line_bytes)) return Step::error;
    if (value == -1) {
      if (!skipping_) place(ReplyType::nil, 0);
      return finish_value();
    }
    const auto n = static_cast<std::uint64_t>(value);
    return type == '$' ? begin_bulk(n) : begin_array(n);
  }

  Step line_too_long(char type, std::size_t limit) {
    const char* what = type == '+' ? "status" : type == '-' ? "error" : type == ':' ? "integer" : "length";
    return fail(std::string(what) + " line longer than " + std::to_string(limit) + " bytes");
  }

  Step begin_bulk(std::uint64_t len) {
    if (!skipping_ && !fits(len) && !(widen() && fits(len)))
      begin_skip("bulk string of " + std::to_string(len) + " bytes exceeds max_reply_bytes (" +
                 limit_text(limits_.max_bytes, narrow_.max_bytes) + ")");
    phase_ = Phase::bulk;
    bulk_left_ = len;
    bulk_target_ = nullptr;
    if (skipping_) return Step::progress;
    Reply* r = place(ReplyType::string, static_cast<std::size_t>(len));  // fits: checked above
    const std::size_t size = static_cast<std::size_t>(len);
    if (buf_.size() - pos_ >= size + 2) {  // all there: one copy, the common case
      const char* p = buf_.data() + pos_;
      r->str.assign(p, size);
      work_ += size;
      bulk_left_ = 0;
      consume(size);
      return step_bulk();
    }
    r->str.reserve(std::min<std::size_t>(size, std::size_t{64} << 10));
    bulk_target_ = r;
    return Step::progress;
  }

  Step begin_array(std::uint64_t count) {
    if (!skipping_ && !array_fits(count) && !(widen() && array_fits(count))) {
      if (count > limits_.max_elements)
        begin_skip("array of " + std::to_string(count) + " elements exceeds max_reply_elements (" +
                   limit_text(limits_.max_elements, narrow_.max_elements) + ")");
      else
        begin_skip("reply larger than max_reply_bytes (" + limit_text(limits_.max_bytes, narrow_.max_bytes) +
                   ")");
    }
    Reply* r = nullptr;
    if (!skipping_) {
      r = place(ReplyType::array, 0);
      r->elements.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, max_reserve)));
    }
    if (count == 0) return finish_value();
    levels_.push_back(Level{r, count});
    return Step::progress;
  }

  // The rest of a bulk string's payload, then its CRLF.
  Step step_bulk() {
    if (bulk_left_ > 0) {
      const std::size_t avail = buf_.size() - pos_;
      if (avail == 0) return Step::need_more;
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(avail, bulk_left_));
      if (bulk_target_) bulk_target_->str.append(buf_.data() + pos_, take);
      work_ += take;
      bulk_left_ -= take;
      if (!consume(take)) return Step::error;
      if (bulk_left_ > 0) return Step::need_more;
    }
    if (buf_.size() - pos_ < 2) return Step::need_more;
    work_ += 2;
    if (buf_[pos_] != '\r' || buf_[pos_ + 1] != '\n') return fail("bulk string not terminated by CRLF");
    if (!consume(2)) return Step::error;
    phase_ = Phase::line;
    bulk_target_ = nullptr;
    return finish_value();
  }

  // A value is complete: close the arrays it completes; Step::reply when the root is done.
  Step finish_value() {
    while (!levels_.empty()) {
      if (--levels_.back().left > 0) return Step::progress;
      levels_.pop_back();
    }
    narrow();
    if (skipping_) {  // the too-large reply has streamed past
      skipping_ = false;
      return Step::progress;
    }
    return Step::reply;
  }

  // Adds a value to the reply under construction, or starts skipping it if it is too large.
  Reply* place(ReplyType type, std::size_t payload) {
    if (!fits(payload) && !(widen() && fits(payload))) {
      begin_skip("reply larger than max_reply_bytes (" + limit_text(limits_.max_bytes, narrow_.max_bytes) +
                 ")");
      return nullptr;
    }
    cost_ += sizeof(Reply) + payload;
    Reply* r = levels_.empty() ? &root_ : &levels_.back().node->elements.emplace_back();
    r->type = type;
    return r;
  }

  // Whether one more value of `payload` bytes fits in the reply under construction.
  bool fits(std::uint64_t payload) const noexcept {
    const std::size_t room = limits_.max_bytes - cost_;
    return payload <= room && sizeof(Reply) <= room - payload;
  }
  // Whether an array of `count` elements may start (each will cost sizeof(Reply) at least).
  bool array_fits(std::uint64_t count) const noexcept {
    return count <= limits_.max_elements && count + 1 <= (limits_.max_bytes - cost_) / sizeof(Reply);
  }
  // The reply under construction outgrew the limits: true if it may have the wider ones.
  // Out of line: the hot path (a reply within the limits) stays as small as before.
  [[gnu::noinline, gnu::cold]] bool widen() {
    if (widened_ || may_widen_ == nullptr || !may_widen_(widen_context_)) return false;
    widened_ = true;
    limits_ = wide_;
    return true;
  }
  // A limit for a message: one raised above the configured value says so.
  static std::string limit_text(std::uint64_t limit, std::uint64_t configured) {
    return std::to_string(limit) +
           (limit > configured ? ", raised for a reply to the backend's own command" : "");
  }
  // A reply ended (delivered or skipped): the configured limits again.
  void narrow() noexcept {
    if (!widened_) return;
    widened_ = false;
    limits_ = narrow_;
  }

  // The current reply is too large: drop what was built, keep only the counts.
  void begin_skip(std::string why) {
    skipping_ = true;
    report_too_large_ = true;
    message_ = std::move(why);
    for (auto& level : levels_) level.node = nullptr;
    bulk_target_ = nullptr;
    root_ = Reply{};
    cost_ = 0;
    skip_left_ = limits_.max_skip_bytes;
  }

  // Whether the bytes the skipped reply still owes at least (from its declared lengths)
  // exceed the skip budget left.
  bool skip_exceeds_budget() const noexcept {
    std::uint64_t owed = 0;
    if (phase_ == Phase::bulk) {
      if (bulk_left_ > skip_left_) return true;
      owed = bulk_left_ + 2;
    }
    // Each level's open element is the level below (or the bulk above): not counted twice.
    for (const auto& level : levels_) {
      const std::uint64_t others = level.left - 1;
      if (others > (skip_left_ - std::min(owed, skip_left_)) / min_value_bytes) return true;
      owed += others * min_value_bytes;
    }
    return owed > skip_left_;
  }

  ReaderLimits limits_;  // in force: narrow_, or wide_ for a reply allowed them
  ReaderLimits narrow_;  // the configured limits
  ReaderLimits wide_;
  bool (*may_widen_)(void*) = nullptr;
  void* widen_context_ = nullptr;
  bool widened_ = false;
  std::string buf_;  // input; [pos_, size) not consumed yet
  std::size_t pos_ = 0;
  Phase phase_ = Phase::line;
  std::size_t line_scanned_ = 0;  // bytes of the current line (from pos_) searched already
  std::uint64_t bulk_left_ = 0;   // payload bytes of the current bulk string still to come
  Reply* bulk_target_ = nullptr;  // where they go; null while skipping
  std::vector<Level> levels_;     // open arrays, outermost first
  Reply root_;                    // the reply under construction
  std::size_t cost_ = 0;          // its size in ReaderLimits::max_bytes terms
  bool skipping_ = false;
  bool report_too_large_ = false;  // next() owes a Status::too_large
  std::uint64_t skip_left_ = 0;    // skip budget left
  bool failed_ = false;
  std::string message_;
  std::uint64_t work_ = 0;
};

}  // namespace corocache::detail::redis
