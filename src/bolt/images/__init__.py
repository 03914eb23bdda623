"""Bolt's image store: an OCI image layout of verified, content-addressed blobs, and a cache
of layers unpacked once into read-only directories that container root filesystems are
overlaid on.

Nothing here imports the runtime; the runtime asks :class:`bolt.images.store.ImageStore`
for an image's config and its layer directories.
"""
