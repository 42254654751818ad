#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "decloud/common/result.hpp"

namespace decloud::process {

struct ProgramOutput {
    int exit_code = -1;
    std::string out;  // stdout, at most 1 MiB kept
    std::string err;  // stderr, at most 1 MiB kept
};

// Runs argv[0] (looked up in PATH) with exactly these arguments, no shell, stdin from /dev/null,
// in `cwd` if it is not empty. Kills it after `timeout`. Errors: kUnavailable if the program
// cannot be started (with the reason), kTimeout when it was killed, kInternal if pipes or fork
// fail. A non-zero exit status is not an error here. Thread-safe.
common::Result<ProgramOutput> RunProgram(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout,
                                         const std::string& cwd = {});

// RunProgram, and a non-zero exit is kInternal with the command and its stderr in the message.
common::Result<ProgramOutput> RunProgramChecked(const std::vector<std::string>& argv,
                                                std::chrono::milliseconds timeout,
                                                const std::string& cwd = {});

}  // namespace decloud::process
