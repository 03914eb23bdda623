"""GPU selectors resolve the way users expect, and bad ones fail with exit code 2."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bolt.errors import ExitCode
from nvcontrol.errors import GpuSelectionError
from nvcontrol.selection import normalize_pci, select


@dataclass
class FakeId:
    index: int
    uuid: str
    pci_bus_id: str


GPUS = [
    FakeId(0, "GPU-5f3a0000-1111-2222-3333-444455556666", "00000000:01:00.0"),
    FakeId(1, "GPU-5f3b0000-aaaa-bbbb-cccc-ddddeeeeffff", "00000000:41:00.0"),
    FakeId(2, "GPU-9c000000-aaaa-bbbb-cccc-ddddeeeeffff", "00000001:81:00.0"),
]


def idx(sel: str | None) -> list[int]:
    return [g.index for g in select(sel, GPUS)]


def test_all_and_default_select_every_gpu_in_order() -> None:
    assert idx(None) == [0, 1, 2]
    assert idx("all") == [0, 1, 2]
    assert idx("ALL") == [0, 1, 2]


def test_index_uuid_prefix_and_pci_forms() -> None:
    assert idx("1") == [1]
    assert idx("GPU-9c") == [2]
    assert idx("9c") == [2]  # the GPU- prefix may be left out
    assert idx("gpu-5F3B") == [1]  # case-insensitive
    assert idx("41:00.0") == [1]
    assert idx("0000:41:00.0") == [1]
    assert idx("00000001:81:00.0") == [2]
    assert idx("1:81:00.0") == [2]


def test_comma_lists_are_deduplicated_and_ordered() -> None:
    assert idx("2,0,GPU-5f3a,0") == [0, 2]


def test_ambiguous_prefix_is_rejected_with_the_candidates() -> None:
    with pytest.raises(GpuSelectionError) as err:
        select("GPU-5f", GPUS)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert "matches 2 GPUs" in err.value.message
    assert GPUS[0].uuid in err.value.message


@pytest.mark.parametrize("sel", ["7", "GPU-ffff", "02:00.0", "0,,1", "nonsense"])
def test_unknown_selector_names_what_exists(sel: str) -> None:
    with pytest.raises(GpuSelectionError) as err:
        select(sel, GPUS)
    assert err.value.exit_code == 2
    text = err.value.message + (err.value.hint or "")
    assert sel.split(",")[0] in text or "empty item" in text


def test_normalize_pci() -> None:
    assert normalize_pci("01:00.0") == "00000000:01:00.0"
    assert normalize_pci("0000:0A:00.1") == "00000000:0a:00.1"
    assert normalize_pci("GPU-1234") is None


@pytest.mark.parametrize("sel", ["", " ", "\t\n", " , "])
def test_an_empty_or_blank_selector_is_an_error_not_every_gpu(sel: str) -> None:
    with pytest.raises(GpuSelectionError) as err:
        select(sel, GPUS)
    assert err.value.exit_code == ExitCode.INVALID_INPUT
    assert "empty" in err.value.message


def test_non_ascii_digits_are_not_an_index() -> None:
    with pytest.raises(GpuSelectionError) as err:
        select("\u0661", GPUS)  # ARABIC-INDIC DIGIT ONE: int() would read it as 1
    assert "no GPU matches" in err.value.message
