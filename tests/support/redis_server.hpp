#pragma once
// A real redis-server child process for tests: on a free 127.0.0.1 port, in a temporary
// directory of its own, without persistence. Tests that need Redis FAIL (with a clear
// message) when redis-server is missing or does not come up; they never skip silently.
//
// Every wait here is bounded: startup waits at most `startup_limit` for PING to answer,
// run() uses a blocking hiredis context with connect and I/O timeouts.

#include <hiredis/hiredis.h>

#include <fcntl.h>
#include <netinet/in.h>
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
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace corocache::test {

class RedisServer {
 public:
  /// Starts redis-server with `extra_args` appended to the defaults (they win over them).
  /// A `--requirepass <pw>` in extra_args is remembered: run() authenticates with it.
  /// Throws std::runtime_error if redis-server is missing or does not answer PING in time.
  explicit RedisServer(std::vector<std::string> extra_args = {}) : extra_args_(std::move(extra_args)) {
    for (std::size_t i = 0; i + 1 < extra_args_.size(); ++i)
      if (extra_args_[i] == "--requirepass") password_ = extra_args_[i + 1];
    char pattern[] = "/tmp/corocache-redis-XXXXXX";
    if (::mkdtemp(pattern) == nullptr)
      throw std::runtime_error(std::string("RedisServer: mkdtemp failed: ") + std::strerror(errno));
    dir_ = pattern;
    // The port is picked by binding to port 0 and released again; another process may take
    // it in between, so a start that fails with "address in use" retries on a new port.
    std::string last_error;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = pick_free_port();
      try {
        start();
        return;
      } catch (const std::runtime_error& e) {
        last_error = e.what();
        kill();
        if (last_error.find("in use") == std::string::npos) break;
      }
    }
    remove_dir();
    throw std::runtime_error(last_error);
  }

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  ~RedisServer() {
    kill();
    remove_dir();
  }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  /// SIGKILL and reap (the process is gone when this returns). No-op when not running.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  /// (Re)starts the server on the same port and waits (bounded) until PING answers.
  void start(std::chrono::milliseconds startup_limit = std::chrono::seconds(10)) {
    kill();
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     log_path(),
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    spawn(args);
    const auto deadline = std::chrono::steady_clock::now() + startup_limit;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        throw std::runtime_error("RedisServer: redis-server exited during startup (port " +
                                 std::to_string(port_) + "): " + log_tail());
      }
      if (ping()) return;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("RedisServer: redis-server did not answer PING within " +
                                 std::to_string(startup_limit.count()) + " ms: " + log_tail());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  /// SIGSTOP: the server keeps its sockets but answers nothing until resume().
  void pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  /// SIGCONT.
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  /// Runs one command synchronously (blocking hiredis context, 5 s connect and I/O timeouts)
  /// and returns the reply as text: strings and status as they are, integers in decimal,
  /// nil as "(nil)", arrays as their elements' texts joined by '\n'.
  /// Throws std::runtime_error on an error reply or I/O failure.
  std::string run(std::vector<std::string> args) const {
    auto ctx = connect_blocking(std::chrono::seconds(5));
    if (!ctx) throw std::runtime_error("RedisServer::run: cannot connect to port " + std::to_string(port_));
    if (!password_.empty()) command(ctx.get(), {"AUTH", password_}, /*hide_args=*/true);
    return command(ctx.get(), args, false);
  }

  /// Sends `commands` in one write, so the server runs them in one pass of its event loop
  /// (nothing of another client's runs in between), and returns their replies as run() does.
  /// Throws as run() does, on the first error reply.
  std::vector<std::string> run_pipelined(const std::vector<std::vector<std::string>>& commands) const {
    auto ctx = connect_blocking(std::chrono::seconds(5));
    if (!ctx)
      throw std::runtime_error("RedisServer::run_pipelined: cannot connect to port " + std::to_string(port_));
    if (!password_.empty()) command(ctx.get(), {"AUTH", password_}, /*hide_args=*/true);
    for (const auto& args : commands) {
      Argv argv(args);
      if (redisAppendCommandArgv(ctx.get(), argv.count(), argv.ptrs.data(), argv.lens.data()) != REDIS_OK)
        throw std::runtime_error("RedisServer::run_pipelined: cannot encode " + args.front());
    }
    std::vector<std::string> texts;
    for (const auto& args : commands) {
      void* raw = nullptr;
      if (redisGetReply(ctx.get(), &raw) != REDIS_OK) raw = nullptr;
      std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
      texts.push_back(text_or_throw(ctx.get(), reply.get(), args.front()));
    }
    return texts;
  }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  struct ReplyDeleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  static std::uint16_t pick_free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("RedisServer: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("RedisServer: cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  std::string log_path() const { return dir_ + "/redis.log"; }

  std::string log_tail() const {
    std::ifstream in(log_path());
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (text.size() > 2000) text = text.substr(text.size() - 2000);
    return text.empty() ? std::string("(empty log)") : text;
  }

  void spawn(const std::vector<std::string>& args) {
    // exec failure is reported through a close-on-exec pipe: EOF means exec succeeded.
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("RedisServer: pipe2 failed");
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // Only the main thread may tie the child's life to its own (PR_SET_PDEATHSIG fires when
    // the creating *thread* exits); from the main thread it keeps crashed tests from leaving
    // servers behind.
    const bool main_thread = ::getpid() == static_cast<pid_t>(::syscall(SYS_gettid));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(report[0]);
      ::close(report[1]);
      throw std::runtime_error("RedisServer: fork failed");
    }
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. Inherited descriptors (test sockets,
      // epoll) must not leak into the server.
      if (main_thread) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);
      }
      ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
      ::execvp(argv[0], argv.data());
      const int err = errno;
      [[maybe_unused]] auto n = ::write(report[1], &err, sizeof err);
      ::_exit(127);
    }
    ::close(report[1]);
    int err = 0;
    ssize_t n;
    while ((n = ::read(report[0], &err, sizeof err)) < 0 && errno == EINTR) {
    }
    ::close(report[0]);
    pid_ = pid;
    if (n > 0) {
      kill();
      throw std::runtime_error(std::string("RedisServer: cannot run redis-server (is it installed and on "
                                           "PATH?): ") +
                               std::strerror(err));
    }
  }

  ContextPtr connect_blocking(std::chrono::milliseconds limit) const {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(limit.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((limit.count() % 1000) * 1000);
    ContextPtr ctx(redisConnectWithTimeout("127.0.0.1", port_, tv));
    if (!ctx || ctx->err) return nullptr;
    if (redisSetTimeout(ctx.get(), tv) != REDIS_OK) return nullptr;
    return ctx;
  }

  bool ping() const {
    auto ctx = connect_blocking(std::chrono::milliseconds(500));
    if (!ctx) return false;
    std::unique_ptr<redisReply, ReplyDeleter> reply(
        static_cast<redisReply*>(redisCommand(ctx.get(), "PING")));
    // Any reply (PONG, or NOAUTH from a password-protected server) means it is serving;
    // "LOADING" errors do not.
    return reply && !(reply->type == REDIS_REPLY_ERROR &&
                      std::string_view(reply->str, reply->len).starts_with("LOADING"));
  }

  static std::string text_of(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
      case REDIS_REPLY_ERROR: return std::string(r->str, r->len);
      case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
      case REDIS_REPLY_NIL: return "(nil)";
      case REDIS_REPLY_ARRAY: {
        std::string out;
        for (std::size_t i = 0; i < r->elements; ++i) {
          if (i) out += '\n';
          out += text_of(r->element[i]);
        }
        return out;
      }
      default: return {};
    }
  }

  /// hiredis' argv form of `args`, pointing into it (`args` must outlive it).
  struct Argv {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    explicit Argv(const std::vector<std::string>& args) {
      for (const auto& a : args) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
      }
    }
    int count() const { return static_cast<int>(ptrs.size()); }
  };

  /// run()'s text of `reply`, or a runtime_error for an error reply or a failed read (null).
  static std::string text_or_throw(redisContext* ctx, const redisReply* reply, const std::string& what) {
    if (reply == nullptr)
      throw std::runtime_error("RedisServer::run " + what + ": I/O error: " + std::string(ctx->errstr));
    if (reply->type == REDIS_REPLY_ERROR)
      throw std::runtime_error("RedisServer::run " + what + ": " + std::string(reply->str, reply->len));
    return text_of(reply);
  }

  std::string command(redisContext* ctx, const std::vector<std::string>& args, bool hide_args) const {
    Argv argv(args);
    std::unique_ptr<redisReply, ReplyDeleter> reply(
        static_cast<redisReply*>(redisCommandArgv(ctx, argv.count(), argv.ptrs.data(), argv.lens.data())));
    return text_or_throw(ctx, reply.get(),
                         hide_args || args.empty() ? std::string("(hidden)") : args.front());
  }

  void remove_dir() noexcept {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::vector<std::string> extra_args_;
  std::string password_;
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

/// One server per test process, started on first use (thread-safe), killed at exit.
inline RedisServer& shared_redis_server() {
  static RedisServer server;
  return server;
}

}  // namespace corocache::test
