# Unit tests of the shipped plugins (plugins/NAME/test_NAME.c, against the
# SDK's fake host libwebsock_test). Each plugin is its own CMake project,
# built by the superbuild in ${CMAKE_BINARY_DIR}/plugins/NAME with its own
# ctest tree; these tests run those trees from the top-level ctest.
# Included from tests/CMakeLists.txt.
foreach(p echo chat clock)
  add_test(NAME plugin_${p}
    COMMAND ${CMAKE_CTEST_COMMAND} --test-dir ${CMAKE_BINARY_DIR}/plugins/${p}
            --output-on-failure --no-tests=error)
  set_tests_properties(plugin_${p} PROPERTIES TIMEOUT 120 LABELS plugin)
endforeach()
