#pragma once

#include <boost/system/result.hpp>

#include "decloud/common/error.hpp"

namespace decloud::common {

// Expected failures travel as values: Result<Node> is either a Node or an Error.
template <class T>
using Result = boost::system::result<T, Error>;

using Status = boost::system::result<void, Error>;

inline Status Ok() { return {}; }

}  // namespace decloud::common
