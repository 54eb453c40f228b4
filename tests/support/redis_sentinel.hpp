#pragma once
// A real Sentinel deployment on loopback for tests: one primary and one replica (RedisServer
// children) watched by three sentinels (`redis-server <config> --sentinel`, each with a
// generated config in a temporary directory), quorum 2, and short timeouts
// (down-after-milliseconds 1000, failover-timeout 3000) so a failover completes in a few
// seconds. The constructor returns once every sentinel knows the replica and the other
// sentinels (without that a failover cannot be authorised) and the replica is in sync.
//
// Every wait is bounded; a missing redis-server is an exception, never a skip.

#include "redis_process.hpp"
#include "redis_server.hpp"
#include "redis_tls.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corocache::test {

class RedisSentinelGroup {
 public:
  struct Options {
    std::string master_name = "corocache-primary";
    int sentinels = 3;
    int quorum = 2;
    std::chrono::milliseconds down_after{1000};
    std::chrono::milliseconds failover_timeout{3000};
    std::chrono::milliseconds startup_limit{30000};
    /// Non-null: data nodes and sentinels also listen with TLS (data_tls_port(i),
    /// sentinel_tls_port(i)); replication and every sentinel link use TLS, so sentinels
    /// report the primary's TLS port. Plain ports stay open for the fixture's own commands.
    /// Must outlive the group.
    const TestCertificates* tls = nullptr;
  };

  RedisSentinelGroup() : RedisSentinelGroup(Options{}) {}
  explicit RedisSentinelGroup(Options options) : options_(std::move(options)), dir_("sentinel") {
    const auto deadline = std::chrono::steady_clock::now() + options_.startup_limit;
    const std::vector<std::string> common = {"--repl-diskless-sync-delay", "0", "--appendonly", "no"};
    auto args_of = [&](std::size_t i) {
      auto args = common;
      if (!options_.tls) return args;
      tls_ports_.push_back(free_loopback_port(tls_ports_));
      const auto& c = *options_.tls;
      args.insert(args.end(), {"--tls-port", std::to_string(tls_ports_[i]), "--tls-cert-file", c.server_cert,
                               "--tls-key-file", c.server_key, "--tls-ca-cert-file", c.ca_cert,
                               "--tls-client-cert-file", c.client_cert, "--tls-client-key-file", c.client_key,
                               "--tls-auth-clients", "optional", "--tls-replication", "yes"});
      return args;
    };
    data_.push_back(std::make_unique<RedisServer>(args_of(0)));
    auto replica_args = args_of(1);
    replica_args.insert(replica_args.end(), {"--replicaof", "127.0.0.1", std::to_string(monitored_port(0))});
    data_.push_back(std::make_unique<RedisServer>(replica_args));
    for (int i = 0; i < options_.sentinels; ++i) sentinels_.push_back(start_sentinel(i, remaining(deadline)));

    std::string error;
    const bool ok = poll_until(
        [&] {
          try {
            const auto repl = SyncClient::once(data_[1]->port(), {"INFO", "replication"}).text;
            if (info_field(repl, "master_link_status") != "up") {
              error = "the replica is not in sync with the primary";
              return false;
            }
            for (std::size_t s = 0; s < sentinels_.size(); ++s) {
              SyncClient c("127.0.0.1", sentinels_[s].port);
              const auto others = c.ok({"SENTINEL", "SENTINELS", options_.master_name}).elements.size();
              const auto replicas = c.ok({"SENTINEL", "REPLICAS", options_.master_name}).elements.size();
              if (others + 1 != sentinels_.size() || replicas != 1) {
                error = "sentinel " + std::to_string(s) + " knows " + std::to_string(others) +
                        " other sentinels and " + std::to_string(replicas) + " replicas";
                return false;
              }
            }
            return true;
          } catch (const std::exception& e) {
            error = e.what();
            return false;
          }
        },
        remaining(deadline), std::chrono::milliseconds(50));
    if (!ok) throw std::runtime_error("RedisSentinelGroup: not ready: " + error + sentinel_logs());
  }

  RedisSentinelGroup(const RedisSentinelGroup&) = delete;
  RedisSentinelGroup& operator=(const RedisSentinelGroup&) = delete;
  ~RedisSentinelGroup() {
    for (auto& s : sentinels_) s.process.kill();
  }

  const std::string& master_name() const { return options_.master_name; }
  std::size_t sentinel_count() const { return sentinels_.size(); }
  std::uint16_t sentinel_port(std::size_t i) const { return sentinels_.at(i).port; }
  /// TLS ports (Options::tls set; else 0).
  std::uint16_t sentinel_tls_port(std::size_t i) const { return sentinels_.at(i).tls_port; }
  std::uint16_t data_tls_port(std::size_t i) const { return options_.tls ? tls_ports_.at(i) : 0; }
  /// rediss+sentinel://127.0.0.1:t1,.../<master name> over the sentinels' TLS ports.
  std::string tls_url() const {
    std::string u = "rediss+sentinel://";
    for (std::size_t i = 0; i < sentinels_.size(); ++i)
      u += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(sentinels_[i].tls_port);
    return u + "/" + options_.master_name;
  }
  /// "127.0.0.1:port" of every sentinel.
  std::vector<std::string> sentinel_addresses() const {
    std::vector<std::string> out;
    for (const auto& s : sentinels_) out.push_back("127.0.0.1:" + std::to_string(s.port));
    return out;
  }
  /// redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<master name>
  std::string url() const {
    std::string u = "redis+sentinel://";
    const auto a = sentinel_addresses();
    for (std::size_t i = 0; i < a.size(); ++i) u += (i ? "," : "") + a[i];
    return u + "/" + options_.master_name;
  }

  /// The data nodes: 0 started as the primary, 1 as its replica (roles swap on failover).
  std::size_t data_count() const { return data_.size(); }
  RedisServer& data_node(std::size_t i) { return *data_.at(i); }

  /// The primary's port as the first answering sentinel reports it.
  std::uint16_t primary_port() const {
    std::string error;
    for (const auto& s : sentinels_) {
      if (!s.process.running()) continue;
      try {
        const auto r =
            SyncClient::once(s.port, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master_name});
        if (r.elements.size() == 2)
          return data_[index_of_port(static_cast<std::uint16_t>(std::stoi(r.elements[1].text)))]->port();
        error = "no address for " + options_.master_name;
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    throw std::runtime_error("RedisSentinelGroup: no sentinel reports a primary: " + error);
  }
  /// Index of the data node sentinels report as the primary.
  std::size_t primary_index() const { return index_of_port(primary_port()); }

  /// What sentinels report as the primary's port: its TLS port with Options::tls.
  std::uint16_t reported_primary_port() const { return monitored_port(primary_index()); }

  /// SIGKILLs the current primary; returns its index.
  std::size_t kill_primary() {
    const std::size_t i = primary_index();
    data_[i]->kill();
    return i;
  }
  void kill_sentinel(std::size_t i) { sentinels_.at(i).process.kill(); }
  void pause_sentinel(std::size_t i) { sentinels_.at(i).process.pause(); }
  void resume_sentinel(std::size_t i) { sentinels_.at(i).process.resume(); }

  /// Waits until every running sentinel reports a primary other than the one on
  /// `old_primary_port` (its plain port, as primary_port() gives it) and that node's ROLE is
  /// master. Returns the time it took.
  std::chrono::milliseconds wait_for_failover(std::uint16_t old_primary_port,
                                              std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto start = std::chrono::steady_clock::now();
    std::string error;
    const bool ok = poll_until(
        [&] {
          try {
            std::optional<std::string> reported;
            for (const auto& s : sentinels_) {
              if (!s.process.running()) continue;
              const auto r =
                  SyncClient::once(s.port, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master_name});
              if (r.elements.size() != 2 ||
                  data_[index_of_port(static_cast<std::uint16_t>(std::stoi(r.elements[1].text)))]->port() ==
                      old_primary_port) {
                error = "a sentinel still reports the old primary";
                return false;
              }
              if (reported && *reported != r.elements[1].text) {
                error = "sentinels disagree on the new primary";
                return false;
              }
              reported = r.elements[1].text;
            }
            if (!reported) {
              error = "no sentinel running";
              return false;
            }
            const auto node = index_of_port(static_cast<std::uint16_t>(std::stoi(*reported)));
            const auto role = SyncClient::once(data_[node]->port(), {"ROLE"});
            if (role.elements.empty() || role.elements[0].text != "master") {
              error = "the new primary does not say ROLE master yet";
              return false;
            }
            return true;
          } catch (const std::exception& e) {
            error = e.what();
            return false;
          }
        },
        limit, std::chrono::milliseconds(50));
    if (!ok)
      throw std::runtime_error("RedisSentinelGroup: no failover within " + std::to_string(limit.count()) +
                               " ms: " + error + sentinel_logs());
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  }

 private:
  struct Sentinel {
    std::uint16_t port = 0;
    std::uint16_t tls_port = 0;
    std::string dir;
    ChildProcess process;
  };

  static std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(1));
  }

  /// The port sentinels monitor and report for data node i (TLS or plain).
  std::uint16_t monitored_port(std::size_t i) const {
    return options_.tls ? tls_ports_.at(i) : data_.at(i)->port();
  }

  /// Data node by its plain or TLS port.
  std::size_t index_of_port(std::uint16_t p) const {
    for (std::size_t i = 0; i < data_.size(); ++i)
      if (data_[i]->port() == p || (options_.tls && tls_ports_.at(i) == p)) return i;
    throw std::runtime_error("RedisSentinelGroup: port " + std::to_string(p) +
                             " is not one of the data nodes");
  }

  /// Writes sentinel i's config (sentinels rewrite their config file: it must be theirs and
  /// writable) and starts it; retries on a new port when the chosen one was taken meanwhile.
  Sentinel start_sentinel(int i, std::chrono::milliseconds limit) {
    const std::string dir = dir_.file("sentinel-" + std::to_string(i));
    std::filesystem::create_directories(dir);
    std::string last_error;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::vector<std::uint16_t> avoid;
      for (const auto& s : sentinels_) avoid.insert(avoid.end(), {s.port, s.tls_port});
      avoid.insert(avoid.end(), tls_ports_.begin(), tls_ports_.end());
      Sentinel s;
      s.port = free_loopback_port(avoid);
      if (options_.tls) {
        avoid.push_back(s.port);
        s.tls_port = free_loopback_port(avoid);
      }
      s.dir = dir;
      const std::string conf = dir + "/sentinel.conf";
      {
        std::ofstream out(conf, std::ios::trunc);
        const auto& m = options_.master_name;
        out << "port " << s.port << "\nbind 127.0.0.1\ndir " << dir << "\nlogfile " << dir
            << "/sentinel.log\n"
            << "sentinel monitor " << m << " 127.0.0.1 " << monitored_port(0) << ' ' << options_.quorum
            << '\n'
            << "sentinel down-after-milliseconds " << m << ' ' << options_.down_after.count() << '\n'
            << "sentinel failover-timeout " << m << ' ' << options_.failover_timeout.count() << '\n'
            << "sentinel parallel-syncs " << m << " 1\n";
        if (options_.tls) {
          const auto& c = *options_.tls;
          out << "tls-port " << s.tls_port << "\ntls-cert-file " << c.server_cert << "\ntls-key-file "
              << c.server_key << "\ntls-ca-cert-file " << c.ca_cert << "\ntls-client-cert-file "
              << c.client_cert << "\ntls-client-key-file " << c.client_key
              << "\ntls-auth-clients optional\ntls-replication yes\n";
        }
        if (!out) throw std::runtime_error("RedisSentinelGroup: cannot write " + conf);
      }
      s.process = ChildProcess({"redis-server", conf, "--sentinel"});
      const bool up = poll_until(
          [&] {
            if (s.process.exited()) return true;
            try {
              return SyncClient::once(s.port, {"PING"}, std::chrono::milliseconds(500)).text == "PONG";
            } catch (const std::exception&) {
              return false;
            }
          },
          limit);
      if (up && s.process.running()) return s;
      last_error = read_file_tail(dir + "/sentinel.log");
      s.process.kill();
    }
    throw std::runtime_error("RedisSentinelGroup: sentinel " + std::to_string(i) +
                             " did not start: " + last_error);
  }

  std::string sentinel_logs() const {
    std::string out;
    for (std::size_t i = 0; i < sentinels_.size(); ++i)
      out += "\n--- sentinel " + std::to_string(i) + " log:\n" +
             read_file_tail(sentinels_[i].dir + "/sentinel.log", 600);
    return out;
  }

  Options options_;
  TempDir dir_;
  std::vector<std::unique_ptr<RedisServer>> data_;
  std::vector<Sentinel> sentinels_;
  std::vector<std::uint16_t> tls_ports_;  // of the data nodes
};

}  // namespace corocache::test
