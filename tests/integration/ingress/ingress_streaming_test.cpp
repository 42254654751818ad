// decloud-ingress streams: 2 GiB up and 2 GiB down pass intact (the upstream's checksum of what it
// received or sent against curl's side), chunked both ways, while the proxy's peak RSS (VmHWM)
// stays within a fixed allowance above its idle RSS. The proxy is an ASan build started with an
// 8 MiB quarantine so freed buffers do not count.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "ingress_fixture.hpp"

namespace decloud::ingress_test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr long long kTwoGiB = 2LL * 1024 * 1024 * 1024;
constexpr long long kHalfGiB = 512LL * 1024 * 1024;
// Peak memory the proxy may add over its idle RSS while moving any amount of data.
constexpr long kPeakAllowanceKb = 64 * 1024;

std::string LastLine(const std::string& text) {
    std::string line, last;
    std::istringstream in(text);
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return last;
}

std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class IngressStreamingTest : public IngressTest {
  protected:
    // The proxy's RSS once it has served a request (buffers and pools warmed up).
    long WarmRssKb() {
        const auto r = Curl({ProxyUrl(AppPath("/echo"))});
        EXPECT_EQ(r.status, 200) << r.err;
        return ProxyRssKb();
    }

    void ExpectBoundedPeak(long idle_kb, const std::string& what) {
        const long peak_kb = ProxyPeakRssKb();
        std::cout << "[ memory ] " << what << ": idle RSS " << idle_kb / 1024 << " MiB, peak "
                  << peak_kb / 1024 << " MiB (+" << (peak_kb - idle_kb) / 1024 << " MiB)\n";
        EXPECT_GT(idle_kb, 0);
        EXPECT_LT(peak_kb - idle_kb, kPeakAllowanceKb)
            << what << ": the proxy's peak RSS grew by " << (peak_kb - idle_kb) / 1024 << " MiB";
    }

    static void Report(const std::string& what, long long bytes,
                       std::chrono::steady_clock::duration elapsed) {
        const double seconds = std::chrono::duration<double>(elapsed).count();
        std::cout << "[ transfer ] " << what << ": " << bytes / (1024 * 1024) << " MiB in "
                  << seconds << " s (" << static_cast<long long>(bytes / seconds / (1024 * 1024))
                  << " MiB/s)\n";
    }

    // curl downloads `bytes` through the proxy into openssl; compares with what the upstream sent.
    void Download(long long bytes, bool chunked, const std::string& id) {
        const std::string url = ProxyUrl(AppPath("/download?bytes=" + std::to_string(bytes) +
                                                 "&id=" + id + (chunked ? "&mode=chunked" : "")));
        const auto started = std::chrono::steady_clock::now();
        const auto run =
            Bash("curl -sS --max-time 280 -w '%{stderr}%{http_code} %{size_download}\\n' '" + url +
                     "' | openssl dgst -sha256 -r",
                 300s);
        Report(id, bytes, std::chrono::steady_clock::now() - started);
        ASSERT_EQ(run.exit_code, 0) << run.err;
        EXPECT_EQ(LastLine(run.err), "200 " + std::to_string(bytes));
        ASSERT_GE(run.out.size(), 64u) << run.out;
        const std::string received_sha = run.out.substr(0, 64);
        json record;
        ASSERT_TRUE(testing::WaitUntil(
            [&] {
                record = UpstreamStats()["downloads"][id];
                return record.is_object() && record["finished"].get<bool>();
            },
            5s, 20ms))
            << record.dump();
        EXPECT_EQ(record["bytes"], bytes);
        EXPECT_EQ(record["sha256"], received_sha) << "the bytes curl got are not what was sent";
    }

    // Deterministic pseudo-random bytes (AES-CTR over zeros) piped through curl -T - to the
    // upstream's /upload; the script hashes what it sent on the side. With `length` curl sends
    // Content-Length (and Expect: 100-continue), otherwise chunked.
    void Upload(long long bytes, bool with_length, const std::string& name) {
        const std::string dir = dir_.path() + "/" + name;
        std::filesystem::create_directory(dir);
        const std::string url = ProxyUrl(AppPath("/upload"));
        const std::string framing = with_length ? "-H 'Content-Length: " + std::to_string(bytes) +
                                                      "' -H 'Transfer-Encoding:' "
                                                : std::string();
        const std::string script =
            "mkfifo '" + dir +
            "/fifo'\n"
            "openssl dgst -sha256 -r < '" +
            dir + "/fifo' > '" + dir +
            "/sent.sha' &\n"
            "hasher=$!\n"
            "dd if=/dev/zero bs=1M count=" +
            std::to_string(bytes / (1024 * 1024)) +
            " status=none | openssl enc -aes-128-ctr -nosalt -bufsize 1048576 "
            "-K 00112233445566778899aabbccddeeff -iv 000102030405060708090a0b0c0d0e0f "
            "| tee '" +
            dir + "/fifo' | curl -sS --max-time 280 -T - " + framing + "-D '" + dir +
            "/head' -w '%{stderr}%{http_code}\\n' '" + url +
            "'\n"
            "wait $hasher\n";
        const auto started = std::chrono::steady_clock::now();
        const auto run = Bash(script, 300s);
        Report(name, bytes, std::chrono::steady_clock::now() - started);
        ASSERT_EQ(run.exit_code, 0) << run.err;
        EXPECT_EQ(LastLine(run.err), "200");
        const auto upload = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
        ASSERT_TRUE(upload.is_object()) << run.out;
        const std::string sent_sha = ReadFile(dir + "/sent.sha").substr(0, 64);
        ASSERT_EQ(sent_sha.size(), 64u);
        EXPECT_EQ(upload["bytes"], bytes);
        EXPECT_EQ(upload["sha256"], sent_sha) << "the upstream did not get what curl sent";
        EXPECT_TRUE(upload["expect"].is_null()) << "Expect was forwarded: " << upload.dump();
        const std::string head = ReadFile(dir + "/head");
        EXPECT_NE(head.find("HTTP/1.1 100"), std::string::npos) << "curl got no 100 Continue:\n"
                                                                << head;
    }
};

TEST_F(IngressStreamingTest, TwoGibDownloadPassesIntactInBoundedMemory) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const long idle_kb = WarmRssKb();
    ASSERT_NO_FATAL_FAILURE(Download(kTwoGiB, /*chunked=*/false, "download-2g"));
    ExpectBoundedPeak(idle_kb, "2 GiB download");
}

TEST_F(IngressStreamingTest, TwoGibUploadWithExpectContinuePassesIntactInBoundedMemory) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const long idle_kb = WarmRssKb();
    ASSERT_NO_FATAL_FAILURE(Upload(kTwoGiB, /*with_length=*/true, "upload-2g"));
    ExpectBoundedPeak(idle_kb, "2 GiB upload");
    EXPECT_EQ(UpstreamStats()["expectSeen"], 0);
}

TEST_F(IngressStreamingTest, ChunkedBodiesBothWaysPassIntactInBoundedMemory) {
    ASSERT_NO_FATAL_FAILURE(StartProxy());
    const long idle_kb = WarmRssKb();
    ASSERT_NO_FATAL_FAILURE(Upload(kHalfGiB, /*with_length=*/false, "upload-chunked"));
    ASSERT_NO_FATAL_FAILURE(Download(kHalfGiB, /*chunked=*/true, "download-chunked"));
    ExpectBoundedPeak(idle_kb, "512 MiB chunked upload and download");
}

}  // namespace
}  // namespace decloud::ingress_test
