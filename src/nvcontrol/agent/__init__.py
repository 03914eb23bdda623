"""The nvcontrol agent: ``GpuManager`` served over authenticated QUIC, the dashboard and
``/metrics`` over HTTPS, in one asyncio process (see docs/decisions.md)."""
