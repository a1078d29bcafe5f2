"""The HTML report of a run: its steps, counts and metrics, and each step's plots and notes.

A step contributes by writing into ``report/`` of its artifact: plots (PNG or SVG files) and an
optional ``summary.html`` fragment. The report links them; it copies nothing.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .artifacts import META_FILE, Run, read_json

REPORT_FILE = "report.html"
STEP_REPORT_DIR = "report"
#: The plot files of a step's ``report/`` that the run report shows.
IMAGE_SUFFIXES = (".png", ".svg")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%;margin:.5em 0;
border:1px solid #eee}.failed{color:#b00}.succeeded{color:#070}code{background:#f6f6f6}
"""


def write_run_report(run: Run) -> Path:
    """Write ``report.html`` into the run folder and return its path."""
    parts = [
        f"<h1>{html.escape(run.pipeline)} / {html.escape(run.run_id)}</h1>",
        f"<p>status: <b class='{html.escape(run.status)}'>{html.escape(run.status)}</b>; "
        f"started {html.escape(str(run.info.get('started', '')))}; "
        f"pipeline file <code>{html.escape(str(run.info.get('pipeline_file', '')))}</code></p>",
    ]
    if run.info.get("error"):
        parts.append(f"<p class='failed'>error: {html.escape(str(run.info['error']))}</p>")
    metas = [
        read_json(run.path / s / META_FILE)
        for s in run.info.get("steps", [])
        if (run.path / s / META_FILE).is_file()
    ]
    parts.append(_steps_table(metas))
    for meta in metas:
        parts.append(_step_section(run.path, meta))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(run.pipeline)} {html.escape(run.run_id)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    path = run.path / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def _steps_table(metas: list[dict]) -> str:
    rows = "".join(
        "<tr>"
        f"<td><a href='#step-{html.escape(m['step'])}'>{html.escape(m['step'])}</a></td>"
        f"<td>{html.escape(m.get('component', ''))}</td>"
        f"<td>{'reused' if m.get('reused_from') else 'ran'}</td>"
        f"<td>{m.get('seconds', '')}</td>"
        f"<td>{_mapping(m.get('counts', {}))}</td><td>{_mapping(m.get('metrics', {}))}</td>"
        "</tr>"
        for m in metas
    )
    head = "<tr><th>step</th><th>component</th><th></th><th>seconds</th><th>counts</th>"
    return f"<h2>steps</h2><table>{head}<th>metrics</th></tr>{rows}</table>"


def _step_section(run_path: Path, meta: dict) -> str:
    step = meta["step"]
    report_dir = run_path / step / STEP_REPORT_DIR
    out = [f"<h2 id='step-{html.escape(step)}'>{html.escape(step)}</h2>"]
    if meta.get("summary"):
        out.append(f"<p>{html.escape(str(meta['summary']))}</p>")
    params = json.dumps(meta.get("params", {}), indent=1, sort_keys=True)
    out.append(f"<details><summary>parameters</summary><pre>{html.escape(params)}</pre></details>")
    if report_dir.is_dir():
        fragment = report_dir / "summary.html"
        if fragment.is_file():
            out.append(fragment.read_text(encoding="utf-8"))
        images = sorted(p for p in report_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for image in images:
            src = f"{step}/{STEP_REPORT_DIR}/{image.name}"
            out.append(
                f"<figure><img src='{html.escape(src)}' alt='{html.escape(image.stem)}'>"
                f"<figcaption>{html.escape(image.stem)}</figcaption></figure>"
            )
    return "".join(out)


def _mapping(values: dict) -> str:
    return ", ".join(
        f"{html.escape(str(k))} {v:.4g}" if isinstance(v, float) else f"{html.escape(str(k))} {v}"
        for k, v in values.items()
    )
