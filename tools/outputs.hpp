// The files a command writes, checked before its work starts (issue 17): an
// output that is one of the command's inputs is refused (it would destroy
// the input), an existing output is only replaced with --force, and an
// output that cannot be written fails at once, not after minutes of work.
#pragma once

#include <string>
#include <vector>

#include "tools/options.hpp"

namespace enf::cli {

// The --force row of the commands that write files.
OptionSpec force_option();

// Whether a and b name the same file: std::filesystem::equivalent when both
// exist, else their normalized absolute paths (symbolic links of the part
// that exists resolved) are equal.
bool same_path(const std::string& a, const std::string& b);

// Creates the missing directories above the output `path` given as --`option`
// (`enf import --out models/x` on a fresh checkout has no models/), before
// any work; std::runtime_error naming the option when one cannot be made.
void make_parent_directories(const std::string& option, const std::string& path);
// The output directory `dir` itself, with its parents (--plots DIR).
void make_output_directory(const std::string& option, const std::string& dir);

// Checks the output `path` given as --`option`: UsageError when it is one of
// `inputs` (files or directories; an existing file inside an input directory
// counts as part of that input) or exists without `force`; then creates its
// missing parent directories (make_parent_directories); std::runtime_error
// (from check_writable) when it cannot be written. Empty inputs are ignored.
void check_output(const std::string& option, const std::string& path, const std::vector<std::string>& inputs,
                  bool force, const std::string& kind);

// Checks the checkpoint directory `out` given as --out, written from the
// model directory `input` given as --`input_option`: UsageError when it is
// that directory, or holds a checkpoint (model.json) and not `force` (any
// other file or directory there is refused by save_checkpoint, --force or
// not); then creates its missing parents, before any work.
void check_checkpoint_output(const std::string& out, const std::string& input_option, const std::string& input,
                             bool force);

}  // namespace enf::cli
