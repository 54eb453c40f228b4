#pragma once
// Building blocks shared by the topology fixtures (redis_cluster.hpp, redis_sentinel.hpp,
// redis_tls.hpp): a temporary directory, free loopback ports, a child process that is
// killed and reaped with its owner, a bounded "run this command and capture its output",
// a blocking hiredis client with timeouts, and polling with a deadline. Same approach as
// redis_server.hpp (which the cluster and sentinel fixtures reuse for their data nodes).
//
// Nothing here waits without a limit; a missing binary is an exception, never a skip.

#include <hiredis/hiredis.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace corocache::test {

/// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view tag) {
    std::string pattern = "/tmp/corocache-" + std::string(tag) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("TempDir: mkdtemp failed: " + std::string(std::strerror(errno)));
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
/// `avoid` lists ports already handed out to the same fixture.
inline std::uint16_t free_loopback_port(const std::vector<std::uint16_t>& avoid = {}) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("free_loopback_port: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("free_loopback_port: cannot bind to 127.0.0.1:0");
    const std::uint16_t port = ntohs(addr.sin_port);
    bool taken = false;
    for (auto p : avoid) taken = taken || p == port;
    if (!taken) return port;
  }
  throw std::runtime_error("free_loopback_port: no new free port found");
}

/// Text of a whole file ("" when it cannot be read); at most the last `tail` bytes.
inline std::string read_file_tail(const std::string& path, std::size_t tail = 2000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > tail) text = text.substr(text.size() - tail);
  return text;
}

namespace process_detail {

/// fork + exec of argv with stdout/stderr to `out_fd` (or /dev/null when -1). exec failure
/// comes back through a close-on-exec pipe; returns the pid. The child dies with the
/// creating thread when that is the main thread (PR_SET_PDEATHSIG), so a crashed test leaves
/// no servers behind.
inline pid_t spawn(const std::vector<std::string>& args, int out_fd) {
  if (args.empty()) throw std::invalid_argument("spawn: empty argv");
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("spawn: pipe2 failed");
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const bool main_thread = ::getpid() == static_cast<pid_t>(::syscall(SYS_gettid));
  const pid_t parent = ::getpid();
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(report[0]);
    ::close(report[1]);
    if (devnull >= 0) ::close(devnull);
    throw std::runtime_error("spawn: fork failed");
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    if (main_thread) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    const int sink = out_fd >= 0 ? out_fd : devnull;
    if (devnull >= 0) ::dup2(devnull, 0);
    if (sink >= 0) {
      ::dup2(sink, 1);
      ::dup2(sink, 2);
    }
    ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    ::execvp(argv[0], argv.data());
    const int err = errno;
    [[maybe_unused]] auto n = ::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  if (devnull >= 0) ::close(devnull);
  int err = 0;
  ssize_t n;
  while ((n = ::read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n > 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error("cannot run " + args.front() +
                             " (is it installed and on PATH?): " + std::strerror(err));
  }
  return pid;
}

inline void kill_and_reap(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid = -1;
}

}  // namespace process_detail

/// A long-running child process (a sentinel, a TLS server), SIGKILLed and reaped on
/// destruction. Its output goes to /dev/null (servers here log to a file of their own).
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(const std::vector<std::string>& args) : pid_(process_detail::spawn(args, -1)) {}
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept {
    if (this != &o) {
      kill();
      pid_ = o.pid_;
      o.pid_ = -1;
    }
    return *this;
  }
  ~ChildProcess() { kill(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  /// SIGKILL and reap; the process is gone when this returns.
  void kill() { process_detail::kill_and_reap(pid_); }
  void pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }
  /// True once the process has exited by itself (it is reaped then).
  bool exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
};

/// Result of run_command: exit status (-1: killed at the deadline) and stdout+stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;
  bool ok() const { return exit_code == 0; }
};

/// Runs `args` to completion with stdout and stderr captured, killing it after `limit`.
/// Throws when the program cannot be started.
inline CommandResult run_command(const std::vector<std::string>& args,
                                 std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("run_command: pipe2 failed");
  pid_t pid = -1;
  try {
    pid = process_detail::spawn(args, out[1]);
  } catch (...) {
    ::close(out[0]);
    ::close(out[1]);
    throw;
  }
  ::close(out[1]);
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool timed_out = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{out[0], POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // timeout: the loop head notices
    char buf[4096];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the program closed its output (normally: it exited)
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) {
    process_detail::kill_and_reap(pid);
    result.exit_code = -1;
    result.output += "\n(killed after " + std::to_string(limit.count()) + " ms)";
    return result;
  }
  // Output closed; the exit follows at once (bounded anyway: a child that closed its
  // descriptors and lingers is killed at the deadline).
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return result;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      process_detail::kill_and_reap(pid);
      result.exit_code = -1;
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

/// As run_command, throwing (with the output in the message) unless it exits with 0.
inline std::string run_command_ok(const std::vector<std::string>& args,
                                  std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto r = run_command(args, limit);
  if (!r.ok())
    throw std::runtime_error(args.front() + " " + (args.size() > 1 ? args[1] : "") + " failed (exit " +
                             std::to_string(r.exit_code) + "): " + r.output);
  return r.output;
}

/// Polls `done` every `step` until it holds or `limit` passes; returns whether it held.
inline bool poll_until(const std::function<bool()>& done, std::chrono::milliseconds limit,
                       std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

/// One reply of SyncClient, as text (strings, status and errors as they are, integers in
/// decimal, nil as "(nil)") plus its nested elements for arrays.
struct SyncReply {
  int type = REDIS_REPLY_NIL;
  std::string text;
  std::vector<SyncReply> elements;
  bool is_error() const { return type == REDIS_REPLY_ERROR; }
  bool is_nil() const { return type == REDIS_REPLY_NIL; }
};

/// A blocking hiredis client on host:port with connect and I/O timeouts, for fixtures and
/// their tests (not for the library under test). Plain TCP only.
class SyncClient {
 public:
  SyncClient(std::string host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(3))
      : host_(std::move(host)), port_(port) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ctx_.reset(redisConnectWithTimeout(host_.c_str(), port_, tv));
    if (!ctx_ || ctx_->err || redisSetTimeout(ctx_.get(), tv) != REDIS_OK)
      throw std::runtime_error("SyncClient: cannot connect to " + host_ + ":" + std::to_string(port_) +
                               (ctx_ ? ": " + std::string(ctx_->errstr) : std::string()));
  }

  /// Sends one command and returns its reply (error replies included). Throws on I/O errors.
  SyncReply command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!reply)
      throw std::runtime_error("SyncClient " + host_ + ":" + std::to_string(port_) + " " +
                               (args.empty() ? std::string() : args.front()) +
                               ": I/O error: " + ctx_->errstr);
    return convert(reply.get());
  }

  /// As command(), throwing on an error reply.
  SyncReply ok(const std::vector<std::string>& args) {
    auto r = command(args);
    if (r.is_error())
      throw std::runtime_error("SyncClient " + std::to_string(port_) + " " + args.front() + ": " + r.text);
    return r;
  }

  /// One-shot: connect, run one command, return the reply (throws on connect/I/O error).
  static SyncReply once(std::uint16_t port, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
    SyncClient c("127.0.0.1", port, timeout);
    return c.command(args);
  }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  struct ReplyDeleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
  };

  static SyncReply convert(const redisReply* r) {
    SyncReply out;
    out.type = r->type;
    switch (r->type) {
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
      case REDIS_REPLY_ERROR: out.text.assign(r->str, r->len); break;
      case REDIS_REPLY_INTEGER: out.text = std::to_string(r->integer); break;
      case REDIS_REPLY_NIL: out.text = "(nil)"; break;
      case REDIS_REPLY_ARRAY:
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
        break;
      default: break;
    }
    return out;
  }

  std::string host_;
  std::uint16_t port_;
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
};

/// The value of `field` in an INFO-style text ("field:value" lines); "" when absent.
inline std::string info_field(std::string_view info, std::string_view field) {
  std::size_t pos = 0;
  while (pos < info.size()) {
    auto end = info.find('\n', pos);
    if (end == std::string_view::npos) end = info.size();
    auto line = info.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':')
      return std::string(line.substr(field.size() + 1));
    pos = end + 1;
  }
  return {};
}

}  // namespace corocache::test
