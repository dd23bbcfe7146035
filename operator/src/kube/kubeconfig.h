#pragma once
// Where the Kubernetes API is and how to authenticate to it: a kubeconfig file (read with
// yaml-cpp), the in-cluster service account, or the usual search order of both.

#include <string>

#include "common/result.h"

namespace sticky::op::kube {

/// Everything the API client needs to reach one cluster. All certificate material is PEM bytes,
/// already read from files, so the client never touches the kubeconfig again.
struct ClusterConfig {
  std::string server;                     ///< e.g. "https://127.0.0.1:6443" (no trailing slash)
  std::string ca_pem;                     ///< CA bundle; empty = the system trust store
  bool insecure_skip_tls_verify = false;  ///< do not verify the server certificate at all
  std::string token;                      ///< static bearer token (used when token_file is empty)
  std::string token_file;                 ///< bearer token file, re-read when it changes
  std::string client_cert_pem;            ///< client certificate (chain) for mTLS
  std::string client_key_pem;             ///< private key of client_cert_pem
  std::string namespace_;                 ///< the context's / pod's namespace; "default" if unset
};

/// Reads a kubeconfig file. `context` empty = the file's current-context. Relative file paths in
/// the kubeconfig (certificate-authority, client-certificate, client-key, tokenFile) are resolved
/// against the kubeconfig's directory. Exec plugins, auth-provider and username/password are
/// rejected with a clear error.
Result<ClusterConfig> loadKubeconfig(const std::string& path, const std::string& context = "");

/// Files and variables the in-cluster configuration comes from; overridable for tests.
struct InClusterSource {
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  /// Empty = read $KUBERNETES_SERVICE_HOST / $KUBERNETES_SERVICE_PORT.
  std::string host;
  std::string port;
};

/// The pod's service account: server from the service environment variables, CA and namespace
/// from the mounted secret, and token_file set so a rotated token is picked up.
Result<ClusterConfig> loadInClusterConfig(const InClusterSource& source = InClusterSource{});

/// The usual search order: `kubeconfig_flag` if non-empty, else $KUBECONFIG (first existing file
/// of a ':'-separated list), else in-cluster if $KUBERNETES_SERVICE_HOST is set, else
/// ~/.kube/config. The error says which sources were tried.
Result<ClusterConfig> loadDefault(const std::string& kubeconfig_flag = "");

}  // namespace sticky::op::kube
