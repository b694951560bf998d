// The DSL: everything needed to write a network type.
#pragma once
#include "ctseg/spec/fixed_string.hpp"
#include "ctseg/spec/layers.hpp"
#include "ctseg/spec/options.hpp"
#include "ctseg/spec/shape.hpp"
#include "ctseg/spec/topology.hpp"
