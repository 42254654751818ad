// HttpClient over TLS against a TLS server on loopback (Beast over OpenSSL) with certificates
// made by the openssl tool: verification against a given trust store, host names, SNI,
// keep-alive, and every way verification must fail.

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <future>
#include <thread>

#include "decloud/net/http_client.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::net {
namespace {

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;

// A self-signed certificate for `names` (subjectAltName entries), its key next to it.
std::string MakeCertificate(const std::string& dir, const std::string& stem,
                            const std::string& names) {
    const auto r = testing::RunCommand(
        "/usr/bin/openssl",
        {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", dir + "/" + stem + ".key", "-out", dir + "/" + stem + ".pem", "-days", "2",
         "-subj", "/CN=" + stem, "-addext", "subjectAltName=" + names});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return dir + "/" + stem + ".pem";
}

class TlsServer {
  public:
    TlsServer(const std::string& cert, const std::string& key)
        : context_(ssl::context::tls_server) {
        context_.use_certificate_chain_file(cert);
        context_.use_private_key_file(key, ssl::context::pem);
        acceptor_.open(tcp::v4());
        acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        asio::co_spawn(ioc_, Accept(), asio::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~TlsServer() {
        ioc_.stop();
        thread_.join();
    }

    std::uint16_t port() const { return port_; }
    int connections() const { return connections_; }

  private:
    asio::awaitable<void> Accept() {
        for (;;) {
            auto [ec, socket] =
                co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            ++connections_;
            asio::co_spawn(ioc_, Serve(std::move(socket)), asio::detached);
        }
    }

    // Answers every request with "<SNI name or -> <target>".
    asio::awaitable<void> Serve(tcp::socket socket) {
        beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), context_);
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server,
                                                     asio::as_tuple(asio::use_awaitable));
        if (hec) co_return;
        const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [rec, rn] =
                co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
            if (rec) co_return;
            http::response<http::string_body> resp{http::status::ok, 11};
            resp.body() = std::string(sni ? sni : "-") + " " + std::string(req.target());
            resp.keep_alive(true);
            resp.prepare_payload();
            auto [wec, wn] =
                co_await http::async_write(stream, resp, asio::as_tuple(asio::use_awaitable));
            if (wec) co_return;
        }
    }

    asio::io_context ioc_;
    ssl::context context_;
    tcp::acceptor acceptor_{ioc_};
    std::uint16_t port_ = 0;
    std::atomic<int> connections_{0};
    std::thread thread_;
};

class HttpClientTlsTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir("decloud-tls");
        local_cert_ = MakeCertificate(dir_->path(), "local", "DNS:localhost,IP:127.0.0.1");
        other_cert_ = MakeCertificate(dir_->path(), "other", "DNS:other.example");
    }
    static void TearDownTestSuite() { delete dir_; }

    static std::string Key(const std::string& cert) {
        return cert.substr(0, cert.size() - 4) + ".key";
    }

    common::Result<Response> Get(HttpClient& client, const std::string& target) {
        std::promise<common::Result<Response>> p;
        asio::co_spawn(
            ioc_,
            [&]() -> asio::awaitable<void> {
                p.set_value(co_await client.Send(Request{http::verb::get, target, 11}));
            },
            [](std::exception_ptr) {});
        ioc_.restart();
        ioc_.run();
        return p.get_future().get();
    }

    static ClientOptions Tls(std::string ca_file) {
        ClientOptions o;
        o.tls = true;
        o.ca_file = std::move(ca_file);
        o.connect_timeout = 10s;
        o.request_timeout = 10s;
        return o;
    }

    asio::io_context ioc_;
    static testing::TempDir* dir_;
    static std::string local_cert_, other_cert_;
};

testing::TempDir* HttpClientTlsTest::dir_ = nullptr;
std::string HttpClientTlsTest::local_cert_;
std::string HttpClientTlsTest::other_cert_;

TEST_F(HttpClientTlsTest, VerifiedConnectionWithSniAndKeepAlive) {
    TlsServer server(local_cert_, Key(local_cert_));
    HttpClient client(ioc_.get_executor(), "localhost", server.port(), Tls(local_cert_));
    for (int i = 0; i < 3; ++i) {
        auto r = Get(client, "/hello/" + std::to_string(i));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->result_int(), 200);
        EXPECT_EQ(r->body(), "localhost /hello/" + std::to_string(i));
    }
    EXPECT_EQ(server.connections(), 1) << "one TLS connection for all requests";
}

TEST_F(HttpClientTlsTest, IpAddressesAreVerifiedAgainstTheCertificateWithoutSni) {
    TlsServer server(local_cert_, Key(local_cert_));
    HttpClient client(ioc_.get_executor(), "127.0.0.1", server.port(), Tls(local_cert_));
    auto r = Get(client, "/");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body(), "- /") << "RFC 6066: no IP literals in SNI";
}

TEST_F(HttpClientTlsTest, UntrustedCertificateIsRefused) {
    TlsServer server(local_cert_, Key(local_cert_));
    HttpClient client(ioc_.get_executor(), "localhost", server.port(), Tls(""));  // system store
    auto r = Get(client, "/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable);
    EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos)
        << r.error().message;
}

TEST_F(HttpClientTlsTest, CertificateForAnotherNameIsRefused) {
    TlsServer server(other_cert_, Key(other_cert_));
    HttpClient client(ioc_.get_executor(), "localhost", server.port(), Tls(other_cert_));
    auto r = Get(client, "/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kUnavailable);
    EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos)
        << r.error().message;
}

TEST_F(HttpClientTlsTest, PlainHttpToATlsServerFailsInsteadOfHanging) {
    TlsServer server(local_cert_, Key(local_cert_));
    ClientOptions plain;
    plain.request_timeout = 5s;
    HttpClient client(ioc_.get_executor(), "127.0.0.1", server.port(), plain);
    EXPECT_FALSE(Get(client, "/"));
}

TEST_F(HttpClientTlsTest, UnreadableTrustStoreIsAClearError) {
    HttpClient client(ioc_.get_executor(), "localhost", 1, Tls(dir_->path() + "/missing.pem"));
    auto r = Get(client, "/");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("missing.pem"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace decloud::net
