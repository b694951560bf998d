// Tensor file I/O: .npy arrays, .safetensors files, model state dicts.
#pragma once
#include "ctseg/interop/atomic_file.hpp"
#include "ctseg/interop/npy.hpp"
#include "ctseg/interop/safetensors.hpp"
#include "ctseg/interop/state_dict.hpp"
#include "ctseg/interop/tensor.hpp"
