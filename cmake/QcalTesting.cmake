# qcal_add_gtest(NAME SOURCES a_test.cc ... LIBS lib ...)
# One GoogleTest binary, its cases registered with CTest. Tests find the repository through
# QCAL_SOURCE_DIR (compiled in) and the build through QCAL_BINARY_DIR, so they run from any
# working directory. CTest names are prefixed with the binary's name ("kernels_histogram_test.
# HistogramTest.Growth"), so `ctest -R kernels` selects a component's tests.
function(qcal_add_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    QCAL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" QCAL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 TEST_PREFIX "${name}."
    PROPERTIES LABELS "${ARG_LABELS}")
endfunction()
