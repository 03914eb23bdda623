"""``bolt surge ...``: Boltfile projects.  Parses arguments, calls ``bolt.surge``, renders.

``-f/--file`` (default: ``Boltfile.toml`` here or in the nearest parent directory) and
``-p/--project-name`` may be given before or after the subcommand.  Everything a Boltfile
gets wrong is a :class:`bolt.config.BoltfileError` (exit 2), raised before anything starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bolt.errors import InvalidInput

if TYPE_CHECKING:
    from bolt.config import Boltfile


def _project_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    # after a subcommand only --file: -f is `logs --follow` there, as in compose
    parser.add_argument(
        *(("--file",) if suppress else ("-f", "--file")),
        default=default,
        metavar="FILE",
        help="the Boltfile (default: ./Boltfile.toml, searched upwards)",
    )
    parser.add_argument(
        "-p",
        "--project-name",
        default=default,
        metavar="NAME",
        help="project name (default: the Boltfile's `project`, else its directory's name)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=argparse.SUPPRESS if suppress else [],
        metavar="NAME",
        help="also run the services of this profile (repeatable; $BOLT_PROFILES)",
    )


def register(subparsers: Any) -> None:
    surge = subparsers.add_parser(
        "surge",
        help="run multi-service projects from a Boltfile.toml",
        description="Surge: validate, run and manage the services of a Boltfile.toml project.",
    )
    _project_options(surge, suppress=False)
    sub = surge.add_subparsers(dest="surge_command", metavar="SUBCOMMAND")
    sub.required = True

    def add(name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, **kwargs)
        _project_options(p, suppress=True)
        return p

    p = add("config", "print the normalised project (paths absolute, shorthands expanded)")
    p.add_argument("--json", action="store_true", help="as one JSON document")
    p.add_argument("--services", action="store_true", help="only the service names")
    p.set_defaults(handler=show_config)

    p = add("validate", "check the Boltfile; exit 2 with every problem located")
    p.add_argument("--json", action="store_true", help="problems as JSON")
    p.set_defaults(handler=validate)

    from bolt.cli import surge_commands

    surge_commands.register(add)
    register_migrate(subparsers)


def boltfile_path(args: argparse.Namespace) -> Path:
    from bolt.config import find_boltfile

    if args.file:
        return Path(args.file)
    found = find_boltfile()
    if found is None:
        raise InvalidInput(
            f"no Boltfile.toml in {Path.cwd()} or any parent directory",
            hint="give one with -f FILE",
        )
    return found


def load(args: argparse.Namespace) -> Boltfile:
    from bolt.config import Boltfile

    return Boltfile.from_path(boltfile_path(args), project_name=args.project_name)


def profiles(args: argparse.Namespace) -> set[str]:
    env = os.environ.get("BOLT_PROFILES", "")
    return {p for p in [*args.profile, *env.split(",")] if p}


def show_config(args: argparse.Namespace) -> int:
    boltfile = load(args)
    if args.services:
        for name in boltfile.active_services(profiles(args)):
            print(name)
        return 0
    doc = boltfile.to_json()
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        import tomli_w

        sys.stdout.write(tomli_w.dumps(_without_empty(doc)))
    return 0


def _without_empty(value: Any) -> Any:
    """TOML has no null, and empty defaults only add noise to the human view."""
    if isinstance(value, dict):
        return {
            k: _without_empty(v) for k, v in value.items() if v is not None and v != [] and v != {}
        }
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def validate(args: argparse.Namespace) -> int:
    from bolt.config import BoltfileError

    try:
        boltfile = load(args)
    except BoltfileError as err:
        if args.json:
            json.dump(
                {"file": err.file, "valid": False, "problems": [p.to_json() for p in err.problems]},
                sys.stdout,
                indent=2,
            )
            sys.stdout.write("\n")
            return int(err.exit_code)
        raise
    if args.json:
        json.dump({"file": str(boltfile.path), "valid": True, "problems": []}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"{boltfile.path}: valid ({len(boltfile.services)} services)")
    return 0


# --------------------------------------------------------------------------- migrate


def register_migrate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "migrate",
        help="convert a docker-compose.yml into a Boltfile.toml",
        description="Convert a compose file's services, networks and volumes into a "
        "Boltfile.toml. Every key that has no Boltfile equivalent is listed (and written as a "
        "comment at the top of the Boltfile); the result is validated before it is written.",
    )
    p.add_argument("compose", metavar="COMPOSE_FILE", help="docker-compose.yml / compose.yaml")
    p.add_argument("-o", "--output", metavar="FILE", help="where to write (default: stdout)")
    p.add_argument("-p", "--project-name", metavar="NAME", help="the project's name")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(handler=migrate)


def migrate(args: argparse.Namespace) -> int:
    import tomli_w

    from bolt.config import Boltfile
    from bolt.errors import fs_errors
    from bolt.surge import compose, yaml12

    source = Path(args.compose)
    with fs_errors(source):
        text = source.read_text(encoding="utf-8")
    doc = yaml12.load(text, str(source))
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise InvalidInput(f"{source}: not a compose file (no 'services' mapping)")
    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.force:
        raise InvalidInput(f"{output} exists", hint="use --force to overwrite it")
    target_dir = (output.parent if output else Path.cwd()).resolve()
    result = compose.convert(
        doc, source_dir=source.parent, target_dir=target_dir, project_name=args.project_name
    )
    header = [f"# Converted from {source.name} by `bolt migrate`."]
    if result.unmapped:
        header.append(f"# Not carried over ({len(result.unmapped)}):")
        header.extend(f"#   {line}" for line in result.unmapped)
    boltfile_text = "\n".join(header) + "\n\n" + tomli_w.dumps(result.boltfile)
    # The result must pass `bolt surge validate` before it is written anywhere.
    Boltfile.from_text(boltfile_text, output or target_dir / "Boltfile.toml")
    for line in result.unmapped:
        print(f"not carried over: {line}", file=sys.stderr)
    if output is None:
        sys.stdout.write(boltfile_text)
    else:
        with fs_errors(output):
            output.write_text(boltfile_text, encoding="utf-8")
        print(f"wrote {output} ({len(result.boltfile['services'])} services)", file=sys.stderr)
    return 0
