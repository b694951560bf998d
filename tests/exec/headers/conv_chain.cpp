// Compiles the header on its own.
#include "ctseg/exec/conv_chain.hpp"
