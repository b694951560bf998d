// Backward (training) kernels. Every gradient output is ACCUMULATED (+=): the
// caller zeroes gradients once per step, and a tensor read by two layers
// receives both contributions. Every reduction has a summation order fixed by
// the shapes alone, so results are bit-identical whatever the thread count.
#pragma once
#include "ctseg/exec/backward_conv.hpp"
#include "ctseg/exec/backward_norm.hpp"
#include "ctseg/exec/backward_pointwise.hpp"
