// Compiles the header on its own.
#include "ctseg/exec/pointwise.hpp"
