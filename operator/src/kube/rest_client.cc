// The cpprestsdk adapter: every cpprestsdk (and Boost.Asio SSL) type and exception stays in
// this file.

#include "kube/rest_client.h"

#include <sys/stat.h>

#include <cpprest/http_client.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "kube/watch_stream.h"
#include "metrics/exposition.h"
#include "metrics/instruments.h"

namespace sticky::op::kube {

using nlohmann::json;
namespace http = web::http;
namespace http_client = web::http::client;

namespace {

std::string withSubresource(const std::string& path, const std::string& subresource) {
  if (subresource.empty()) return path;
  const auto q = path.find('?');
  if (q == std::string::npos) return path + "/" + subresource;
  return path.substr(0, q) + "/" + subresource + path.substr(q);
}

void addQuery(std::string& path, const std::string& key, const std::string& value) {
  path += path.find('?') == std::string::npos ? '?' : '&';
  path += key + "=" + urlEncode(value);
}

/// A KubeError from a non-2xx response: the Kubernetes Status if the body is one.
KubeError statusError(const std::string& what, int http_status, const std::string& body) {
  KubeError error;
  error.http_status = http_status;
  const json status = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (status.is_object() && status.value("kind", "") == "Status") {
    error.reason = status.value("reason", "");
    error.status_message = status.value("message", "");
  }
  if (error.status_message.empty()) {
    error.status_message = trim(body.substr(0, 300));
    if (error.status_message.empty()) error.status_message = "no response body";
  }
  error.message = what + " failed with HTTP " + std::to_string(http_status) +
                  (error.reason.empty() ? "" : " " + error.reason) + ": " + error.status_message +
                  ".";
  return error;
}

KubeError transportError(const std::string& what, const std::string& detail) {
  KubeError error;
  error.status_message = detail;
  error.message = what + " failed: " + detail + ".";
  return error;
}

const char* contentType(PatchType type) {
  switch (type) {
    case PatchType::Merge:
      return "application/merge-patch+json";
    case PatchType::Strategic:
      return "application/strategic-merge-patch+json";
    case PatchType::Json:
      return "application/json-patch+json";
  }
  return "application/merge-patch+json";
}

/// Loads PEM material into an SSL context; throws boost::system::system_error on bad input.
void configureSsl(boost::asio::ssl::context& ctx, const ClusterConfig& config) {
  if (!config.ca_pem.empty() && !config.insecure_skip_tls_verify) {
    // Trust exactly the configured CA (as kubectl does), not the system store as well.
    SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
    ctx.add_certificate_authority(boost::asio::buffer(config.ca_pem));
  }
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(config.client_cert_pem));
    ctx.use_private_key(boost::asio::buffer(config.client_key_pem), boost::asio::ssl::context::pem);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Background work

namespace {

/// pplx's scheduler, counting the tasks handed to it and not yet run to the end. cpprestsdk
/// finishes some work after the call that started it has returned: a cancelled watch's
/// response stream is closed, and its aborted read completed, by continuations of their own,
/// some of them scheduled only when the socket operation underneath completes. A process that
/// exits before they have run leaves what they hold unfreed (LeakSanitizer reported it for the
/// operator after SIGTERM); waitQuiet() lets the process wait for them.
class CountingScheduler final : public pplx::scheduler_interface {
 public:
  using Clock = std::chrono::steady_clock;

  explicit CountingScheduler(std::shared_ptr<pplx::scheduler_interface> inner)
      : inner_(std::move(inner)) {}
  // pplx's interface has no virtual destructor; ours is, for whoever deletes through a base.
  virtual ~CountingScheduler() = default;
  CountingScheduler(const CountingScheduler&) = delete;
  CountingScheduler& operator=(const CountingScheduler&) = delete;

  void schedule(pplx::TaskProc_t proc, void* param) override {
    {
      std::lock_guard lock(mutex_);
      ++pending_;
      last_change_ = Clock::now();
    }
    inner_->schedule(&CountingScheduler::run, new Job{this, proc, param});
  }

  /// True once no task is pending and none has been scheduled or finished for `quiet`; false
  /// if that has not happened by `limit`.
  bool waitQuiet(std::chrono::milliseconds quiet, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    std::unique_lock lock(mutex_);
    while (true) {
      const auto now = Clock::now();
      if (pending_ == 0 && now - last_change_ >= quiet) return true;
      if (now >= deadline) return false;
      changed_.wait_until(lock,
                          pending_ == 0 ? std::min(deadline, last_change_ + quiet) : deadline);
    }
  }

 private:
  struct Job {
    CountingScheduler* self;
    pplx::TaskProc_t proc;
    void* param;
  };

  static void run(void* param) {
    std::unique_ptr<Job> job(static_cast<Job*>(param));
    job->proc(job->param);
    CountingScheduler& self = *job->self;
    std::lock_guard lock(self.mutex_);
    --self.pending_;
    self.last_change_ = Clock::now();
    self.changed_.notify_all();
  }

  std::shared_ptr<pplx::scheduler_interface> inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t pending_ = 0;
  Clock::time_point last_change_{};
};

/// The counting scheduler, made pplx's ambient one on first use (before any client exists).
CountingScheduler& countingScheduler() {
  static std::shared_ptr<CountingScheduler> scheduler = [] {
    // (Not get_ambient_scheduler(): that would fix the ambient scheduler as the default.)
    auto s = std::make_shared<CountingScheduler>(std::make_shared<pplx::default_scheduler_t>());
    pplx::set_ambient_scheduler(s);
    return s;
  }();
  return *scheduler;
}

}  // namespace

bool waitForBackgroundWork(std::chrono::milliseconds quiet, std::chrono::milliseconds limit) {
  return countingScheduler().waitQuiet(quiet, limit);
}

// ---------------------------------------------------------------------------------------------
// KubeClient::Impl

class KubeClient::Impl {
 public:
  Impl(ClusterConfig config, KubeClientOptions options)
      : config_(std::move(config)), options_(std::move(options)), token_(config_.token) {}

  http_client::http_client_config clientConfig(std::chrono::seconds timeout) const {
    http_client::http_client_config cfg;
    cfg.set_timeout(timeout);
    cfg.set_validate_certificates(!config_.insecure_skip_tls_verify);
    ClusterConfig tls = config_;  // the callback may outlive this call; copy what it needs
    cfg.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) { configureSsl(ctx, tls); });
    return cfg;
  }

  /// The bearer token, re-read from token_file when its mtime changed (checked at most every
  /// options_.token_recheck, or now if `force`).
  std::string bearer(bool force) {
    if (config_.token_file.empty()) return config_.token;
    std::lock_guard lock(token_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!force && token_checked_.time_since_epoch().count() != 0 &&
        now - token_checked_ < options_.token_recheck) {
      return token_;
    }
    token_checked_ = now;
    struct stat st {};
    if (::stat(config_.token_file.c_str(), &st) != 0) return token_;
    const auto mtime = std::pair(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (token_read_ && mtime == token_mtime_ && !force) return token_;
    std::ifstream in(config_.token_file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const std::string token(trim(text.str()));
    if (!token.empty()) {
      token_ = token;
      token_mtime_ = mtime;
      token_read_ = true;
    }
    return token_;
  }

  http::http_request makeRequest(const http::method& method, const std::string& path,
                                 const std::string& token) const {
    http::http_request request(method);
    request.set_request_uri(web::uri(path));
    request.headers().add(http::header_names::accept, "application/json");
    request.headers().add(http::header_names::user_agent, options_.user_agent);
    if (!token.empty()) request.headers().add(http::header_names::authorization, "Bearer " + token);
    return request;
  }

  Result<json, KubeError> send(const http::method& method, const std::string& path,
                               const json* body, const char* content_type) {
    const std::string what = method + " " + path;
    try {
      bool retried = false;
      while (true) {
        const std::string token = bearer(retried);
        http::http_request request = makeRequest(method, path, token);
        if (body) request.set_body(body->dump(), content_type);
        http::http_response response;
        try {
          response = client_->request(request).get();
        } catch (const std::exception&) {
          requests_.add({"<error>", method, host_});
          throw;
        }
        const int status = response.status_code();
        requests_.add({std::to_string(status), method, host_});
        std::string text = response.extract_utf8string(true).get();
        if (status == 401 && !retried && !config_.token_file.empty()) {
          if (bearer(true) != token) {  // the token was rotated under us: try once more
            retried = true;
            continue;
          }
        }
        if (status < 200 || status >= 300) return unexpected(statusError(what, status, text));
        if (text.empty()) return json::object();
        json result = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (result.is_discarded()) {
          return unexpected(transportError(what, "the response is not JSON"));
        }
        return result;
      }
    } catch (const std::exception& e) {
      return unexpected(transportError(what, e.what()));
    }
  }

  Result<WatchEnd, KubeError> watch(const std::string& collection, const WatchOptions& options,
                                    const std::function<void(const WatchEvent&)>& on_event,
                                    CancelToken& cancel) {
    std::string path = collection;
    addQuery(path, "watch", "true");
    if (!options.resource_version.empty()) {
      addQuery(path, "resourceVersion", options.resource_version);
    }
    if (options.allow_bookmarks) addQuery(path, "allowWatchBookmarks", "true");
    if (options.timeout_seconds > 0) {
      addQuery(path, "timeoutSeconds", std::to_string(options.timeout_seconds));
    }
    if (!options.label_selector.empty()) addQuery(path, "labelSelector", options.label_selector);
    if (!options.field_selector.empty()) addQuery(path, "fieldSelector", options.field_selector);
    const std::string what = "WATCH " + path;

    if (cancel.cancelled()) return WatchEnd::Cancelled;
    pplx::cancellation_token_source source;
    const std::uint64_t registration = cancel.onCancel([source]() { source.cancel(); });
    struct Unregister {
      CancelToken& token;
      std::uint64_t id;
      ~Unregister() { token.unregister(id); }
    } unregister{cancel, registration};

    try {
      // cpprestsdk's timeout is an inactivity timer; the server sends nothing between events,
      // so wait well past the server's own timeoutSeconds before giving up.
      const int server_timeout = options.timeout_seconds > 0 ? options.timeout_seconds : 1800;
      http_client::http_client client(web::uri(config_.server),
                                      clientConfig(std::chrono::seconds(server_timeout + 60)));
      http::http_response response;
      try {
        response =
            client.request(makeRequest(http::methods::GET, path, bearer(false)), source.get_token())
                .get();
      } catch (const std::exception&) {
        if (!cancel.cancelled()) requests_.add({"<error>", http::methods::GET, host_});
        throw;
      }
      const int status = response.status_code();
      requests_.add({std::to_string(status), http::methods::GET, host_});
      if (status != 200) {
        std::string text = response.extract_utf8string(true).get();
        if (status == 401) bearer(true);
        return unexpected(statusError(what, status, text));
      }
      auto body = response.body().streambuf();
      WatchStreamDecoder decoder;
      std::vector<char> chunk(64 * 1024);
      const auto eof = decltype(body)::traits::eof();
      while (true) {
        // bumpc waits for at least one byte (or the end); then take whatever else has arrived.
        const int c = body.bumpc().get();
        if (c == eof) break;
        const char first = char(c);
        decoder.append(std::string_view(&first, 1));
        const size_t avail = body.in_avail();
        if (avail > 0) {
          const size_t n =
              body.getn(reinterpret_cast<uint8_t*>(chunk.data()), std::min(avail, chunk.size()))
                  .get();
          decoder.append(std::string_view(chunk.data(), n));
        }
        while (true) {
          auto event = decoder.next();
          if (!event) return unexpected(transportError(what, event.error().message));
          if (!event->has_value()) break;
          on_event(**event);
          if (cancel.cancelled()) return WatchEnd::Cancelled;
        }
      }
      if (cancel.cancelled()) return WatchEnd::Cancelled;
      auto last = decoder.finish();
      if (!last) return unexpected(transportError(what, last.error().message));
      if (last->has_value()) on_event(**last);
      return WatchEnd::ServerClosed;
    } catch (const std::exception& e) {
      if (cancel.cancelled()) return WatchEnd::Cancelled;
      return unexpected(transportError(what, e.what()));
    }
  }

  ClusterConfig config_;
  KubeClientOptions options_;
  std::unique_ptr<http_client::http_client> client_;
  std::string host_;  // "host:port" of the server URL, the host label
  metrics::CounterVec requests_{{"code", "method", "host"}};

  std::mutex token_mutex_;
  std::string token_;
  bool token_read_ = false;
  std::pair<long, long> token_mtime_{0, 0};
  std::chrono::steady_clock::time_point token_checked_{};
};

// ---------------------------------------------------------------------------------------------
// KubeClient

Result<std::shared_ptr<KubeClient>> KubeClient::create(ClusterConfig config,
                                                       KubeClientOptions options) {
  if (config.server.empty()) return fail("the cluster configuration has no server URL.");
  countingScheduler();  // installed before the first task exists
  try {
    boost::asio::ssl::context probe(boost::asio::ssl::context::sslv23);
    configureSsl(probe, config);
  } catch (const std::exception& e) {
    return fail("the cluster's CA or client certificate/key is not usable PEM (" +
                std::string(e.what()) + ").");
  }
  auto impl = std::make_unique<Impl>(std::move(config), std::move(options));
  try {
    web::uri base(impl->config_.server);
    if (base.scheme() != "https" && base.scheme() != "http") {
      return fail("server URL " + impl->config_.server + " is not http(s).");
    }
    impl->client_ = std::make_unique<http_client::http_client>(
        base, impl->clientConfig(impl->options_.request_timeout));
    impl->host_ = base.host();
    if (base.port() > 0) impl->host_ += ":" + std::to_string(base.port());
  } catch (const std::exception& e) {
    return fail("server URL " + impl->config_.server + " is not a valid URL (" + e.what() + ").");
  }
  return std::shared_ptr<KubeClient>(new KubeClient(std::move(impl)));
}

KubeClient::KubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeClient::~KubeClient() = default;

const ClusterConfig& KubeClient::config() const {
  return impl_->config_;
}

void KubeClient::renderMetrics(metrics::Exposition& x) const {
  x.family("rest_client_requests_total", "counter",
           "Number of HTTP requests to the Kubernetes API, partitioned by status code, method, "
           "and host.");
  impl_->requests_.render(x, "rest_client_requests_total");
}

Result<json, KubeError> KubeClient::get(const std::string& path) {
  return impl_->send(http::methods::GET, path, nullptr, nullptr);
}

Result<json, KubeError> KubeClient::list(const std::string& path, const ListOptions& options) {
  json result;
  json items = json::array();
  std::string continue_token;
  do {
    std::string page = path;
    if (options.page_size > 0) addQuery(page, "limit", std::to_string(options.page_size));
    if (!options.label_selector.empty()) addQuery(page, "labelSelector", options.label_selector);
    if (!options.field_selector.empty()) addQuery(page, "fieldSelector", options.field_selector);
    if (!continue_token.empty()) addQuery(page, "continue", continue_token);
    auto r = impl_->send(http::methods::GET, page, nullptr, nullptr);
    if (!r) return r;
    json& body = *r;
    if (!body.is_object() || !body.contains("items") || !body["items"].is_array()) {
      return unexpected(transportError("GET " + page, "the response is not a list"));
    }
    if (result.is_null()) {
      result = json::object();
      result["apiVersion"] = body.value("apiVersion", "");
      result["kind"] = body.value("kind", "");
      result["metadata"] = json::object();
      result["metadata"]["resourceVersion"] =
          body.contains("metadata") ? body["metadata"].value("resourceVersion", "") : "";
    }
    for (auto& item : body["items"]) items.push_back(std::move(item));
    continue_token = body.contains("metadata") ? body["metadata"].value("continue", "") : "";
  } while (!continue_token.empty());
  result["items"] = std::move(items);
  return result;
}

Result<json, KubeError> KubeClient::create(const std::string& collection_path, const json& object) {
  return impl_->send(http::methods::POST, collection_path, &object, "application/json");
}

Result<json, KubeError> KubeClient::replace(const std::string& path, const json& object,
                                            const std::string& subresource) {
  return impl_->send(http::methods::PUT, withSubresource(path, subresource), &object,
                     "application/json");
}

Result<json, KubeError> KubeClient::patch(const std::string& path, const json& body, PatchType type,
                                          const std::string& subresource) {
  return impl_->send(http::methods::PATCH, withSubresource(path, subresource), &body,
                     contentType(type));
}

Result<json, KubeError> KubeClient::remove(const std::string& path) {
  return impl_->send(http::methods::DEL, path, nullptr, nullptr);
}

Result<WatchEnd, KubeError> KubeClient::watch(
    const std::string& path, const WatchOptions& options,
    const std::function<void(const WatchEvent&)>& on_event, CancelToken& cancel) {
  return impl_->watch(path, options, on_event, cancel);
}

}  // namespace sticky::op::kube
