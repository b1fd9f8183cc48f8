"""Test-suite wiring: fixture plugins for the real PostgreSQL and the real lab Asterisk."""

pytest_plugins = ["tests.pgserver", "tests.labfixture", "tests.reactorthread"]
