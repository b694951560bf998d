// A model's named state as PyTorch's state_dict sees it: what interop reads and
// writes. Entries point into the model's own storage.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ctseg::model {

template <class T>
struct state_entry {
    std::string name;                    // PyTorch state_dict key, e.g. "down.0.conv1.weight"
    std::vector<std::int64_t> shape;     // PyTorch shape
    std::span<T> values;                 // floating-point tensor storage, or empty for a counter
    std::int64_t* counter = nullptr;     // int64 scalar buffers (BatchNorm's num_batches_tracked)
    bool trainable = true;               // parameters (true) vs buffers such as running statistics
};

}  // namespace ctseg::model
