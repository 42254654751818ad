#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace decloud::agent::domain {

// What a guest wrote on its serial console, made fit to store and show as text: valid UTF-8
// (an invalid byte becomes U+FFFD), line ends as "\n", terminal escape sequences and other
// control characters removed (tabs kept). A sequence cut off at the start of `raw` (a tail of a
// longer log) is dropped rather than misread.
std::string ReadableConsoleText(std::string_view raw);

// The last `max_bytes` of `text` at most, starting at a line boundary when one lies in that
// tail, so a kept log never begins mid-line or mid-character.
std::string_view TailOfLog(std::string_view text, std::size_t max_bytes);

}  // namespace decloud::agent::domain
