#include "ctseg/interop/atomic_file.hpp"
