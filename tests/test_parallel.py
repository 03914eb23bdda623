"""The suite's split between the two xdist workers (tests/parallel.py)."""

from __future__ import annotations

from collections import OrderedDict

from tests.parallel import FIRST_MODULES, SERIAL_GROUP, group_of, put_first


def test_host_wide_modules_share_the_serial_group_and_the_rest_are_their_own_units() -> None:
    assert group_of("tests/bolt/test_run.py") == SERIAL_GROUP
    assert group_of("tests/bolt_build/test_bootstrap.py") == SERIAL_GROUP  # runs containers
    assert group_of("tests/remote/test_dashboard.py") == SERIAL_GROUP
    assert group_of("tests/nvsim/test_nvsim_cli.py") == "tests/nvsim/test_nvsim_cli.py"
    assert group_of("tests/new_area/test_x.py") == SERIAL_GROUP  # serial until listed
    for module in FIRST_MODULES:
        assert group_of(module) == module


def test_the_serial_group_goes_out_first_and_the_debian_bootstrap_next() -> None:
    queue: OrderedDict[str, dict[str, bool]] = OrderedDict(
        (scope, {}) for scope in ("tests/nvsim/a.py", *FIRST_MODULES, "tests/remote/b.py")
    )
    queue[SERIAL_GROUP] = {}
    put_first(queue)
    assert list(queue) == [SERIAL_GROUP, *FIRST_MODULES, "tests/nvsim/a.py", "tests/remote/b.py"]
    queue.popitem(last=False)
    put_first(queue)  # later hand-outs keep the order
    assert list(queue)[: len(FIRST_MODULES)] == list(FIRST_MODULES)
