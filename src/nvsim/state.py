"""The state file on disk: creating, mapping, locking, and appending events.

``$NVSIM_STATE/state`` holds one :class:`nvsim.layout.State`, memory-mapped by every
party.  A new file is filled under a temporary name and renamed into place, so a reader
never maps a half-written one.  Multi-field writes (a tick of the model, a
``nvsim load``, a reset, an NVML setter in C) and event appends happen under an
exclusive ``fcntl.lockf`` lock on the file.

``header.seq`` is a seqlock around those writes: the writer makes it odd on entering and
even again on leaving, so a reader that sees the same even number before and after
copying a GPU has a consistent copy (the C library retries otherwise).  A writer killed
inside leaves it odd; the next writer moves it on by two, keeping it odd until it leaves.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nvsim import layout

STATE_FILE = "state"


class StateFileError(Exception):
    """The state file is missing or is not an nvsim state of this layout."""


class StateFile:
    """One mapping of a state file; ``state`` is a live view of the shared memory."""

    def __init__(self, path: Path, fd: int, mm: mmap.mmap | None) -> None:
        self.path = path
        self._fd = fd
        self._mm: mmap.mmap | None = mm
        # Read-only (no mapping): a copy taken now, for a process that may not write.
        self.state: layout.State = (
            layout.State.from_buffer(mm)
            if mm is not None
            else layout.State.from_buffer_copy(os.pread(fd, layout.STATE_SIZE, 0))
        )
        self.readonly = mm is None
        self.inode = os.fstat(fd).st_ino

    @classmethod
    def create(cls, directory: Path, fill: Callable[[layout.State], None]) -> StateFile:
        """Write a new state file (replacing any old one) and return it mapped."""
        path = directory / STATE_FILE
        tmp = directory / f".{STATE_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            # Everyone may read (and map) it, as everyone may open /dev/nvidia*; only root
            # writes, so a non-root process cannot change GPU state behind the driver's back.
            os.fchmod(fd, 0o644)
            os.ftruncate(fd, layout.STATE_SIZE)
            mm = mmap.mmap(fd, layout.STATE_SIZE)
            state = layout.State.from_buffer(mm)
            fill(state)
            ctypes.memmove(ctypes.addressof(state.header), layout.MAGIC, len(layout.MAGIC))
            state.header.layout_version = layout.LAYOUT_VERSION
            del state
            mm.flush()
            os.replace(tmp, path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return cls(path, fd, mm)

    @classmethod
    def open(cls, directory: Path, *, readonly: bool = False) -> StateFile:
        """Map the state for reading and writing, or with ``readonly`` take a copy of it
        (all a process that may not write the file can have, e.g. ``nvsim status`` as a
        user)."""
        path = directory / STATE_FILE
        try:
            fd = os.open(path, os.O_RDONLY if readonly else os.O_RDWR)
        except FileNotFoundError:
            raise StateFileError(f"no state file at {path}") from None
        try:
            size = os.fstat(fd).st_size
            if size != layout.STATE_SIZE:
                raise StateFileError(
                    f"{path} is {size} bytes, expected {layout.STATE_SIZE}: "
                    "it was written by another nvsim version"
                )
            mm = None if readonly else mmap.mmap(fd, layout.STATE_SIZE)
        except BaseException:
            os.close(fd)
            raise
        sf = cls(path, fd, mm)
        header = sf.state.header
        if ctypes.string_at(ctypes.addressof(header), len(layout.MAGIC)) != layout.MAGIC:
            sf.close()
            raise StateFileError(f"{path} is not an nvsim state file")
        if header.layout_version != layout.LAYOUT_VERSION:
            version = header.layout_version
            sf.close()
            raise StateFileError(
                f"{path} has layout version {version}, this nvsim reads {layout.LAYOUT_VERSION}"
            )
        return sf

    @property
    def header(self) -> layout.Header:
        return self.state.header

    def gpus(self) -> list[layout.Gpu]:
        count = min(self.state.header.gpu_count, layout.MAX_GPUS)
        return [self.state.gpus[i] for i in range(count)]

    def replaced(self) -> bool:
        """True once the file at ``path`` is gone or is no longer this one."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return True

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for multi-field writes and event appends (a seqlock write)."""
        if self.readonly:
            raise StateFileError(f"{self.path} is open read-only")
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        header = self.state.header
        try:
            header.seq += 2 if header.seq % 2 else 1
            try:
                yield
            finally:
                header.seq += 1
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def retire(self) -> None:
        """Mark the instance down: NVML clients still attached get errors from now on."""
        with self.lock():
            self.state.header.down = 1

    def close(self) -> None:
        if self._fd < 0:
            return
        del self.state
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass  # a caller still holds a view; the mapping goes when that does
            self._mm = None
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> StateFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def append_event(gpu: layout.Gpu, type_: int, data: int, time_us: int) -> None:
    """Append one event to the GPU's ring; hold :meth:`StateFile.lock` around it.

    The slot is written before the head moves, so a reader that sees the new head sees
    the event.
    """
    slot = gpu.events[gpu.event_head % layout.EVENT_RING]
    slot.type = type_
    slot.data = data
    slot.time_us = time_us
    gpu.event_head += 1
