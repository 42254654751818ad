#include "decloud/common/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

namespace decloud::common {

namespace {

// One JSON object per line: {"ts","level","logger","msg","thread"}; the message is escaped.
class JsonFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        using namespace std::chrono;
        const auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count();
        const std::time_t secs = static_cast<std::time_t>(ms / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        char ts[64];
        std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<int>(ms % 1000));
        nlohmann::json j;
        j["ts"] = ts;
        const auto level = spdlog::level::to_string_view(msg.level);
        j["level"] = std::string(level.data(), level.size());
        j["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
        j["msg"] = std::string(msg.payload.data(), msg.payload.size());
        j["thread"] = msg.thread_id;
        const auto text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        dest.append(text.data(), text.data() + text.size());
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

}  // namespace

Status SetupLogging(std::string_view level, std::string_view format, std::string_view name) {
    const auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        return Error::InvalidArgument("log.level: unknown level '" + std::string(level) + "'");
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>(std::string(name), sink);
    if (format == "json") {
        logger->set_formatter(std::make_unique<JsonFormatter>());
    } else if (format == "human") {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ [%n] %v",
                            spdlog::pattern_time_type::utc);
    } else {
        return Error::InvalidArgument("log.format: expected human or json, got '" +
                                      std::string(format) + "'");
    }
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(std::move(logger));
    return Ok();
}

}  // namespace decloud::common
