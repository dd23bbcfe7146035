// Fuzz target: the kubeconfig reader (operator/src/kube/kubeconfig.h: loadKubeconfig, yaml-cpp
// underneath), reading the input as a kubeconfig file next to a CA, a client certificate and
// key, and a token file it may reference by relative path; with its current-context and with an
// explicit context.
//
// Invariants:
//  - nothing throws out of the reader (yaml-cpp's exceptions stop inside it), and a refusal
//    says what is wrong;
//  - an accepted config has an http(s) server URL without a trailing '/', a namespace, and a
//    client certificate exactly when it has a key.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "kube/kubeconfig.h"

namespace {

namespace fs = std::filesystem;

// A directory of this process with the files a kubeconfig may name (made once).
const fs::path& workDir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("sticky-kubeconfig-fuzz-" + std::to_string(getpid()));
    fs::create_directories(d);
    for (const char* name : {"ca.crt", "client.crt", "client.key", "token"}) {
      std::ofstream(d / name) << "-----BEGIN " << name << "-----\n";
    }
    return d;
  }();
  return dir;
}

void checkResult(const sticky::Result<sticky::op::kube::ClusterConfig>& result) {
  if (!result) {
    FUZZ_CHECK(!result.error().message.empty(), "a refusal without a message");
    return;
  }
  const auto& config = *result;
  FUZZ_CHECK(config.server.starts_with("https://") || config.server.starts_with("http://"),
             "the server is not an http(s) URL: " + config.server);
  FUZZ_CHECK(!config.server.ends_with("/"), "the server URL ends with '/': " + config.server);
  FUZZ_CHECK(!config.namespace_.empty(), "no namespace");
  FUZZ_CHECK(config.client_cert_pem.empty() == config.client_key_pem.empty(),
             "a client certificate without a key, or a key without one");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path file = workDir() / "config";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    checkResult(sticky::op::kube::loadKubeconfig(file.string()));
    checkResult(sticky::op::kube::loadKubeconfig(file.string(), "other"));
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("an exception escaped the kubeconfig reader: ") + e.what());
  }
  return 0;
}
