"""The report's pages for people: each Markdown table as an HTML page, the configuration's page,
and the claims scorecard's summary (``python -m instruct_pt.reports.pages``).

Snakemake's report (`snakemake --report`, rules/reports.smk) shows HTML and images in the
browser but offers Markdown only as a download: each table's Markdown becomes one standalone
HTML page (its figure, if any, embedded), which the report shows under its category.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from instruct_pt.common import DataError, write_text
from instruct_pt.reports.scorecard import claims_summary

PAGE_STYLE = (
    "body{font-family:sans-serif;font-size:14px;margin:1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #bbb;padding:3px 6px;text-align:right;vertical-align:top}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}code{background:#f4f4f4;padding:0 2px}"
)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.(?:png|jpe?g|svg))\)")
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_IMAGE_TYPES[".svg"] = "image/svg+xml"


def markdown_page(md_path: str | os.PathLike, out_html: str | os.PathLike) -> None:
    """One report Markdown file as a standalone HTML page: tables, notes and its images, which
    are embedded (data URIs) so that the page needs no file beside it. A missing image is an
    error naming it."""
    import base64
    import html

    from markdown_it import MarkdownIt

    md_path = Path(md_path)
    if not md_path.is_file():
        raise FileNotFoundError(f"{md_path}: report Markdown missing")
    text = md_path.read_text(encoding="utf-8")

    def embed(m: re.Match) -> str:
        image = md_path.parent / m.group(2)
        if not image.is_file():
            raise FileNotFoundError(f"{image}: image of {md_path} missing")
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        mime = _IMAGE_TYPES[image.suffix.lower()]
        return f"![{m.group(1)}](data:{mime};base64,{data})"

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(_IMAGE.sub(embed, text))
    first = next((ln for ln in text.splitlines() if ln.startswith("# ")), f"# {md_path.stem}")
    title = html.escape(first[2:].strip())
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
    write_text(out_html, page)


def config_page(config: dict, configfiles: Sequence[str], out_html: str | os.PathLike) -> None:
    """The run's configuration as the workflow saw it (config.yaml with the presets and
    --config overlays applied), as one HTML page, and the files it came from."""
    import html

    import yaml

    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)
    files = "".join(f"<li><code>{html.escape(str(f))}</code></li>" for f in configfiles)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Configuration of run {html.escape(str(config.get('run', '?')))}</title>\n"
        f"<style>{PAGE_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>Configuration of run <code>{html.escape(str(config.get('run', '?')))}</code></h1>\n"
        "<p>Config files: the workflow's config.yaml, extended by the files given with "
        f"--configfile and by --config values:</p>\n<ul>{files}</ul>\n"
        f"<p>The resulting configuration:</p>\n<pre>{html.escape(text)}</pre>\n</body>\n</html>\n"
    )
    write_text(out_html, page)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m instruct_pt.reports.pages summary CLAIMS_JSON`` | ``page MD HTML``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m instruct_pt.reports.pages", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    summary = sub.add_parser("summary", help="print the claims scorecard's summary")
    summary.add_argument("claims_json")
    page = sub.add_parser("page", help="one report Markdown file as a standalone HTML page")
    page.add_argument("md")
    page.add_argument("html")
    args = parser.parse_args(argv)
    try:
        if args.command == "summary":
            print(claims_summary(args.claims_json))
        else:
            markdown_page(args.md, args.html)
    except (FileNotFoundError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
