"""Bolt's image builder: ``bolt build`` from a Dockerfile.bolt.

* ``syntax``, ``instructions``, ``words``: reading the Dockerfile (pure);
* ``plan``: stages, ARG scoping, the image config per instruction, cache keys (pure);
* ``ignore``, ``tree``: the build context and its ``.boltignore``, sources read inside
  their root;
* ``executor``, ``steps``, ``copy``, ``container``: running the steps over overlay mounts;
* ``diff``, ``commit``, ``cache``, ``bases``: layers from upper directories, writing to the
  image store, the step cache, base images.

It uses the image store (``bolt.images``) and the runtime's spec and driver
(``bolt.runtime``); neither of them imports it.
"""
