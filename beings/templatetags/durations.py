"""``{{ run.duration_ms|duration }}``: a duration in milliseconds as people read it (820 ms, 5.2 s, 2 min 3 s)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(milliseconds: float | int | str | None) -> str:
    """820 ms, 4.5 ms, 5.2 s, 2 min 3 s, 1 h 5 min; an em dash for none."""
    if milliseconds is None or milliseconds == "":
        return "—"
    value = float(milliseconds)
    if 0 < value < 0.05:
        return "< 0.1 ms"
    if value < 10 and round(value, 1) < 10:
        return f"{round(value, 1):g} ms"
    if round(value) < 1000:
        return f"{round(value)} ms"
    seconds = value / 1000
    if round(seconds, 1) < 60:
        return f"{round(seconds, 1):.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
