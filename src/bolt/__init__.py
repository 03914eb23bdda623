"""Bolt — an OCI container engine: images, crun/runc runtime, CDI GPUs, Surge orchestration."""

__version__ = "0.1.0"
