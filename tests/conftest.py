"""Test-suite wiring: fixture plugins for the real PostgreSQL and the real lab Asterisk."""

pytest_plugins = ["tests.pgserver", "tests.labfixture", "tests.reactorthread"]


def pytest_unconfigure() -> None:
    """Close the file Twisted keeps open once a port listens (``tcp._reservedFD``: /dev/null,
    held to answer EMFILE on accept). Twisted never closes it, so the interpreter's exit
    finalises it, and the ResourceWarning printed then ("Exception ignored ... unclosed file
    /dev/null") ended every full run's output since the suite began listening in-process."""
    from twisted.internet import tcp

    reserved = tcp._reservedFD  # a private attribute: there is no public way to release it
    held = reserved._fileDescriptor
    if held is not None:
        held.close()
        reserved._fileDescriptor = None
