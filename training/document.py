"""The model document a model-risk reviewer files: `reports/<name>/model_document.md` and
the same content as a self-contained `model_document.html`.

It is assembled at render time from what others measured and wrote, never typed: the spec
(use, misuse, limits, monitoring thresholds), the stored model's card, the training report
(`training.json`), the fairness report (`fairness.json`), the alert rules in
`deploy/prometheus/alerts.yml` and the store's versions of the use case. Each section ends
with the files and keys its numbers come from.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from markdown_it import MarkdownIt

from core.logs import get_logger
from core.names import (
    MODEL_DOCUMENT_STEM,
)
from core.spec import Spec
from training.document_sections import SECTIONS, to_markdown
from training.document_sources import DocumentError, document_paths, gather

__all__ = ["SECTIONS", "DocumentError", "document_paths", "rewrite_document", "write_document"]


STYLE = """
body { font-family: sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #1a1a1a; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #c8c8c8; padding: 0.2rem 0.5rem; vertical-align: top; }
th { background: #f0f0f0; }
code { background: #f4f4f4; padding: 0 0.2rem; word-break: break-all; }
img { max-width: 32rem; display: block; margin: 0.5rem 0; }
"""


def to_html(markdown: str, title: str) -> str:
    """The Markdown rendered as one self-contained page (no scripts, fonts or CDNs)."""
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )


def write_document(
    use_case_or_spec: str | Path | Spec, reports_dir: Path, model_tag: str | None = None
) -> dict[str, Path]:
    """Write reports/<name>/model_document.md and .html for `model_tag` (default
    `<name>:latest`); returns their paths."""
    sources = gather(use_case_or_spec, Path(reports_dir), model_tag)
    sources.out_dir.mkdir(parents=True, exist_ok=True)
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    markdown = to_markdown(sources, generated_at)
    paths = {
        "markdown": sources.out_dir / f"{MODEL_DOCUMENT_STEM}.md",
        "html": sources.out_dir / f"{MODEL_DOCUMENT_STEM}.html",
    }
    paths["markdown"].write_text(markdown, encoding="utf-8")
    paths["html"].write_text(
        to_html(markdown, f"Model document: {sources.spec.name}"), encoding="utf-8"
    )
    return paths


def rewrite_document(use_case: str | Path, reports_dir: Path, tag: str) -> None:
    """The model document follows a promotion; the promotion stands if it cannot (said how
    to write it once the missing report is there)."""
    try:
        written = write_document(use_case, reports_dir, model_tag=tag)
    except (DocumentError, FileNotFoundError) as err:
        get_logger("document").info(
            f"{tag}: model document not rewritten: {err}; once fixed: "
            f"`python -m riskbento document {use_case} --model-tag {tag}`"
        )
        return
    get_logger("document").info(f"{tag}: wrote {written['markdown']}")
