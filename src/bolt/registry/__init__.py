"""Bolt's registry client: references, the OCI distribution API v2 (pull, push, blob mount),
basic and bearer-token authentication, credentials from ``bolt login``, the list of
plain-HTTP registries, and parallel transfers with progress.

Images are read from and written to :class:`bolt.images.store.ImageStore`; nothing here
touches the runtime, and nothing in the store imports this package.
"""
