#pragma once

#include <chrono>
#include <semaphore>
#include <string>
#include <string_view>
#include <vector>

#include "orchestrator/ports/community_template_repository.hpp"

namespace decloud::orchestrator::adapters::templates {

struct CloudInitValidatorOptions {
    std::string program = "cloud-init";  // looked up in PATH
    std::chrono::milliseconds timeout{20000};
    // Checks running at once; a further one waits up to `timeout` for a turn, then is refused
    // (kUnavailable): each check is a Python process of a few seconds.
    int max_concurrent = 2;
};

// CloudConfigValidator running `cloud-init schema --config-file <file>` (cloud-init 22.4's
// CLI) on a private temporary file, without a shell, killed after the timeout. Blocking;
// thread-safe.
class CloudInitValidator final : public ports::CloudConfigValidator {
  public:
    explicit CloudInitValidator(CloudInitValidatorOptions options = {});

    // ports::CloudConfigValidator
    common::Result<std::vector<std::string>> Check(const std::string& cloud_config) override;

  private:
    CloudInitValidatorOptions options_;
    std::counting_semaphore<64> slots_;
};

// The complaints in the output of a failed `cloud-init schema` run: the comma-separated list
// after "Cloud config schema errors: ", one entry per key, with `file` (the checked file's path)
// replaced by "userData"; the whole output (bounded) if it has no such list.
std::vector<std::string> ParseSchemaComplaints(std::string_view output, std::string_view file);

}  // namespace decloud::orchestrator::adapters::templates
