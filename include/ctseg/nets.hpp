// The seed architectures as ready network types.
#pragma once
#include "ctseg/nets/context_net.hpp"
#include "ctseg/nets/fcn.hpp"
#include "ctseg/nets/unet.hpp"
#include "ctseg/nets/unet3d.hpp"
#include "ctseg/nets/vnet.hpp"
