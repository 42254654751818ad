// WebSocket echo upstream for bench/proxy: one thread, every message sent back as received (text
// or binary), no timeouts, no compression. nginx cannot echo, so the proxy bench needs this.
//
//   proxy_ws_echo --listen 127.0.0.1:0   prints "proxy_ws_echo listening on 127.0.0.1:<port>"
// SIGTERM/SIGINT stop it (exit 0).

#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <iostream>
#include <string>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::ip::tcp;

namespace {

asio::awaitable<void> Echo(tcp::socket socket) {
    socket.set_option(tcp::no_delay(true));
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(10),
                                                  websocket::stream_base::none(), false});
    auto [aec] = co_await ws.async_accept(asio::as_tuple(asio::use_awaitable));
    if (aec) co_return;
    beast::flat_buffer buffer;
    for (;;) {
        auto [rec, n] = co_await ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
        if (rec) co_return;  // closed by the peer, or the connection dropped
        ws.text(ws.got_text());
        auto [wec, wn] =
            co_await ws.async_write(buffer.data(), asio::as_tuple(asio::use_awaitable));
        if (wec) co_return;
        buffer.consume(buffer.size());
    }
}

asio::awaitable<void> Accept(tcp::acceptor* acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;  // e.g. EMFILE for one connection: keep serving the others
        asio::co_spawn(acceptor->get_executor(), Echo(std::move(socket)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"WebSocket echo server (bench/proxy upstream)"};
    std::string listen = "127.0.0.1:0";
    cli.add_option("--listen", listen, "address:port (port 0: any free port)");
    CLI11_PARSE(cli, argc, argv);

    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        std::cerr << "--listen wants address:port\n";
        return 2;
    }
    asio::io_context io{1};
    tcp::acceptor acceptor(io);
    try {
        const tcp::endpoint endpoint(
            asio::ip::make_address(listen.substr(0, colon)),
            static_cast<std::uint16_t>(std::stoul(listen.substr(colon + 1))));
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(asio::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
        std::cerr << "cannot listen on " << listen << ": " << e.what() << "\n";
        return 1;
    }
    std::cout << "proxy_ws_echo listening on " << acceptor.local_endpoint().address().to_string()
              << ":" << acceptor.local_endpoint().port() << std::endl;

    asio::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code& ec, int) {
        if (!ec) io.stop();
    });
    asio::co_spawn(io, Accept(&acceptor), asio::detached);
    io.run();
    return 0;
}
