#include "common/flags.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/version.h"

namespace sticky {
namespace {

/// A FlagSet like a main() declares, and a parse of `args` (without the program name).
struct Cli {
  std::string file;
  unsigned count = 1;
  bool on = false;
  FlagSet set{"prog", "A test program.", "Signals: none."};

  Cli() {
    set.addString("--file", "FILE", "a file (default none)", &file, "PROG_FILE");
    set.addValue("--count", "N", "a number from 1 to 9 (default 1)",
                 [this](const std::string& v) -> Result<Ok> {
                   if (v.size() != 1 || v[0] < '1' || v[0] > '9')
                     return fail("a digit from 1 to 9");
                   count = static_cast<unsigned>(v[0] - '0');
                   return Ok{};
                 });
    set.addBool("--on", "turn it on", &on, "PROG_ON");
  }

  FlagsOutcome parse(std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    std::vector<const char*> argv;
    for (auto& a : args) argv.push_back(a.c_str());
    return set.parse(static_cast<int>(argv.size()), argv.data());
  }
};

/// A usage error: exit 2, one line, "prog: <message>; see --help.".
void checkUsageError(const FlagsOutcome& out, const std::string& says) {
  INFO("output: " << out.output);
  REQUIRE(out.exit_code.has_value());
  CHECK(*out.exit_code == kExitUsage);
  CHECK(out.output.rfind("prog: ", 0) == 0);
  CHECK(out.output.find(says) != std::string::npos);
  CHECK(out.output.ends_with("; see --help.\n"));
  CHECK(std::count(out.output.begin(), out.output.end(), '\n') == 1);
}

/// Sets an environment variable for the scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

TEST_CASE("flags take --flag VALUE and --flag=VALUE - the last one wins - defaults stay") {
  Cli cli;
  auto out = cli.parse({});
  CHECK_FALSE(out.exit_code);
  CHECK(cli.file.empty());
  CHECK(cli.count == 1);
  CHECK((cli.set.logLevel() == LogLevel::Info));
  CHECK((cli.set.logFormat() == LogFormat::Text));

  Cli given;
  out = given.parse({"--file", "a", "--count=3", "--file=b", "--log-level", "warning",
                     "--log-format=json", "--on"});
  CHECK_FALSE(out.exit_code);
  CHECK(given.file == "b");
  CHECK(given.count == 3);
  CHECK(given.on);
  CHECK((given.set.logLevel() == LogLevel::Warn));
  CHECK((given.set.logFormat() == LogFormat::Json));
}

TEST_CASE("a boolean flag is --flag, --flag=true or --flag=false") {
  Cli on;
  CHECK_FALSE(on.parse({"--on=true"}).exit_code);
  CHECK(on.on);
  Cli off;
  CHECK_FALSE(off.parse({"--on", "--on=false"}).exit_code);
  CHECK_FALSE(off.on);
  Cli bad;
  checkUsageError(bad.parse({"--on=maybe"}), "--on must be true or false, not 'maybe'");
}

TEST_CASE("a boolean flag not given takes its environment variable, true or false") {
  {
    ScopedEnv on("PROG_ON", "true");
    Cli from_env;
    CHECK_FALSE(from_env.parse({}).exit_code);
    CHECK(from_env.on);
    Cli flag_wins;
    CHECK_FALSE(flag_wins.parse({"--on=false"}).exit_code);
    CHECK_FALSE(flag_wins.on);
  }
  ScopedEnv bad("PROG_ON", "yes");
  checkUsageError(Cli().parse({}), "$PROG_ON (for --on) must be true or false, not 'yes'");
  auto help = Cli().parse({"--help"});
  CHECK(help.output.find("[env PROG_ON]") != std::string::npos);
}

TEST_CASE("usage errors exit 2 with one line naming the flag and what it expects") {
  checkUsageError(Cli().parse({"--count", "0"}), "--count must be a digit from 1 to 9, not '0'");
  checkUsageError(Cli().parse({"--log-level", "loud"}),
                  "--log-level must be debug, info, warn or error, not 'loud'");
  checkUsageError(Cli().parse({"--log-format=logfmt"}),
                  "--log-format must be text or json, not 'logfmt'");
  checkUsageError(Cli().parse({"--bogus"}), "unknown flag '--bogus'");
  checkUsageError(Cli().parse({"--bogus=1", "--file", "x"}), "unknown flag '--bogus'");
  checkUsageError(Cli().parse({"stray"}), "unexpected argument 'stray'");
  checkUsageError(Cli().parse({"--file"}), "--file needs a value (FILE)");
  Cli cli;
  auto out = cli.set.usageError("--file is required");
  checkUsageError(out, "prog: --file is required; see --help.");
}

TEST_CASE("--version prints the program, the version and the git revision") {
  auto out = Cli().parse({"--version"});
  REQUIRE(out.exit_code.has_value());
  CHECK(*out.exit_code == kExitOk);
  CHECK(out.output == versionLine("prog") + "\n");
  CHECK(out.output.rfind("prog " + std::string(projectVersion()), 0) == 0);
  CHECK(projectVersion() == "0.2.0");  // project(... VERSION) in CMakeLists.txt
  if (!gitRevision().empty())
    CHECK(out.output.find(" (" + std::string(gitRevision()) + ")") != std::string::npos);
}

TEST_CASE("--help lists every flag, its value, its env var and the footer") {
  auto out = Cli().parse({"--help"});
  REQUIRE(out.exit_code.has_value());
  CHECK(*out.exit_code == kExitOk);
  for (const char* text : {"A test program.", "--file FILE", "[env PROG_FILE]", "--count N", "--on",
                           "--log-level", "[env STICKY_LOG_LEVEL]", "--log-format",
                           "[env STICKY_LOG_FORMAT]", "--version", "-h,--help", "Signals: none."})
    CHECK_MESSAGE(out.output.find(text) != std::string::npos, "help lacks " << text);
  CHECK((Cli().parse({"-h"}).exit_code == kExitOk));
}

TEST_CASE("a flag not given takes its environment variable - the command line wins") {
  ScopedEnv level("STICKY_LOG_LEVEL", "debug");
  ScopedEnv format("STICKY_LOG_FORMAT", "json");
  ScopedEnv file("PROG_FILE", "/from/env");
  Cli from_env;
  CHECK_FALSE(from_env.parse({}).exit_code);
  CHECK((from_env.set.logLevel() == LogLevel::Debug));
  CHECK((from_env.set.logFormat() == LogFormat::Json));
  CHECK(from_env.file == "/from/env");

  Cli flag_wins;
  CHECK_FALSE(flag_wins.parse({"--log-level=error", "--file", "/from/flag"}).exit_code);
  CHECK((flag_wins.set.logLevel() == LogLevel::Error));
  CHECK(flag_wins.file == "/from/flag");

  ScopedEnv bad("STICKY_LOG_LEVEL", "loud");
  checkUsageError(Cli().parse({}),
                  "$STICKY_LOG_LEVEL (for --log-level) must be debug, info, warn or error, not "
                  "'loud'");
  ScopedEnv empty("STICKY_LOG_LEVEL", "");  // set but empty: as if unset
  Cli unset;
  CHECK_FALSE(unset.parse({}).exit_code);
  CHECK((unset.set.logLevel() == LogLevel::Info));
}

}  // namespace
}  // namespace sticky
