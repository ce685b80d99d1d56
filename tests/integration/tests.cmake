# Integration tests: the real websockd on an ephemeral loopback port, talked to
# by clients that are not ours (Debian's python3-websockets, Node's WebSocket
# client, raw sockets). One line per test file below the functions.
set(WSH_PYTHON /usr/bin/python3)
set(WSH_INTEG_ENV
  "WEBSOCKD=$<TARGET_FILE:websockd>"
  "WSH_TEST_PLUGIN_DIR=${CMAKE_CURRENT_BINARY_DIR}/plugins"
  "WSH_PLUGINS_D=${CMAKE_BINARY_DIR}/plugins.d"
  "WSH_SDK_PREFIX=${CMAKE_BINARY_DIR}/sdk-prefix"
  "WSH_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "WSH_BINARY_DIR=${CMAKE_BINARY_DIR}"
  "WSH_PARITY_SDK=$<TARGET_FILE:parity_sdk>"
  "PYTHONDONTWRITEBYTECODE=1")

# wsh_py_test(e2e) runs tests/integration/test_e2e.py with unittest.
function(wsh_py_test name)
  add_test(NAME integ_${name}
    COMMAND ${WSH_PYTHON} -m unittest -v test_${name}
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  set_tests_properties(integ_${name} PROPERTIES TIMEOUT 600
    LABELS integration ENVIRONMENT "${WSH_INTEG_ENV}")
endfunction()
wsh_py_test(e2e)
wsh_py_test(node)
wsh_py_test(sdk)
wsh_py_test(lifecycle)
wsh_py_test(reload)
wsh_py_test(broken_so)
wsh_py_test(conformance)
wsh_py_test(hostile)
wsh_py_test(parity)
wsh_py_test(install)
wsh_py_test(proxy)
wsh_py_test(logs)
wsh_py_test(readme)
wsh_py_test(bigmsg)
wsh_py_test(budget)
wsh_py_test(bus)
wsh_py_test(tls)
wsh_py_test(console)
wsh_py_test(deflate)
wsh_py_test(handoff)
wsh_py_test(guide)
wsh_py_test(additions)
wsh_py_test(chat_client)
