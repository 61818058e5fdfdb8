"""The completion gateway: one request shape for every provider (see :func:`clew.completion`)."""
