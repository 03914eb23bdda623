"""Boltfile.toml: the schema, its validation and the normalised project Surge runs.

``Boltfile.from_path(p)`` returns a validated :class:`Boltfile` or raises
:class:`BoltfileError` with every problem, each located by dotted key and line.
"""

from bolt.config.boltfile import Boltfile, find_boltfile
from bolt.config.errors import BoltfileError, Problem

__all__ = ["Boltfile", "BoltfileError", "Problem", "find_boltfile"]
