// Training maths without PyTorch: losses, optimizers, schedules, initialisation.
#define BOOST_TEST_MODULE train
#include <boost/test/unit_test.hpp>
