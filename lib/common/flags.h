#pragma once
// The command line of both binaries (CLI11 underneath, kept out of this header). Each main()
// declares its own flags on a FlagSet; every FlagSet also has the shared ones:
//
//   --log-level LEVEL   debug, info, warn (or warning), error     env STICKY_LOG_LEVEL
//   --log-format FMT    text or json                              env STICKY_LOG_FORMAT
//   --version           "<program> <version> (<git revision>)" on stdout, exit 0
//   -h, --help          usage on stdout, exit 0
//
// Flags are `--flag VALUE` or `--flag=VALUE`; given twice, the last wins; a flag not given
// takes its environment variable, if it has one and it is set and not empty.
//
// Exit codes, the same in both binaries:
//   0  --help, --version, or a clean shutdown
//   1  a startup or runtime error:  "<program>: <what was wrong and what to do>"
//   2  a usage error, one line:     "<program>: --workers must be a number from 1 to 1024,
//                                    not '0'; see --help."
//
//   FlagSet flags("sticky-proxy", "Sticky-session HTTP proxy ...");
//   std::string config;
//   flags.addString("--config", "FILE", "proxy config, YAML or JSON", &config);
//   auto parsed = flags.parse(argc, argv);
//   if (parsed.exit_code) return parsed.finish();
//   if (config.empty()) return flags.usageError("give --config FILE").finish();

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/log.h"
#include "common/result.h"

namespace sticky {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // startup or runtime error
inline constexpr int kExitUsage = 2;    // the command line is wrong

/// What parsing decided: run the program, or print `output` and exit.
struct FlagsOutcome {
  std::optional<int> exit_code;  // empty: run
  /// --help or --version text (for stdout), or the one-line usage error (for stderr).
  std::string output;

  /// Prints `output` (stdout for exit code 0, stderr otherwise) and returns the exit code.
  int finish() const;
};

class FlagSet {
 public:
  /// Takes a flag's value; on error, says what is expected ("a number from 1 to 1024"), without
  /// naming the flag or repeating the value (the usage error does both).
  using Apply = std::function<Result<Ok>(const std::string& value)>;

  /// `summary` heads --help; `footer` ends it (signals, duration syntax, ...).
  FlagSet(std::string program, std::string summary, std::string footer = {});
  ~FlagSet();
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  /// `--name VALUE`, stored as given. `env`: the environment variable read when the flag is not
  /// given (empty: none). `help` should say the default.
  void addString(const std::string& name, const std::string& value_name, const std::string& help,
                 std::string* out, const std::string& env = {});
  /// `--name VALUE`, checked and stored by `apply`.
  void addValue(const std::string& name, const std::string& value_name, const std::string& help,
                Apply apply, const std::string& env = {});
  /// `--name` (true), `--name=true` or `--name=false`; `env` (when set and not empty) must be
  /// true or false.
  void addBool(const std::string& name, const std::string& help, bool* out,
               const std::string& env = {});

  /// Parses argv (argv[0] is the program). Exit 0 with the text for --help or --version, exit 2
  /// with one line for a usage error, no exit code to run.
  FlagsOutcome parse(int argc, const char* const* argv);
  /// A usage error that parse() cannot see (a required flag, flags that contradict each other):
  /// exit 2, "<program>: <message>; see --help."
  FlagsOutcome usageError(const std::string& message) const;

  /// The shared flags, after parse(): info and text unless given.
  LogLevel logLevel() const { return log_level_; }
  LogFormat logFormat() const { return log_format_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string program_;
  LogLevel log_level_ = LogLevel::Info;
  LogFormat log_format_ = LogFormat::Text;
};

}  // namespace sticky
