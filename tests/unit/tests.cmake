# One line per unit test; each names tests/unit/test_NAME.c.
wsh_unit_test(handshake)
wsh_unit_test(plugin)
# test_plugin also probes plugins with the real websockd (--probe-plugin).
target_compile_definitions(test_plugin PRIVATE
  WSH_WEBSOCKD="$<TARGET_FILE:websockd>")
add_dependencies(test_plugin websockd)
wsh_unit_test(route)
wsh_unit_test(slots)
wsh_unit_test(deadlines)
wsh_unit_test(topic)
wsh_unit_test(utf8)
wsh_unit_test(frame)
wsh_unit_test(inifile)
wsh_unit_test(registry HOST_API)
wsh_unit_test(config)
wsh_unit_test(contract)
wsh_unit_test(headers)
wsh_unit_test(log HOST_API)
wsh_unit_test(crash)
wsh_unit_test(metrics)
wsh_unit_test(worker)
wsh_unit_test(server)
wsh_unit_test(conn HOST_API)
wsh_unit_test(http HOST_API)
wsh_unit_test(outq HOST_API)
wsh_unit_test(sendq HOST_API)
wsh_unit_test(msgs HOST_API)
wsh_unit_test(api HOST_API)
wsh_unit_test(loop)
wsh_unit_test(tcp)
wsh_unit_test(service)
wsh_unit_test(timeutil)
wsh_unit_test(copy)
wsh_unit_test(bus_msg)
wsh_unit_test(bus)
wsh_unit_test(tls)
wsh_unit_test(realip)
wsh_unit_test(proxyproto)
wsh_unit_test(deflate)
# The SDK test library's own tests, linked against the staged
# libwebsock_test as a plugin's tests are (not against wsh_core).
add_executable(test_websock_test unit/test_websock_test.c)
add_dependencies(test_websock_test sdk_stage logger)
target_include_directories(test_websock_test PRIVATE ${CMAKE_SOURCE_DIR}/sdk/include)
target_compile_options(test_websock_test PRIVATE ${WSH_WARNINGS})
target_compile_definitions(test_websock_test PRIVATE
  WSH_TEST_PLUGIN_DIR="${CMAKE_CURRENT_BINARY_DIR}/plugins")
target_link_libraries(test_websock_test PRIVATE PkgConfig::CHECK
  ${CMAKE_BINARY_DIR}/sdk-build/${CMAKE_SHARED_LIBRARY_PREFIX}websock_test${CMAKE_SHARED_LIBRARY_SUFFIX})
add_test(NAME unit_websock_test COMMAND test_websock_test)
set_tests_properties(unit_websock_test PROPERTIES TIMEOUT 120 LABELS unit)
# The hot path takes no lock (issue 18): every host pthread lock call is
# counted through the linker's --wrap; libevent's through lock callbacks.
wsh_unit_test(hotlock HOST_API)
target_link_options(test_hotlock PRIVATE
  -Wl,--wrap=pthread_mutex_lock -Wl,--wrap=pthread_mutex_trylock
  -Wl,--wrap=pthread_rwlock_rdlock -Wl,--wrap=pthread_rwlock_wrlock
  -Wl,--wrap=pthread_spin_lock)
# test_topic fails the topic code's allocations on demand (--wrap).
target_link_options(test_topic PRIVATE -Wl,--wrap=realloc -Wl,--wrap=calloc)
