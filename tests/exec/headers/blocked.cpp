// Compiles the header on its own.
#include "ctseg/exec/blocked.hpp"
