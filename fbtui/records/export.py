"""An ablation table as CSV, Markdown, LaTeX or JSON: mean ± std, the best per metric in bold,
partial rows marked, and a footnote that says where every number comes from."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.records.rows import AblationTable, Row

FORMATS = ("csv", "markdown", "latex", "json")
PARTIAL = "†"


def provenance(t: AblationTable) -> list[str]:
    from fbtui import __version__

    what = f"project {t.project}" + (f", ablation {t.ablation}" if t.ablation else ", all runs")
    code = "every code state (older ones marked @commit)" if t.all_code else f"code {t.code or 'unknown'}"
    lines = [f"{what}; {code}; {t.suite_text()}.",
             "Mean ± sample std over seeds, one run per seed (seeds per row in the seeds column); "
             "best per metric in bold" + ("" if t.star_partial else " among complete rows") + ".",
             ]
    partial = [r for r in t.rows if r.partial]
    if partial:
        lines.append(f"{PARTIAL} partial: " + "; ".join(
            f"{r.name} lacks seed {', '.join(map(str, r.missing))}" for r in partial) + ".")
    lines.append("Runs: " + "; ".join(f"{r.name}: {', '.join(f'#{i}' for i in r.runs)}" for r in t.rows)
                 + f". Made by fbtui {__version__}.")
    return lines


def export(t: AblationTable, fmt: str, digits: int = 4) -> str:
    if fmt == "json":
        return json.dumps({**t.to_dict(), "provenance": provenance(t)}, indent=2, default=str) + "\n"
    if fmt == "csv":
        return _csv(t, digits)
    if fmt == "markdown":
        return _markdown(t, digits)
    if fmt == "latex":
        return _latex(t, digits)
    raise ValueError(f"unknown format {fmt!r}")


def _csv(t: AblationTable, digits: int) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["row", "seeds", "partial", *t.params, *[x for m in t.metrics for x in (f"{m} mean", f"{m} std")],
                "best", "runs"])
    for r in t.rows:
        cells: list[Any] = [r.name, r.seeds_text, "yes" if r.partial else "no"]
        cells += ["" if r.params.get(p) is None else r.params.get(p) for p in t.params]
        for m in t.metrics:
            s = r.metrics.get(m)
            cells += [f"{s.mean:.{digits}f}", f"{s.std:.{digits}f}" if s.n > 1 else ""] if s else ["", ""]
        cells.append(" ".join(m for m in t.metrics if t.best.get(m) == r.name))
        cells.append(" ".join(str(i) for i in r.runs))
        w.writerow(cells)
    for line in provenance(t):
        out.write(f"# {line}\n")
    return out.getvalue()


def _mean_std(r: Row, m: str, digits: int, pm: str) -> str:
    s = r.metrics.get(m)
    if s is None:
        return "–"
    text = f"{s.mean:.{digits}f}" + (f" {pm} {s.std:.{digits}f}" if s.n > 1 else "")
    return text + (f" {PARTIAL}" if r.partial else "")


def _markdown(t: AblationTable, digits: int) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|")

    head = ["row", "seeds", *t.params, *t.metrics]
    lines = ["| " + " | ".join(esc(h) for h in head) + " |",
             "|" + "|".join(["---", "---:"] + ["---:"] * (len(t.params) + len(t.metrics))) + "|"]
    for r in t.rows:
        cells = [esc(r.name) + (f" {PARTIAL}" if r.partial else ""), r.seeds_text]
        cells += [esc("–" if r.params.get(p) is None else r.params.get(p)) for p in t.params]
        for m in t.metrics:
            text = _mean_std(r, m, digits, "±")
            cells.append(f"**{text}**" if t.best.get(m) == r.name else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{line}  " for line in provenance(t)]
    return "\n".join(lines).rstrip() + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "†": r"$^\dagger$", "±": r"$\pm$",
        "–": "--", "×": r"$\times$"}


def tex(text: Any) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _latex(t: AblationTable, digits: int) -> str:
    n = 2 + len(t.params) + len(t.metrics)
    lines = [r"% needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             r"\begin{tabular}{l" + "r" * (n - 1) + "}", r"\toprule",
             " & ".join(tex(h) for h in ["row", "seeds", *t.params, *t.metrics]) + r" \\", r"\midrule"]
    for r in t.rows:
        cells = [tex(r.name) + (r"$^\dagger$" if r.partial else ""), tex(r.seeds_text)]
        cells += [tex("–" if r.params.get(p) is None else r.params.get(p)) for p in t.params]
        for m in t.metrics:
            text = tex(_mean_std(r, m, digits, "±"))
            cells.append(rf"\textbf{{{text}}}" if t.best.get(m) == r.name else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip", r"{\footnotesize"]
    lines += [tex(line) + (r"\\" if i < len(provenance(t)) - 1 else "}") for i, line in enumerate(provenance(t))]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
