#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "decloud/common/result.hpp"
#include "orchestrator/domain/vm_template.hpp"

namespace decloud::orchestrator::adapters::templates {

// The VM templates of one directory: every subfolder <id>/ holding template.json and
// user-data.yaml (hidden folders and plain files such as README.md are skipped). Loaded once
// at start-up and immutable afterwards, so it is safe to share between threads.
class TemplateCatalog {
  public:
    // Reads and validates every template, sorted by id. kNotFound if `directory` is not a
    // directory; kInvalidArgument naming the file for a missing, unreadable or invalid file or
    // a folder whose name is not the template's id; the daemon should refuse to start then.
    static common::Result<TemplateCatalog> Load(const std::string& directory);

    // nullptr if there is no such template.
    const domain::VmTemplate* Find(std::string_view id) const;
    const std::vector<domain::VmTemplate>& All() const { return templates_; }

  private:
    explicit TemplateCatalog(std::vector<domain::VmTemplate> templates);

    std::vector<domain::VmTemplate> templates_;
};

}  // namespace decloud::orchestrator::adapters::templates
