#pragma once
// TLS to Redis and to its Sentinels (OpenSSL through boost::asio::ssl). One TlsContext per
// client, built once at startup (the CA bundle and the client certificate are read then), shared
// by every connection the client opens: to the sentinels and to the primary they name.
//
//   auto tls = TlsContext::create({.ca_file = "/etc/redis-tls/ca.crt"});
//   if (!tls) return fail(tls.error().message);   // "cannot load the Redis TLS CA file ..."
//   options.tls = *tls;                           // ClientOptions: every connection uses TLS
//
// Verification: the server's chain must lead to a CA of `ca_file` (or of the system's default
// verify paths when empty), and its certificate must name `server_name` (or, when empty, the
// host of the address dialled: a DNS name is checked against the SAN DNS entries, an IP literal
// against the SAN IP entries). SNI carries the same name unless it is an IP literal (RFC 6066
// allows no IP there). `insecure_skip_verify` turns all of that off: for tests only.
//
// TLS 1.2 is the oldest version offered. A client certificate (`cert_file` + `key_file`, both
// or neither) answers servers started with `tls-auth-clients yes`.

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include "common/result.h"

namespace sticky::proxy::redis {

struct TlsOptions {
  std::string ca_file = {};      // PEM bundle; empty: the system's default verify paths
  std::string server_name = {};  // SNI and the name verified; empty: each address's host
  bool insecure_skip_verify = false;
  std::string cert_file = {};  // client certificate chain (PEM), with key_file
  std::string key_file = {};   // its private key (PEM, unencrypted)
};

class TlsContext {
 public:
  /// Reads the files and builds the OpenSSL context. One sentence per failure, naming the file.
  static Result<std::shared_ptr<TlsContext>> create(const TlsOptions& options);

  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /// The context new streams are made from (OpenSSL's SSL_CTX is safe to share across threads).
  boost::asio::ssl::context& context() const { return context_; }
  const TlsOptions& options() const { return options_; }

  /// Sets SNI and the name to verify on one connection's SSL object, before the handshake.
  Result<Ok> prepare(SSL* ssl, const std::string& host) const;

  /// "certificate verify failed (Hostname mismatch)": the error of a failed handshake, with
  /// OpenSSL's reason for refusing the server's certificate when there is one.
  std::string describeFailure(SSL* ssl, const boost::system::error_code& ec) const;

 private:
  explicit TlsContext(TlsOptions options);

  TlsOptions options_;
  mutable boost::asio::ssl::context context_;
};

}  // namespace sticky::proxy::redis
