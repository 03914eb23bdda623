"""The neutral base every package of this distribution may import: exit codes, user errors
and their rendering, process identity.

It imports nothing from ``bolt``, ``nvcontrol`` or ``nvsim``; they all import it.  That keeps
the virtual driver (nvsim) from depending on the container engine above it.
"""
