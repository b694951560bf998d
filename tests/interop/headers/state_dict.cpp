#include "ctseg/interop/state_dict.hpp"
