// Compiles the header on its own.
#include "ctseg/exec/simd.hpp"
