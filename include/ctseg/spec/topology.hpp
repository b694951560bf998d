// Topology: how layers are wired. A network is one of these types.
#pragma once
#include <type_traits>

#include "ctseg/spec/fixed_string.hpp"
#include "ctseg/spec/layers.hpp"
#include "ctseg/spec/options.hpp"

namespace ctseg {

// Layers applied one after the other. `sequential` names its children 0, 1, 2,
// ... as torch.nn.Sequential does. A plain seq (like concat and add) is
// transparent to named layers inside it; only a layer with parameters that has
// no name of its own is known by its positions since the nearest name:
// seq<conv, seq<conv, relu>> has keys "0.weight" and "1.0.weight".
template <class... Layers>
struct seq {};
template <class... Layers>
struct sequential {};

// Gives a layer (and everything inside it) a name: parameter keys become
// "<name>.<inner key>", e.g. named<"down.0", ...>. Dots are allowed.
template <fixed_string Name, class Layer>
struct named {};

// named<"down.3", L> spelled with a computed index: indexed<"down", 3, L>.
template <fixed_string Name, std::size_t Index, class Layer>
struct indexed {};

// Every branch sees the same input; their outputs are concatenated along the
// channels in order. With crop_center first, branches are centre-cropped to the
// smallest spatial extent (U-Net's skip connections); otherwise extents must match.
template <class... BranchesAndPolicy>
struct concat {};

// Every branch sees the same input; their outputs are added (FCN's fusion of
// score maps, ResNet/V-Net residuals). Shapes must match exactly.
template <class... Branches>
struct add {};

// U-Net's skip connection: [features, Body(features)] concatenated, the
// features cropped to Body's output when Policy is crop_center.
template <class Body, class... Policy>
using skip_concat = concat<Policy..., identity, Body>;

// Body(x) + Shortcut(x); the shortcut defaults to the identity.
template <class Body, class Shortcut = identity>
using residual = add<Body, Shortcut>;

}  // namespace ctseg
