#pragma once
// A throwaway PKI for TLS tests, made with the openssl CLI in a temporary directory: a CA, a
// server certificate for 127.0.0.1 and localhost signed by it, a client certificate signed by
// it, and an unrelated CA (to be refused with). P-256 keys, valid for two days.
//
//   TestPki pki;
//   RedisServer redis({.tls = RedisTls{pki.server_cert, pki.server_key, pki.ca_cert}});
//   options.tls = TlsContext::create({.ca_file = pki.ca_cert}).value();
//
// Test-only code: failures throw std::runtime_error (doctest reports them).

#include <string>
#include <vector>

#include "support/process.h"

namespace sticky::test {

class TestPki {
 public:
  TestPki();

 private:
  TempDir dir_;  // first: the paths below are made from it

 public:
  std::string ca_cert;
  std::string ca_key;
  std::string server_cert;  // SAN IP:127.0.0.1, DNS:localhost
  std::string server_key;
  std::string client_cert;  // CN=sticky-proxy
  std::string client_key;
  std::string other_ca_cert;  // a CA that signed none of the above

 private:
  void run(const std::vector<std::string>& args);
  void issue(const std::string& name, const std::string& subject, const std::string& extensions);
};

}  // namespace sticky::test
