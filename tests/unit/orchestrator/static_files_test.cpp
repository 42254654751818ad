// The web console's static file handler: only the files of the web root, with their types and
// caching, index.html for client-side routes, and the API's own answers left as they were.

#include "orchestrator/api/static_files.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "decloud/testing/process.hpp"

namespace decloud::orchestrator::api {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using testing::HttpRequest;
using testing::RawExchange;
using testing::TempDir;

void WriteFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

constexpr std::string_view kIndex = "<!doctype html><title>DeCloud</title><div id=app></div>";
constexpr std::string_view kScript = "console.log('console');";
constexpr std::string_view kSecret = "TOP-SECRET-OUTSIDE-THE-ROOT";

// <tmp>/secret.txt next to <tmp>/web/{index.html, assets/index-AbC123.js, favicon.svg, ...}.
class StaticFilesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = fs::path(dir_.path()) / "web";
        WriteFile(root_ / "index.html", std::string(kIndex));
        WriteFile(root_ / "assets" / "index-AbC123.js", std::string(kScript));
        WriteFile(root_ / "assets" / "index-Xy9.css", "body{}");
        WriteFile(root_ / "favicon.svg", "<svg/>");
        WriteFile(root_ / "docs" / "index.html", "<p>docs</p>");
        WriteFile(root_ / ".env", "SECRET=1");
        WriteFile(root_ / ".git" / "config", "[core]");
        WriteFile(fs::path(dir_.path()) / "secret.txt", std::string(kSecret));
        fs::create_symlink(fs::path(dir_.path()) / "secret.txt", root_ / "linked.txt");
        fs::create_directory_symlink(fs::path(dir_.path()), root_ / "up");
    }

    StaticFiles Load() {
        auto files = StaticFiles::Load(root_);
        EXPECT_TRUE(files) << (files ? "" : files.error().message);
        return std::move(*files);
    }

    static net::Request Get(std::string target, std::string if_none_match = {}) {
        net::Request req{http::verb::get, target, 11};
        if (!if_none_match.empty()) req.set(http::field::if_none_match, if_none_match);
        return req;
    }

    TempDir dir_{"decloud-static"};
    fs::path root_;
};

TEST(ContentTypeForTest, KnowsWhatViteEmits) {
    EXPECT_EQ(ContentTypeFor("index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(ContentTypeFor("/assets/index-AbC.js"), "text/javascript; charset=utf-8");
    EXPECT_EQ(ContentTypeFor("/assets/index-AbC.CSS"), "text/css; charset=utf-8");
    EXPECT_EQ(ContentTypeFor("logo.svg"), "image/svg+xml");
    EXPECT_EQ(ContentTypeFor("font.woff2"), "font/woff2");
    EXPECT_EQ(ContentTypeFor("x.wasm"), "application/wasm");
    EXPECT_EQ(ContentTypeFor("map.js.map"), "application/json");
    EXPECT_EQ(ContentTypeFor("README"), "application/octet-stream");
    EXPECT_EQ(ContentTypeFor("archive.tar.gz"), "application/octet-stream");
    EXPECT_EQ(ContentTypeFor("dir.js/file"), "application/octet-stream");
}

TEST_F(StaticFilesTest, LoadsOnlyRegularVisibleFilesOfTheRoot) {
    const auto files = Load();
    EXPECT_EQ(files.size(), 5u);
    EXPECT_NE(files.Find("/index.html"), nullptr);
    EXPECT_NE(files.Find("/assets/index-AbC123.js"), nullptr);
    EXPECT_EQ(files.Find("/.env"), nullptr);
    EXPECT_EQ(files.Find("/.git/config"), nullptr);
    EXPECT_EQ(files.Find("/linked.txt"), nullptr);
    EXPECT_EQ(files.Find("/up/secret.txt"), nullptr);
}

TEST_F(StaticFilesTest, RefusesRootsWithoutIndexOrTooLarge) {
    auto missing = StaticFiles::Load(fs::path(dir_.path()) / "nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, common::ErrorCode::kNotFound);
    auto no_index = StaticFiles::Load(root_ / "assets");
    ASSERT_FALSE(no_index);
    EXPECT_EQ(no_index.error().code, common::ErrorCode::kNotFound);
    auto too_large = StaticFiles::Load(root_, 16);
    ASSERT_FALSE(too_large);
    EXPECT_EQ(too_large.error().code, common::ErrorCode::kInvalidArgument);
}

TEST_F(StaticFilesTest, ServesFilesWithTypeEtagAndCaching) {
    const auto files = Load();
    auto index = files.Serve(Get("/"), "r1");
    EXPECT_EQ(index.result(), http::status::ok);
    EXPECT_EQ(index.body(), kIndex);
    EXPECT_EQ(index[http::field::content_type], "text/html; charset=utf-8");
    EXPECT_EQ(index[http::field::cache_control], "no-cache");
    EXPECT_NE(index["Content-Security-Policy"].find("default-src 'self'"), std::string::npos);
    EXPECT_EQ(index["X-Content-Type-Options"], "nosniff");

    auto script = files.Serve(Get("/assets/index-AbC123.js?v=1"), "r2");
    EXPECT_EQ(script.result(), http::status::ok);
    EXPECT_EQ(script.body(), kScript);
    EXPECT_EQ(script[http::field::content_type], "text/javascript; charset=utf-8");
    EXPECT_EQ(script[http::field::cache_control], "public, max-age=31536000, immutable");
    const std::string etag(script[http::field::etag]);
    ASSERT_EQ(etag.size(), 18u);
    EXPECT_EQ(etag.front(), '"');

    auto again = files.Serve(Get("/assets/index-AbC123.js", "\"other\", " + etag), "r3");
    EXPECT_EQ(again.result(), http::status::not_modified);
    EXPECT_TRUE(again.body().empty());
    EXPECT_EQ(again[http::field::etag], etag);
    auto weak = files.Serve(Get("/assets/index-AbC123.js", "W/" + etag), "r4");
    EXPECT_EQ(weak.result(), http::status::not_modified);
    auto changed = files.Serve(Get("/assets/index-AbC123.js", "\"0000000000000000\""), "r5");
    EXPECT_EQ(changed.result(), http::status::ok);

    EXPECT_EQ(files.Serve(Get("/docs/"), "r6").body(), "<p>docs</p>");
    EXPECT_EQ(files.Serve(Get("/favicon.svg"), "r7")[http::field::content_type], "image/svg+xml");
    EXPECT_EQ(files.Serve(Get("/assets/index-Xy9.css"), "r8").body(), "body{}");
}

TEST_F(StaticFilesTest, ClientRoutesGetTheAppMissingFilesA404) {
    const auto files = Load();
    for (const char* route : {"/vms", "/vms/8d3f0c1e-2b1a-4c55-9e0e-1a2b3c4d5e6f", "/market?x=1",
                              "/operator/nodes", "/%76ms"}) {
        auto resp = files.Serve(Get(route), "r");
        EXPECT_EQ(resp.result(), http::status::ok) << route;
        EXPECT_EQ(resp.body(), kIndex) << route;
    }
    for (const char* missing : {"/assets/index-Gone.js", "/favicon.ico", "/robots.txt"}) {
        auto resp = files.Serve(Get(missing), "r");
        EXPECT_EQ(resp.result(), http::status::not_found) << missing;
        EXPECT_EQ(resp[http::field::content_type], "application/problem+json") << missing;
    }
}

TEST_F(StaticFilesTest, TraversalAndHiddenFilesNeverLeak) {
    const auto files = Load();
    for (const char* evil :
         {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
          "/%2E%2E%2Fsecret.txt", "/assets/%2e%2e%2f%2e%2e%2fsecret.txt", "/..%5csecret.txt",
          "/./index.html", "/a\\..\\secret.txt", "/index.html%00.js", "/%zz", "/%2"}) {
        auto resp = files.Serve(Get(evil), "r");
        EXPECT_EQ(resp.result(), http::status::bad_request) << evil;
        EXPECT_EQ(resp.body().find(kSecret), std::string::npos) << evil;
    }
    for (const char* hidden : {"/.env", "/.git/config", "/linked.txt", "/up/secret.txt"}) {
        auto resp = files.Serve(Get(hidden), "r");
        EXPECT_EQ(resp.result(), http::status::not_found) << hidden;
        EXPECT_EQ(resp.body().find(kSecret), std::string::npos) << hidden;
        EXPECT_EQ(resp.body().find("SECRET=1"), std::string::npos) << hidden;
    }
}

// Through a real server: the console takes what the API does not, and the API answers as before.
class StaticRoutesTest : public StaticFilesTest {
  protected:
    void SetUp() override {
        StaticFilesTest::SetUp();
        auto router = std::make_shared<net::Router>();
        router->Add(http::verb::get, "/healthz",
                    [](net::RequestContext& ctx) -> boost::asio::awaitable<net::Response> {
                        co_return net::MakeJson(ctx.request, http::status::ok, {{"ok", true}});
                    });
        router->Add(http::verb::post, "/api/auth/verify",
                    [](net::RequestContext& ctx) -> boost::asio::awaitable<net::Response> {
                        co_return net::MakeJson(ctx.request, http::status::ok, {{"q", 1}});
                    });
        router->Add(
            http::verb::get, "/api/vms/{id}",
            [](net::RequestContext& ctx) -> boost::asio::awaitable<net::Response> {
                co_return net::MakeJson(ctx.request, http::status::ok, {{"id", ctx.Param("id")}});
            });
        AddStaticRoutes(*router, std::make_shared<const StaticFiles>(Load()));
        server_ = std::make_unique<net::HttpServer>(ioc_, net::ServerOptions{}, router);
        port_ = server_->Start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    void TearDown() override {
        server_->Shutdown([] {});
        thread_.join();
    }

    boost::asio::io_context ioc_;
    std::unique_ptr<net::HttpServer> server_;
    std::thread thread_;
    std::uint16_t port_ = 0;
};

TEST_F(StaticRoutesTest, ServesTheConsoleAndLeavesTheApiAlone) {
    auto index = HttpRequest(port_, "GET", "/");
    ASSERT_TRUE(index);
    EXPECT_EQ(index->status, 200);
    EXPECT_EQ(index->body, kIndex);
    auto route = HttpRequest(port_, "GET", "/vms/abc");
    ASSERT_TRUE(route);
    EXPECT_EQ(route->status, 200);
    EXPECT_EQ(route->body, kIndex);
    auto script = HttpRequest(port_, "GET", "/assets/index-AbC123.js");
    ASSERT_TRUE(script);
    EXPECT_EQ(script->Header("Content-Type"), "text/javascript; charset=utf-8");
    auto not_modified = HttpRequest(port_, "GET", "/assets/index-AbC123.js", {},
                                    {{"If-None-Match", script->Header("ETag")}});
    ASSERT_TRUE(not_modified);
    EXPECT_EQ(not_modified->status, 304);

    auto health = HttpRequest(port_, "GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->body, R"({"ok":true})");
    auto vm = HttpRequest(port_, "GET", "/api/vms/v1");
    ASSERT_TRUE(vm);
    EXPECT_EQ(vm->body, R"({"id":"v1"})");
    // Unknown API paths stay problem+json 404s (never the app's HTML), wrong methods 405s.
    for (const auto& [method, target] :
         std::vector<std::pair<std::string, std::string>>{{"GET", "/api/nothing"},
                                                          {"POST", "/api/nothing/here"},
                                                          {"GET", "/api"},
                                                          {"GET", "/metrics/x"}}) {
        auto resp = HttpRequest(port_, method, target);
        ASSERT_TRUE(resp);
        EXPECT_EQ(resp->status, 404) << method << " " << target;
        EXPECT_EQ(resp->Header("Content-Type"), "application/problem+json") << target;
    }
    auto quote = HttpRequest(port_, "GET", "/api/auth/verify");
    ASSERT_TRUE(quote);
    EXPECT_EQ(quote->status, 405);
    EXPECT_EQ(quote->Header("Allow"), "POST");
    auto post_health = HttpRequest(port_, "POST", "/healthz");
    ASSERT_TRUE(post_health);
    EXPECT_EQ(post_health->status, 405);
    EXPECT_EQ(post_health->Header("Allow"), "GET");
    auto post_page = HttpRequest(port_, "POST", "/vms");
    ASSERT_TRUE(post_page);
    EXPECT_EQ(post_page->status, 405);
    EXPECT_EQ(post_page->Header("Allow"), "GET");
}

TEST_F(StaticRoutesTest, RawTraversalOnTheWireGetsNothingOutside) {
    for (const char* target : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                               "/up/secret.txt", "/linked.txt", "//../secret.txt"}) {
        const auto reply = RawExchange(
            port_,
            std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            false);
        EXPECT_FALSE(reply.empty()) << target;
        EXPECT_EQ(reply.find(kSecret), std::string::npos) << target;
        EXPECT_TRUE(reply.starts_with("HTTP/1.1 400") || reply.starts_with("HTTP/1.1 404"))
            << target << ": " << reply.substr(0, 40);
    }
}

}  // namespace
}  // namespace decloud::orchestrator::api
