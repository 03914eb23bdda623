"""A Boltfile service → the engine's ``ContainerIntent``, its labels and its spec hash.

Pure: given the validated project, a service and the ID of the image it runs, it returns
values (except that GPU driver paths missing on this host are resolved by ``hostpaths``).  Names follow compose so that users find their way: containers are
``PROJECT-SERVICE-N``, networks ``PROJECT_NET``, named volumes ``PROJECT_VOL``.  Every
container is reachable on its networks by ``SERVICE`` and by ``SERVICE.PROJECT``.
"""

from __future__ import annotations

import hashlib
import re

from bolt.config import Boltfile
from bolt.config.schema import Service
from bolt.runtime.intent import (
    ContainerIntent,
    HealthCheck,
    MountIntent,
    NetworkAttachment,
    PortMapping,
    RestartPolicy,
)
from bolt.surge import hostpaths

LABEL = "bolt.surge"
PROJECT = f"{LABEL}.project"
SERVICE = f"{LABEL}.service"
NUMBER = f"{LABEL}.number"
HASH = f"{LABEL}.hash"
ONEOFF = f"{LABEL}.oneoff"
CONFIG_FILE = f"{LABEL}.config_file"
EXPOSE = f"{LABEL}.expose"  # "quic": published ports are meant for encrypted remote exposure
DEFAULT_NETWORK = "default"
_ALIAS = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$")


def container_name(project: str, service: str, number: int) -> str:
    return f"{project}-{service}-{number}"


def network_name(project: str, network: str) -> str:
    return f"{project}_{network}"


def volume_name(boltfile: Boltfile, volume: str) -> str:
    declared = boltfile.volumes.get(volume)
    return volume if declared is not None and declared.external else f"{boltfile.name}_{volume}"


def image_ref(boltfile: Boltfile, service: str) -> str:
    """The image a service runs: its ``image``, else the one its ``build`` makes."""
    svc = boltfile.services[service]
    return svc.image or f"{boltfile.name}-{service}:latest"


def service_networks(boltfile: Boltfile, service: str) -> list[str]:
    """The project networks (Boltfile names) a service joins."""
    return list(boltfile.services[service].networks) or [DEFAULT_NETWORK]


def network_mode(boltfile: Boltfile) -> str:
    """``bridge`` and ``quic`` run as a project bridge; ``host`` and ``none`` as named."""
    return "bridge" if boltfile.network.driver in ("bridge", "quic") else boltfile.network.driver


def _gpus(svc: Service) -> tuple[str | None, dict[str, str]]:
    """The engine's ``gpus`` value and env overrides that keep CUDA's indexes right.

    When ``CUDA_VISIBLE_DEVICES`` picked the devices, only those GPUs are in the container,
    where they are numbered from 0: the variable is rewritten to match.
    """
    if svc.gpu is None or svc.gpu.nvidia is None:
        return None, {}
    nvidia = svc.gpu.nvidia
    if nvidia.devices:
        chosen = ",".join(nvidia.devices)
        env: dict[str, str] = {}
        visible = svc.env.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and [v.strip() for v in visible.split(",")] == nvidia.devices:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(nvidia.devices)))
        return chosen, env
    if isinstance(nvidia.count, int):
        return ",".join(str(i) for i in range(nvidia.count)), {}
    return "all", {}


def _mounts(boltfile: Boltfile, svc: Service) -> list[MountIntent]:
    mounts: list[MountIntent] = []
    for v in svc.volumes:
        if v.type == "bind":
            mounts.append(MountIntent("bind", v.target, v.source or "", v.read_only))
        elif v.type == "tmpfs":
            mounts.append(MountIntent("tmpfs", v.target))
        elif v.source:
            mounts.append(
                MountIntent("volume", v.target, volume_name(boltfile, v.source), v.read_only)
            )
        else:
            mounts.append(MountIntent("anonymous", v.target, "", v.read_only))
    for t in svc.tmpfs:
        options = tuple(
            opt
            for opt in (f"size={t.size}" if t.size else "", f"mode={t.mode}" if t.mode else "")
            if opt
        )
        mounts.append(MountIntent("tmpfs", t.target, options=options))
    return mounts


def _networks(boltfile: Boltfile, service: str) -> list[NetworkAttachment]:
    if network_mode(boltfile) != "bridge":
        return []
    svc = boltfile.services[service]
    names = [service, f"{service}.{boltfile.name}"]
    attachments = []
    for net in service_networks(boltfile, service):
        conf = svc.networks.get(net)
        aliases = [*names, *(conf.aliases if conf else [])]
        attachments.append(
            NetworkAttachment(
                network_name(boltfile.name, net),
                tuple(dict.fromkeys(a for a in aliases if _ALIAS.match(a))),
                conf.ipv4_address if conf else None,
            )
        )
    return attachments


def service_intent(
    boltfile: Boltfile,
    service: str,
    *,
    image: str | None = None,
    command: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    oneoff: bool = False,
) -> ContainerIntent:
    """The container a service's replica runs (labels other than the user's added later)."""
    svc = boltfile.services[service]
    gpus, gpu_env = _gpus(svc)
    health: HealthCheck | None = None
    if svc.healthcheck is not None:
        h = svc.healthcheck
        if h.disable:
            health = HealthCheck(("NONE",))
        elif h.test is not None:
            health = HealthCheck(tuple(h.test), h.interval, h.timeout, h.retries, h.start_period)
    mode = network_mode(boltfile)
    ports = [PortMapping(p.host_ip, p.published or 0, p.target, p.protocol) for p in svc.ports]
    return ContainerIntent(
        image=image or image_ref(boltfile, service),
        command=command if command is not None else svc.command,
        entrypoint=svc.entrypoint,
        env={**svc.env, **gpu_env, **(extra_env or {})},
        workdir=svc.working_dir,
        user=svc.user,
        hostname=svc.hostname,
        mounts=hostpaths.mounts(_mounts(boltfile, svc)),
        devices=hostpaths.devices(svc.devices),
        gpus=gpus,
        privileged=svc.privileged,
        cap_add=tuple(svc.cap_add),
        cap_drop=tuple(svc.cap_drop),
        read_only=svc.read_only,
        memory=svc.memory,
        cpus=svc.cpus,
        pids_limit=svc.pids_limit,
        network_mode=mode,
        networks=tuple(_networks(boltfile, service)),
        ports=tuple(ports) if mode == "bridge" else (),
        extra_hosts=tuple(svc.extra_hosts.items()),
        dns=tuple(svc.dns),
        restart=RestartPolicy("no")
        if oneoff
        else RestartPolicy(svc.restart.policy, svc.restart.max_retries),
        healthcheck=health,
        stop_signal=svc.stop_signal,
        stop_timeout=svc.stop_grace_period,
        labels=dict(svc.labels),
        tty=svc.tty and not oneoff,
        interactive=svc.stdin_open and not oneoff,
    )


def desired_hash(intent: ContainerIntent, image_id: str) -> str:
    """What the ``bolt.surge.hash`` label holds: the intent's hash and the image's ID, so that
    a rebuilt image (same tag, new content) recreates its containers too.  The engine's
    hash leaves out the terminal; a service's ``tty``/``stdin_open`` count here (only when
    set, so that the hashes of every other container stay what they were)."""
    terminal = "".join(
        f"\n{k}" for k, on in (("tty", intent.tty), ("stdin", intent.interactive)) if on
    )
    text = f"{intent.spec_hash()}\n{image_id}{terminal}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def labelled(
    intent: ContainerIntent,
    boltfile: Boltfile,
    service: str,
    number: int,
    spec_hash: str,
    *,
    oneoff: bool = False,
) -> ContainerIntent:
    labels = {
        **intent.labels,
        PROJECT: boltfile.name,
        SERVICE: service,
        NUMBER: str(number),
        HASH: spec_hash,
        ONEOFF: "true" if oneoff else "false",
        CONFIG_FILE: str(boltfile.path),
    }
    if boltfile.network.driver == "quic" and boltfile.network.encryption and intent.ports:
        labels[EXPOSE] = "quic"
    return intent.replace(labels=labels)
