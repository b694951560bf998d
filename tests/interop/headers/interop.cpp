#include "ctseg/interop.hpp"
