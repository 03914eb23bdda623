"""``nvctl ct monitor``'s full-screen view (Textual): one panel per GPU, each with history
graphs (temperature, power, SM clock, utilization, fan where there is one), the current
values and the services that use the GPU.

It only draws: events come from :func:`nvcontrol.ct.monitor_feed.events` (or any async
iterator of the same events) and are folded into :class:`nvcontrol.ct.monitor.History`.
Importing this module imports Textual; the CLI does so only when it shows this view.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Sparkline, Static

from nvcontrol.ct.monitor import GRAPHS, History, readings, show

Events = Callable[[], AsyncIterator[dict[str, Any]]]


class GpuPanel(Vertical):
    """One GPU: a row per graphed metric (label, current value, history) and a summary."""

    DEFAULT_CSS = """
    GpuPanel { border: round $accent; height: auto; padding: 0 1; margin: 0 0 1 0; }
    GpuPanel.lost { border: round $error; }
    GpuPanel .row { height: 1; }
    GpuPanel .label { width: 10; color: $text-muted; }
    GpuPanel .now { width: 11; text-align: right; margin-right: 1; }
    GpuPanel Sparkline { width: 1fr; height: 1; }
    GpuPanel .range { width: 14; margin-left: 1; color: $text-muted; }
    GpuPanel .summary { color: $text-muted; }
    """

    def __init__(self, g: dict[str, Any], services: list[str] | None) -> None:
        super().__init__(id=f"gpu-{g['index']}")
        self.uuid = g["uuid"]
        self.prefix = f"gpu-{g['index']}"
        self.border_title = f"GPU {g['index']} · {g.get('model') or g['uuid']}"
        if services is not None:  # None: not known (a gpu-monitor outside the stack)
            self.border_subtitle = f"used by: {', '.join(services) or 'no stack service'}"

    def compose(self) -> ComposeResult:
        for m in GRAPHS:
            with Horizontal(classes="row", id=f"{self.prefix}-{m.key}-row"):
                yield Static(m.label, classes="label")
                yield Static("-", classes="now", id=f"{self.prefix}-{m.key}-now")
                yield Sparkline([], id=f"{self.prefix}-{m.key}", summary_function=max)
                yield Static("", classes="range", id=f"{self.prefix}-{m.key}-range")
        yield Static("", classes="summary", id=f"{self.prefix}-summary")

    def update_from(self, g: dict[str, Any], history: History) -> None:
        self.set_class(bool(g.get("lost")), "lost")
        for m in GRAPHS:
            points = history.points(self.uuid, m.key)
            row = self.query_one(f"#{self.prefix}-{m.key}-row")
            if m.key == "fan_pct":
                row.display = bool(points)  # a GPU without a fan has no fan graph
            self.query_one(f"#{self.prefix}-{m.key}", Sparkline).data = points
            # a sparkline spans its own minimum to maximum: say what that is
            span = f"{min(points):.4g}..{max(points):.4g}" if points else ""
            self.query_one(f"#{self.prefix}-{m.key}-range", Static).update(span)
            now = "lost" if g.get("lost") else show(g.get(m.key), f" {m.unit}")
            self.query_one(f"#{self.prefix}-{m.key}-now", Static).update(now)
        mem = g.get("memory_used_mib"), g.get("memory_total_mib")
        limit = show(g.get("power_limit_w"), " W")
        self.query_one(f"#{self.prefix}-summary", Static).update(
            f"mem clock {show(g.get('memory_clock_mhz'), ' MHz')} · "
            f"memory {show(mem[0])}/{show(mem[1], ' MiB')} · power limit {limit} · "
            f"{g.get('pstate') or '-'}"
        )


class MonitorApp(App[None]):
    """The live view; ``events`` is called once and iterated until the app quits."""

    TITLE = "nvctl ct monitor"
    CSS = """
    #status { height: 1; padding: 0 1; background: $boost; }
    #status.down { background: $error; color: $text; }
    #status.paused { background: $warning; color: $text; }
    #gpus { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("p", "pause", "Pause/resume"),
    ]

    def __init__(
        self, events: Events, where: str, services: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__()
        self.events = events
        self.where = where
        self.services = services
        self.history = History()
        self.names: dict[str, Any] = {}
        self.latest: list[dict[str, Any]] = []
        self.last_time: float | None = None
        self.paused = False
        self.down: str | None = f"connecting to gpu-monitor at {where}…"
        self.skipped = 0
        self.samples = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        yield VerticalScroll(id="gpus")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.where
        self._show_status()
        self.run_worker(self._consume(), exclusive=True, name="feed")

    async def _consume(self) -> None:
        try:
            async for event in self.events():
                await self.apply(event)
        except NoMatches:
            return  # the app is closing and its screen is gone

    async def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("t")
        if kind == "hello":
            self.down = None
            self.names = event.get("names") or {}
            self.where = str(event.get("url") or self.where)
            self.history = History()
            for sample in event.get("history") or []:
                self._record(sample)
        elif kind == "sample":
            self.down = None
            self.skipped += int(event.get("skipped") or 0)
            self._record(event)
        elif kind == "down":
            self.down = str(event.get("message"))
            if not event.get("fatal"):
                self.down += f" — retrying every {event.get('retry_s', 2):g} s"
        elif kind == "error":
            self.down = str(event.get("message"))
        self._show_status()
        if not self.paused:
            await self._redraw()

    def _record(self, sample: dict[str, Any]) -> None:
        gpus = readings(sample, self.names)
        self.history.add(gpus, sample.get("time"))
        self.latest = gpus
        self.last_time = sample.get("time")
        self.samples += 1

    async def _redraw(self) -> None:
        box = self.query_one("#gpus", VerticalScroll)
        panels = {p.uuid: p for p in box.query(GpuPanel)}
        if [g["uuid"] for g in self.latest] != list(panels):
            await box.remove_children()
            await box.mount_all(
                GpuPanel(g, None if self.services is None else self.services.get(g["uuid"], []))
                for g in self.latest
            )
            panels = {p.uuid: p for p in box.query(GpuPanel)}
        for g in self.latest:
            panels[g["uuid"]].update_from(g, self.history)

    def _show_status(self) -> None:
        status = self.query_one("#status", Static)
        status.set_class(self.down is not None, "down")
        status.set_class(self.paused and self.down is None, "paused")
        if self.down is not None:
            status.update(self.down)
            return
        when = time.strftime("%H:%M:%S", time.localtime(self.last_time)) if self.last_time else "-"
        text = f"gpu-monitor {self.where} · {len(self.latest)} GPU(s) · last sample {when}"
        if self.skipped:
            text += f" · {self.skipped} skipped (slow terminal)"
        if self.paused:
            text = f"paused (p resumes; samples are still recorded) · {text}"
        status.update(text)

    async def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            await self._redraw()
        self._show_status()
