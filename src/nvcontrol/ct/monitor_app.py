"""``nvctl ct monitor``'s full-screen view (Textual): one panel per GPU, each with history
graphs (temperature, power, SM clock, utilization, fan where there is one; one column per sample), the current
values and the services that use the GPU.

It only draws: events come from :func:`nvcontrol.ct.monitor_feed.events` (or any async
iterator of the same events) and are folded into :class:`nvcontrol.ct.monitor.History`.
Importing this module imports Textual; the CLI does so only when it shows this view.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Static

from nvcontrol.ct.monitor import GRAPHS, History, bars, readings, show

Events = Callable[[], AsyncIterator[dict[str, Any]]]


@dataclass
class Row:
    """What one graphed metric's line shows."""

    label: str
    now: str = "-"
    points: list[float] = field(default_factory=list)
    span: str = ""  # the graph's scale: its points' minimum..maximum


class GpuPanel(Widget):
    """One GPU: a line per graphed metric (label, current value, history graph, the
    graph's range) and a summary line.

    The panel draws its lines itself, each as a few runs of text, with the graph one
    column per sample (:func:`~nvcontrol.ct.monitor.bars`).  A panel made of Textual's
    Sparkline and Static widgets cost about four times nvitop's CPU per second here (its
    Sparkline blends a colour per bar, and two dozen widgets a GPU each re-render); see
    bench/ct_monitor.py.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"gpu-panel--muted", "gpu-panel--graph"}
    DEFAULT_CSS = """
    GpuPanel { border: round $accent; height: auto; padding: 0 1; margin: 0 0 1 0; }
    GpuPanel.lost { border: round $error; }
    GpuPanel > .gpu-panel--muted { color: $text-muted; }
    GpuPanel > .gpu-panel--graph { color: $accent; }
    """
    LABEL, NOW, SPAN = 10, 11, 14

    def __init__(self, g: dict[str, Any], services: list[str] | None) -> None:
        super().__init__(id=f"gpu-{g['index']}")
        self.uuid = g["uuid"]
        self.border_title = f"GPU {g['index']} · {g.get('model') or g['uuid']}"
        if services is not None:  # None: not known (a gpu-monitor outside the stack)
            self.border_subtitle = f"used by: {', '.join(services) or 'no stack service'}"
        self.rows = {m.key: Row(m.label) for m in GRAPHS}
        self.summary = ""

    def shown(self) -> list[Row]:
        """The rows drawn: a GPU without a fan has no fan graph."""
        return [r for k, r in self.rows.items() if k != "fan_pct" or r.points]

    def update_from(self, g: dict[str, Any], history: History) -> None:
        before = len(self.shown())
        self.set_class(bool(g.get("lost")), "lost")
        for m in GRAPHS:
            row = self.rows[m.key]
            row.points = history.points(self.uuid, m.key)
            row.now = "lost" if g.get("lost") else show(g.get(m.key), f" {m.unit}")
            row.span = f"{min(row.points):.4g}..{max(row.points):.4g}" if row.points else ""
        mem = g.get("memory_used_mib"), g.get("memory_total_mib")
        self.summary = (
            f"mem clock {show(g.get('memory_clock_mhz'), ' MHz')} · "
            f"memory {show(mem[0])}/{show(mem[1], ' MiB')} · "
            f"power limit {show(g.get('power_limit_w'), ' W')} · {g.get('pstate') or '-'}"
        )
        self.refresh(layout=len(self.shown()) != before)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.shown()) + 1

    def line_text(self, y: int) -> str:
        """Line ``y`` as plain text (what :meth:`render_line` draws, without colours)."""
        return "".join(text for text, _ in self._runs(y))

    def render_line(self, y: int) -> Strip:
        muted = self.get_component_rich_style("gpu-panel--muted")
        graph = self.get_component_rich_style("gpu-panel--graph")
        style = {"muted": muted, "graph": graph, "": self.rich_style}
        width = self.content_size.width
        return Strip([Segment(t, style[k]) for t, k in self._runs(y)]).crop(0, width)

    def _runs(self, y: int) -> list[tuple[str, str]]:
        rows = self.shown()
        width = self.content_size.width
        if y == len(rows):
            return [(self.summary, "muted")]
        if y > len(rows):
            return []
        row = rows[y]
        graph_w = max(0, width - self.LABEL - self.NOW - self.SPAN - 2)
        return [
            (f"{row.label:<{self.LABEL}}", "muted"),
            (f"{row.now:>{self.NOW}} ", ""),
            (bars(row.points, graph_w), "graph"),
            (f" {row.span:<{self.SPAN}}", "muted"),
        ]


def _set(widget: Static, text: str) -> None:
    if str(widget.content) != text:
        widget.update(text, layout=False)


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
            _set(status, self.down)
            return
        when = time.strftime("%H:%M:%S", time.localtime(self.last_time)) if self.last_time else "-"
        text = f"gpu-monitor {self.where} · {len(self.latest)} GPU(s) · last sample {when}"
        if self.skipped:
            text += f" · {self.skipped} skipped (slow terminal)"
        if self.paused:
            text = f"paused (p resumes; samples are still recorded) · {text}"
        _set(status, text)

    async def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            await self._redraw()
        self._show_status()
