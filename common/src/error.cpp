#include "decloud/common/error.hpp"

#include <stdexcept>

namespace decloud::common {

std::string_view ToString(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidArgument:
            return "invalid_argument";
        case ErrorCode::kNotFound:
            return "not_found";
        case ErrorCode::kConflict:
            return "conflict";
        case ErrorCode::kUnprocessable:
            return "unprocessable";
        case ErrorCode::kUnauthenticated:
            return "unauthenticated";
        case ErrorCode::kPermissionDenied:
            return "permission_denied";
        case ErrorCode::kPaymentRequired:
            return "payment_required";
        case ErrorCode::kPayloadTooLarge:
            return "payload_too_large";
        case ErrorCode::kRateLimited:
            return "rate_limited";
        case ErrorCode::kUnavailable:
            return "unavailable";
        case ErrorCode::kTimeout:
            return "timeout";
        case ErrorCode::kInternal:
            return "internal";
    }
    return "internal";
}

ErrorException::ErrorException(Error error)
    : std::runtime_error(std::string(ToString(error.code)) + ": " + error.message),
      error_(std::move(error)) {}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
    throw ErrorException(e);
}

}  // namespace decloud::common
