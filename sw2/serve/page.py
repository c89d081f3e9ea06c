"""The web page at / for a person: paste the API key, upload an image or type a row or a text, see the top
classes with bars (or the value). One self-contained file (no CDN: servers are often offline); it reads
/v1/model to know what to ask for and keeps the key in the tab's sessionStorage only."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).with_name("page.html")


def page_html(bundle: Any) -> str:
    return (
        TEMPLATE.read_text(encoding="utf-8")
        .replace("__NAME__", html.escape(bundle.spec.name))
        .replace("__TASK__", html.escape(bundle.task.name))
    )
