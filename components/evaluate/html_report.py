"""report.html: one self-contained page a person opens after a run (images embedded as base64).

Sections, in reading order: the verdict; gate results of every stage report found in the run dir; the
training loss curves (the train stage's loss_curve.png); the fine-tuned model against its baselines
(table with deltas, metrics.png); degenerate outputs by kind; the LLM judge; the human evaluation files;
a table of test samples with every system's title side by side.
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any

REPORT_NAME = "report.html"
METRIC_COLUMNS = [("rouge_l", "ROUGE-L"), ("bleu", "BLEU"), ("chrf", "chrF"), ("perplexity", "perplexity"),
                  ("degenerate_rate", "degenerate"), ("judge_mean_score", "judge")]
# Lower is better for these; the delta cell is coloured accordingly.
LOWER_IS_BETTER = {"perplexity", "degenerate_rate"}
_ARTICLE_CHARS = 160
_HEADLINE_METRICS = 8

CSS = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans CJK JP","Yu Gothic",sans-serif;
  margin:2rem auto;max-width:1180px;padding:0 1rem;color:#1f2328;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;
  padding-bottom:.3rem} .sub{color:#57606a;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.6rem 0}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
table.samples{table-layout:fixed} table.samples col.n{width:2.5rem} table.samples col.article{width:28%}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-weight:600;font-size:.82rem;color:#fff}
.pass{background:#1a7f37} .fail{background:#cf222e} .skip{background:#6e7781}
.better{color:#1a7f37;font-weight:600} .worse{color:#cf222e;font-weight:600}
.flag{display:inline-block;background:#ffebe9;color:#a40e26;border-radius:.3rem;padding:0 .3rem;margin:.1rem;
  font-size:.75rem} ul.reasons{margin:.2rem 0;padding-left:1.2rem} img{max-width:100%;border:1px solid #d0d7de}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem .6rem;border-radius:.3rem}
td.article{color:#57606a;max-width:22rem} code{font-size:.85rem}
"""


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(value: Any, key: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if key.endswith("rate") or key == "degenerate_rate":
            return f"{value:.1%}"
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}"
    return escape(str(value))


def _badge(passed: bool | None) -> str:
    if passed is None:
        return '<span class="badge skip">not run</span>'
    return '<span class="badge pass">passed</span>' if passed else '<span class="badge fail">failed</span>'


def _reasons(reasons: list[str]) -> str:
    if not reasons:
        return ""
    return '<ul class="reasons">' + "".join(f"<li>{escape(r)}</li>" for r in reasons) + "</ul>"


def _headline(metrics: dict[str, Any]) -> str:
    scalars = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{escape(k)}={_fmt(v, k)}" for k, v in scalars[:_HEADLINE_METRICS])


def _gates_section(stage_reports: list[dict[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{escape(str(r.get('stage', '?')))}</td><td>{_badge(r.get('passed'))}</td>"
                   f"<td>{_reasons(r.get('reasons', []))}</td><td><small>{_headline(r.get('metrics', {}))}</small>"
                   "</td></tr>" for r in stage_reports)
    return ("<h2>Gate results</h2><table><tr><th>stage</th><th>gate</th><th>reasons</th><th>metrics</th></tr>"
            f"{rows}</table>")


def _loss_section(loss_curve: Path | None) -> str:
    img = _img(loss_curve, "training and validation loss")
    body = img or '<p class="note">No loss_curve.png from the train stage was found in the run dir.</p>'
    return f"<h2>Training loss</h2>{body}"


def _delta_cell(delta: float | None, key: str) -> str:
    if delta is None or not math.isfinite(delta):
        return '<td class="num">–</td>'
    good = delta < 0 if key in LOWER_IS_BETTER else delta > 0
    cls = "better" if good else ("worse" if delta != 0 else "")
    sign = "+" if delta > 0 else ""
    text = f"{sign}{delta:.1%}" if key == "degenerate_rate" else f"{sign}{delta:.3f}"
    return f'<td class="num {cls}">{text}</td>'


def _metrics_section(report: dict[str, Any], chart: Path | None) -> str:
    systems: dict[str, dict[str, Any]] = report["systems"]
    head = "".join(f"<th>{label}</th>" for _, label in METRIC_COLUMNS)
    rows = ""
    for name, info in systems.items():
        cells = "".join(f'<td class="num">{_fmt(info.get(k), k)}</td>' for k, _ in METRIC_COLUMNS)
        rows += f"<tr><td><b>{escape(name)}</b><br><small>{escape(info.get('source', ''))}</small></td>{cells}</tr>"
    for baseline, deltas in report.get("deltas", {}).items():
        cells = "".join(_delta_cell(deltas.get(k), k) for k, _ in METRIC_COLUMNS)
        rows += f"<tr><td>finetuned − {escape(baseline)}</td>{cells}</tr>"
    return (f"<h2>Fine-tuned model vs baselines</h2><p class=sub>{report['samples']} test rows; "
            "ROUGE-L, BLEU and chrF on MeCab words / characters, 0..1. Coloured deltas: green is better.</p>"
            f"<table><tr><th>system</th>{head}</tr>{rows}</table>{_img(chart, 'metrics by system')}")


def _degenerate_section(report: dict[str, Any]) -> str:
    kinds = sorted({k for info in report["systems"].values() for k in info.get("degenerate_by_kind", {})})
    if not kinds:
        return "<h2>Degenerate outputs</h2><p>No output of any system was flagged.</p>"
    head = "".join(f"<th>{escape(k)}</th>" for k in kinds)
    rows = "".join(f"<tr><td>{escape(name)}</td>" + "".join(
        f'<td class="num">{info.get("degenerate_by_kind", {}).get(k, 0)}</td>' for k in kinds) + "</tr>"
        for name, info in report["systems"].items())
    note = ("<p class=sub>The heuristic quotes the article by construction: its prompt_copy flags are expected; "
            "its other flags say what the article's first sentence looks like.</p>" if "heuristic" in report["systems"]
            else "")
    return f"<h2>Degenerate outputs</h2><table><tr><th>system</th>{head}</tr>{rows}</table>{note}"


def _judge_section(judge: dict[str, Any]) -> str:
    status = judge.get("status", "skipped")
    if status == "skipped":
        return "<h2>LLM judge</h2><p>Not enabled (evaluate.judge.enabled).</p>"
    note = f'<p class="note">{escape(judge["error"])}</p>' if judge.get("error") else ""
    rows = "".join(f"<tr><td>{escape(name)}</td><td class=num>{s['judged']}</td><td class=num>{_fmt(s.get('mean_score'))}"
                   f"</td><td class=num>{s['malformed']}</td></tr>" for name, s in judge.get("systems", {}).items())
    return (f"<h2>LLM judge</h2><p>status: <b>{escape(status)}</b>, model <code>{escape(str(judge.get('model')))}"
            f"</code>, {judge.get('requests', 0)} requests, {judge.get('retries', 0)} retries</p>{note}"
            "<table><tr><th>system</th><th>judged</th><th>mean score</th><th>malformed replies</th></tr>"
            f"{rows}</table>")


def _human_section(human: dict[str, Any] | None) -> str:
    if not human:
        return "<h2>Human evaluation</h2><p>No pairs written.</p>"
    return (f"<h2>Human evaluation</h2><p>{human['pairs']} blind A/B pairs ({' vs '.join(human['systems'])}) in "
            f"<code>{escape(human['rater_file'])}</code> for raters; which system is A or B is only in "
            f"<code>{escape(human['key_file'])}</code>: keep it away from them. "
            f"{human['identical_pairs_left_out']} pair(s) with identical titles left out.</p>")


def _samples_section(samples: list[dict[str, Any]], systems: list[str], limit: int) -> str:
    head = "".join(f"<th>{escape(s)}</th>" for s in systems)
    rows = ""
    for n, sample in enumerate(samples[:limit], 1):
        article = sample.get("article") or sample["prompt"]
        short = article if len(article) <= _ARTICLE_CHARS else article[:_ARTICLE_CHARS] + "…"
        cells = ""
        for system in systems:
            title = sample["outputs"].get(system)
            flags = "".join(f'<span class="flag">{escape(f)}</span>' for f in sample["flags"].get(system, []))
            score = sample.get("rouge_l", {}).get(system)
            score_txt = f"<br><small>ROUGE-L {score:.2f}</small>" if score is not None else ""
            cells += f"<td>{escape(title) if title is not None else '–'}{flags}{score_txt}</td>"
        rows += (f'<tr><td class=num>{n}</td><td class="article" title="{escape(article)}">{escape(short)}</td>'
                 f"<td>{escape(sample['reference'])}</td>{cells}</tr>")
    cols = '<col class="n"><col class="article">' + "<col>" * (len(systems) + 1)
    return (f"<h2>Samples</h2><p class=sub>The first {min(limit, len(samples))} of {len(samples)} test rows "
            f"(all of them are in samples.jsonl).</p><table class=\"samples\">{cols}<tr><th>#</th><th>article</th>"
            f"<th>reference</th>{head}</tr>{rows}</table>")


def write_html_report(report: dict[str, Any], stage_reports: list[dict[str, Any]], samples: list[dict[str, Any]],
                      output_dir: Path, loss_curve: Path | None, metrics_chart: Path | None,
                      sample_rows: int) -> Path:
    title = f"finegate evaluate — {report.get('run_name') or 'run'}"
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in report.get("notes", []))
    body = (f"<h1>{escape(title)}</h1><p class=sub>model <code>{escape(str(report.get('gguf', '')))}</code> · "
            f"test set <code>{escape(str(report.get('test_file', '')))}</code></p>"
            f"<p>evaluate gate: {_badge(report['passed'])}</p>{_reasons(report.get('reasons', []))}{notes}"
            + _gates_section(stage_reports) + _loss_section(loss_curve) + _metrics_section(report, metrics_chart)
            + _degenerate_section(report) + _judge_section(report.get("judge", {}))
            + _human_section(report.get("human_eval")) + _samples_section(samples, list(report["systems"]), sample_rows))
    page = (f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")
    path = Path(output_dir) / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return path
