# One line per unit test; each names tests/unit/test_NAME.c.
