#include "kube/kubeconfig.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "support/process.h"

namespace sticky::op::kube {
namespace {

using sticky::test::TempDir;
using sticky::test::writeFile;

// base64("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
constexpr const char* kCaPem = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
constexpr const char* kCaBase64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";

/// Sets an environment variable for the lifetime of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string twoContexts(const std::string& current) {
  return R"(apiVersion: v1
kind: Config
current-context: )" +
         current + R"(
clusters:
- name: alpha
  cluster:
    server: https://10.1.2.3:6443/
    certificate-authority-data: )" +
         kCaBase64 + R"(
- name: beta
  cluster:
    server: https://beta.example.com
    insecure-skip-tls-verify: true
users:
- name: alice
  user:
    token: alice-token
- name: bob
  user:
    token: bob-token
contexts:
- name: a
  context: {cluster: alpha, user: alice, namespace: shop}
- name: b
  context: {cluster: beta, user: bob}
)";
}

TEST_CASE("kubeconfig: token user and inline CA data from the current context") {
  TempDir dir;
  writeFile(dir.file("config"), twoContexts("a"));
  auto config = loadKubeconfig(dir.file("config"));
  REQUIRE_MESSAGE(config.ok(), config.error().message);
  CHECK(config->server == "https://10.1.2.3:6443");  // trailing slash dropped
  CHECK(config->ca_pem == kCaPem);
  CHECK_FALSE(config->insecure_skip_tls_verify);
  CHECK(config->token == "alice-token");
  CHECK(config->token_file.empty());
  CHECK(config->client_cert_pem.empty());
  CHECK(config->namespace_ == "shop");
}

TEST_CASE("kubeconfig: an explicit context overrides current-context") {
  TempDir dir;
  writeFile(dir.file("config"), twoContexts("a"));
  auto config = loadKubeconfig(dir.file("config"), "b");
  REQUIRE_MESSAGE(config.ok(), config.error().message);
  CHECK(config->server == "https://beta.example.com");
  CHECK(config->insecure_skip_tls_verify);
  CHECK(config->ca_pem.empty());
  CHECK(config->token == "bob-token");
  CHECK(config->namespace_ == "default");
}

TEST_CASE("kubeconfig: an unknown context is named in the error") {
  TempDir dir;
  writeFile(dir.file("config"), twoContexts("a"));
  auto config = loadKubeconfig(dir.file("config"), "nope");
  REQUIRE_FALSE(config.ok());
  CHECK(config.error().message.find("no context named \"nope\"") != std::string::npos);
}

TEST_CASE("kubeconfig: a missing current-context is a clear error") {
  TempDir dir;
  writeFile(dir.file("config"), twoContexts("\"\""));
  auto config = loadKubeconfig(dir.file("config"));
  REQUIRE_FALSE(config.ok());
  CHECK(config.error().message.find("has no current-context") != std::string::npos);
}

TEST_CASE("kubeconfig: CA, client certificate and key files are relative to the kubeconfig") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("pki"));
  writeFile(dir.file("pki/ca.crt"), "CA-FROM-FILE");
  writeFile(dir.file("pki/client.crt"), "CERT-FROM-FILE");
  writeFile(dir.file("pki/client.key"), "KEY-FROM-FILE");
  writeFile(dir.file("config"), R"(apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: pki/ca.crt}
users:
- name: u
  user: {client-certificate: pki/client.crt, client-key: pki/client.key}
contexts:
- name: ctx
  context: {cluster: c, user: u}
)");
  // The working directory is not the kubeconfig's directory, so a relative lookup would fail.
  REQUIRE(std::filesystem::current_path() != std::filesystem::path(dir.path()));
  auto config = loadKubeconfig(dir.file("config"));
  REQUIRE_MESSAGE(config.ok(), config.error().message);
  CHECK(config->ca_pem == "CA-FROM-FILE");
  CHECK(config->client_cert_pem == "CERT-FROM-FILE");
  CHECK(config->client_key_pem == "KEY-FROM-FILE");
  CHECK(config->token.empty());
}

TEST_CASE("kubeconfig: inline client certificate and key data") {
  TempDir dir;
  writeFile(dir.file("config"), R"(apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
contexts:
- name: ctx
  context: {cluster: c, user: u}
)");
  auto config = loadKubeconfig(dir.file("config"));
  REQUIRE_MESSAGE(config.ok(), config.error().message);
  CHECK(config->client_cert_pem == "CERT");
  CHECK(config->client_key_pem == "KEY");
}

TEST_CASE("kubeconfig: tokenFile is read and kept for rotation") {
  TempDir dir;
  writeFile(dir.file("token"), "file-token\n");
  writeFile(dir.file("config"), R"(apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {tokenFile: token}
contexts:
- name: ctx
  context: {cluster: c, user: u}
)");
  auto config = loadKubeconfig(dir.file("config"));
  REQUIRE_MESSAGE(config.ok(), config.error().message);
  CHECK(config->token == "file-token");
  CHECK(config->token_file == dir.file("token"));
}

std::string withUser(const std::string& user_yaml) {
  return R"(apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user:
)" + user_yaml +
         R"(
contexts:
- name: ctx
  context: {cluster: c, user: u}
)";
}

TEST_CASE("kubeconfig: unsupported credentials are rejected with a clear error") {
  TempDir dir;
  struct Case {
    std::string user;
    std::string expected;
  };
  const Case cases[] = {
      {"    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}",
       "uses an exec credential plugin"},
      {"    auth-provider: {name: gcp}", "uses an auth-provider"},
      {"    username: admin\n    password: secret", "uses username/password"},
      {"    client-certificate-data: Q0VSVA==", "client certificate without a key"},
  };
  for (const auto& c : cases) {
    writeFile(dir.file("config"), withUser(c.user));
    auto config = loadKubeconfig(dir.file("config"));
    REQUIRE_FALSE(config.ok());
    INFO(config.error().message);
    CHECK(config.error().message.find(c.expected) != std::string::npos);
    CHECK(config.error().message.find("user \"u\"") != std::string::npos);
  }
}

TEST_CASE("kubeconfig: broken files and references") {
  TempDir dir;
  SUBCASE("missing file") {
    auto config = loadKubeconfig(dir.file("absent"));
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().message.find("cannot read kubeconfig file") != std::string::npos);
  }
  SUBCASE("not YAML") {
    writeFile(dir.file("config"), "clusters: [unclosed\n");
    auto config = loadKubeconfig(dir.file("config"));
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().message.find("is not valid YAML") != std::string::npos);
  }
  SUBCASE("context names a cluster that does not exist") {
    writeFile(dir.file("config"), R"(current-context: ctx
contexts:
- name: ctx
  context: {cluster: gone, user: u}
)");
    auto config = loadKubeconfig(dir.file("config"));
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().message.find("no cluster named \"gone\"") != std::string::npos);
  }
  SUBCASE("CA file missing") {
    writeFile(dir.file("config"), R"(current-context: ctx
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: nope.crt}
contexts:
- name: ctx
  context: {cluster: c}
)");
    auto config = loadKubeconfig(dir.file("config"));
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().message.find("nope.crt") != std::string::npos);
  }
  SUBCASE("bad base64") {
    writeFile(dir.file("config"), R"(current-context: ctx
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: "not*base64"}
contexts:
- name: ctx
  context: {cluster: c}
)");
    auto config = loadKubeconfig(dir.file("config"));
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().message.find("certificate-authority-data is not valid base64") !=
          std::string::npos);
  }
  SUBCASE("server is not a URL") {
    writeFile(dir.file("config"), R"(current-context: ctx
clusters:
- name: c
  cluster: {server: "127.0.0.1:6443"}
contexts:
- name: ctx
  context: {cluster: c}
)");
    auto config = loadKubeconfig(dir.file("config"));
    REQUIRE_FALSE(config.ok());
    CHECK(config.error().message.find("is not an http(s) URL") != std::string::npos);
  }
}

TEST_CASE("in-cluster configuration from the service account files") {
  TempDir dir;
  writeFile(dir.file("token"), "sa-token\n");
  writeFile(dir.file("ca.crt"), kCaPem);
  writeFile(dir.file("namespace"), "sticky-system");
  InClusterSource source{dir.file("token"), dir.file("ca.crt"), dir.file("namespace"), "10.96.0.1",
                         "443"};
  auto config = loadInClusterConfig(source);
  REQUIRE_MESSAGE(config.ok(), config.error().message);
  CHECK(config->server == "https://10.96.0.1:443");
  CHECK(config->token == "sa-token");
  CHECK(config->token_file == dir.file("token"));
  CHECK(config->ca_pem == kCaPem);
  CHECK(config->namespace_ == "sticky-system");

  source.host = "fd00::1";
  auto v6 = loadInClusterConfig(source);
  REQUIRE(v6.ok());
  CHECK(v6->server == "https://[fd00::1]:443");

  SUBCASE("host and port from the environment") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.9");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
    InClusterSource from_env{dir.file("token"), dir.file("ca.crt"), dir.file("namespace"), "", ""};
    auto env = loadInClusterConfig(from_env);
    REQUIRE(env.ok());
    CHECK(env->server == "https://10.0.0.9:6443");
  }
  SUBCASE("outside a cluster") {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
    InClusterSource from_env{dir.file("token"), dir.file("ca.crt"), dir.file("namespace"), "", ""};
    auto env = loadInClusterConfig(from_env);
    REQUIRE_FALSE(env.ok());
    CHECK(env.error().message.find("KUBERNETES_SERVICE_HOST") != std::string::npos);
  }
  SUBCASE("token missing") {
    source.token_file = dir.file("absent");
    auto missing = loadInClusterConfig(source);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message.find("service account token") != std::string::npos);
  }
}

TEST_CASE("loadDefault: flag, then $KUBECONFIG, then in-cluster, then ~/.kube/config") {
  TempDir dir;
  writeFile(dir.file("flag"), twoContexts("a"));
  writeFile(dir.file("env"), twoContexts("b"));
  ScopedEnv service_host("KUBERNETES_SERVICE_HOST", nullptr);

  {
    ScopedEnv kubeconfig("KUBECONFIG", dir.file("env").c_str());
    auto from_flag = loadDefault(dir.file("flag"));
    REQUIRE(from_flag.ok());
    CHECK(from_flag->token == "alice-token");
    auto from_env = loadDefault();
    REQUIRE(from_env.ok());
    CHECK(from_env->token == "bob-token");
  }
  {
    const std::string list = dir.file("absent") + ":" + dir.file("env");
    ScopedEnv kubeconfig("KUBECONFIG", list.c_str());
    auto first_existing = loadDefault();
    REQUIRE(first_existing.ok());
    CHECK(first_existing->token == "bob-token");
  }
  {
    ScopedEnv kubeconfig("KUBECONFIG", nullptr);
    std::filesystem::create_directories(dir.file("home/.kube"));
    writeFile(dir.file("home/.kube/config"), twoContexts("a"));
    ScopedEnv home("HOME", dir.file("home").c_str());
    auto from_home = loadDefault();
    REQUIRE_MESSAGE(from_home.ok(), from_home.error().message);
    CHECK(from_home->token == "alice-token");
  }
  {
    ScopedEnv kubeconfig("KUBECONFIG", nullptr);
    ScopedEnv home("HOME", dir.file("empty-home").c_str());
    auto nothing = loadDefault();
    REQUIRE_FALSE(nothing.ok());
    CHECK(nothing.error().message.find("no Kubernetes configuration found") != std::string::npos);
  }
}

}  // namespace
}  // namespace sticky::op::kube
