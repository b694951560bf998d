#include "ctseg/interop/npy.hpp"
