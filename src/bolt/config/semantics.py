"""Rules that span keys or touch the file system, checked after the shape is known.

Every rule runs and every broken one is reported, so one ``bolt surge validate`` shows all of
them: services without an image or a build, build directories that do not exist, unknown or
cyclic ``depends_on``, host ports published twice, undeclared named volumes and networks,
unreadable ``env_file``s.  It also makes relative paths absolute (against the Boltfile's
directory) and folds ``env_file`` and ``gpu`` shorthands into one form each.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from bolt.config.errors import Problem, problem_at
from bolt.config.interpolate import InterpolationError, read_env_file
from bolt.config.locate import Locator
from bolt.config.schema import BoltfileModel, Gpu, NvidiaGpu, Service, Volume

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _absolute(directory: Path, path: str) -> str:
    return os.path.normpath(directory / Path(path).expanduser())


def _gpu(service: Service) -> Gpu | None:
    """One ``gpu.nvidia`` table; ``CUDA_VISIBLE_DEVICES`` picks the devices when none are."""
    gpu = service.gpu
    if gpu is None:
        return None
    nvidia = gpu.nvidia
    shorthand = gpu.count is not None or gpu.devices is not None or gpu.capabilities is not None
    if nvidia is None and not shorthand:
        return None
    base = nvidia or NvidiaGpu()
    merged = base.model_copy(
        update={
            "count": gpu.count if gpu.count is not None else base.count,
            "devices": gpu.devices if gpu.devices is not None else base.devices,
            "capabilities": gpu.capabilities or base.capabilities,
        }
    )
    visible = service.env.get("CUDA_VISIBLE_DEVICES", "").strip()
    if not merged.devices and merged.count is None and visible and visible not in ("all", "none"):
        merged = merged.model_copy(update={"devices": [d.strip() for d in visible.split(",")]})
    return Gpu(nvidia=merged)


def _normalise_service(
    name: str, service: Service, directory: Path, locator: Locator, problems: list[Problem]
) -> Service:
    at = ("services", name)
    update: dict[str, object] = {}
    if service.build is not None:
        context = Path(_absolute(directory, service.build.context))
        build = service.build.model_copy(update={"context": str(context)})
        if not context.is_dir():
            problems.append(
                problem_at(locator, (*at, "build"), f"build directory {context} does not exist")
            )
        elif service.build.file is not None:
            file = context / service.build.file
            if not file.is_file():
                problems.append(
                    problem_at(locator, (*at, "build", "file"), f"build file {file} does not exist")
                )
            build = build.model_copy(update={"file": str(file)})
        update["build"] = build
    if service.image is None and service.build is None and service.capsule is None:
        problems.append(
            problem_at(locator, at, "needs 'image', 'build' or 'capsule' (it has none of them)")
        )
    if service.capsule is not None and (service.image is not None or service.build is not None):
        other = "image" if service.image is not None else "build"
        problems.append(
            problem_at(locator, (*at, "capsule"), f"give '{other}' or 'capsule', not both")
        )
    env: dict[str, str] = {}
    files: list[str] = []
    for i, file_name in enumerate(service.env_file):
        env_path = Path(_absolute(directory, file_name))
        files.append(str(env_path))
        try:
            env.update(read_env_file(env_path))
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            problems.append(
                problem_at(locator, (*at, "env_file", i), f"cannot read {env_path}: {reason}")
            )
        except InterpolationError as err:
            problems.append(problem_at(locator, (*at, "env_file", i), str(err)))
    if files:
        update["env_file"] = files
        update["env"] = {**env, **service.env}
    volumes: list[Volume] = []
    for v in service.volumes:
        if v.type == "bind":
            if not v.source:
                problems.append(
                    problem_at(locator, (*at, "volumes"), "a bind mount needs a source")
                )
                volumes.append(v)
                continue
            v = v.model_copy(update={"source": _absolute(directory, v.source)})
        volumes.append(v)
    update["volumes"] = volumes
    update["gpu"] = _gpu(service.model_copy(update={"env": update.get("env", service.env)}))
    return service.model_copy(update=update)


def _dependency_problems(
    services: Mapping[str, Service], locator: Locator, problems: list[Problem]
) -> None:
    for name, service in services.items():
        for dep, how in service.depends_on.items():
            if dep == name:
                problems.append(
                    problem_at(
                        locator,
                        ("services", name, "depends_on"),
                        "a service cannot depend on itself",
                    )
                )
            elif dep not in services and how.required:
                problems.append(
                    problem_at(
                        locator,
                        ("services", name, "depends_on"),
                        f"unknown service '{dep}' (services: {', '.join(sorted(services))})",
                    )
                )
    # cycles: depth-first search, each cycle reported once from its first service
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in services[name].depends_on:
            if dep not in services or dep == name:
                continue
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                problems.append(
                    problem_at(
                        locator,
                        ("services", cycle[0], "depends_on"),
                        "dependency cycle: " + " -> ".join(cycle),
                    )
                )
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in services:
        if name not in state:
            visit(name)


def _port_problems(
    services: Mapping[str, Service], locator: Locator, problems: list[Problem]
) -> None:
    owners: dict[tuple[str, int], tuple[str, str]] = {}
    for name, service in services.items():
        for port in service.ports:
            if port.published is None:
                continue
            if service.scale > 1:
                problems.append(
                    problem_at(
                        locator,
                        ("services", name, "ports"),
                        f"host port {port.published} cannot be published by {service.scale} "
                        "replicas (scale > 1); leave the host port out",
                    )
                )
            key = (port.protocol, port.published)
            ip = port.host_ip or "0.0.0.0"
            if key in owners:
                other, other_ip = owners[key]
                wildcard = {"0.0.0.0", "::"}
                if ip == other_ip or ip in wildcard or other_ip in wildcard:
                    where = "this service" if other == name else f"service '{other}'"
                    problems.append(
                        problem_at(
                            locator,
                            ("services", name, "ports"),
                            f"host port {port.published}/{port.protocol} is already published "
                            f"by {where}",
                        )
                    )
                    continue
            owners[key] = (name, ip)


def check(
    model: BoltfileModel, directory: Path, locator: Locator
) -> tuple[dict[str, Service], list[Problem]]:
    """The services with paths made absolute and shorthands folded, and every problem."""
    problems: list[Problem] = []
    if not model.services:
        problems.append(problem_at(locator, ("services",), "the Boltfile defines no services"))
    services: dict[str, Service] = {}
    for name, service in model.services.items():
        if not SERVICE_NAME.match(name):
            problems.append(
                problem_at(
                    locator,
                    ("services", name),
                    f"invalid service name '{name}' (letters, digits, '_' and '-'; it is also a "
                    "host name, so no dots)",
                )
            )
        services[name] = _normalise_service(name, service, directory, locator, problems)
        for vol in service.volumes:
            if vol.type == "volume" and vol.source and vol.source not in model.volumes:
                problems.append(
                    problem_at(
                        locator,
                        ("services", name, "volumes"),
                        f"named volume '{vol.source}' is not declared under [volumes]",
                    )
                )
        for net in service.networks:
            if net != "default" and net not in model.networks:
                problems.append(
                    problem_at(
                        locator,
                        ("services", name, "networks"),
                        f"network '{net}' is not declared under [networks]",
                    )
                )
    _dependency_problems(services, locator, problems)
    _port_problems(services, locator, problems)
    return services, problems
