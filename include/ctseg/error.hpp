// The one exception type ctseg throws for bad input: a one-line message that
// names the file, the key and the numbers involved.
#pragma once
#include <stdexcept>
#include <string>

namespace ctseg {

struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace ctseg
