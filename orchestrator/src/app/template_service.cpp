#include "orchestrator/app/template_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace decloud::orchestrator::app {

using common::Error;
using common::Result;
using nlohmann::json;

namespace {

constexpr std::string_view kVersionSeparator = ".v";
constexpr const char* kDefaultImage = "debian-12";

bool IsCommunityName(std::string_view s) {
    const auto lower_alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    };
    return !s.empty() && s.size() <= kMaxCommunityTemplateNameLength && lower_alnum(s[0]) &&
           std::all_of(s.begin(), s.end(), [&](char c) { return lower_alnum(c) || c == '-'; });
}

// A value the parameter accepts, for filling placeholders before the schema check.
json SampleValue(const domain::TemplateParameter& p) {
    if (p.default_value) return *p.default_value;
    switch (p.type) {
        case domain::ParameterType::kString:
            return "example";
        case domain::ParameterType::kInteger: {
            std::int64_t v = 1;
            if (p.minimum) v = std::max(v, *p.minimum);
            if (p.maximum) v = std::min(v, *p.maximum);
            return v;
        }
        case domain::ParameterType::kBoolean:
            return false;
    }
    return nullptr;
}

TemplateView Seed(const domain::VmTemplate& t) {
    TemplateView view;
    view.source = TemplateSource::kSeed;
    view.entry.tmpl = t;
    view.entry.name = t.id;
    view.entry.version = t.version;
    return view;
}

TemplateView Community(ports::CommunityTemplate t) {
    TemplateView view;
    view.source = TemplateSource::kCommunity;
    view.entry = std::move(t);
    return view;
}

}  // namespace

Result<CommunityTemplateDraft> ParseCommunityTemplate(const json& body) {
    if (!body.is_object()) return Error::InvalidArgument("the body must be a JSON object");
    static const std::set<std::string> kKnown = {"name",  "description", "image",   "minimum",
                                                 "ports", "parameters",  "userData"};
    for (const auto& item : body.items())
        if (!kKnown.contains(item.key()))
            return Error::InvalidArgument("unknown field '" + item.key().substr(0, 64) + "'");

    const auto name = body.find("name");
    if (name == body.end() || !name->is_string())
        return Error::InvalidArgument("name: required, a string");
    if (!IsCommunityName(name->get_ref<const std::string&>()))
        return Error::InvalidArgument("name: must match [a-z0-9][a-z0-9-]* (at most " +
                                      std::to_string(kMaxCommunityTemplateNameLength) +
                                      " characters)");
    const auto user_data = body.find("userData");
    if (user_data == body.end() || !user_data->is_string())
        return Error::InvalidArgument("userData: required, a #cloud-config document as a string");
    if (user_data->get_ref<const std::string&>().size() > domain::kMaxTemplateUserDataBytes)
        return Error{
            common::ErrorCode::kPayloadTooLarge,
            "userData: at most " + std::to_string(domain::kMaxTemplateUserDataBytes) + " bytes"};
    if (const auto it = body.find("parameters"); it != body.end() && it->is_array()) {
        for (const auto& p : *it)
            if (p.is_object() && p.contains("pattern"))
                return Error::InvalidArgument(
                    "parameters: 'pattern' is for seed templates only (a community template's "
                    "regular expression would run inside the orchestrator); use minimum/maximum "
                    "or validate in the cloud-init itself");
    }

    CommunityTemplateDraft draft;
    draft.name = name->get<std::string>();
    json manifest = json::object();
    for (const char* key : {"description", "minimum", "ports", "parameters"})
        if (const auto it = body.find(key); it != body.end()) manifest[key] = *it;
    manifest["image"] = body.value("image", json(kDefaultImage));
    // What the domain's rules need besides: the name as id and display name, a version.
    json full = manifest;
    full["id"] = draft.name;
    full["name"] = draft.name;
    full["version"] = 1;
    auto tmpl = domain::ParseTemplate(full, user_data->get<std::string>());
    if (!tmpl) {
        auto message = tmpl.error().message;
        // The domain speaks of "user-data" and "manifest"; the API's fields are these.
        if (message.starts_with("user-data")) message = "userData" + message.substr(9);
        if (message.starts_with("manifest: ")) message = message.substr(10);
        return Error::InvalidArgument(std::move(message));
    }
    draft.manifest = std::move(manifest);
    draft.tmpl = std::move(*tmpl);
    draft.tmpl.id = CommunityTemplateId(draft.name, 0);
    return draft;
}

std::string SampleCloudConfig(const domain::VmTemplate& tmpl) {
    json params = json::object();
    for (const auto& p : tmpl.parameters) params[p.name] = SampleValue(p);
    auto rendered = domain::RenderTemplate(tmpl, params);
    // Every sample is valid for its parameter, so rendering cannot fail; the raw document is
    // still something to check if it ever does.
    return rendered ? *rendered : tmpl.user_data;
}

std::string CommunityTemplateId(std::string_view name, std::int64_t version) {
    return std::string(name) + std::string(kVersionSeparator) + std::to_string(version);
}

std::optional<std::pair<std::string, std::int64_t>> ParseCommunityTemplateId(std::string_view id) {
    const auto at = id.rfind(kVersionSeparator);
    if (at == std::string_view::npos) return std::nullopt;
    const auto name = id.substr(0, at);
    const auto digits = id.substr(at + kVersionSeparator.size());
    if (!IsCommunityName(name) || digits.empty() || digits.size() > 18 || digits[0] == '0')
        return std::nullopt;
    std::int64_t version = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || version < 1)
        return std::nullopt;
    return std::make_pair(std::string(name), version);
}

std::string_view ToString(TemplateSource source) {
    return source == TemplateSource::kSeed ? "seed" : "community";
}

TemplateService::TemplateService(const std::vector<domain::VmTemplate>& seeds,
                                 ports::CommunityTemplateRepository& repository,
                                 ports::CloudConfigValidator& validator, const common::Clock& clock)
    : seeds_(seeds), repository_(repository), validator_(validator), clock_(clock) {}

const domain::VmTemplate* TemplateService::FindSeed(std::string_view id) const {
    for (const auto& t : seeds_)
        if (t.id == id) return &t;
    return nullptr;
}

Result<PublishOutcome> TemplateService::Publish(const std::string& author, const json& body) {
    auto draft = ParseCommunityTemplate(body);
    if (!draft) return draft.error();
    if (FindSeed(draft->name) != nullptr)
        return Error::Conflict("name: '" + draft->name + "' is a seed template's name");
    PublishOutcome outcome;
    auto complaints = validator_.Check(SampleCloudConfig(draft->tmpl));
    if (!complaints) return complaints.error();
    if (!complaints->empty()) {
        outcome.schema_errors = std::move(*complaints);
        return outcome;
    }
    ports::NewCommunityTemplate version;
    version.name = draft->name;
    version.author_wallet = author;
    version.manifest = std::move(draft->manifest);
    version.user_data = std::move(draft->tmpl.user_data);
    auto stored = repository_.Publish(version, clock_.Now());
    if (!stored) return stored.error();
    spdlog::info("community template {} published by {}", stored->tmpl.id, author);
    outcome.published = std::move(*stored);
    return outcome;
}

Result<TemplatePage> TemplateService::List(std::optional<TemplateSource> source,
                                           std::string_view cursor, std::size_t limit) {
    const bool seeds = !source || *source == TemplateSource::kSeed;
    const bool community = !source || *source == TemplateSource::kCommunity;
    // Where the page starts: a seed index, then community versions after `after`.
    std::size_t first_seed = 0;
    std::optional<std::pair<std::string, std::int64_t>> after;
    if (!cursor.empty()) {
        const auto* seed = FindSeed(cursor);
        if (seeds && seed != nullptr) {
            first_seed = static_cast<std::size_t>(seed - seeds_.data()) + 1;
        } else if (auto version = ParseCommunityTemplateId(cursor); community && version) {
            first_seed = seeds_.size();
            after = std::move(version);
        } else {
            return Error::InvalidArgument("cursor: not the id a page of this listing ended with");
        }
    }
    TemplatePage page;
    bool more = false;
    if (seeds) {
        for (std::size_t i = first_seed; i < seeds_.size(); ++i) {
            if (page.templates.size() == limit) {
                more = true;
                break;
            }
            page.templates.push_back(Seed(seeds_[i]));
        }
    }
    if (community && !more) {
        // One more than fits tells whether another page follows.
        const std::size_t room = limit - page.templates.size();
        auto versions = repository_.List(after, room + 1);
        if (!versions) return versions.error();
        more = versions->size() > room;
        if (more) versions->resize(room);
        for (auto& t : *versions) page.templates.push_back(Community(std::move(t)));
    }
    if (more && !page.templates.empty()) page.next_cursor = page.templates.back().entry.tmpl.id;
    return page;
}

Result<TemplateView> TemplateService::Get(const std::string& id) {
    if (const auto* seed = FindSeed(id)) return Seed(*seed);
    const auto parsed = ParseCommunityTemplateId(id);
    if (!parsed) return Error::NotFound("no template '" + id.substr(0, 128) + "'");
    auto t = repository_.Get(parsed->first, parsed->second);
    if (!t) return t.error();
    return Community(std::move(*t));
}

Result<ports::CommunityTemplate> TemplateService::Deprecate(const std::string& author,
                                                            const std::string& id) {
    const auto parsed = ParseCommunityTemplateId(id);
    if (!parsed) return Error::NotFound("no community template '" + id.substr(0, 128) + "'");
    return repository_.Deprecate(author, parsed->first, parsed->second, clock_.Now());
}

}  // namespace decloud::orchestrator::app
