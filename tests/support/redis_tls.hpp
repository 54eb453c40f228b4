#pragma once
// A real TLS-only redis-server on loopback for tests, with certificates the fixture makes
// itself with the `openssl` command (EC P-256 keys: fast to generate):
//   - a test CA (ca.crt/ca.key) and the same CA in a hashed directory (ca-dir/, the form
//     OpenSSL's CApath expects),
//   - a server certificate signed by it with SAN DNS:localhost and IP:127.0.0.1,
//   - a client certificate signed by it (for --tls-auth-clients yes/optional),
//   - a second, unrelated CA (other-ca.crt) and a server certificate signed by it, for
//     "wrong CA" tests.
// The server listens only on --tls-port (--port 0); clients may present a certificate
// (--tls-auth-clients optional by default).
//
// Every wait is bounded; a missing openssl, redis-server or redis-cli is an exception.

#include "redis_process.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corocache::test {

/// The certificate set described above, generated into `dir`.
struct TestCertificates {
  std::string ca_cert, ca_key, ca_dir;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string other_ca_cert, other_ca_key;
  std::string other_server_cert, other_server_key;  ///< signed by the other CA
  /// The names the server certificate is valid for.
  static constexpr const char* server_dns_name = "localhost";
  static constexpr const char* server_ip = "127.0.0.1";

  static TestCertificates generate(const std::string& dir) {
    TestCertificates c;
    auto path = [&](const char* name) { return dir + "/" + name; };
    c.ca_cert = path("ca.crt");
    c.ca_key = path("ca.key");
    c.ca_dir = path("ca-dir");
    c.server_cert = path("server.crt");
    c.server_key = path("server.key");
    c.client_cert = path("client.crt");
    c.client_key = path("client.key");
    c.other_ca_cert = path("other-ca.crt");
    c.other_ca_key = path("other-ca.key");
    c.other_server_cert = path("other-server.crt");
    c.other_server_key = path("other-server.key");

    make_ca(c.ca_cert, c.ca_key, "corocache test CA");
    make_ca(c.other_ca_cert, c.other_ca_key, "corocache unrelated CA");
    write(path("server.ext"),
          "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
          "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n");
    write(path("client.ext"),
          "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage="
          "clientAuth\n");
    make_leaf(dir, c.server_cert, c.server_key, "localhost", c.ca_cert, c.ca_key, path("server.ext"));
    make_leaf(dir, c.client_cert, c.client_key, "corocache test client", c.ca_cert, c.ca_key,
              path("client.ext"));
    make_leaf(dir, c.other_server_cert, c.other_server_key, "localhost", c.other_ca_cert, c.other_ca_key,
              path("server.ext"));

    // CApath form: the CA under its subject hash (what `openssl rehash` would create).
    std::filesystem::create_directories(c.ca_dir);
    auto hash = run_command_ok({"openssl", "x509", "-noout", "-subject_hash", "-in", c.ca_cert});
    while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
    std::filesystem::copy_file(c.ca_cert, c.ca_dir + "/" + hash + ".0");
    return c;
  }

 private:
  static void write(const std::string& file, const std::string& text) {
    std::ofstream out(file, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("TestCertificates: cannot write " + file);
  }
  static std::vector<std::string> ec_key_args() {
    return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
  }
  static void make_ca(const std::string& cert, const std::string& key, const std::string& cn) {
    std::vector<std::string> args = {"openssl", "req", "-x509", "-new"};
    const auto k = ec_key_args();
    args.insert(args.end(), k.begin(), k.end());
    args.insert(args.end(), {"-keyout", key, "-out", cert, "-days", "3", "-subj", "/CN=" + cn});
    run_command_ok(args);
  }
  static void make_leaf(const std::string& dir, const std::string& cert, const std::string& key,
                        const std::string& cn, const std::string& ca_cert, const std::string& ca_key,
                        const std::string& ext) {
    const std::string csr = cert + ".csr";
    std::vector<std::string> args = {"openssl", "req", "-new"};
    const auto k = ec_key_args();
    args.insert(args.end(), k.begin(), k.end());
    args.insert(args.end(), {"-keyout", key, "-out", csr, "-subj", "/CN=" + cn});
    run_command_ok(args);
    run_command_ok({"openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                    "-CAcreateserial", "-CAserial",
                    dir + "/serial-" + std::filesystem::path(cert).stem().string(), "-out", cert, "-days",
                    "3", "-extfile", ext});
  }
};

class RedisTlsServer {
 public:
  struct Options {
    /// --tls-auth-clients: "optional" (a client certificate is checked if presented),
    /// "yes" (required) or "no".
    std::string auth_clients = "optional";
    std::vector<std::string> extra_args;
    std::chrono::milliseconds startup_limit{15000};
  };

  RedisTlsServer() : RedisTlsServer(Options{}) {}
  explicit RedisTlsServer(Options options)
      : options_(std::move(options)), dir_("tls"), certs_(TestCertificates::generate(dir_.path())) {
    std::string last_error;
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = free_loopback_port();
      try {
        start();
        return;
      } catch (const std::runtime_error& e) {
        last_error = e.what();
        process_.kill();
      }
    }
    throw std::runtime_error(last_error);
  }

  RedisTlsServer(const RedisTlsServer&) = delete;
  RedisTlsServer& operator=(const RedisTlsServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// rediss://localhost:<port> (the name the server certificate is valid for).
  std::string url() const { return "rediss://localhost:" + std::to_string(port_); }
  const TestCertificates& certs() const { return certs_; }
  const std::string& ca_file() const { return certs_.ca_cert; }
  const std::string& ca_dir() const { return certs_.ca_dir; }
  const std::string& client_cert() const { return certs_.client_cert; }
  const std::string& client_key() const { return certs_.client_key; }
  const std::string& other_ca_file() const { return certs_.other_ca_cert; }
  const std::string& dir() const { return dir_.path(); }
  bool running() const { return process_.running(); }

  void kill() { process_.kill(); }
  void pause() { process_.pause(); }
  void resume() { process_.resume(); }

  /// (Re)starts the server on its port; waits (bounded) until a TLS PING answers.
  void start() {
    process_.kill();
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     "0",
                                     "--tls-port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--tls-cert-file",
                                     certs_.server_cert,
                                     "--tls-key-file",
                                     certs_.server_key,
                                     "--tls-ca-cert-file",
                                     certs_.ca_cert,
                                     "--tls-auth-clients",
                                     options_.auth_clients,
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_.path(),
                                     "--logfile",
                                     log_path(),
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    process_ = ChildProcess(args);
    std::string last;
    const bool up = poll_until(
        [&] {
          if (process_.exited()) return true;
          // With the client certificate: the probe must pass with --tls-auth-clients yes too.
          auto r = cli({"PING"}, std::chrono::seconds(2), /*with_client_cert=*/true);
          last = r.output;
          return r.ok() && r.output.find("PONG") != std::string::npos;
        },
        options_.startup_limit, std::chrono::milliseconds(50));
    if (!process_.running())
      throw std::runtime_error("RedisTlsServer: redis-server exited during startup (port " +
                               std::to_string(port_) + "): " + read_file_tail(log_path()));
    if (!up)
      throw std::runtime_error("RedisTlsServer: no TLS PONG within " +
                               std::to_string(options_.startup_limit.count()) + " ms: " + last +
                               read_file_tail(log_path()));
  }

  /// redis-cli over TLS trusting the test CA, with the client certificate when
  /// `with_client_cert`; `args` is the command (e.g. {"SET", "k", "v"}).
  CommandResult cli(const std::vector<std::string>& args,
                    std::chrono::milliseconds limit = std::chrono::seconds(5), bool with_client_cert = false,
                    const std::string& ca = {}) const {
    std::vector<std::string> cmd = {"redis-cli", "--tls",     "--cacert", ca.empty() ? certs_.ca_cert : ca,
                                    "-h",        "127.0.0.1", "-p",       std::to_string(port_)};
    if (with_client_cert) cmd.insert(cmd.end(), {"--cert", certs_.client_cert, "--key", certs_.client_key});
    cmd.insert(cmd.end(), args.begin(), args.end());
    return run_command(cmd, limit);
  }

  std::string log_path() const { return dir_.file("redis.log"); }

 private:
  Options options_;
  TempDir dir_;
  TestCertificates certs_;
  std::uint16_t port_ = 0;
  ChildProcess process_;
};

}  // namespace corocache::test
