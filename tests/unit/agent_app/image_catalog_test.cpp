// The image catalogue on real files, and fetching images from an HTTP server on loopback (our
// own server, curl as the client): verified before use, refused when a checksum is wrong.

#include "agent/adapters/image_catalog.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "decloud/crypto/crypto.hpp"
#include "decloud/net/http_server.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace http = boost::beast::http;

void Write(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

std::string Sha(const std::string& text) { return crypto::HexEncode(crypto::Sha256(text)); }

class ImageCatalogTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // Serves files below remote_ at /images/{name}/{file}.
        auto router = std::make_shared<net::Router>();
        router->Add(http::verb::get, "/images/{name}/{file}",
                    [this](net::RequestContext& ctx) -> asio::awaitable<net::Response> {
                        ++requests_;
                        const auto path = remote_.path() + "/" + std::string(ctx.Param("name")) +
                                          "/" + std::string(ctx.Param("file"));
                        net::Response resp{http::status::ok, ctx.request.version()};
                        std::ifstream in(path, std::ios::binary);
                        if (!in) resp.result(http::status::not_found);
                        std::stringstream body;
                        body << in.rdbuf();
                        resp.body() = body.str();
                        resp.prepare_payload();
                        co_return resp;
                    });
        server_ = std::make_unique<net::HttpServer>(ioc_, net::ServerOptions{}, router,
                                                    std::make_shared<prometheus::Registry>());
        port_ = server_->Start();
        thread_ = std::thread([this] { ioc_.run(); });
    }

    void TearDown() override {
        work_.reset();
        ioc_.stop();
        if (thread_.joinable()) thread_.join();
    }

    ImageCatalog Remote() {
        ImageFetchOptions fetch;
        fetch.base_url = "http://127.0.0.1:" + std::to_string(port_) + "/images";
        fetch.timeout = std::chrono::seconds{30};
        return ImageCatalog(local_.path(), fetch);
    }

    testing::TempDir local_{"decloud-images"};
    testing::TempDir remote_{"decloud-images-remote"};
    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        asio::make_work_guard(ioc_)};
    std::unique_ptr<net::HttpServer> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::atomic<int> requests_{0};
};

TEST_F(ImageCatalogTest, LocalImagesWithKernelBootAndChecksums) {
    Write(local_.path() + "/tiny/disk.qcow2", "disk");
    Write(local_.path() + "/tiny/vmlinuz", "kernel");
    Write(local_.path() + "/tiny/cmdline", "console=ttyS0\n");
    Write(local_.path() + "/tiny/SHA256SUMS",
          Sha("disk") + "  disk.qcow2\n" + Sha("kernel") + " *vmlinuz\n");
    ImageCatalog catalog(local_.path());
    auto image = catalog.Find("tiny");
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(image->disk, local_.path() + "/tiny/disk.qcow2");
    ASSERT_TRUE(image->kernel_boot);
    EXPECT_EQ(image->kernel_boot->cmdline, "console=ttyS0");
    EXPECT_TRUE(image->kernel_boot->initrd.empty());

    // A damaged file is noticed (its size changed), and the image refused.
    Write(local_.path() + "/tiny/disk.qcow2", "disk, but corrupted");
    auto damaged = catalog.Find("tiny");
    ASSERT_FALSE(damaged);
    EXPECT_EQ(damaged.error().code, common::ErrorCode::kConflict);

    EXPECT_EQ(catalog.Find("nope").error().code, common::ErrorCode::kNotFound);
    for (const char* bad : {"../etc", ".hidden", "", "A", "a/b"})
        EXPECT_EQ(catalog.Find(bad).error().code, common::ErrorCode::kInvalidArgument) << bad;
}

TEST_F(ImageCatalogTest, AMissingImageIsFetchedVerifiedAndThenServedLocally) {
    Write(remote_.path() + "/debian-12/disk.qcow2", std::string(3 << 20, 'd'));
    Write(remote_.path() + "/debian-12/SHA256SUMS",
          Sha(std::string(3 << 20, 'd')) + "  disk.qcow2\n");
    auto catalog = Remote();
    auto image = catalog.Find("debian-12");
    ASSERT_TRUE(image) << image.error().message;
    EXPECT_EQ(fs::file_size(image->disk), 3u << 20);
    EXPECT_FALSE(fs::exists(local_.path() + "/.fetch-debian-12"));
    const int fetched = requests_.load();
    EXPECT_EQ(fetched, 2);
    ASSERT_TRUE(catalog.Find("debian-12"));
    EXPECT_EQ(requests_.load(), fetched) << "the second use is local";
}

TEST_F(ImageCatalogTest, AFetchWithAWrongChecksumLeavesNothingBehind) {
    Write(remote_.path() + "/evil/disk.qcow2", "tampered");
    Write(remote_.path() + "/evil/SHA256SUMS", Sha("original") + "  disk.qcow2\n");
    auto catalog = Remote();
    auto image = catalog.Find("evil");
    ASSERT_FALSE(image);
    EXPECT_EQ(image.error().code, common::ErrorCode::kConflict);
    EXPECT_FALSE(fs::exists(local_.path() + "/evil"));
    EXPECT_FALSE(fs::exists(local_.path() + "/.fetch-evil"));

    // No SHA256SUMS: never used unverified.
    Write(remote_.path() + "/unsigned/disk.qcow2", "disk");
    auto unsigned_image = catalog.Find("unsigned");
    ASSERT_FALSE(unsigned_image);
    EXPECT_EQ(unsigned_image.error().code, common::ErrorCode::kUnavailable);
    EXPECT_FALSE(fs::exists(local_.path() + "/unsigned"));

    // A list naming files that are no image's is refused before anything is downloaded.
    Write(remote_.path() + "/odd/SHA256SUMS", Sha("x") + "  ../../etc/passwd\n");
    auto odd = catalog.Find("odd");
    ASSERT_FALSE(odd);
    EXPECT_EQ(odd.error().code, common::ErrorCode::kConflict);
}

}  // namespace
}  // namespace decloud::agent::adapters
