# Test plugins: fixtures for the unit tests (tests/unit/test_plugin.c) and the
# integration tests, built into ${CMAKE_CURRENT_BINARY_DIR}/plugins (the
# WSH_TEST_PLUGIN_DIR both are given). Included from tests/CMakeLists.txt
# after unit/tests.cmake, so the test_* targets exist already.
set(WSH_TEST_PLUGIN_DIR ${CMAKE_CURRENT_BINARY_DIR}/plugins)

# Everything the tests need from here, plugins and other files alike.
add_custom_target(wsh_test_plugins ALL)

# wsh_test_plugin(recorder) builds tests/plugins/recorder.c into
# plugins/recorder.so, as a third party would: the SDK header only, hidden
# visibility, the websock_* functions left for the host to provide.
function(wsh_test_plugin name)
  add_library(${name} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/plugins/${name}.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/sdk/include)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${WSH_TEST_PLUGIN_DIR})
  target_compile_options(${name} PRIVATE ${WSH_WARNINGS})
  add_dependencies(wsh_test_plugins ${name})
endfunction()

wsh_test_plugin(recorder)       # records every callback; the integration tests' plugin
wsh_test_plugin(no_symbol)      # no exported websock_handler_v1
wsh_test_plugin(bad_abi)        # abi_version 99
wsh_test_plugin(too_small)      # struct_size 8
wsh_test_plugin(null_handle_in) # the required callback missing
wsh_test_plugin(missing_dep)    # an undefined websock_* function: RTLD_NOW fails
wsh_test_plugin(old_abi_small)  # a table from an older, shorter header
wsh_test_plugin(tlsinfo)        # what upgrade() and init() learn of TLS
wsh_test_plugin(ctor_crash)     # a constructor that dies of SIGBUS: the probe
wsh_test_plugin(ctor_hang)      # a constructor that never returns: the probe
wsh_test_plugin(whoami)         # pushes the remote address init() sees
wsh_test_plugin(logger)         # logs on request: the test library's log capture
wsh_test_plugin(additions)      # every SDK addition of issue 16

# plugins/not_elf.so: a text file where a shared object should be.
set(WSH_NOT_ELF_TEXT ${CMAKE_CURRENT_BINARY_DIR}/not_elf.txt)
file(WRITE ${WSH_NOT_ELF_TEXT}
  "This is a text file named like a plugin, not an ELF shared object.\n"
  "dlopen() must refuse it and websockd must say which file and why.\n")
add_custom_command(OUTPUT ${WSH_TEST_PLUGIN_DIR}/not_elf.so
  COMMAND ${CMAKE_COMMAND} -E make_directory ${WSH_TEST_PLUGIN_DIR}
  COMMAND ${CMAKE_COMMAND} -E copy ${WSH_NOT_ELF_TEXT}
          ${WSH_TEST_PLUGIN_DIR}/not_elf.so
  DEPENDS ${WSH_NOT_ELF_TEXT}
  COMMENT "Writing test plugin not_elf.so (not an ELF file)"
  VERBATIM)
add_custom_target(wsh_test_not_elf DEPENDS ${WSH_TEST_PLUGIN_DIR}/not_elf.so)
add_dependencies(wsh_test_plugins wsh_test_not_elf)

# Every unit test may load these, so each is built after them.
get_property(_wsh_targets DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
  PROPERTY BUILDSYSTEM_TARGETS)
foreach(_t IN LISTS _wsh_targets)
  if(_t MATCHES "^test_")
    add_dependencies(${_t} wsh_test_plugins)
  endif()
endforeach()

# test_plugin defines fakes of the websock_* functions recorder.so calls and
# exports them to the plugins it dlopen()s, as websockd exports the real ones.
if(TARGET test_plugin)
  set_target_properties(test_plugin PROPERTIES ENABLE_EXPORTS ON)
endif()
wsh_test_plugin(msgs)
add_dependencies(wsh_test_plugins msgs)
wsh_test_plugin(faulty)
add_dependencies(wsh_test_plugins faulty)
wsh_test_plugin(zsay) # permessage-deflate: websock_push_uncompressed, websock_conn_compressed
add_dependencies(wsh_test_plugins zsay)
# Live code upgrade (reload = handoff): counter.c in three builds that a
# client tells apart by the version in every answer.
wsh_test_plugin(counter) # v1
function(wsh_counter_variant name)
  add_library(${name} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/plugins/counter.c)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/sdk/include)
  target_compile_definitions(${name} PRIVATE ${ARGN})
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${WSH_TEST_PLUGIN_DIR})
  target_compile_options(${name} PRIVATE ${WSH_WARNINGS})
  add_dependencies(wsh_test_plugins ${name})
endfunction()
wsh_counter_variant(counter_v2 COUNTER_VERSION="v2")
wsh_counter_variant(counter_plain COUNTER_VERSION="p1" COUNTER_NO_HANDOFF)
# A plugin built against the SDK 1.0 header alone (tests/fixtures): the
# shorter table of an old build still loads and runs.
add_library(old_echo MODULE ${CMAKE_CURRENT_SOURCE_DIR}/plugins/old_echo.c)
target_include_directories(old_echo PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/fixtures)
set_target_properties(old_echo PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
  LIBRARY_OUTPUT_DIRECTORY ${WSH_TEST_PLUGIN_DIR})
target_compile_options(old_echo PRIVATE ${WSH_WARNINGS})
add_dependencies(wsh_test_plugins old_echo)
