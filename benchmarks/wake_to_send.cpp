// An LD_PRELOAD probe that splits a client's round trip at N = 1 into what the client does
// and what it waits for, the same way for every client (corocache, hiredis, Boost.Redis):
//
//   LD_PRELOAD=build/benchmarks/libwake_to_send.so ../peers/bin/hiredis014_bench 6379 get 1 40000
//
// It wraps epoll_wait and the send family. An epoll_wait that blocked (over 5 us) and
// returned events is a wake-up; the time from it to the thread's next send is the client's
// work on the round trip's critical path ("wake->send"), the time from a send to the next
// epoll_wait is its work after the request left ("send->sleep"), and the blocked time is
// the rest of the round trip (the server and both wake-ups). Printed to stderr at exit.
// docs/redis_connection.md, "Another machine", has what it measured.

#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Totals over all threads; a client's I/O thread is the only one that does either.
struct Totals {
  std::atomic<std::uint64_t> wakes{0}, wake_to_send_ns{0};
  std::atomic<std::uint64_t> sends{0}, send_to_sleep_ns{0};
  std::atomic<std::uint64_t> blocked_waits{0}, blocked_ns{0};
} totals;

thread_local std::int64_t woke_at = 0;       // the last wake-up not yet followed by a send
thread_local std::int64_t last_send_at = 0;  // the last send not yet followed by an epoll_wait

constexpr std::int64_t blocked_threshold_ns = 5'000;

void on_send() {
  const auto t = now_ns();
  if (woke_at != 0) {
    totals.wakes.fetch_add(1, std::memory_order_relaxed);
    totals.wake_to_send_ns.fetch_add(static_cast<std::uint64_t>(t - woke_at), std::memory_order_relaxed);
    woke_at = 0;
  }
  last_send_at = t;
}

template <class Fn>
Fn real(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

struct Report {
  ~Report() {
    const auto wakes = totals.wakes.load(), sends = totals.sends.load(),
               blocked = totals.blocked_waits.load();
    if (wakes == 0) return;
    std::fprintf(
        stderr, "wake_to_send: %llu wake-ups; wake->send %.2f us, send->sleep %.2f us, blocked %.2f us\n",
        static_cast<unsigned long long>(wakes), static_cast<double>(totals.wake_to_send_ns) / 1e3 / wakes,
        sends ? static_cast<double>(totals.send_to_sleep_ns) / 1e3 / sends : 0.0,
        blocked ? static_cast<double>(totals.blocked_ns) / 1e3 / blocked : 0.0);
  }
} report;

}  // namespace

extern "C" {

int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  static const auto next = real<int (*)(int, epoll_event*, int, int)>("epoll_wait");
  const auto t0 = now_ns();
  if (last_send_at != 0) {
    totals.sends.fetch_add(1, std::memory_order_relaxed);
    totals.send_to_sleep_ns.fetch_add(static_cast<std::uint64_t>(t0 - last_send_at),
                                      std::memory_order_relaxed);
    last_send_at = 0;
  }
  const int n = next(epfd, events, max, timeout);
  const auto t1 = now_ns();
  if (n > 0 && t1 - t0 > blocked_threshold_ns) {
    woke_at = t1;
    totals.blocked_waits.fetch_add(1, std::memory_order_relaxed);
    totals.blocked_ns.fetch_add(static_cast<std::uint64_t>(t1 - t0), std::memory_order_relaxed);
  }
  return n;
}

ssize_t send(int fd, const void* buf, size_t len, int flags) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t, int)>("send");
  on_send();
  return next(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t to_len) {
  static const auto next =
      real<ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t)>("sendto");
  on_send();
  return next(fd, buf, len, flags, to, to_len);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  static const auto next = real<ssize_t (*)(int, const msghdr*, int)>("sendmsg");
  on_send();
  return next(fd, msg, flags);
}

// write/writev: hiredis writes its socket with write(); stdout and stderr are not sends.
ssize_t write(int fd, const void* buf, size_t len) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
  if (fd > 2) on_send();
  return next(fd, buf, len);
}

ssize_t writev(int fd, const iovec* iov, int count) {
  static const auto next = real<ssize_t (*)(int, const iovec*, int)>("writev");
  if (fd > 2) on_send();
  return next(fd, iov, count);
}

}  // extern "C"
