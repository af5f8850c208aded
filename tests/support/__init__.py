"""Test-only helpers and fault injectors, importable as `tests.support` (pyproject's pytest pythonpath holds ".")."""
