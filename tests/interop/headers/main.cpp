// Each other file in this directory includes exactly one interop header, so
// that building this test shows every header compiles on its own.
#define BOOST_TEST_MODULE interop headers
#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_CASE(headers_compile_on_their_own) { BOOST_TEST(true); }
