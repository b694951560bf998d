// Every other source of this program includes exactly one exec header and
// nothing else: building it checks that each header is self-contained.
#define BOOST_TEST_MODULE exec headers
#include <boost/test/unit_test.hpp>

#include "ctseg/exec.hpp"

BOOST_AUTO_TEST_CASE(headers_compile) {
    ctseg::exec::tensor_ref<float, 2> t;
    BOOST_TEST(t.plane() == 0);
}
