"""The backend tests' fixtures: a real Phoenix server (see :mod:`phoenix_server`)."""

from phoenix_server import phoenix

__all__ = ["phoenix"]
