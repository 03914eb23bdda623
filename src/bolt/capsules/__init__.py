"""Capsule snapshots: the state of containers and of registered providers, restored as one.

* ``snapshots``  — :class:`~bolt.capsules.snapshots.Snapshot`, the public API.
* ``executor``   — runs a restore with its journal; repairs what a killed process left.
* ``twophase``   — the pure two-phase restore machine (values in, actions out).
* ``providers``  — the provider protocol and the ``bolt.snapshot_providers`` entry points.
* ``filesystem`` — the ``containers`` provider (overlay upper dirs as layers, or btrfs).
* ``containers`` — what capsules need of the container engine.
* ``store``      — ``$BOLT_ROOT/snapshots.db``: snapshot metadata and the restore journal.
* ``retention``  — ``[snapshots]`` of a Boltfile: keep rules, triggers, pruning.
"""
