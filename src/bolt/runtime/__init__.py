"""Bolt's container runtime: intent -> validated ``ContainerSpec`` -> ``config.json`` -> crun/runc.

``spec`` and ``ocispec`` are pure (values in, values out); ``driver`` talks to the OCI
runtime binaries; ``monitor`` supervises one container; ``engine`` ties them to the state
database; ``oci.Container`` is the asyncio library API.  Nothing here reads TOML or images
beyond what ``engine`` asks the image store for.
"""
