// Compiles the header on its own.
#include "ctseg/exec/conv_transpose.hpp"
