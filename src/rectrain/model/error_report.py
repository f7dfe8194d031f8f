"""``rectrain evaluate … --report DIR``: an error report a person reads.

``DIR/index.md`` and ``DIR/index.html`` (the same content), with figures:

- ``confusions.png``: the most frequent edit operations (label char -> read char, missing,
  extra) with their counts;
- ``cer_by_length.png``: character error rate and word accuracy by label length;
- ``errors_by_class.png``: the error rate of each character class (Thai consonants, vowels
  above/below/leading/following, tone marks, digits …), see :mod:`rectrain.model.error_analysis`;
- ``worst.png``: the worst samples, each image with its label and reading;

and ``DIR/evaluation.json``: the evaluation (as ``--json``) plus the error analysis.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from rectrain.model.error_analysis import CLASSES, ErrorAnalysis, analyse_errors, char_class
from rectrain.model.grid import thai_font_path, worst_samples_grid
from rectrain.model.scores import DEL, INS, describe_char
from rectrain.outputs import claim_output_dir, write_json, write_text
from rectrain.plotting import save_png, subplots

TOP = 30


def _font(size: int = 11) -> Any:
    from matplotlib import font_manager

    path = thai_font_path()
    return font_manager.FontProperties(fname=str(path), size=size) if path else \
        font_manager.FontProperties(size=size)


def _shown(ch: str) -> str:
    """A character as drawn in a figure; a combining mark (vowel above/below, tone mark) with its
    code point, since it cannot stand on its own (Thai fonts lack the dotted circle)."""
    if not ch:
        return "-"
    if ch == " ":
        return "space"
    import unicodedata

    return f"{ch} U+{ord(ch):04X}" if unicodedata.category(ch) == "Mn" else ch


def _save(fig: Any, path: Path) -> Path:
    return save_png(fig, path)


def plot_confusions(analysis: ErrorAnalysis, out: Path, top: int = 20) -> Path:
    ops = analysis.top_operations(top)
    prop = _font(11)
    fig, ax = subplots(1, 1, figsize=(8, max(2.5, 0.38 * len(ops) + 1)))
    labels = [f"{_shown(r)} → {_shown(h)}" if kind not in (DEL, INS) else
              (f"{_shown(r)} missing" if kind == DEL else f"extra {_shown(h)}") for kind, r, h, _ in ops]
    colors = ["C3" if kind == DEL else "C1" if kind == INS else "C0" for kind, _, _, _ in ops]
    ys = list(range(len(ops)))[::-1]
    ax.barh(ys, [n for *_, n in ops], color=colors)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontproperties=prop)
    ax.set_xlabel("count")
    ax.set_title("most frequent errors (blue: read as, red: missing, orange: extra)")
    if not ops:
        ax.text(0.5, 0.5, "no errors", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, out)


def plot_by_length(analysis: ErrorAnalysis, out: Path) -> Path:
    buckets = [b for _, b in sorted(analysis.lengths.items())]
    fig, ax = subplots(1, 1, figsize=(8, 3.6))
    xs = [b.length for b in buckets]
    ax.bar(xs, [b.cer for b in buckets], color="C3", alpha=0.7, label="CER")
    ax.plot(xs, [b.word_accuracy for b in buckets], "o-", color="C0", label="word accuracy")
    for b in buckets:
        ax.annotate(str(b.samples), (b.length, 0.0), textcoords="offset points", xytext=(0, -14),
                    ha="center", fontsize=7, color="grey")
    ax.set_xlabel("label length (code points; grey: samples)")
    ax.set_ylim(-0.02, max(1.02, max((b.cer for b in buckets), default=0) + 0.05))
    ax.set_title("errors by label length")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_by_class(analysis: ErrorAnalysis, out: Path) -> Path:
    rows = [s for s in analysis.classes.values() if s.reference]
    fig, ax = subplots(1, 1, figsize=(8, max(2.5, 0.45 * len(rows) + 1)))
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, [s.error_rate for s in rows], color="C2")
    ax.set_yticks(ys)
    # the description without its examples: lone marks would stack on nothing
    ax.set_yticklabels([f"{CLASSES[s.name].split(' (')[0]}  (n={s.reference})" for s in rows],
                       fontproperties=_font(10))
    ax.set_xlabel("error rate (substituted + missing) / label characters")
    ax.set_xlim(0, max(1.0, max((s.error_rate for s in rows), default=0)))
    ax.set_title("errors by character class")
    return _save(fig, out)


# ------------------------------------------------------------------ the page
def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("`", "'")


def _sections(report: Any, analysis: ErrorAnalysis, top: int) -> List[Tuple[str, List[str], List[List[str]]]]:
    """(title, header, rows) of every table, shared by the Markdown and the HTML page."""
    summary = [["samples", str(report.total)],
               ["word accuracy", f"{report.word_accuracy:.4f} ({report.correct}/{report.total})"],
               ["character error rate (CER)",
                f"{report.cer:.4f} ({report.char_errors}/{report.reference_chars} characters)"],
               ["normalized edit distance (engine)", f"{report.norm_edit_dis:.4f}"]]
    ops = analysis.as_dict()["operations"]
    summary.append(["errors", f"{ops['substitutions']} read as another, {ops['deletions']} missing, "
                              f"{ops['insertions']} extra"])
    if report.out_of_dictionary_samples:
        summary.append(["labels with characters outside the dictionary",
                        str(report.out_of_dictionary_samples)])
    if report.too_long_samples:
        summary.append(["labels longer than max_text_length", str(report.too_long_samples)])
    confusion_rows = [[("read as" if k not in (DEL, INS) else "missing" if k == DEL else "extra"),
                       describe_char(r), describe_char(h),
                       char_class(r or h).replace("_", " "), str(n)]
                      for k, r, h, n in analysis.top_operations(top)]
    class_rows = [[CLASSES[s.name], str(s.reference), str(s.substituted), str(s.deleted), str(s.inserted),
                   f"{s.error_rate:.3f}"] for s in analysis.classes.values() if s.reference or s.inserted]
    length_rows = [[str(b.length), str(b.samples), f"{b.word_accuracy:.3f}", f"{b.cer:.3f}"]
                   for _, b in sorted(analysis.lengths.items())]
    worst = sorted(report.samples, key=lambda s: (s.correct, -s.norm_edit_distance, s.score))[:top]
    worst_rows = [[Path(s.path).name, s.label, s.prediction or "(nothing)", f"{s.score:.2f}",
                   f"{s.norm_edit_distance:.2f}"] for s in worst if not s.correct]
    return [
        ("Summary", ["", "value"], summary),
        ("Character confusions (aligned edit operations)",
         ["error", "label", "read", "class", "count"], confusion_rows),
        ("Errors by character class", ["class", "label chars", "read as another", "missing",
                                       "extra", "error rate"], class_rows),
        ("Errors by label length", ["length", "samples", "word accuracy", "CER"], length_rows),
        ("Worst samples", ["image", "label", "read", "score", "normalized distance"], worst_rows),
    ]


FIGURES = {"Character confusions (aligned edit operations)": "confusions.png",
           "Errors by character class": "errors_by_class.png",
           "Errors by label length": "cer_by_length.png", "Worst samples": "worst.png"}


def render_markdown(report: Any, analysis: ErrorAnalysis, top: int = TOP) -> str:
    lines = [f"# Error report: {Path(report.model_dir).name}", "",
             f"Model `{report.model_dir}`, labels `{report.labels}`"
             + (" (spaces ignored, as the engine's metric)." if report.ignore_space else "."), ""]
    for title, header, rows in _sections(report, analysis, top):
        lines += [f"## {title}", ""]
        if title in FIGURES:
            lines += [f"![{title}]({FIGURES[title]})", ""]
        if not rows:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + " --- |" * len(header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    lines += ["How to read this: docs/tracking.md (Reading an error report).", ""]
    return "\n".join(lines)


def render_html(report: Any, analysis: ErrorAnalysis, top: int = TOP) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>Error report: {esc(Path(report.model_dir).name)}</title>",
             "<style>body{font-family:'Sarabun','Noto Sans Thai',sans-serif;max-width:1000px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left}img{max-width:100%}</style></head><body>",
             f"<h1>Error report: {esc(Path(report.model_dir).name)}</h1>",
             f"<p>Model <code>{esc(report.model_dir)}</code>, labels <code>{esc(report.labels)}</code></p>"]
    for title, header, rows in _sections(report, analysis, top):
        parts.append(f"<h2>{esc(title)}</h2>")
        if title in FIGURES:
            parts.append(f"<img src='{FIGURES[title]}' alt='{esc(title)}'>")
        if not rows:
            parts.append("<p>(none)</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


# What ``evaluate --report DIR`` writes.
REPORT_FILES = ("index.md", "index.html", "evaluation.json", "confusions.png", "errors_by_class.png",
                "cer_by_length.png", "worst.png")


def write_error_report(report: Any, out_dir: Union[str, Path], *, top: int = TOP,
                       worst: int = 24) -> Dict[str, Path]:
    """Write the report of an :class:`~rectrain.model.evaluate.EvalReport` into ``out_dir``;
    returns ``{name: path}``."""

    out = claim_output_dir(out_dir, command="evaluate", flag="--report", writes=list(REPORT_FILES))
    pairs: Sequence[Tuple[str, str]] = [(s.label, s.prediction) for s in report.samples]
    analysis = analyse_errors(pairs, ignore_space=report.ignore_space)
    files = {
        "confusions": plot_confusions(analysis, out / "confusions.png"),
        "by_class": plot_by_class(analysis, out / "errors_by_class.png"),
        "by_length": plot_by_length(analysis, out / "cer_by_length.png"),
        "worst": worst_samples_grid(report.samples, str(out / "worst.png"), limit=worst),
    }
    data = report.as_dict()
    data["errors"] = analysis.as_dict(top=max(top, 50))
    write_json(out / "evaluation.json", data)
    files["json"] = out / "evaluation.json"
    write_text(out / "index.md", render_markdown(report, analysis, top))
    files["markdown"] = out / "index.md"
    write_text(out / "index.html", render_html(report, analysis, top))
    files["html"] = out / "index.html"
    return files
