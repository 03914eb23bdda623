"""Bolt state: the SQLite database of containers."""
