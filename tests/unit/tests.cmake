# One line per unit test; each names tests/unit/test_NAME.c.
wsh_unit_test(handshake)
