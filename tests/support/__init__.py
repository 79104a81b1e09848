"""Helpers shared by test modules (which never import each other); fixtures live in tests/conftest.py."""
