// Tests of the data layer's augmentation, border weights and sparse labels.
#define BOOST_TEST_MODULE data_augment
#include <boost/test/unit_test.hpp>
