"""Handlers the end-to-end tests use besides the examples."""
