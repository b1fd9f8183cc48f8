"""Asterisk configuration generated from the project's files (``dialplans/``, ``config/``)."""
