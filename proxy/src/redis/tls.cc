#include "redis/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

namespace sticky::proxy::redis {

namespace ssl = boost::asio::ssl;

namespace {

// Opening first gives "No such file or directory" rather than OpenSSL's "system lib".
Result<Ok> readable(const std::string& path, const std::string& what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return fail("cannot read the Redis TLS " + what + " " + path + ": " + std::strerror(errno));
  std::fclose(f);
  return Ok{};
}

// OpenSSL's reason, or the system's, for the last failure.
std::string reason(const boost::system::error_code& ec) {
  std::string text = ec.message();
  return text.empty() ? "unknown error" : text;
}

bool isIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

TlsContext::TlsContext(TlsOptions options)
    : options_(std::move(options)), context_(ssl::context::tls_client) {}

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return fail("a Redis TLS client certificate needs both a certificate file and a key file");
  }
  std::shared_ptr<TlsContext> tls(new TlsContext(options));
  ssl::context& ctx = tls->context_;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  boost::system::error_code ec;
  if (options.insecure_skip_verify) {
    ctx.set_verify_mode(ssl::verify_none, ec);
  } else {
    ctx.set_verify_mode(ssl::verify_peer, ec);
    if (options.ca_file.empty()) {
      ctx.set_default_verify_paths(ec);
      if (ec) return fail("cannot load the system's default CA certificates: " + reason(ec));
    } else {
      if (auto ok = readable(options.ca_file, "CA file"); !ok) return unexpected(ok.error());
      ctx.load_verify_file(options.ca_file, ec);
      if (ec) {
        return fail("cannot load the Redis TLS CA file " + options.ca_file + ": " + reason(ec) +
                    "; it must hold PEM certificates");
      }
    }
  }
  if (!options.cert_file.empty()) {
    if (auto ok = readable(options.cert_file, "certificate file"); !ok)
      return unexpected(ok.error());
    if (auto ok = readable(options.key_file, "key file"); !ok) return unexpected(ok.error());
    ctx.use_certificate_chain_file(options.cert_file, ec);
    if (ec) {
      return fail("cannot load the Redis TLS client certificate " + options.cert_file + ": " +
                  reason(ec) + "; it must be a PEM certificate chain");
    }
    ctx.use_private_key_file(options.key_file, ssl::context::pem, ec);
    if (ec && reason(ec) == "key values mismatch") {
      return fail("the Redis TLS client key " + options.key_file +
                  " does not belong to the certificate " + options.cert_file);
    }
    if (ec) {
      return fail("cannot load the Redis TLS client key " + options.key_file + ": " + reason(ec) +
                  "; it must be an unencrypted PEM private key");
    }
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {  // (OpenSSL 3 checks above)
      ERR_clear_error();
      return fail("the Redis TLS client key " + options.key_file +
                  " does not belong to the certificate " + options.cert_file);
    }
  }
  return tls;
}

Result<Ok> TlsContext::prepare(SSL* ssl, const std::string& host) const {
  const std::string& name = options_.server_name.empty() ? host : options_.server_name;
  bool ip = isIpLiteral(name);
  if (!ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    ERR_clear_error();
    return fail("cannot set the TLS server name (SNI) to '" + name + "'");
  }
  if (options_.insecure_skip_verify) return Ok{};
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  int set = 0;
  if (ip) {
    set = X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    set = X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
  }
  if (set != 1) {
    ERR_clear_error();
    return fail("cannot verify the Redis server as '" + name + "': not a valid host name");
  }
  return Ok{};
}

std::string TlsContext::describeFailure(SSL* ssl, const boost::system::error_code& ec) const {
  std::string text =
      ec == ssl::error::stream_truncated ? "the server closed the connection" : reason(ec);
  if (ssl && !options_.insecure_skip_verify) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK)
      text += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  }
  return text;
}

}  // namespace sticky::proxy::redis
