#pragma once

#include <string>
#include <string_view>

namespace decloud::common {

// Random (version 4) UUID in canonical lowercase form, from the kernel's CSPRNG.
std::string NewUuid();
// Canonical 8-4-4-4-12 hex form (either case).
bool IsUuid(std::string_view s);
// n random bytes as lowercase hex (2n characters).
std::string RandomHex(std::size_t n);

}  // namespace decloud::common
