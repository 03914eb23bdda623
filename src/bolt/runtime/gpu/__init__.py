"""GPU passthrough for containers (NVIDIA through CDI)."""
