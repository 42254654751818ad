#pragma once

// Serial console sessions, relayed over a node's command channel (GET /api/nodes/{id}/channel).
// Every message is a JSON text frame whose "type" starts with "console.", so both ends tell them
// apart from command pushes and results. Console bytes travel base64-encoded in "data" (the
// channel carries text frames only, and a serial console is not UTF-8).
//
//   orchestrator -> agent   console.open   {session, vmId}
//                           console.input  {session, data}
//                           console.close  {session, reason}
//   agent -> orchestrator   console.opened {session}
//                           console.output {session, data, dropped}
//                           console.closed {session, reason}
//
// The browser side (GET /api/vms/{id}/console) uses the same framing without the session:
//   server -> browser  {"type":"output","data":<base64>,"dropped":<bytes lost so far>}
//   browser -> server  {"type":"input","data":<base64>} or {"type":"input","text":<UTF-8>}

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "decloud/common/result.hpp"

namespace decloud::proto {

enum class ConsoleMessageType { kOpen, kInput, kClose, kOpened, kOutput, kClosed };
std::string_view ToString(ConsoleMessageType type);

struct ConsoleMessage {
    ConsoleMessageType type = ConsoleMessageType::kOpen;
    std::string session;        // chosen by the orchestrator, unique per console session
    std::string vm_id;          // open only
    std::string data;           // input, output: raw bytes (base64 on the wire)
    std::uint64_t dropped = 0;  // output: bytes the agent dropped for this session so far
    std::string reason;         // close, closed: why, for people
    friend bool operator==(const ConsoleMessage&, const ConsoleMessage&) = default;
};

// Longest session id accepted; longest decoded "data" accepted in one message.
inline constexpr std::size_t kMaxConsoleSessionBytes = 64;
inline constexpr std::size_t kMaxConsoleDataBytes = 64 * 1024;

// True for a JSON object whose "type" is a string starting with "console.".
bool IsConsoleMessage(const nlohmann::json& j);
nlohmann::json ToJson(const ConsoleMessage& v);
// kInvalidArgument naming the field for anything malformed: unknown type, missing or too long
// session, bad base64, data over kMaxConsoleDataBytes, open without vmId.
common::Result<ConsoleMessage> DecodeConsoleMessage(const nlohmann::json& j);

// The browser's frames (see above).
nlohmann::json BrowserConsoleOutput(std::string_view bytes, std::uint64_t dropped);
// The bytes of a browser's input frame; kInvalidArgument if it is not one.
common::Result<std::string> DecodeBrowserConsoleInput(const nlohmann::json& j);

}  // namespace decloud::proto
