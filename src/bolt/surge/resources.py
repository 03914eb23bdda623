"""The project's networks and named volumes, created before its containers.

Names follow compose (``PROJECT_NET``, ``PROJECT_VOLUME``); each carries the
``bolt.surge.project`` label, by which ``down`` finds what to remove.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from basis.errors import NotFound
from bolt.config import Boltfile
from bolt.engine import Engine
from bolt.surge import intents

Report = Callable[[str, str], None]


def ensure_networks(
    engine: Engine, boltfile: Boltfile, services: Iterable[str], report: Report
) -> None:
    """The project networks the services join, created when absent (labelled with the
    project; a ``quic`` one also with its driver and encryption)."""
    if intents.network_mode(boltfile) != "bridge":
        return
    wanted = {net for s in services for net in intents.service_networks(boltfile, s)}
    existing = {n.name for n in engine.network_list()}
    for net in sorted(wanted):
        name = intents.network_name(boltfile.name, net)
        if name in existing:
            continue
        conf = boltfile.networks.get(net)
        top = boltfile.network
        labels = {intents.PROJECT: boltfile.name, f"{intents.LABEL}.network": net}
        driver = conf.driver if conf else top.driver
        encryption = conf.encryption if conf else top.encryption
        if driver == "quic":
            labels[f"{intents.LABEL}.driver"] = "quic"
            labels[f"{intents.LABEL}.encryption"] = "true" if encryption else "false"
        engine.network_create(
            name,
            subnet=conf.subnet if conf else top.subnet,
            internal=conf.internal if conf else top.internal,
            labels=labels,
        )
        report(name, "network created")


def ensure_volumes(
    engine: Engine, boltfile: Boltfile, services: Iterable[str], report: Report
) -> None:
    """The named volumes the services mount, created when absent (external ones must exist)."""
    wanted = {
        v.source
        for s in services
        for v in boltfile.services[s].volumes
        if v.type == "volume" and v.source
    }
    existing = {v["name"] for v in engine.volume_list()}
    for vol in sorted(wanted):
        name = intents.volume_name(boltfile, vol)
        if name in existing:
            continue
        if boltfile.volumes[vol].external:
            raise NotFound(
                f"external volume {name} does not exist", hint=f"bolt volume create {name}"
            )
        engine.volume_create(name, labels={intents.PROJECT: boltfile.name})
        report(name, "volume created")
