#include "decloud/common/ids.hpp"

#include <sys/random.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace decloud::common {

namespace {

void FillRandom(std::uint8_t* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const auto got = getrandom(out + done, n - done, 0);
        if (got < 0) throw std::runtime_error("getrandom failed");
        done += static_cast<std::size_t>(got);
    }
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::string NewUuid() {
    std::array<std::uint8_t, 16> b{};
    FillRandom(b.data(), b.size());
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(kHex[b[i] >> 4]);
        out.push_back(kHex[b[i] & 0x0f]);
    }
    return out;
}

bool IsUuid(std::string_view s) {
    if (s.size() != 36) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

std::string RandomHex(std::size_t n) {
    std::vector<std::uint8_t> b(n);
    FillRandom(b.data(), n);
    std::string out;
    out.reserve(2 * n);
    for (auto v : b) {
        out.push_back(kHex[v >> 4]);
        out.push_back(kHex[v & 0x0f]);
    }
    return out;
}

}  // namespace decloud::common
