// Training maths: losses and their gradients, optimizers, learning-rate
// schedules, initialisation.
#pragma once
#include "ctseg/train/init.hpp"
#include "ctseg/train/losses.hpp"
#include "ctseg/train/optim.hpp"
#include "ctseg/train/schedule.hpp"
