"""Rendering: tables and progress bars for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich loads only when something is drawn: JSON output stays fast
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

STATUS_STYLE = {
    "QUEUED": ("○", "Queued", "grey62"),
    "RUNNING": ("●", "Running", "cyan"),
    "COMPLETED": ("●", "Done", "green"),
    "FAILED": ("●", "Failed", "red"),
    "CANCELLED": ("○", "Cancelled", "yellow"),
    "ONLINE": ("●", "Online", "green"),
    "DEGRADED": ("⚠", "Degraded", "yellow"),
    "OFFLINE": ("●", "Offline", "red"),
    "UNKNOWN": ("○", "Unknown", "grey62"),
}


def console() -> Console:
    from rich.console import Console  # noqa: PLC0415

    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def status_text(status: str) -> Text:
    from rich.text import Text  # noqa: PLC0415

    icon, label, style = STATUS_STYLE.get(status, ("?", status.title(), "white"))
    return Text(f"{icon} {label}", style=style)


# Below this many columns tables drop secondary columns and bars (an 80-column SSH terminal).
WIDE = 110


def is_narrow() -> bool:
    return console().width < WIDE


def progress_bar(percent: float, width: int = 5) -> Text:
    from rich.text import Text  # noqa: PLC0415

    filled = max(0, min(width, round(percent / 100 * width)))
    return Text("█" * filled + "░" * (width - filled) + f" {percent:>3.0f}%")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def clock(value: str | None) -> str:
    """Local wall-clock time of an ISO timestamp; the date too when it is not today."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def eta(seconds: float | None, status: str) -> str:
    if status != "RUNNING":
        return "—"
    if seconds is None:
        return "?"
    if seconds < 60:
        return "<1 min"
    if seconds < 3600:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def duration(ms: float) -> str:
    if ms <= 0:
        return "—"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def ago(value: str | None) -> str:
    moment = parse_time(value)
    if moment is None:
        return "never"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def new_table(title: str | None = None) -> Table:
    from rich.table import Table  # noqa: PLC0415

    return Table(title=title, title_justify="left", header_style="bold", pad_edge=False, expand=False)


class LiveView:
    """A table that follows changes until Ctrl-C.

    On a terminal it is redrawn in place (rich's Live). When stdout is a pipe or a file there is nothing to
    redraw, so each new state is printed in full, at most once per `every` seconds (the last one on exit):
    `b2c monitor health --watch | tee health.log` records what happened.
    """

    def __init__(self, every: float = 5.0) -> None:
        from rich.live import Live  # noqa: PLC0415

        self._console = console()
        self._every = every
        self._live = Live(console=self._console, refresh_per_second=2) if self._console.is_terminal else None
        self._printed_at = float("-inf")
        self._pending: Any = None

    def __enter__(self) -> LiveView:
        if self._live is not None:
            self._live.__enter__()
        return self

    def update(self, renderable: Any) -> None:
        if self._live is not None:
            self._live.update(renderable)
            return
        import time  # noqa: PLC0415

        now = time.monotonic()
        if now - self._printed_at < self._every:
            self._pending = renderable
            return
        self._print(renderable)
        self._printed_at = now

    def _print(self, renderable: Any) -> None:
        self._console.print(renderable)
        self._console.print(f"— {datetime.now(UTC):%H:%M:%S} UTC", style="grey62")
        self._console.file.flush()
        self._pending = None

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
        elif self._pending is not None:
            self._print(self._pending)
