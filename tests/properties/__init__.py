"""Property-based tests: random programs run with clew and without it, then compared."""
