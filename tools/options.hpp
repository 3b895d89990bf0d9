// One declarative option table shared by every subcommand: each option is a
// row (name, value hint, default, help), parsed the same way and printed the
// same way by --help.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace enf::cli {

struct OptionSpec {
  OptionSpec(std::string name_, std::string value_hint_, std::string default_value_, std::string help_,
             std::string min_ = {}, std::string max_ = {})
      : name(std::move(name_)),
        value_hint(std::move(value_hint_)),
        default_value(std::move(default_value_)),
        help(std::move(help_)),
        min(std::move(min_)),
        max(std::move(max_)) {}
  std::string name;           // without the leading "--"
  std::string value_hint;     // empty: a flag without value
  std::string default_value;  // shown in --help; used when absent
  std::string help;  // --help appends the bounds: "(1 .. 1000000)", "(at least 1)"
  std::string min;  // the smallest number allowed (checked when parsed); empty: any
  // The largest: counts that size allocations are bounded so that an absurd
  // value is a usage error, not an out-of-memory abort after the model loads.
  std::string max;
};

struct CommandSpec {
  std::string name;     // e.g. "bench field"
  std::string summary;  // one line
  std::string details;  // paragraphs shown by --help, may be empty
  std::vector<OptionSpec> options;
  // The row called `name`; std::logic_error when the command has none.
  const OptionSpec& option(const std::string& name) const;
};

// Thrown for bad command lines; main prints it with a hint to --help.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ParsedOptions {
 public:
  ParsedOptions(const CommandSpec& spec, const std::vector<std::string>& args);

  bool help() const { return help_; }
  const CommandSpec& spec() const { return spec_; }
  // Whether the command has the option at all (option groups parse the rows
  // a command has).
  bool has(const std::string& name) const;
  bool flag(const std::string& name) const;
  std::string str(const std::string& name) const;
  int integer(const std::string& name) const;  // UsageError naming the option when not an integer
  double real(const std::string& name) const;
  // One of `choices`, else UsageError listing them.
  std::string choice(const std::string& name, const std::vector<std::string>& choices) const;
  // parse(str(name)); a std::invalid_argument from parse becomes a UsageError
  // naming the option (bad values are usage errors, exit 2).
  template <class Parse>
  auto parsed(const std::string& name, Parse parse) const {
    try {
      return parse(str(name));
    } catch (const std::invalid_argument& e) {
      throw UsageError(label(name) + ": " + e.what());
    }
  }
  // true/false, yes/no, on/off or 1/0.
  bool boolean(const std::string& name) const;
  // Whether the option was on the command line.
  bool given(const std::string& name) const { return given_.count(name) != 0; }
  // Replaces the default of an option not given on the command line (e.g.
  // from a --config file, `origin` naming it: "config file 'x.json'");
  // UsageError for unknown names.
  void set_default(const std::string& name, const std::string& value, const std::string& origin = {});
  // How errors name an option: "--epochs", or "config file 'x.json': epochs"
  // when its value came from a file (the file is what must be fixed).
  std::string label(const std::string& name) const;
  // Every valued option's resolved value.
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  const CommandSpec& spec_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
  std::map<std::string, std::string> origin_;  // option -> the file its value came from
  bool help_ = false;
  const OptionSpec& find(const std::string& name) const;
  void check_bounds(const OptionSpec& o) const;
};

std::string usage(const CommandSpec& spec);

}  // namespace enf::cli
