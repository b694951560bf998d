#include "ctseg/interop/tensor.hpp"
