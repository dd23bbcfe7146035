#include "support/promtool.h"

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace sticky::test {

std::optional<std::string> promtoolProblems(const TempDir& dir, const std::string& name,
                                            const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) return std::nullopt;
  std::string in = dir.file(name + ".prom");
  std::string out = dir.file(name + ".promtool");
  std::ofstream(in) << text;
  int status = std::system(("promtool check metrics < " + in + " > " + out + " 2>&1").c_str());
  std::ifstream result(out);
  std::string said((std::istreambuf_iterator<char>(result)), std::istreambuf_iterator<char>());
  return status == 0 ? std::string() : "exit " + std::to_string(status) + ": " + said;
}

}  // namespace sticky::test
