#include "orchestrator/adapters/templates/template_catalog.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace decloud::orchestrator::adapters::templates {

using common::Error;
using common::Result;

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxManifestBytes = std::size_t{64} * 1024;
constexpr const char* kManifestFile = "template.json";
constexpr const char* kUserDataFile = "user-data.yaml";

Result<std::string> ReadFile(const fs::path& path, std::size_t max_bytes) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return Error::InvalidArgument(path.string() + ": missing (or not a regular file)");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error::InvalidArgument(path.string() + ": cannot be opened");
    std::string text;
    // One byte past the limit is enough to tell that the file is too large.
    text.resize(max_bytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return Error::InvalidArgument(path.string() + ": read error");
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) {
        return Error::InvalidArgument(path.string() + ": larger than " + std::to_string(max_bytes) +
                                      " bytes");
    }
    return text;
}

Result<domain::VmTemplate> LoadOne(const fs::path& folder) {
    const fs::path manifest_path = folder / kManifestFile;
    const fs::path user_data_path = folder / kUserDataFile;
    auto manifest_text = ReadFile(manifest_path, kMaxManifestBytes);
    if (!manifest_text) return manifest_text.error();
    auto user_data = ReadFile(user_data_path, domain::kMaxTemplateUserDataBytes);
    if (!user_data) return user_data.error();

    nlohmann::json manifest;
    try {
        manifest = nlohmann::json::parse(*manifest_text);
    } catch (const nlohmann::json::parse_error& e) {
        return Error::InvalidArgument(manifest_path.string() + ": not valid JSON: " + e.what());
    }
    auto tmpl = domain::ParseTemplate(manifest, std::move(*user_data));
    if (!tmpl) {
        // ParseTemplate starts the messages about the document with "user-data".
        const bool about_user_data = tmpl.error().message.starts_with("user-data");
        return Error::InvalidArgument((about_user_data ? user_data_path : manifest_path).string() +
                                      ": " + tmpl.error().message);
    }
    const std::string folder_name = folder.filename().string();
    if (tmpl->id != folder_name) {
        return Error::InvalidArgument(manifest_path.string() + ": id " + tmpl->id +
                                      " differs from its folder's name " + folder_name);
    }
    return tmpl;
}

}  // namespace

TemplateCatalog::TemplateCatalog(std::vector<domain::VmTemplate> templates)
    : templates_(std::move(templates)) {}

Result<TemplateCatalog> TemplateCatalog::Load(const std::string& directory) {
    std::error_code ec;
    if (!fs::is_directory(directory, ec)) {
        return Error::NotFound("template directory " + directory + " does not exist");
    }
    std::vector<fs::path> folders;
    fs::directory_iterator it(directory, ec);
    if (ec) return Error::InvalidArgument(directory + ": " + ec.message());
    // increment() ends the loop on an error and reports it in `ec`, checked below.
    for (const fs::directory_iterator end; it != end; it.increment(ec)) {
        const fs::path& path = it->path();
        if (path.filename().string().starts_with('.')) continue;
        std::error_code type_ec;
        if (it->is_directory(type_ec)) folders.push_back(path);
    }
    if (ec) return Error::InvalidArgument(directory + ": " + ec.message());
    // Folder names are the ids, so sorting them sorts the catalogue and makes Load deterministic.
    std::sort(folders.begin(), folders.end());

    std::vector<domain::VmTemplate> templates;
    templates.reserve(folders.size());
    for (const fs::path& folder : folders) {
        auto tmpl = LoadOne(folder);
        if (!tmpl) return tmpl.error();
        templates.push_back(std::move(*tmpl));
    }
    return TemplateCatalog(std::move(templates));
}

const domain::VmTemplate* TemplateCatalog::Find(std::string_view id) const {
    const auto it = std::find_if(templates_.begin(), templates_.end(),
                                 [&](const domain::VmTemplate& t) { return t.id == id; });
    return it == templates_.end() ? nullptr : &*it;
}

}  // namespace decloud::orchestrator::adapters::templates
