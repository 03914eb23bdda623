"""``bolt build``: runs a plan's stages step by step, with the layer cache.

Each RUN, COPY and ADD step mounts an overlay of the image so far (its layers' unpacked
directories as lower dirs) with a fresh upper directory, changes the merged tree, unmounts,
and stores the upper directory as the step's layer (nothing, when it changed no file).  A
step whose cache key (see ``bolt.build.plan.step_key``) is known reuses the recorded layer
instead.  Metadata instructions (ENV, CMD, ...) change only the image config.

Scratch space lives in ``$BOLT_ROOT/build/<id>/`` (same file system as the layer cache,
so a finished upper directory is renamed into it); a build killed midway leaves one
behind, which the next build unmounts and removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from bolt.build import bases, commit, container, ignore, steps, words
from bolt.build.cache import BuildCache
from bolt.build.copy import target_of
from bolt.build.instructions import Instruction
from bolt.build.plan import (
    METADATA,
    ImageState,
    Layer,
    Plan,
    Stage,
    apply,
    declare_args,
    history_entry,
    make_plan,
    run_argv,
    step_key,
)
from bolt.build.syntax import parse
from bolt.build.tree import Source, Tree
from bolt.errors import BoltError, ExitCode, InvalidInput, NotFound, Unsupported
from bolt.images import refs
from bolt.images.importer import host_arch, now_rfc3339
from bolt.images.store import ImageRecord, ImageStore
from bolt.runtime import rootfs as overlay
from bolt.runtime.driver import OciRuntime, select_runtime

DOCKERFILES = ("Dockerfile.bolt", "Dockerfile")


class StepFailed(BoltError):
    """A step failed; the message starts with ``file:line``."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class Progress(Protocol):
    def step(self, number: int, total: int, text: str) -> None: ...
    def cached(self) -> None: ...
    def output(self, line: str) -> None: ...
    def layer(self, layer: Layer | None, seconds: float) -> None: ...
    def warn(self, text: str) -> None: ...


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path | None = None
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    target: str | None = None
    runtime: str = "auto"


@dataclass(frozen=True)
class StepReport:
    number: int
    text: str
    cached: bool
    layer: str | None  # the layer blob digest, if the step made one
    changes_files: bool = True  # RUN, COPY, ADD (not FROM or metadata)


@dataclass(frozen=True)
class BuildResult:
    image: ImageRecord
    tags: tuple[str, ...]
    steps: tuple[StepReport, ...]
    seconds: float

    @property
    def file_steps(self) -> tuple[StepReport, ...]:
        return tuple(s for s in self.steps if s.changes_files)

    @property
    def fully_cached(self) -> bool:
        """Every RUN, COPY and ADD step came from the cache."""
        return all(s.cached for s in self.file_steps)


def find_dockerfile(context: Path, given: Path | None) -> Path:
    if given is not None:
        path = given if given.is_absolute() or given.exists() else context / given
        if not path.is_file():
            raise NotFound(f"Dockerfile {given} does not exist")
        return path
    for name in DOCKERFILES:
        if (context / name).is_file():
            return context / name
    raise NotFound(f"no Dockerfile.bolt or Dockerfile in {context}", hint="give one with -f FILE")


def build(root: Path, request: BuildRequest, progress: Progress) -> BuildResult:
    """Build the image ``request`` describes into the store under ``root``."""
    for tag in request.tags:
        refs.normalize(tag)  # a bad -t is refused before anything runs
    context = request.context
    if not context.is_dir():
        raise NotFound(f"build context {context} is not a directory")
    path = find_dockerfile(context, request.dockerfile)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a text file") from None
    dockerfile = parse(text, str(path))
    plan = make_plan(dockerfile, request.target, request.build_args)
    for name in plan.unused_build_args:
        progress.warn(f"build arg {name} is not declared by any ARG; it was not used")
    with Builder(root, request, plan, progress) as builder:
        return builder.run()


class Builder:
    def __init__(self, root: Path, request: BuildRequest, plan: Plan, progress: Progress) -> None:
        self.root = root
        self.request = request
        self.plan = plan
        self.progress = progress
        self.store = ImageStore(root)
        self.store.layout.ensure()
        self.cache = BuildCache(root)
        self.rt: OciRuntime | None = None
        self.states: dict[int, ImageState] = {}
        self.reports: list[StepReport] = []
        self.number = 0
        self.steps_made = 0
        self.stack = contextlib.ExitStack()
        self.work = _work_dir(root, self.stack)
        self.context = self.stack.enter_context(
            Tree(request.context, ignore.load(request.context), "build context")
        )

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()
        self.cache.close()

    # --- stages -----------------------------------------------------------------------

    def run(self) -> BuildResult:
        started = time.monotonic()
        for index in self.plan.order:
            stage = self.plan.stages[index]
            state = self._from(stage)
            for instr in stage.body:
                state = self._step(stage, state, instr)
            self.states[index] = state
        final = self.states[self.plan.order[-1]]
        image = commit.commit_image(
            self.store, self._image_config(final), list(final.layers), list(self.request.tags)
        )
        tags = tuple(self.request.tags) or (image.ref,)
        return BuildResult(image, tags, tuple(self.reports), time.monotonic() - started)

    def _from(self, stage: Stage) -> ImageState:
        instr = stage.source
        self._announce(instr)
        base = stage.base
        parent = self.plan.stage_named(base, stage.index)
        if base.lower() == "scratch":
            state = ImageState(config={}, layers=(), history=(), key="scratch")
        elif parent is not None and not base.isdigit():
            done = self.states[parent.index]
            state = ImageState(
                config=dict(done.config),
                layers=done.layers,
                history=done.history,
                key=done.key,
                created=done.created,
            )
        else:
            state = self._image_state(self._wrap(instr, lambda: bases.resolve(self.store, base)))
        self._report(instr, cached=True, layer=None)
        return state

    def _image_state(self, image: ImageRecord) -> ImageState:
        config = self.store.layout.read_json({"digest": image.id})
        manifest = self.store.layout.read_json({"digest": image.manifest_digest})
        layers = tuple(
            Layer(str(d["digest"]), diff_id, str(d.get("mediaType", "")), int(d.get("size", 0)))
            for d, diff_id in zip(manifest.get("layers") or [], image.diff_ids, strict=True)
        )
        return ImageState(
            config=dict(config.get("config") or {}),
            layers=layers,
            history=tuple(config.get("history") or ()),
            key="image:" + image.id,
            created=str(config.get("created", "")),
        )

    def _image_config(self, state: ImageState) -> dict[str, Any]:
        return {
            "created": state.created or now_rfc3339(),
            "architecture": host_arch(),
            "os": "linux",
            "config": state.config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in state.layers]},
            "history": list(state.history),
        }

    # --- steps ------------------------------------------------------------------------

    def _announce(self, instr: Instruction) -> None:
        self.number += 1
        text = " ".join(instr.original.split())
        self.progress.step(self.number, self.plan.steps, text[:200])

    def _report(self, instr: Instruction, *, cached: bool, layer: Layer | None) -> None:
        changes = instr.keyword in ("RUN", "COPY", "ADD")
        digest = layer.digest if layer else None
        self.reports.append(StepReport(self.number, instr.original, cached, digest, changes))

    def _wrap(self, instr: Instruction, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; a Bolt error it raises is reported at the instruction's line."""
        try:
            return fn()
        except StepFailed:
            raise
        except BoltError as err:
            where = f"{self.plan.dockerfile.path}:{instr.line}"
            message = err.message if err.message.startswith(where) else f"{where}: {err.message}"
            raise StepFailed(message, exit_code=err.exit_code, hint=err.hint) from err

    def _step(self, stage: Stage, state: ImageState, instr: Instruction) -> ImageState:
        self._announce(instr)
        kw = instr.keyword
        escape = self.plan.dockerfile.escape
        if kw == "ARG":
            new = self._wrap(
                instr, lambda: declare_args(state, instr, self.plan, self.request.build_args)
            )
            key = step_key(state.key, instr, {"args": sorted(new.args.items())})
            self._report(instr, cached=True, layer=None)
            return replace(new, key=key)
        if kw in METADATA:
            new = self._wrap(instr, lambda: apply(state, instr, escape))
            key = step_key(state.key, instr, {"config": new.config, "shell": list(new.shell)})
            history = (*new.history, history_entry(instr, "", empty=True))
            self._report(instr, cached=True, layer=None)
            return replace(new, key=key, history=history)
        if kw == "RUN":
            return self._wrap(instr, lambda: self._run(state, instr))
        return self._wrap(instr, lambda: self._copy(stage, state, instr))

    def _run(self, state: ImageState, instr: Instruction) -> ImageState:
        argv = run_argv(state, instr)
        env = state.run_env()
        workdir = str(state.config.get("WorkingDir") or "/")
        user = str(state.config.get("User") or "")
        network = instr.flags.get("network", "default")
        if network not in ("default", "host"):
            raise Unsupported(f"RUN --network={network} is not supported; builds use the host's")
        key = step_key(
            state.key, instr, {"argv": argv, "env": env, "workdir": workdir, "user": user}
        )

        def action(rootfs: Path, upper: Path, work: Path) -> None:
            if self.rt is None:
                self.rt = select_runtime(self.request.runtime, self.root)
            code = steps.run(
                self.rt,
                self.root,
                rootfs,
                upper,
                work,
                argv,
                env=env,
                workdir=workdir,
                user=user,
                on_output=self.progress.output,
            )
            if code != 0:
                raise StepFailed(
                    f"{self.plan.dockerfile.path}:{instr.line}: RUN exited with code {code}",
                    exit_code=ExitCode.FAILURE,
                    hint="the command's output is above",
                )

        return self._layer_step(state, instr, key, action)

    def _copy(self, stage: Stage, state: ImageState, instr: Instruction) -> ImageState:
        env = state.env()
        escape = self.plan.dockerfile.escape
        items = [words.expand(i, env, escape) for i in instr.items]
        flags = {k: words.expand(v, env, escape) for k, v in instr.flags.items()}
        *patterns, dest = items
        if any(p.startswith(("http://", "https://", "git@")) for p in patterns):
            raise Unsupported(
                f"{instr.keyword} of a URL is not supported: bolt build works offline",
                hint="download it into the build context, or fetch it in a RUN step",
            )
        with contextlib.ExitStack() as stack:
            tree = self._source_tree(stage, flags.get("from"), stack)
            groups: dict[int, tuple[Tree, list[Source]]] = {}
            for pattern in patterns:
                owner, found = self._match(tree, pattern, instr, stack)
                groups.setdefault(id(owner), (owner, []))[1].extend(found)
            sources = [s for _, group in groups.values() for s in group]
            workdir = str(state.config.get("WorkingDir") or "/")
            target, into_dir = target_of(dest, sources, workdir)
            content = [
                owner.digest(group, self.cache.file_digest if owner is self.context else None)
                for owner, group in groups.values()
            ]
            details = {
                "items": items,
                "flags": sorted(flags.items()),
                "workdir": workdir,
                "content": content,
            }
            key = step_key(state.key, instr, details)
            chown, chmod = flags.get("chown"), flags.get("chmod")
            many = into_dir or len(sources) > 1
            act = steps.add if instr.keyword == "ADD" else steps.copy

            def action(rootfs: Path, upper: Path, work: Path) -> None:
                for owner, group in groups.values():
                    act(rootfs, owner, group, target, many, chown=chown, chmod=chmod)

            return self._layer_step(state, instr, key, action)

    def _match(
        self, tree: Tree, pattern: str, instr: Instruction, stack: contextlib.ExitStack
    ) -> tuple[Tree, list[Source]]:
        """The sources ``pattern`` names; ``<<NAME`` is the heredoc of that name."""
        if pattern.startswith("<<"):
            name = pattern[2:].lstrip("-")
            tree = self._heredoc_tree(name, instr, stack)
            pattern = name
        return tree, tree.match(pattern)

    def _heredoc_tree(self, name: str, instr: Instruction, stack: contextlib.ExitStack) -> Tree:
        doc = next((d for d in instr.heredocs if d.name == name), None)
        if doc is None:
            raise InvalidInput(f"heredoc <<{name} has no body")
        where = Path(tempfile.mkdtemp(dir=self.work))
        (where / name).write_text(doc.body)
        os.chmod(where / name, 0o644)
        return stack.enter_context(Tree(where, label="heredoc"))

    def _source_tree(self, stage: Stage, ref: str | None, stack: contextlib.ExitStack) -> Tree:
        if ref is None:
            return self.context
        parent = self.plan.stage_named(ref, stage.index)
        if parent is not None:
            layers = self.states[parent.index].layers
            label = f"stage {parent.name or parent.index}"
        else:
            image = bases.resolve(self.store, ref)
            layers = self._image_state(image).layers
            label = f"image {image.ref}"
        mounted = stack.enter_context(self._mounted(layers))
        return stack.enter_context(Tree(mounted[0], label=label))

    # --- layers -----------------------------------------------------------------------

    def _layer_step(
        self,
        state: ImageState,
        instr: Instruction,
        key: str,
        action: Callable[[Path, Path, Path], None],
    ) -> ImageState:
        hit = None if self.request.no_cache else self.cache.get(key)
        if (
            hit is not None
            and hit.layer is not None
            and not commit.has_blob(self.store, hit.layer.digest)
        ):
            self.cache.forget(key)
            hit = None
        if hit is not None:
            self.cache.touch(key)
            self.progress.cached()
            self._report(instr, cached=True, layer=hit.layer)
            return self._advance(state, instr, key, hit.layer, hit.created)
        started = time.monotonic()
        with self._mounted(state.layers) as (rootfs, upper, work):
            action(rootfs, upper, work)
        layer = None
        from bolt.images.upperlayer import is_empty

        if not is_empty(upper):
            layer = commit.store_layer(self.store, upper)
        created = now_rfc3339()
        self.cache.put(key, layer, created)
        self.progress.layer(layer, time.monotonic() - started)
        self._report(instr, cached=False, layer=layer)
        return self._advance(state, instr, key, layer, created)

    def _advance(
        self, state: ImageState, instr: Instruction, key: str, layer: Layer | None, created: str
    ) -> ImageState:
        layers = (*state.layers, layer) if layer else state.layers
        history = (*state.history, history_entry(instr, created, empty=layer is None))
        return replace(state, layers=layers, history=history, key=key, created=created)

    @contextlib.contextmanager
    def _mounted(self, layers: tuple[Layer, ...]) -> Iterator[tuple[Path, Path, Path]]:
        """An overlay of ``layers`` with a fresh upper directory: (merged, upper, scratch)."""
        self.steps_made += 1
        step = self.work / f"step-{self.steps_made}"
        step.mkdir()
        lowers = [commit.layer_dir(self.store, layer) for layer in layers]
        merged = step / "rootfs"
        overlay.mount_overlay(lowers, step, merged)
        try:
            yield merged, step / "upper", step / "scratch"
        finally:
            overlay.unmount(merged)
            for name in ("work", "scratch", "rootfs", "empty-layer"):
                shutil.rmtree(step / name, ignore_errors=True)


def _work_dir(root: Path, stack: contextlib.ExitStack) -> Path:
    """A private scratch directory, locked while this build runs; ones left by killed
    builds (their lock is free) are cleaned first: a container still running a RUN step is
    killed, the overlays unmounted, the directory removed."""
    base = root / "build"
    base.mkdir(parents=True, exist_ok=True)
    for entry in base.iterdir():
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        for scratch in entry.glob("step-*/scratch"):
            container.reap(scratch, root)
        for rootfs in entry.glob("step-*/rootfs"):
            overlay.unmount(rootfs)
        shutil.rmtree(entry, ignore_errors=True)
        os.close(fd)
    work = Path(tempfile.mkdtemp(dir=base))
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def cleanup() -> None:
        for rootfs in work.glob("step-*/rootfs"):
            overlay.unmount(rootfs)
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)

    stack.callback(cleanup)
    return work
