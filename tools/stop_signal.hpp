// Ctrl-C and SIGTERM for the long molecule commands (enf sample, enf score):
// the first signal only sets a flag, so that the worker loops stop taking
// new items and the command writes what is finished; a second signal exits
// at once (the output written so far stays valid, record by record).
//
// enf train has its own handler (tools/train_options.cpp); these are installed
// by the commands that use them only, for the lifetime of a StopSignal.
#pragma once

#include <string>

namespace enf::cli {

class StopSignal {
 public:
  // Installs SIGINT and SIGTERM handlers. first_message is written to stderr
  // when the first signal arrives, second_message before the immediate exit
  // on the second: both are copied now into fixed buffers, since a handler
  // may only call write(2) (async-signal-safe) on memory that no longer changes.
  StopSignal(const std::string& first_message, const std::string& second_message);
  // Restores the previous handlers.
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
};

// Whether a SIGINT or SIGTERM arrived since the StopSignal was installed.
bool stop_requested();
// The signal that asked to stop (0: none).
int stop_signal_number();
// The exit status for it: 130 for SIGINT, 143 for SIGTERM (128 + signal), as a
// shell reports a process killed by it.
int stop_exit_code();

}  // namespace enf::cli
