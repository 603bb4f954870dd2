"""Importable plumbing for the tests (and bench/): not tests, not fixtures.

Fixtures, and the data builders several test modules share, live in the ``conftest.py`` of the narrowest folder that
holds all their users (tests/README.md); what has to be imported by name (a server class, a path needed at
collection time, something bench/ uses too) lives here.
"""
