#include "common/flags.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/version.h"

namespace sticky {

namespace {

std::string oneLine(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && (text.back() == ' ' || text.back() == '.')) text.pop_back();
  return text;
}

}  // namespace

struct FlagSet::Impl {
  // One flag the program declared. CLI11 only splits the command line; values are checked and
  // stored here, after parsing, so that every error reads the same and env vars are handled alike.
  struct Entry {
    std::string name;
    std::string value_name;
    std::string env;
    Apply apply;
    CLI::Option* option = nullptr;
  };

  CLI::App app;
  std::vector<Entry> entries;
  CLI::Option* version = nullptr;
  bool shared_added = false;

  Impl(const std::string& summary, const std::string& program) : app(summary, program) {}

  static std::string helpWithEnv(const std::string& help, const std::string& env) {
    return env.empty() ? help : help + " [env " + env + "]";
  }

  Entry* find(std::string_view name) {
    for (auto& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  }
};

int FlagsOutcome::finish() const {
  int code = exit_code.value_or(kExitOk);
  std::FILE* to = code == kExitOk ? stdout : stderr;
  std::fwrite(output.data(), 1, output.size(), to);
  std::fflush(to);
  return code;
}

FlagSet::FlagSet(std::string program, std::string summary, std::string footer)
    : impl_(std::make_unique<Impl>(summary, program)), program_(std::move(program)) {
  auto& app = impl_->app;
  app.set_help_flag("-h,--help", "print this help and exit");
  // Unknown flags and stray arguments are reported by parse(), in our words.
  app.allow_extras();
  app.get_formatter()->column_width(30);
  if (!footer.empty()) app.footer(footer);
}

FlagSet::~FlagSet() = default;

void FlagSet::addString(const std::string& name, const std::string& value_name,
                        const std::string& help, std::string* out, const std::string& env) {
  addValue(
      name, value_name, help,
      [out](const std::string& value) -> Result<Ok> {
        *out = value;
        return Ok{};
      },
      env);
}

void FlagSet::addValue(const std::string& name, const std::string& value_name,
                       const std::string& help, Apply apply, const std::string& env) {
  auto* option = impl_->app.add_option(name)
                     ->description(Impl::helpWithEnv(help, env))
                     ->type_name(value_name)
                     ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  impl_->entries.push_back({name, value_name, env, std::move(apply), option});
}

void FlagSet::addBool(const std::string& name, const std::string& help, bool* out,
                      const std::string& env) {
  auto* option = impl_->app.add_flag(name)->description(Impl::helpWithEnv(help, env));
  impl_->entries.push_back({name, "", env,
                            [out](const std::string& value) -> Result<Ok> {
                              if (value != "true" && value != "false") return fail("true or false");
                              *out = value == "true";
                              return Ok{};
                            },
                            option});
}

FlagsOutcome FlagSet::parse(int argc, const char* const* argv) {
  if (!impl_->shared_added) {
    impl_->shared_added = true;
    addValue(
        "--log-level", "LEVEL", "debug, info, warn or error (default info); logs go to stderr",
        [this](const std::string& value) -> Result<Ok> {
          auto level = parseLogLevel(value);
          if (!level) return fail("debug, info, warn or error");
          log_level_ = *level;
          return Ok{};
        },
        "STICKY_LOG_LEVEL");
    addValue(
        "--log-format", "FORMAT", "text (default: for people) or json (one object per line)",
        [this](const std::string& value) -> Result<Ok> {
          auto format = parseLogFormat(value);
          if (!format) return fail("text or json");
          log_format_ = *format;
          return Ok{};
        },
        "STICKY_LOG_FORMAT");
    impl_->version = impl_->app.add_flag("--version")->description("print the version and exit");
  }

  auto& app = impl_->app;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return {kExitOk, app.help() + "\n"};  // CLI11 ends with the footer, without a newline
  } catch (const CLI::CallForAllHelp&) {
    return {kExitOk, app.help() + "\n"};
  } catch (const CLI::ArgumentMismatch& e) {
    // "--config: 1 required FILE missing": a flag at the end without its value.
    std::string what = e.what();
    std::string name = what.substr(0, what.find(':'));
    if (auto* entry = impl_->find(name))
      return usageError(name + " needs a value (" + entry->value_name + ")");
    return usageError(oneLine(what));
  } catch (const CLI::ParseError& e) {
    return usageError(oneLine(e.what()));
  }
  if (impl_->version->count() > 0) return {kExitOk, versionLine(program_) + "\n"};

  if (auto extras = app.remaining(); !extras.empty()) {
    const std::string& first = extras.front();
    if (first.starts_with("-") && first.size() > 1)
      return usageError("unknown flag '" + first.substr(0, first.find('=')) + "'");
    return usageError("unexpected argument '" + first + "'");
  }

  for (auto& entry : impl_->entries) {
    std::string value;
    std::string source = entry.name;
    if (entry.option->count() > 0) {
      value = entry.option->results().back();
    } else if (const char* env = entry.env.empty() ? nullptr : std::getenv(entry.env.c_str());
               env && *env) {
      value = env;
      source = "$" + entry.env + " (for " + entry.name + ")";
    } else {
      continue;
    }
    auto applied = entry.apply(value);
    if (!applied)
      return usageError(source + " must be " + applied.error().message + ", not '" + value + "'");
  }
  return {};
}

FlagsOutcome FlagSet::usageError(const std::string& message) const {
  return {kExitUsage, program_ + ": " + message + "; see --help.\n"};
}

}  // namespace sticky
