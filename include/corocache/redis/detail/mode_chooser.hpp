#pragma once
// Chooses between two ways of doing the same thing by measuring both on the machine at
// hand (I/O-free; the connection's reply waits and its write batching use it). Which way is
// faster is a property of the machine at that moment (how fast it wakes a sleeping thread,
// how busy its cores are), not of the code, so neither can be fixed in advance.
//
// Rounds run in epochs: a run of `min_run`..`max_run` rounds in the current choice, then an
// exploration of `explore` rounds in the other. After each exploration the two epochs'
// mean cost per unit (e.g. nanoseconds per reply) are compared and the other choice takes
// over if it was better by its margin. Every exploration that loses doubles the next run,
// so a choice that does not pay costs at most `explore` rounds in `max_run + explore` once
// things settle; a switch resets the run to `min_run`. Only the newest epoch of each choice
// counts: an old measurement of the other choice says little about the machine now.
// docs/redis_connection.md, "Adaptive choices", has the reasoning and the measurements.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

namespace corocache::detail::redis {

class ModeChooser {
 public:
  using Nanos = std::chrono::nanoseconds;
  enum class Choice : std::uint8_t { first, second };

  struct Config {
    std::uint32_t min_run = 32;
    std::uint32_t max_run = 4096;
    std::uint32_t explore = 8;
    /// `first` replaces `second` when its cost is below `second`'s times this, and
    /// `second` replaces `first` when below `first`'s times `second_margin`. A margin under
    /// 1 asks for a clear win (e.g. 0.9: 10% better); over 1 lets a tie go that way.
    double first_margin = 1.0;
    double second_margin = 1.0;
  };

  explicit ModeChooser(Config config, Choice initial = Choice::first) noexcept
      : config_(config), best_(initial), run_(config.min_run) {}

  /// The choice for the current round, and the one that measured better so far.
  Choice current() const noexcept { return exploring_ ? other(best_) : best_; }
  Choice best() const noexcept { return best_; }

  /// The current round ended: it cost `cost` and did `units` of work (zero is allowed:
  /// the cost still counts, e.g. a wait that brought no complete reply). `failed`: the
  /// round did not do what its choice is for (e.g. a poll that ran out); an epoch in which
  /// most rounds failed cannot win, however its costs compare.
  void record(Nanos cost, std::uint64_t units, bool failed = false) noexcept {
    epoch_cost_ += std::max(cost, Nanos::zero());
    epoch_units_ += units;
    epoch_failed_ += failed ? 1 : 0;
    if (++epoch_rounds_ >= (exploring_ ? config_.explore : run_)) finish_epoch();
  }

  /// Mean cost per unit of the newest epoch of `c` (nanoseconds; negative: not measured;
  /// infinite: most of its rounds failed).
  double estimate(Choice c) const noexcept { return estimate_[index(c)]; }

 private:
  static constexpr int index(Choice c) noexcept { return c == Choice::first ? 0 : 1; }
  static constexpr Choice other(Choice c) noexcept {
    return c == Choice::first ? Choice::second : Choice::first;
  }

  bool beats(Choice candidate) const noexcept {
    const double mine = estimate(candidate), theirs = estimate(other(candidate));
    if (mine < 0) return false;
    if (theirs < 0) return true;
    return mine < theirs * (candidate == Choice::first ? config_.first_margin : config_.second_margin);
  }

  void finish_epoch() noexcept {
    estimate_[index(current())] = 2 * epoch_failed_ > epoch_rounds_
                                      ? std::numeric_limits<double>::infinity()
                                      : static_cast<double>(epoch_cost_.count()) /
                                            static_cast<double>(std::max<std::uint64_t>(epoch_units_, 1));
    epoch_cost_ = Nanos::zero();
    epoch_failed_ = 0;
    epoch_units_ = 0;
    epoch_rounds_ = 0;
    if (!exploring_) {  // after every run in the current choice, a short one in the other
      exploring_ = true;
      return;
    }
    exploring_ = false;
    if (beats(other(best_))) {
      best_ = other(best_);
      run_ = config_.min_run;
    } else {
      run_ = std::min(run_ * 2, config_.max_run);
    }
  }

  Config config_;
  Choice best_;
  bool exploring_ = false;
  std::uint32_t run_;
  std::uint32_t epoch_rounds_ = 0;
  std::uint32_t epoch_failed_ = 0;
  Nanos epoch_cost_{};
  std::uint64_t epoch_units_ = 0;
  double estimate_[2] = {-1.0, -1.0};
};

}  // namespace corocache::detail::redis
