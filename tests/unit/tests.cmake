# One line per unit test; each names tests/unit/test_NAME.c.
wsh_unit_test(handshake)
wsh_unit_test(plugin)
wsh_unit_test(route)
wsh_unit_test(slots)
wsh_unit_test(topic)
wsh_unit_test(utf8)
wsh_unit_test(frame)
wsh_unit_test(tls)
