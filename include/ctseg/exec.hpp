// Execution kernels: shapes and pointers in, results out.
#pragma once
#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/simd.hpp"
#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/blocked.hpp"
#include "ctseg/exec/conv_chain.hpp"
#include "ctseg/exec/conv_transpose.hpp"
#include "ctseg/exec/pool.hpp"
#include "ctseg/exec/pointwise.hpp"
#include "ctseg/exec/norm.hpp"
#include "ctseg/exec/backward.hpp"
