#include "support/test_pki.h"

#include <stdexcept>
#include <vector>

namespace sticky::test {

namespace {
const std::vector<std::string> kNewKey = {"-newkey", "ec", "-pkeyopt",
                                          "ec_paramgen_curve:prime256v1", "-nodes"};
}  // namespace

TestPki::TestPki()
    : ca_cert(dir_.file("ca.crt")),
      ca_key(dir_.file("ca.key")),
      server_cert(dir_.file("server.crt")),
      server_key(dir_.file("server.key")),
      client_cert(dir_.file("client.crt")),
      client_key(dir_.file("client.key")),
      other_ca_cert(dir_.file("other-ca.crt")) {
  for (auto [name, subject] :
       {std::pair{"ca", "/CN=kube-sticky test CA"}, std::pair{"other-ca", "/CN=another test CA"}}) {
    std::vector<std::string> args{"req", "-x509"};
    args.insert(args.end(), kNewKey.begin(), kNewKey.end());
    args.insert(args.end(), {"-keyout", dir_.file(std::string(name) + ".key"), "-out",
                             dir_.file(std::string(name) + ".crt"), "-days", "2", "-subj", subject,
                             "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                             "keyUsage=critical,keyCertSign,cRLSign"});
    run(args);
  }
  issue("server", "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  issue("client", "/CN=sticky-proxy", "extendedKeyUsage=clientAuth\n");
}

// A key and a certificate signed by the CA: <name>.key, <name>.crt.
void TestPki::issue(const std::string& name, const std::string& subject,
                    const std::string& extensions) {
  std::string csr = dir_.file(name + ".csr");
  std::string ext = dir_.file(name + ".ext");
  writeFile(ext, extensions);
  std::vector<std::string> req{"req"};
  req.insert(req.end(), kNewKey.begin(), kNewKey.end());
  req.insert(req.end(), {"-keyout", dir_.file(name + ".key"), "-out", csr, "-subj", subject});
  run(req);
  run({"x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out",
       dir_.file(name + ".crt"), "-days", "2", "-extfile", ext});
}

void TestPki::run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string log = dir_.file("openssl.log");
  Process openssl(argv, log);
  int status = openssl.wait(std::chrono::seconds(30));
  if (status != 0) {
    throw std::runtime_error("openssl " + args.front() + " failed (" + std::to_string(status) +
                             "): " + readFile(log));
  }
}

}  // namespace sticky::test
