"""``/metrics``: dcgm-exporter's metric names and labels, plus nvcontrol's own, rendered by
prometheus-client from the sampler's latest reading (a scrape never calls NVML)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"]
# nvcontrol's own metrics leave out dcgm-exporter's one camelCase label (modelName), which
# promtool's linter flags; they still join with the DCGM_ ones on gpu, UUID and Hostname.
OWN_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "Hostname"]

# Energy is NVML's total since the driver loaded: monotonic, a counter (a driver reload
# resets it, which rate() takes as a counter reset).  dcgm-exporter exposes it as a counter
# named DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION, without the ``_total`` suffix; prometheus-client
# always writes a counter with ``_total``.  So both are served: the counter
# ``..._total`` (typed counter, for rate() and increase()), and dcgm-exporter's own name as a
# gauge with the same value, so that dashboards written for dcgm-exporter work unchanged
# (docs/decisions.md, "Metrics").
ENERGY = ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since boot (in mJ).")

# dcgm-exporter gauges: name -> (help, key in a sample, scale)
DCGM: list[tuple[str, str, str, float]] = [
    (ENERGY[0], ENERGY[1] + " dcgm-exporter's name; the counter is ..._total.", "energy_j",
     1000),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_c", 1),
    ("DCGM_FI_DEV_MEMORY_TEMP", "Memory temperature (in C).", "memory_temperature_c", 1),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_w", 1),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Power management limit (in W).", "power_limit_w", 1),
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "sm_mhz", 1),
    ("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).", "memory_mhz", 1),
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "gpu_util_pct", 1),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", "memory_util_pct", 1),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "memory_used_mib", 1),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "memory_free_mib", 1),
    ("DCGM_FI_DEV_FAN_SPEED", "Fan speed (in %).", "fan_pct", 1),
    ("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", "last_xid", 1),
]  # fmt: skip


class AgentCollector(Collector):
    """Reads :class:`~nvcontrol.agent.sampler.Sampler`'s state at scrape time."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.hostname = socket.gethostname()

    def collect(self) -> Iterator[Metric]:
        s = self.state
        gpus = s.latest.get("gpus", []) if s.latest else []
        names = s.names
        for name, help_, key, scale in DCGM:
            fam = GaugeMetricFamily(name, help_, labels=LABELS)
            for g in gpus:
                v = g.get(key)
                if key == "memory_free_mib" and g.get("memory_total_mib") is not None:
                    v = g["memory_total_mib"] - (g.get("memory_used_mib") or 0)
                if key == "last_xid":
                    v = s.last_xid.get(g["uuid"], 0)
                if v is None or g.get("lost"):
                    continue
                fam.add_metric(self._labels(g, names), float(v) * scale)
            yield fam
        energy = CounterMetricFamily(ENERGY[0], ENERGY[1], labels=LABELS)  # + "_total"
        for g in gpus:
            if g.get("energy_j") is not None and not g.get("lost"):
                energy.add_metric(self._labels(g, names), float(g["energy_j"]) * 1000)
        yield energy
        limit = GaugeMetricFamily("nvcontrol_power_limit_watts", "Enforced power limit.",
                                  labels=OWN_LABELS)  # fmt: skip
        for g in gpus:
            if g.get("power_limit_w") is not None:
                limit.add_metric(self._own(g, names), float(g["power_limit_w"]))
        yield limit
        offsets = GaugeMetricFamily(
            "nvcontrol_clock_offset_mhz", "Clock offset set through NVML (NVML MHz).",
            labels=[*OWN_LABELS, "domain", "pstate"],
        )  # fmt: skip
        for uuid, per in s.offsets.items():
            g = next((x for x in gpus if x["uuid"] == uuid), None)
            if g is None:
                continue
            for pstate, domains in per.items():
                for domain, value in domains.items():
                    offsets.add_metric([*self._own(g, names), domain, pstate], float(value))
        yield offsets
        tx = CounterMetricFamily("nvcontrol_transactions", "Transactions run by this agent, by result.",
                                 labels=["result", "Hostname"])  # fmt: skip
        for result in ("ok", "rolled_back", "error"):
            tx.add_metric([result, self.hostname], float(s.outcomes.get(result, 0)))
        yield tx
        live = GaugeMetricFamily(
            "nvcontrol_live_transactions", "Transactions now waiting or watching."
        )
        live.add_metric([], float(s.live_count()))
        yield live
        conns = GaugeMetricFamily("nvcontrol_agent_connections", "Open QUIC connections.")
        conns.add_metric([], float(s.connections()))
        yield conns

    def _own(self, g: dict[str, Any], names: dict[str, tuple[str, str]]) -> list[str]:
        labels = self._labels(g, names)
        return labels[:4] + labels[5:]

    def _labels(self, g: dict[str, Any], names: dict[str, tuple[str, str]]) -> list[str]:
        model, bus = names.get(g["uuid"], ("", ""))
        return [str(g["index"]), g["uuid"], bus, f"nvidia{g['index']}", model, self.hostname]


def registry(state: Any) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AgentCollector(state))
    return reg
