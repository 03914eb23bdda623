"""The state file and one daemon tick, in process: mapping, validation, events, liveness."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from nvsim import daemon, instance, layout, models
from nvsim.state import STATE_FILE, StateFile, StateFileError, append_event


def one_gpu_state(directory: Path, gpu_model: models.GpuModel = models.RTX4090) -> StateFile:
    def fill(state: layout.State) -> None:
        state.header.gpu_count = 1
        state.header.time_scale = 1.0
        models.init_gpu(state.gpus[0], gpu_model, 0, 0)

    return StateFile.create(directory, fill)


def test_a_created_state_reopens_with_the_same_gpus(tmp_path: Path) -> None:
    one_gpu_state(tmp_path).close()
    assert os.stat(tmp_path / STATE_FILE).st_size == layout.STATE_SIZE
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temporary left behind
    with StateFile.open(tmp_path) as sf:
        assert [g.name for g in sf.gpus()] == [b"NVIDIA GeForce RTX 4090"]


def test_foreign_or_mismatched_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="no state file"):
        StateFile.open(tmp_path)
    (tmp_path / STATE_FILE).write_bytes(b"\0" * 100)
    with pytest.raises(StateFileError, match="another nvsim version"):
        StateFile.open(tmp_path)
    (tmp_path / STATE_FILE).write_bytes(b"\0" * layout.STATE_SIZE)
    with pytest.raises(StateFileError, match="not an nvsim state"):
        StateFile.open(tmp_path)
    one_gpu_state(tmp_path).close()
    with StateFile.open(tmp_path) as sf:
        sf.header.layout_version = layout.LAYOUT_VERSION + 1
    with pytest.raises(StateFileError, match="layout version"):
        StateFile.open(tmp_path)


def test_event_ring_keeps_the_newest_events(tmp_path: Path) -> None:
    with one_gpu_state(tmp_path) as sf:
        gpu = sf.gpus()[0]
        with sf.lock():
            for n in range(layout.EVENT_RING + 5):
                append_event(gpu, layout.EVENT_XID_CRITICAL, n, 1000 + n)
        assert gpu.event_head == layout.EVENT_RING + 5
        newest = gpu.events[(gpu.event_head - 1) % layout.EVENT_RING]
        assert (newest.data, newest.time_us) == (
            layout.EVENT_RING + 4,
            1000 + layout.EVENT_RING + 4,
        )
        del gpu, newest


def test_a_tick_moves_the_model_and_appends_its_events(tmp_path: Path) -> None:
    with one_gpu_state(tmp_path) as sf:
        gpu = sf.gpus()[0]
        gpu.load_pct = 100
        gpu.pstates[0].gpc_offset_mhz = gpu.stable_gpc_offset + 300
        appended = sum(daemon.tick(sf, 0.5, 123) for _ in range(10))
        # each tick is one seqlock write: odd inside, even (two further) after
        assert sf.header.seq == 20 and sf.header.tick_us == 123
        assert gpu.lost == layout.LOST_YES and gpu.event_head == appended
        kinds = [gpu.events[i].type for i in range(appended)]
        assert layout.EVENT_PSTATE in kinds and kinds[-1] == layout.EVENT_XID_CRITICAL
        assert gpu.events[appended - 1].data == 79
        del gpu


def test_the_lock_is_a_seqlock_that_survives_a_writer_killed_inside(tmp_path: Path) -> None:
    with one_gpu_state(tmp_path) as sf:
        start = sf.header.seq
        assert start % 2 == 0
        with sf.lock():
            assert sf.header.seq == start + 1  # odd: readers wait or retry
        assert sf.header.seq == start + 2
        sf.header.seq += 1  # what a writer killed inside the lock leaves behind
        with sf.lock():
            assert sf.header.seq % 2 == 1 and sf.header.seq > start + 3
        assert sf.header.seq % 2 == 0


def test_daemon_liveness_trusts_fresh_ticks_when_its_pid_is_not_visible(tmp_path: Path) -> None:
    invisible = next(p for p in range(4_000_000, 4_100_000) if not Path(f"/proc/{p}").exists())
    with one_gpu_state(tmp_path) as sf:
        sf.header.daemon_pid = invisible
        sf.header.tick_us = time.time_ns() // 1000
        assert instance.daemon_running(sf.header)
        sf.header.tick_us -= 10_000_000
        assert not instance.daemon_running(sf.header)
        sf.header.daemon_pid = os.getpid()  # visible, but not an nvsim daemon
        sf.header.tick_us = time.time_ns() // 1000
        assert not instance.daemon_running(sf.header)


@pytest.mark.root
def test_a_user_who_may_only_read_gets_a_read_only_copy() -> None:
    """`nvsim status` as a non-root user: the file is 0644, so a copy, never a mapping."""
    with tempfile.TemporaryDirectory(dir="/tmp") as top:  # pytest's tmp dirs are root-only
        os.chmod(top, 0o755)
        _read_only_child(Path(top))


def _read_only_child(tmp_path: Path) -> None:
    with one_gpu_state(tmp_path) as sf:
        name = sf.gpus()[0].name
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                StateFile.open(tmp_path)
                result = b"opened read-write"
            except PermissionError:
                with StateFile.open(tmp_path, readonly=True) as ro:
                    try:
                        with ro.lock():
                            result = b"locked"
                    except StateFileError:
                        result = b"ro:" + ro.gpus()[0].name
            os.write(write, result)
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"ro:" + name
