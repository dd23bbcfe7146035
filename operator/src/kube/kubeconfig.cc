#include "kube/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace sticky::op::kube {
namespace {

namespace fs = std::filesystem;

Result<std::string> readFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read " + what + " file " + path + ".");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Result<std::string> base64Decode(const std::string& in, const std::string& what) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < chars.size(); ++i) t[static_cast<unsigned char>(chars[i])] = int(i);
    return t;
  }();
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = table[static_cast<unsigned char>(c)];
    if (v < 0 || padding) return fail(what + " is not valid base64.");
    buffer = (buffer << 6) | unsigned(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((buffer >> bits) & 0xff));
    }
  }
  return out;
}

/// The entry of a named list (`clusters`, `users`, `contexts`) whose name is `name`.
YAML::Node findNamed(const YAML::Node& root, const char* list, const char* field,
                     const std::string& name) {
  const YAML::Node entries = root[list];
  if (!entries || !entries.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& entry : entries) {
    if (entry["name"] && entry["name"].as<std::string>() == name) return entry[field];
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  if (!v || !v.IsScalar()) return "";
  return v.as<std::string>();
}

/// Inline "<key>-data" (base64) or file "<key>" (relative to the kubeconfig's directory).
Result<std::string> material(const YAML::Node& node, const std::string& key,
                             const fs::path& base_dir, const std::string& where) {
  const std::string data = scalar(node, (key + "-data").c_str());
  if (!data.empty()) return base64Decode(data, where + " " + key + "-data");
  std::string file = scalar(node, key.c_str());
  if (file.empty()) return std::string();
  fs::path p(file);
  if (p.is_relative()) p = base_dir / p;
  return readFile(p.string(), where + " " + key);
}

Result<ClusterConfig> parseKubeconfig(const YAML::Node& root, const std::string& path,
                                      const std::string& wanted_context) {
  const std::string where = "kubeconfig " + path;
  if (!root || !root.IsMap()) return fail(where + " is not a YAML mapping.");
  std::string context_name = wanted_context;
  if (context_name.empty()) context_name = scalar(root, "current-context");
  if (context_name.empty()) {
    return fail(where +
                " has no current-context; set one (kubectl config use-context) or pass "
                "a context name.");
  }
  const YAML::Node context = findNamed(root, "contexts", "context", context_name);
  if (!context || !context.IsMap()) {
    return fail(where + " has no context named \"" + context_name + "\".");
  }
  const std::string cluster_name = scalar(context, "cluster");
  const std::string user_name = scalar(context, "user");
  if (cluster_name.empty()) {
    return fail(where + " context \"" + context_name + "\" names no cluster.");
  }
  const YAML::Node cluster = findNamed(root, "clusters", "cluster", cluster_name);
  if (!cluster || !cluster.IsMap()) {
    return fail(where + " has no cluster named \"" + cluster_name + "\" (used by context \"" +
                context_name + "\").");
  }
  const fs::path base_dir = fs::absolute(fs::path(path)).parent_path();

  ClusterConfig config;
  config.server = scalar(cluster, "server");
  if (config.server.empty()) {
    return fail(where + " cluster \"" + cluster_name + "\" has no server URL.");
  }
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return fail(where + " cluster \"" + cluster_name + "\" server \"" + config.server +
                "\" is not an http(s) URL.");
  }
  const std::string insecure = scalar(cluster, "insecure-skip-tls-verify");
  config.insecure_skip_tls_verify = insecure == "true";
  auto ca = material(cluster, "certificate-authority", base_dir,
                     where + " cluster \"" + cluster_name + "\"");
  if (!ca) return unexpected(std::move(ca).error());
  config.ca_pem = std::move(*ca);
  if (cluster["proxy-url"]) {
    return fail(where + " cluster \"" + cluster_name +
                "\" uses proxy-url, which sticky-operator does not support.");
  }

  config.namespace_ = scalar(context, "namespace");
  if (config.namespace_.empty()) config.namespace_ = "default";

  if (user_name.empty()) return config;  // anonymous
  const YAML::Node user = findNamed(root, "users", "user", user_name);
  const std::string user_where = where + " user \"" + user_name + "\"";
  if (!user) {
    return fail(where + " has no user named \"" + user_name + "\" (used by context \"" +
                context_name + "\").");
  }
  if (!user.IsMap()) return config;  // `user: {}` or null: anonymous
  if (user["exec"]) {
    return fail(user_where +
                " uses an exec credential plugin, which sticky-operator does not support; use a "
                "token, tokenFile or client certificate instead.");
  }
  if (user["auth-provider"]) {
    return fail(user_where +
                " uses an auth-provider, which sticky-operator does not support; use a token, "
                "tokenFile or client certificate instead.");
  }
  if (user["username"] || user["password"]) {
    return fail(user_where +
                " uses username/password (basic auth), which sticky-operator does not support; "
                "use a token, tokenFile or client certificate instead.");
  }
  config.token = scalar(user, "token");
  std::string token_file = scalar(user, "tokenFile");
  if (!token_file.empty()) {
    fs::path p(token_file);
    if (p.is_relative()) p = base_dir / p;
    config.token_file = p.string();
    auto token = readFile(config.token_file, user_where + " tokenFile");
    if (!token) return unexpected(std::move(token).error());
    if (config.token.empty()) config.token = trim(*token);
  }
  auto cert = material(user, "client-certificate", base_dir, user_where);
  if (!cert) return unexpected(std::move(cert).error());
  auto key = material(user, "client-key", base_dir, user_where);
  if (!key) return unexpected(std::move(key).error());
  config.client_cert_pem = std::move(*cert);
  config.client_key_pem = std::move(*key);
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return fail(user_where +
                " has a client certificate without a key or a key without a "
                "certificate; give both.");
  }
  return config;
}

}  // namespace

Result<ClusterConfig> loadKubeconfig(const std::string& path, const std::string& context) {
  auto text = readFile(path, "kubeconfig");
  if (!text) return unexpected(std::move(text).error());
  try {
    return parseKubeconfig(YAML::Load(*text), path, context);
  } catch (const YAML::Exception& e) {
    return fail("kubeconfig " + path + " is not valid YAML: " + e.what() + ".");
  }
}

Result<ClusterConfig> loadInClusterConfig(const InClusterSource& source) {
  std::string host = source.host;
  std::string port = source.port;
  if (host.empty()) {
    const char* h = std::getenv("KUBERNETES_SERVICE_HOST");
    if (h) host = h;
  }
  if (port.empty()) {
    const char* p = std::getenv("KUBERNETES_SERVICE_PORT");
    if (p) port = p;
  }
  if (host.empty() || port.empty()) {
    return fail(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "must both be set.");
  }
  ClusterConfig config;
  // An IPv6 service address needs brackets in a URL.
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  config.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;
  auto token = readFile(source.token_file, "service account token");
  if (!token) return unexpected(std::move(token).error());
  config.token = trim(*token);
  if (config.token.empty()) {
    return fail("service account token file " + source.token_file + " is empty.");
  }
  config.token_file = source.token_file;
  auto ca = readFile(source.ca_file, "service account CA");
  if (!ca) return unexpected(std::move(ca).error());
  config.ca_pem = std::move(*ca);
  auto ns = readFile(source.namespace_file, "service account namespace");
  config.namespace_ = ns ? trim(*ns) : "";
  if (config.namespace_.empty()) config.namespace_ = "default";
  return config;
}

Result<ClusterConfig> loadDefault(const std::string& kubeconfig_flag) {
  std::error_code ec;
  if (!kubeconfig_flag.empty()) return loadKubeconfig(kubeconfig_flag);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::stringstream list(env);
    std::string entry;
    while (std::getline(list, entry, ':')) {
      if (!entry.empty() && fs::exists(entry, ec)) return loadKubeconfig(entry);
    }
    return fail(std::string("none of the files in $KUBECONFIG (") + env + ") exists.");
  }
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host && *host) {
    return loadInClusterConfig();
  }
  const char* home = std::getenv("HOME");
  if (home && *home) {
    const std::string path = std::string(home) + "/.kube/config";
    if (fs::exists(path, ec)) return loadKubeconfig(path);
  }
  return fail(
      "no Kubernetes configuration found: pass --kubeconfig, set $KUBECONFIG, run "
      "in a cluster, or create ~/.kube/config.");
}

}  // namespace sticky::op::kube
