"""Fixtures of the server tests; the helpers live in serverproc.py.

Test modules import helpers from ``serverproc``, never from ``conftest``:
two conftest modules in one run share the module name ``conftest``.
"""

from serverproc import *  # noqa: F403 - registers the fixtures defined there
