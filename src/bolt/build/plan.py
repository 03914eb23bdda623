"""The build plan and the image state each instruction produces.

Pure: no file system, no clock.  ``make_plan`` cuts a Dockerfile into stages, works out
``ARG``s before the first ``FROM`` and which stages the target needs (dependencies
first).  ``apply`` computes the image config after a metadata instruction (ENV, CMD, ...),
``run_argv`` the command a RUN step runs, and ``step_key`` the cache key of a step:
parent key + normalized instruction + what else it reads (build args, file contents).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bolt.build import words
from bolt.build.instructions import SUPPORTED, Instruction, read
from bolt.build.syntax import Dockerfile

DEFAULT_SHELL = ("/bin/sh", "-c")
# instructions that change only the image config
METADATA = tuple(k for k in SUPPORTED if k not in ("FROM", "RUN", "COPY", "ADD"))


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # the AS name, lower case
    base: str  # the FROM image, meta ARGs expanded: a reference, a stage name or scratch
    source: Instruction  # the FROM line
    body: tuple[Instruction, ...]


@dataclass(frozen=True)
class Plan:
    dockerfile: Dockerfile
    meta_args: dict[str, str]  # ARGs before the first FROM that have a value
    stages: tuple[Stage, ...]
    order: tuple[int, ...]  # the stages to build, dependencies first, the target last
    unused_build_args: tuple[str, ...]

    @property
    def target(self) -> Stage:
        return self.stages[self.order[-1]]

    def stage_named(self, ref: str, before: int) -> Stage | None:
        """The stage ``ref`` names (an AS name or an index) among those before ``before``."""
        wanted = ref.lower()
        for stage in self.stages[:before]:
            if stage.name == wanted or (wanted.isdigit() and int(wanted) == stage.index):
                return stage
        return None

    @property
    def steps(self) -> int:
        return sum(1 + len(self.stages[i].body) for i in self.order)


@dataclass(frozen=True)
class Layer:
    digest: str
    diff_id: str
    media_type: str
    size: int


@dataclass(frozen=True)
class ImageState:
    """An image while it is being built."""

    config: dict[str, Any]  # the OCI config's "config" object
    layers: tuple[Layer, ...]
    history: tuple[dict[str, Any], ...]
    key: str  # the cache key of the last step
    created: str = ""  # when the last layer was made
    args: Mapping[str, str] = field(default_factory=dict)  # ARGs in scope with a value
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT then keeps it)

    def env(self) -> dict[str, str]:
        """What variables expand to: ARGs, overridden by the config's ENV."""
        found = dict(self.args)
        for item in self.config.get("Env") or []:
            key, _, value = str(item).partition("=")
            found[key] = value
        return found

    def run_env(self) -> list[str]:
        """The environment of a RUN step: the config's ENV plus ARGs it does not set."""
        env = [str(e) for e in self.config.get("Env") or []]
        keys = {e.partition("=")[0] for e in env}
        return env + [f"{k}={v}" for k, v in sorted(self.args.items()) if k not in keys]


def make_plan(dockerfile: Dockerfile, target: str | None, build_args: Mapping[str, str]) -> Plan:
    instructions = [read(dockerfile, raw) for raw in dockerfile.instructions]
    meta: dict[str, str] = {}
    used: set[str] = set()
    i = 0
    while i < len(instructions) and instructions[i].keyword == "ARG":
        for name, value in instructions[i].pairs:
            if name in build_args:
                meta[name] = build_args[name]
                used.add(name)
            elif value is not None:
                meta[name] = _expand(dockerfile, instructions[i].line, value, meta)
        i += 1
    if i == len(instructions):
        raise dockerfile.error(
            instructions[-1].line if instructions else 1, "the Dockerfile has no FROM"
        )
    if instructions[i].keyword != "FROM":
        raise dockerfile.error(
            instructions[i].line,
            f"{instructions[i].keyword} before the first FROM",
            hint="only ARG may come before FROM",
        )
    stages: list[Stage] = []
    for instr in instructions[i:]:
        if instr.keyword == "FROM":
            base = _expand(dockerfile, instr.line, instr.items[0], meta)
            alias = instr.items[2].lower() if len(instr.items) == 3 else None
            if alias is not None and any(s.name == alias for s in stages):
                raise dockerfile.error(instr.line, f"stage name {alias!r} is used twice")
            stages.append(Stage(len(stages), alias, base, instr, ()))
        else:
            last = stages[-1]
            stages[-1] = replace(last, body=(*last.body, instr))
            if instr.keyword == "ARG":
                used |= {n for n, _ in instr.pairs if n in build_args}
    plan = Plan(dockerfile, meta, tuple(stages), (), ())
    target_stage = stages[-1]
    if target is not None:
        found = plan.stage_named(target, len(stages))
        if found is None or target.isdigit():
            names = ", ".join(s.name for s in stages if s.name) or "none"
            raise dockerfile.error(
                stages[-1].source.line, f"no stage named {target!r}", hint=f"stages: {names}"
            )
        target_stage = found
    order: list[int] = []
    _visit(plan, target_stage, order, set())
    unused = tuple(sorted(set(build_args) - used))
    return replace(plan, order=tuple(order), unused_build_args=unused)


def _expand(dockerfile: Dockerfile, line: int, text: str, env: Mapping[str, str]) -> str:
    try:
        return words.expand(text, env, dockerfile.escape)
    except words.ExpansionError as err:
        raise dockerfile.error(line, err.message) from None


def _visit(plan: Plan, stage: Stage, order: list[int], seen: set[int]) -> None:
    if stage.index in order:
        return
    seen.add(stage.index)
    for dep in dependencies(plan, stage):
        _visit(plan, dep, order, seen)
    order.append(stage.index)


def dependencies(plan: Plan, stage: Stage) -> list[Stage]:
    found: list[Stage] = []
    base = plan.stage_named(stage.base, stage.index)
    if base is not None and not stage.base.isdigit():
        found.append(base)
    for instr in stage.body:
        ref = instr.flags.get("from")
        if instr.keyword == "COPY" and ref is not None:
            dep = plan.stage_named(words.expand(ref, plan.meta_args), stage.index)
            if dep is not None:
                found.append(dep)
    return found


def declare_args(
    state: ImageState, instr: Instruction, plan: Plan, build_args: Mapping[str, str]
) -> ImageState:
    """ARG inside a stage: a build arg wins, then the default, then the meta ARG's value."""
    args = dict(state.args)
    for name, default in instr.pairs:
        if name in build_args:
            args[name] = build_args[name]
        elif default is not None:
            args[name] = words.expand(default, state.env(), plan.dockerfile.escape)
        elif name in plan.meta_args:
            args[name] = plan.meta_args[name]
    return replace(state, args=args)


def apply(state: ImageState, instr: Instruction, escape: str) -> ImageState:
    """The state after a metadata instruction (not ARG: see ``declare_args``)."""
    env = state.env()
    config = dict(state.config)
    kw = instr.keyword
    cmd_set = state.cmd_set
    shell = state.shell

    def exp(text: str) -> str:
        return words.expand(text, env, escape)

    if kw == "ENV":
        entries = [str(e) for e in config.get("Env") or []]
        for key, value in instr.pairs:
            name = exp(key)
            expanded = exp(value or "")
            entries = [e for e in entries if e.partition("=")[0] != name]
            entries.append(f"{name}={expanded}")
        config["Env"] = entries
    elif kw in ("LABEL", "MAINTAINER"):
        labels = dict(config.get("Labels") or {})
        if kw == "MAINTAINER":
            labels["maintainer"] = exp(instr.text)
        for key, value in instr.pairs:
            labels[exp(key)] = exp(value or "")
        config["Labels"] = labels
    elif kw == "USER":
        config["User"] = exp(instr.text)
    elif kw == "WORKDIR":
        path = exp(instr.text)
        current = str(config.get("WorkingDir") or "/")
        config["WorkingDir"] = posixpath.normpath(posixpath.join(current, path))
    elif kw == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for raw in instr.items:
            port = exp(raw)
            ports[port if "/" in port else f"{port}/tcp"] = {}
        config["ExposedPorts"] = ports
    elif kw == "VOLUME":
        volumes = dict(config.get("Volumes") or {})
        for raw in instr.items:
            volumes[exp(raw) if instr.argv is None else raw] = {}
        config["Volumes"] = volumes
    elif kw == "STOPSIGNAL":
        config["StopSignal"] = exp(instr.text)
    elif kw == "HEALTHCHECK":
        config["Healthcheck"] = healthcheck_config(instr)
    elif kw == "CMD":
        config["Cmd"] = command(instr, shell)
        cmd_set = True
    elif kw == "ENTRYPOINT":
        config["Entrypoint"] = command(instr, shell)
        if not cmd_set:
            config.pop("Cmd", None)  # Docker's rule: a new ENTRYPOINT drops an inherited CMD
    elif kw == "SHELL":
        shell = tuple(instr.argv or DEFAULT_SHELL)
    return replace(state, config=config, cmd_set=cmd_set, shell=shell)


def healthcheck_config(instr: Instruction) -> dict[str, object]:
    """The image config's ``Healthcheck`` (durations in nanoseconds, as docker writes)."""
    from bolt.runtime.flags import parse_duration

    check: dict[str, object] = {"Test": list(instr.argv or ("NONE",))}
    keys = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
            "start-interval": "StartInterval"}  # fmt: skip
    for flag, key in keys.items():
        if flag in instr.flags:
            check[key] = round(parse_duration(instr.flags[flag], flag) * 1e9)
    if "retries" in instr.flags:
        check["Retries"] = int(instr.flags["retries"])
    return check


def command(instr: Instruction, shell: tuple[str, ...]) -> list[str]:
    """The argv of CMD/ENTRYPOINT/RUN: exec form as written, shell form through SHELL."""
    if instr.argv is not None:
        return list(instr.argv)
    return [*shell, instr.text]


def run_argv(state: ImageState, instr: Instruction) -> list[str]:
    """What a RUN step executes; a lone heredoc (``RUN <<EOF``) is the script itself, a
    heredoc after a command is handed to the shell with its body."""
    if instr.argv is not None:
        return list(instr.argv)
    script = instr.text
    if instr.heredocs:
        first = instr.heredocs[0]
        if script.strip().lstrip("<-").strip("'\"") == first.name:
            return [*state.shell, first.body]
        for doc in instr.heredocs:
            script += "\n" + doc.body + doc.name
    return [*state.shell, script]


def history_entry(instr: Instruction, created: str, empty: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"created_by": instr.original, "comment": "bolt build"}
    if created:
        entry["created"] = created
    if empty:
        entry["empty_layer"] = True
    return entry


def step_key(parent: str, instr: Instruction, details: Mapping[str, Any]) -> str:
    """The cache key of a step: what it builds on, the instruction and what it reads.
    Line numbers and comments are not part of it, so moving a line keeps its cache."""
    doc = {
        "parent": parent,
        "keyword": instr.keyword,
        "flags": sorted(instr.flags.items()),
        **details,
    }
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()
