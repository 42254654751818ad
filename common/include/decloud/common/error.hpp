#pragma once

#include <boost/assert/source_location.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace decloud::common {

// What went wrong, independent of transport; only the API layer maps a code to an HTTP status.
enum class ErrorCode {
    kInvalidArgument,   // the caller sent something malformed or out of range
    kNotFound,          // the addressed thing does not exist (or is not visible to the caller)
    kConflict,          // the request contradicts the current state (or replays a used token)
    kUnprocessable,     // well-formed, but cannot be satisfied (e.g. no node can host this VM)
    kUnauthenticated,   // no or bad credentials
    kPermissionDenied,  // credentials fine, but not allowed to touch this
    kPaymentRequired,   // the account's balance cannot pay for what was asked
    kPayloadTooLarge,
    kRateLimited,
    kUnavailable,  // a dependency (database, daemon) cannot be reached now; retrying may help
    kTimeout,
    kInternal,
};

std::string_view ToString(ErrorCode code);

struct Error {
    ErrorCode code = ErrorCode::kInternal;
    std::string message;

    static Error InvalidArgument(std::string msg) {
        return {ErrorCode::kInvalidArgument, std::move(msg)};
    }
    static Error NotFound(std::string msg) { return {ErrorCode::kNotFound, std::move(msg)}; }
    static Error Conflict(std::string msg) { return {ErrorCode::kConflict, std::move(msg)}; }
    static Error Unprocessable(std::string msg) {
        return {ErrorCode::kUnprocessable, std::move(msg)};
    }
    static Error Unauthenticated(std::string msg) {
        return {ErrorCode::kUnauthenticated, std::move(msg)};
    }
    static Error PermissionDenied(std::string msg) {
        return {ErrorCode::kPermissionDenied, std::move(msg)};
    }
    static Error PaymentRequired(std::string msg) {
        return {ErrorCode::kPaymentRequired, std::move(msg)};
    }
    static Error Unavailable(std::string msg) { return {ErrorCode::kUnavailable, std::move(msg)}; }
    static Error Timeout(std::string msg) { return {ErrorCode::kTimeout, std::move(msg)}; }
    static Error Internal(std::string msg) { return {ErrorCode::kInternal, std::move(msg)}; }

    friend bool operator==(const Error&, const Error&) = default;
};

// Thrown by Result<T>::value() on an error; boost::system::result finds it by ADL.
class ErrorException : public std::runtime_error {
  public:
    explicit ErrorException(Error error);
    const Error& error() const noexcept { return error_; }

  private:
    Error error_;
};

[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace decloud::common
