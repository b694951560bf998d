#include "ctseg/interop/safetensors.hpp"
