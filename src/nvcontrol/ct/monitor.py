"""``nvctl ct monitor``: live samples from the gpu-monitor service's ``/metrics``.

``samples`` is pure (Prometheus text in, one dict per GPU out, parsed by
prometheus-client's parser); ``fetch`` reads gpu-monitor over HTTPS at its address on the
project network.  The agent's certificate is its own self-signed one and is not verified
on this hop (as for the web-interface; see docs/ct.md).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

FIELDS = {
    "DCGM_FI_DEV_GPU_TEMP": "temperature_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_GPU_UTIL": "utilization_pct",
    "DCGM_FI_DEV_SM_CLOCK": "sm_clock_mhz",
    "DCGM_FI_DEV_MEM_CLOCK": "memory_clock_mhz",
}
MONITOR_PORT = 9400


def samples(text: str) -> list[dict[str, Any]]:
    """Each GPU's reading in ``text`` (dcgm-exporter names), ordered by GPU index."""
    gpus: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = FIELDS.get(sample.name)
            if key is None or "UUID" not in sample.labels:
                continue
            g = gpus.setdefault(
                sample.labels["UUID"],
                {
                    "index": int(sample.labels.get("gpu", "0")),
                    "uuid": sample.labels["UUID"],
                    "model": sample.labels.get("modelName"),
                },
            )
            g[key] = sample.value
    return sorted(gpus.values(), key=lambda g: g["index"])


def fetch(address: str, port: int = MONITOR_PORT, timeout_s: float = 5.0) -> str:
    import httpx

    resp = httpx.get(f"https://{address}:{port}/metrics", verify=False, timeout=timeout_s)
    resp.raise_for_status()
    return resp.text


def line(g: dict[str, Any]) -> str:
    def show(key: str, unit: str) -> str:
        v = g.get(key)
        return "-" if v is None else f"{v:g}{unit}"

    return (
        f"GPU {g['index']}  {show('temperature_c', ' °C'):>7}  {show('power_w', ' W'):>8}  "
        f"{show('utilization_pct', ' %'):>6}  sm {show('sm_clock_mhz', ' MHz'):>9}  "
        f"mem {show('memory_clock_mhz', ' MHz'):>10}"
    )
