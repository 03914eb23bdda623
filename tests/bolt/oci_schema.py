"""Validation against the official OCI runtime-spec JSON schema (Debian's
golang-github-opencontainers-specs-dev), with ``$ref``s resolved inside its directory."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")


@cache
def _validator() -> jsonschema.Draft4Validator:
    if not (SCHEMA_DIR / "config-schema.json").exists():
        raise AssertionError(
            f"the runtime-spec schema is missing in {SCHEMA_DIR}: run ./project.sh setup"
        )
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append(
            (path.as_uri(), Resource.from_contents(contents, default_specification=DRAFT4))
        )
    registry: Registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    schema["id"] = (SCHEMA_DIR / "config-schema.json").as_uri()
    return jsonschema.Draft4Validator(schema, registry=registry)


def schema_errors(config: dict[str, Any]) -> list[str]:
    """Every schema violation of ``config`` as 'path: message' (empty when valid)."""
    return [
        f"{'/'.join(str(p) for p in err.absolute_path)}: {err.message}"
        for err in _validator().iter_errors(config)
    ]
