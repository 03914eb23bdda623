"""``nvctl ct``: the GPU management stack (gpu-manager, gpu-monitor, driver-updater,
web-interface) as a Bolt project, over :class:`bolt.surge.Orchestrator`.

``stack`` (which Boltfile, adapted to this host's driver), ``baseimage`` (the offline base
image), ``control`` (start/stop/status), and the in-container programs ``probe``,
``webproxy`` and ``updater``.
"""
