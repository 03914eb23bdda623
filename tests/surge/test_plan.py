"""The pure planner: desired services + observed containers -> ordered actions (no root)."""

from __future__ import annotations

import pytest

from bolt.surge.plan import (
    COMPLETED,
    HEALTHY,
    STARTED,
    CreateContainer,
    DesiredService,
    ObservedContainer,
    RemoveContainer,
    RestartContainer,
    StartContainer,
    UpOptions,
    dependency_order,
    plan_down,
    plan_up,
)

WEB_APP = [
    DesiredService("web", "h-web", depends_on={"api": STARTED}),
    DesiredService("api", "h-api", depends_on={"db": HEALTHY, "migrate": COMPLETED}),
    DesiredService("db", "h-db"),
    DesiredService("migrate", "h-migrate", depends_on={"db": HEALTHY}),
    DesiredService("cache", "h-cache"),
]


def running(service: str, spec_hash: str, number: int = 1, status: str = "running", **kw):
    cid = f"{service}{number}-{spec_hash}-{status}"
    return ObservedContainer(cid, f"p-{service}-{number}", service, number, status, spec_hash, **kw)


def all_running():
    return [running(d.name, d.spec_hash) for d in WEB_APP]


def test_first_up_creates_every_service_in_dependency_order():
    plan = plan_up(WEB_APP, [])
    order = [s.service for s in plan.services]
    assert order.index("db") < order.index("migrate") < order.index("api") < order.index("web")
    assert all(
        s.actions == (CreateContainer(s.service, 1), StartContainer(s.service, 1))
        for s in plan.services
    )
    assert dict(plan.services[order.index("api")].requires) == {"db": HEALTHY, "migrate": COMPLETED}


def test_independent_services_share_a_wave():
    waves = plan_up(WEB_APP, []).waves()
    assert waves == [["db", "cache"], ["migrate"], ["api"], ["web"]]


def test_second_up_changes_nothing():
    plan = plan_up(WEB_APP, all_running())
    assert not plan.changes and plan.actions() == []
    # every service is still listed, so that dependents wait on its condition
    assert len(plan.services) == len(WEB_APP)


def test_changed_config_recreates_only_that_service():
    changed = [
        d if d.name != "api" else DesiredService("api", "h-api-2", depends_on=d.depends_on)
        for d in WEB_APP
    ]
    plan = plan_up(changed, all_running())
    assert plan.actions() == [
        RemoveContainer("api", 1, "api1-h-api-running", "p-api-1", "outdated"),
        CreateContainer("api", 1),
        StartContainer("api", 1),
    ]


def test_force_recreate_recreates_all():
    plan = plan_up(WEB_APP, all_running(), UpOptions(force_recreate=True))
    removed = {a.service for a in plan.actions() if isinstance(a, RemoveContainer)}
    assert removed == {d.name for d in WEB_APP}


def test_stopped_and_created_containers_are_started_not_recreated():
    observed = all_running()
    observed[0] = running("web", "h-web", status="exited", exit_code=137)
    observed[4] = running("cache", "h-cache", status="created")
    plan = plan_up(WEB_APP, observed)
    assert plan.actions() == [
        StartContainer("web", 1, "web1-h-web-exited"),
        StartContainer("cache", 1, "cache1-h-cache-created"),
    ]


def test_one_shot_that_completed_is_not_run_again():
    observed = all_running()
    observed[3] = running("migrate", "h-migrate", status="exited", exit_code=0)
    assert not plan_up(WEB_APP, observed).changes


def test_one_shot_that_failed_is_run_again():
    observed = all_running()
    observed[3] = running("migrate", "h-migrate", status="exited", exit_code=1)
    assert plan_up(WEB_APP, observed).actions() == [
        StartContainer("migrate", 1, "migrate1-h-migrate-exited")
    ]


def test_on_failure_that_gave_up_is_left_alone_until_asked():
    desired = [DesiredService("crash", "h", restart="on-failure", max_retries=3)]
    gave_up = running("crash", "h", status="exited", exit_code=3, restart_count=3)
    assert not plan_up(desired, [gave_up]).changes
    retrying = running("crash", "h", status="exited", exit_code=3, restart_count=1)
    assert plan_up(desired, [retrying]).actions() == [StartContainer("crash", 1, retrying.id)]
    stopped = running("svc", "h", status="exited", exit_code=137)
    assert plan_up([DesiredService("svc", "h", restart="always")], [stopped]).actions() == [
        StartContainer("svc", 1, stopped.id)
    ]


def test_scale_up_and_down():
    desired = [DesiredService("worker", "h", replicas=3)]
    up = plan_up(desired, [running("worker", "h", 1)])
    assert up.actions() == [
        CreateContainer("worker", 2),
        StartContainer("worker", 2),
        CreateContainer("worker", 3),
        StartContainer("worker", 3),
    ]
    observed = [running("worker", "h", n) for n in (1, 2, 3)]
    down = plan_up([DesiredService("worker", "h", replicas=1)], observed)
    assert [(a.number, a.reason) for a in down.actions() if isinstance(a, RemoveContainer)] == [
        (3, "scaled down"),
        (2, "scaled down"),
    ]
    assert all(isinstance(a, RemoveContainer) for a in down.actions())


def test_interrupted_recreate_leaves_duplicates_that_are_cleaned():
    # a kill -9 between create and remove: two containers in slot 1, one outdated
    observed = [running("db", "old"), running("db", "h-db", status="created")]
    plan = plan_up([DesiredService("db", "h-db")], observed)
    assert plan.actions() == [
        RemoveContainer("db", 1, "db1-old-running", "p-db-1", "outdated"),
        StartContainer("db", 1, "db1-h-db-created"),
    ]


def test_restarting_container_is_left_to_its_monitor():
    plan = plan_up([DesiredService("db", "h")], [running("db", "h", status="restarting")])
    assert not plan.changes


def test_failed_container_is_replaced():
    plan = plan_up([DesiredService("db", "h")], [running("db", "h", status="failed")])
    assert [type(a).__name__ for a in plan.actions()] == [
        "RemoveContainer",
        "CreateContainer",
        "StartContainer",
    ]


def test_orphans_are_reported_or_removed():
    observed = [*all_running(), running("old-worker", "x")]
    kept = plan_up(WEB_APP, observed)
    assert not kept.changes and "old-worker" in kept.warnings[0]
    removed = plan_up(WEB_APP, observed, UpOptions(remove_orphans=True))
    assert removed.orphans == (
        RemoveContainer("old-worker", 1, "old-worker1-x-running", "p-old-worker-1", "orphan"),
    )


def test_selected_service_brings_its_dependencies_unless_no_deps():
    plan = plan_up(WEB_APP, [], UpOptions(services=frozenset({"api"})))
    assert [s.service for s in plan.services] == ["db", "migrate", "api"]
    alone = plan_up(WEB_APP, [], UpOptions(services=frozenset({"api"}), no_deps=True))
    assert [s.service for s in alone.services] == ["api"]
    assert dict(alone.services[0].requires) == {}  # nothing in the plan to wait for


def test_unknown_selected_service_is_rejected():
    with pytest.raises(ValueError, match="no such service: nope"):
        plan_up(WEB_APP, [], UpOptions(services=frozenset({"nope"})))


def test_down_removes_dependents_first_and_orphans_with_them():
    graph = {d.name: d.depends_on for d in WEB_APP}
    observed = [*all_running(), running("old", "x")]
    waves = plan_down(graph, observed)
    names = [[r.service for r in wave] for wave in waves]
    assert names == [["old"], ["cache", "web"], ["api"], ["migrate"], ["db"]]


def test_dependency_order_keeps_given_order_for_ties():
    assert dependency_order({"b": [], "a": [], "c": ["a"]}) == ["b", "a", "c"]


def test_a_follower_restarts_when_its_dependency_is_recreated_and_not_otherwise():
    desired = [
        DesiredService("db", "h-db2"),
        DesiredService("api", "h-api", depends_on={"db": STARTED}, restart_with=frozenset({"db"})),
        DesiredService("web", "h-web", depends_on={"db": STARTED}),
    ]
    observed = [running("db", "h-db"), running("api", "h-api"), running("web", "h-web")]
    plan = plan_up(desired, observed)
    by = {s.service: s.actions for s in plan.services}
    assert by["api"] == (RestartContainer("api", 1, observed[1].id, "p-api-1", "db"),)
    assert by["web"] == ()  # no restart = true: left alone
    # the dependency unchanged: nobody restarts
    calm = plan_up(desired, [running("db", "h-db2"), *observed[1:]])
    assert not calm.changes
    # the follower itself outdated: recreated, not also restarted
    moved = plan_up(
        [desired[0], DesiredService("api", "h-api2", restart_with=frozenset({"db"}))], observed[:2]
    )
    assert not any(isinstance(a, RestartContainer) for a in moved.actions())


def test_an_optional_dependency_outside_the_up_is_a_warning_and_not_waited_for():
    desired = [
        DesiredService(
            "app", "h-app", depends_on={"metrics": HEALTHY}, optional=frozenset({"metrics"})
        )
    ]
    plan = plan_up(desired, [])
    [app] = plan.services
    assert dict(app.requires) == {} and app.actions[0] == CreateContainer("app", 1)
    assert plan.warnings == ("app: optional dependency metrics is not part of this up",)
    both = plan_up([*desired, DesiredService("metrics", "h-m")], [])
    assert [s.service for s in both.services] == ["metrics", "app"]
    app2 = both.services[1]
    assert dict(app2.requires) == {"metrics": HEALTHY} and app2.optional == {"metrics"}
    assert both.warnings == ()
