#include "tools/options.hpp"

#include <cctype>
#include <sstream>

namespace enf::cli {

ParsedOptions::ParsedOptions(const CommandSpec& spec, const std::vector<std::string>& args) : spec_(spec) {
  for (const auto& o : spec.options)
    if (!o.value_hint.empty()) values_[o.name] = o.default_value;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "'");
    std::string name = a.substr(2), value;
    const auto eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const OptionSpec& o = find(name);
    given_[name] = true;
    if (o.value_hint.empty()) {
      if (inline_value) throw UsageError("--" + name + " takes no value");
      values_.insert_or_assign(name, std::string(1, '1'));  // (not = "1": GCC 12 false -Wrestrict, PR 105329)
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value (" + o.value_hint + ")");
      value = args[++i];
    }
    values_[name] = value;
  }
  if (!help_)
    for (const auto& o : spec.options) check_bounds(o);
}

// Bad numbers are usage errors before any work starts, not after it.
void ParsedOptions::check_bounds(const OptionSpec& o) const {
  if ((o.min.empty() && o.max.empty()) || values_.at(o.name).empty()) return;
  // A word the row offers as its default ("auto") is not a number to bound.
  if (values_.at(o.name) == o.default_value && !o.default_value.empty() &&
      std::isalpha(static_cast<unsigned char>(o.default_value[0])))
    return;
  if (!o.min.empty() && !(real(o.name) >= std::stod(o.min)))
    throw UsageError(label(o.name) + " must be at least " + o.min + ", got '" + values_.at(o.name) + "'");
  if (!o.max.empty() && !(real(o.name) <= std::stod(o.max)))
    throw UsageError(label(o.name) + " must be at most " + o.max + ", got '" + values_.at(o.name) + "'");
}

const OptionSpec& CommandSpec::option(const std::string& option_name) const {
  for (const auto& o : options)
    if (o.name == option_name) return o;
  throw std::logic_error("'enf " + name + "' has no option --" + option_name);
}

bool ParsedOptions::has(const std::string& name) const {
  for (const auto& o : spec_.options)
    if (o.name == name) return true;
  return false;
}

const OptionSpec& ParsedOptions::find(const std::string& name) const {
  for (const auto& o : spec_.options)
    if (o.name == name) return o;
  throw UsageError("unknown option --" + name + " for 'enf " + spec_.name + "'");
}

bool ParsedOptions::flag(const std::string& name) const {
  find(name);
  return values_.count(name) && values_.at(name) == "1";
}

std::string ParsedOptions::str(const std::string& name) const {
  find(name);
  return values_.at(name);
}

int ParsedOptions::integer(const std::string& name) const {
  const std::string v = str(name);
  try {
    std::size_t pos = 0;
    const int x = std::stoi(v, &pos);
    if (pos == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(label(name) + " expects an integer, got '" + v + "'");
}

double ParsedOptions::real(const std::string& name) const {
  const std::string v = str(name);
  try {
    std::size_t pos = 0;
    const double x = std::stod(v, &pos);
    if (pos == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw UsageError(label(name) + " expects a number, got '" + v + "'");
}

std::string ParsedOptions::choice(const std::string& name, const std::vector<std::string>& choices) const {
  const std::string v = str(name);
  std::string list;
  for (const auto& c : choices) {
    if (c == v) return v;
    list += (list.empty() ? "" : ", ") + c;
  }
  throw UsageError(label(name) + " must be one of " + list + "; got '" + v + "'");
}

bool ParsedOptions::boolean(const std::string& name) const {
  const std::string v = str(name);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  throw UsageError(label(name) + " expects true or false, got '" + v + "'");
}

std::string ParsedOptions::label(const std::string& name) const {
  const auto it = origin_.find(name);
  return it == origin_.end() ? "--" + name : it->second + ": " + name;
}

void ParsedOptions::set_default(const std::string& name, const std::string& value, const std::string& origin) {
  if (!has(name)) throw UsageError(origin.empty() ? "unknown option --" + name : origin + ": unknown option " + name);
  const OptionSpec& o = find(name);
  if (given(name)) return;
  if (!origin.empty()) origin_[name] = origin;
  if (o.value_hint.empty())
    values_[name] = (value == "true" || value == "1") ? std::string(1, '1') : std::string();
  else
    values_[name] = value;
  check_bounds(o);
}

std::string usage(const CommandSpec& spec) {
  std::ostringstream os;
  os << "usage: enf " << spec.name << " [options]\n\n" << spec.summary << "\n";
  if (!spec.details.empty()) os << "\n" << spec.details << "\n";
  os << "\noptions:\n";
  for (const auto& o : spec.options) {
    std::string left = "  --" + o.name + (o.value_hint.empty() ? "" : " " + o.value_hint);
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    os << left << o.help;
    // The bounds the parser enforces, so that a usage error is no surprise.
    if (!o.min.empty() && !o.max.empty()) os << " (" << o.min << " .. " << o.max << ")";
    else if (!o.min.empty()) os << " (at least " << o.min << ")";
    else if (!o.max.empty()) os << " (at most " << o.max << ")";
    if (!o.value_hint.empty() && !o.default_value.empty()) os << " [default: " << o.default_value << "]";
    os << "\n";
  }
  os << "  -h, --help                show this help\n";
  return os.str();
}

}  // namespace enf::cli
