"""How the admin and the pages show a being's parts: highlighted source, short hashes."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer


def source_html(source: str) -> SafeString:
    """Python source highlighted by Pygments, with inline styles and line numbers."""
    formatter = HtmlFormatter(noclasses=True, linenos="table", style="friendly")
    # Pygments escapes the source; its output is HTML we may trust.
    return format_html('<div class="lux-source">{}</div>', mark_safe(highlight(source, PythonLexer(), formatter)))


def hash_short(value: str) -> SafeString | str:
    """A hash cut to its first twelve characters, whole on hover."""
    return format_html('<code class="lux-uuid" title="{}">{}…</code>', value, value[:12]) if value else "—"
