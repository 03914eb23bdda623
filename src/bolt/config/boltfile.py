"""``Boltfile.from_path(p)``: read, interpolate, validate and normalise a ``Boltfile.toml``.

The pipeline is TOML text → ``tomllib`` → ``${VAR}`` interpolation of every string value →
the pydantic schema (:mod:`bolt.config.schema`) → cross-key rules
(:mod:`bolt.config.semantics`).  Each stage reports all its problems at once, located by
dotted key and line, as one :class:`BoltfileError`; nothing past a failed stage runs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bolt.config.errors import BoltfileError, Problem, problem_at
from bolt.config.interpolate import InterpolationError, interpolate, read_env_file
from bolt.config.locate import Locator
from bolt.config.schema import BoltfileModel, DefaultNetwork, NetworkDef, Service, Snapshots
from bolt.config.schema import VolumeDef as VolumeDef
from bolt.config.semantics import check

DEFAULT_NAMES = ("Boltfile.toml", "boltfile.toml")
MAX_BYTES = 1 << 20  # a Boltfile is hand-written; anything larger is a mistake
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def find_boltfile(start: Path | None = None) -> Path | None:
    """``Boltfile.toml`` in ``start`` (default: the working directory) or the nearest parent."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        for name in DEFAULT_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def project_name_from(directory: Path) -> str:
    """compose's rule: the directory name, lower-cased, other characters dropped."""
    name = re.sub(r"[^a-z0-9_-]", "", directory.name.lower()).lstrip("_-")
    return name or "default"


def _interpolate_all(
    value: Any,
    env: Mapping[str, str],
    path: tuple[str | int, ...],
    locator: Locator,
    problems: list[Problem],
) -> Any:
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except InterpolationError as err:
            problems.append(problem_at(locator, path, str(err)))
            return value
    if isinstance(value, dict):
        return {
            k: _interpolate_all(v, env, (*path, k), locator, problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate_all(v, env, (*path, i), locator, problems) for i, v in enumerate(value)
        ]
    return value


@dataclass(frozen=True)
class Boltfile:
    """A validated project: every service in one canonical form, paths absolute."""

    path: Path
    name: str
    services: dict[str, Service]
    network: DefaultNetwork = field(default_factory=DefaultNetwork)
    networks: dict[str, NetworkDef] = field(default_factory=dict)
    volumes: dict[str, VolumeDef] = field(default_factory=dict)
    snapshots: Snapshots = field(default_factory=Snapshots)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @classmethod
    def from_path(
        cls,
        path: Path | str,
        *,
        project_name: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Boltfile:
        """Load and validate ``path``; raise :class:`BoltfileError` with every problem."""
        file = Path(path)
        try:
            raw = file.read_bytes()
        except OSError as err:
            raise BoltfileError(
                file, [Problem(None, "", f"cannot read: {err.strerror or err}")]
            ) from None
        if len(raw) > MAX_BYTES:
            raise BoltfileError(
                file,
                [
                    Problem(
                        None,
                        "",
                        f"{len(raw)} bytes is too large for a Boltfile (limit {MAX_BYTES})",
                    )
                ],
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BoltfileError(file, [Problem(None, "", f"not UTF-8 text: {err}")]) from None
        return cls.from_text(text, file, project_name=project_name, environ=environ)

    @classmethod
    def from_text(
        cls,
        text: str,
        path: Path | str = "Boltfile.toml",
        *,
        project_name: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Boltfile:
        file = Path(os.path.abspath(path))
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            m = _TOML_POSITION.search(str(err))
            line = int(m.group(1)) if m else None
            reason = _TOML_POSITION.sub("", str(err)).strip()
            raise BoltfileError(file, [Problem(line, "", f"invalid TOML: {reason}")]) from None
        locator = Locator(text)
        env = dict(os.environ if environ is None else environ)
        dotenv = file.parent / ".env"
        if dotenv.is_file():
            try:
                env = {**read_env_file(dotenv), **env}
            except (OSError, UnicodeDecodeError, InterpolationError) as err:
                raise BoltfileError(dotenv, [Problem(None, "", str(err))]) from None
        problems: list[Problem] = []
        data = _interpolate_all(data, env, (), locator, problems)
        if problems:
            raise BoltfileError(file, problems)
        try:
            model = BoltfileModel.model_validate(data, context={"env": env})
        except ValidationError as err:
            from bolt.config.errors import from_validation

            raise BoltfileError(file, from_validation(err, BoltfileModel, locator)) from None
        services, problems = check(model, file.parent, locator)
        if problems:
            raise BoltfileError(file, problems)
        return cls(
            path=file,
            name=project_name or model.project or project_name_from(file.parent),
            services=services,
            network=model.network,
            networks=model.networks,
            volumes=model.volumes,
            snapshots=model.snapshots,
        )

    def active_services(self, profiles: frozenset[str] | set[str] = frozenset()) -> list[str]:
        """Services without profiles, plus those in one of ``profiles`` (compose's rule)."""
        return [
            name
            for name, s in self.services.items()
            if not s.profiles or set(s.profiles) & set(profiles)
        ]

    def to_json(self) -> dict[str, Any]:
        """The normalised project, as ``bolt surge config --json`` prints it."""
        return {
            "project": self.name,
            "file": str(self.path),
            "services": {
                name: s.model_dump(mode="json", exclude_none=True)
                for name, s in self.services.items()
            },
            "network": self.network.model_dump(mode="json", exclude_none=True),
            "networks": {
                n: v.model_dump(mode="json", exclude_none=True) for n, v in self.networks.items()
            },
            "volumes": {
                n: v.model_dump(mode="json", exclude_none=True) for n, v in self.volumes.items()
            },
            "snapshots": self.snapshots.model_dump(mode="json", exclude_none=True),
        }
