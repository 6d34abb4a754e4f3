"""Hostile text as text: cleaning, capping and escaping every user-supplied field of a leaderboard.

Result files carry text that submitters chose (entry and team names, links, failure reasons). Before
any renderer sees it, :func:`clean` removes control characters, line breaks and bidirectional
overrides, collapses white space and caps the length. :func:`markdown` then escapes it for a GitHub
Markdown table cell (HTML special characters as entities, Markdown punctuation with backslashes, so
no tag, link, emphasis or cell break can form); :func:`safe_url` keeps only well-formed http(s) links,
percent-encoding every character that could end a Markdown link or an HTML attribute.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit

#: Longest text shown per field (characters); longer text ends with an ellipsis.
MAX_NAME = 80
MAX_REASON = 300
MAX_URL = 500

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")
# ":" and "@" too, and the dot of "www.": GitHub turns scheme://, user@host and www.x.y text into links.
_MARKDOWN = set("\\`*_{}[]()#+!|~:@$^=")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
# Characters kept as they are in a link; everything else is percent-encoded (no ( ) < > " ' space | \ ` [ ]).
_URL_SAFE = "-._~:/?#@!$&*+,;=%"


def clean(text: object, limit: int = MAX_NAME) -> str:
    """One line of printable text, at most ``limit`` characters."""
    value = "" if text is None else str(text)
    value = _INVISIBLE.sub("", value)
    value = "".join(" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in value)
    value = _SPACE.sub(" ", value).strip()
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def markdown(text: object, limit: int = MAX_NAME) -> str:
    """:func:`clean` text escaped for a Markdown table cell or list item."""
    out = []
    value = clean(text, limit)
    for i, ch in enumerate(value):
        if ch in _HTML:
            out.append(_HTML[ch])
        elif ch in _MARKDOWN or (ch == "." and value[max(i - 3, 0): i].lower() == "www"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def safe_url(url: object) -> str:
    """``url`` if it is a well-formed http(s) link (percent-encoded where needed), else ``""``."""
    value = "" if url is None else str(url).strip()
    if not value or len(value) > MAX_URL or any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "\\" in value:
        return ""
    return quote(value, safe=_URL_SAFE)


__all__ = ["MAX_NAME", "MAX_REASON", "MAX_URL", "clean", "markdown", "safe_url"]
