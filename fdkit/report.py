"""The trial report: CONSORT flow, forest plot, and a self-contained HTML report.

``notebooks/09_trial_report.ipynb`` is the report: a parameterised notebook (a cell tagged
``parameters`` names the records folder, the allocation, the follow-up length and the harm
weights) that computes everything with the functions here and in the rest of the kit. Cells
tagged ``lesson`` or ``solution`` (the notebook as a lesson: objectives, exercises) are left
out of the rendered report.
:func:`render_report` executes it with a unit's parameters and renders it as one HTML file
without code cells: every figure is embedded as an image and the page loads nothing from
anywhere, so it can be e-mailed to a board or opened on an offline laptop.
"""

from __future__ import annotations

import html
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from . import outcomes as outcome_definitions

REPORT_NOTEBOOK = "09_trial_report.ipynb"
PACKAGES = ("fdkit", "numpy", "pandas", "scipy", "statsmodels", "matplotlib", "seaborn")


# ----------------------------------------------------------------------- CONSORT


@dataclass(frozen=True)
class ConsortCounts:
    """The numbers in a CONSORT flow diagram."""

    assessed: int
    exclusions: tuple[tuple[str, int], ...]
    randomised: int
    treatment: int
    control: int
    engaged: int | None
    analysed_treatment: int
    analysed_control: int


def consort_counts(funnel: pd.DataFrame, frame: pd.DataFrame) -> ConsortCounts:
    """CONSORT numbers from a screening funnel and the outcome frame.

    Parameters
    ----------
    funnel : pandas.DataFrame
        :attr:`fdkit.eligibility.Screening.funnel` (or the ``funnel.csv`` written with it).
    frame : pandas.DataFrame
        The outcome frame (:func:`fdkit.outcomes.build_frame`); everyone in it is analysed,
        since police records follow every randomised person.
    """
    steps = funnel.iloc[1:]
    exclusions = tuple(
        (str(row.reason) or str(row.description), int(row.excluded))
        for row in steps.itertuples()
        if int(row.excluded) > 0
    )
    treated = frame["arm"] == "treatment"
    engaged = int(frame.loc[treated, "engaged"].sum()) if "engaged" in frame else None
    return ConsortCounts(
        assessed=int(funnel["remaining"].iloc[0]),
        exclusions=exclusions,
        randomised=len(frame),
        treatment=int(treated.sum()),
        control=int((~treated).sum()),
        engaged=engaged,
        analysed_treatment=int(treated.sum()),
        analysed_control=int((~treated).sum()),
    )


def plot_consort(counts: ConsortCounts, follow_up_months: int = 12):
    """Draw the CONSORT flow diagram with matplotlib (no graphviz needed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6.4))
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)

    def box(x, y, text, width=3.6):
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=9,
            wrap=True,
            bbox=dict(boxstyle="round,pad=0.5", facecolor="white", edgecolor="0.3"),
        )

    def arrow(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="0.3"))

    box(5, 9.4, f"Assessed for eligibility\n(people in the records)\nn = {counts.assessed:,}")
    excluded = "\n".join(f"{reason}: {n:,}" for reason, n in counts.exclusions)
    total = sum(n for _, n in counts.exclusions)
    box(7.9, 7.55, f"Excluded (n = {total:,})\n{excluded}")
    arrow(5, 8.85, 5, 6.35)
    arrow(5, 7.55, 5.9, 7.55)
    box(5, 6.0, f"Randomised\nn = {counts.randomised:,}")
    arrow(4.6, 5.7, 2.6, 4.75)
    arrow(5.4, 5.7, 7.4, 4.75)
    engaged = (
        ""
        if counts.engaged is None
        else (f"\nengaged: {counts.engaged:,}\ndid not engage: {counts.treatment - counts.engaged:,}")
    )
    box(2.5, 4.2, f"Allocated to the intervention\nn = {counts.treatment:,}{engaged}")
    box(7.5, 4.2, f"Allocated to usual services\nn = {counts.control:,}")
    for x, n in ((2.5, counts.analysed_treatment), (7.5, counts.analysed_control)):
        arrow(x, 3.4 if x == 2.5 and counts.engaged is not None else 3.7, x, 2.35)
        box(x, 1.9, f"Followed up {follow_up_months} months\nin police records: {n:,}")
        arrow(x, 1.5, x, 0.85)
        box(x, 0.5, f"Analysed (intention to treat)\nn = {n:,}")
    ax.set_title("CONSORT flow", loc="left")
    return fig


# -------------------------------------------------------------------- forest plot


def plot_forest(results: pd.DataFrame, method: str = "ratio_of_means", ax=None):
    """A forest plot of % reductions with intervals, on the log-ratio scale.

    Each outcome is a group of rows, one per subgroup; the axis is the ratio of treated to
    control (log scale), labelled as % reductions, so a halving and a doubling are equally far
    from "no effect". Intervals reaching 100% (a ratio of 0) are cut at the plot's edge.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    rows = results[results["method"] == method]
    labels = {o.name: o.label for o in outcome_definitions.OUTCOMES}
    order = [o for o in labels if o in set(rows["outcome"])]
    subgroups = list(dict.fromkeys(rows["subgroup"]))
    height = len(order) * (len(subgroups) + 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.28 * height + 1.2))
    floor, ceiling = 0.02, 5.0
    y, ticks, names = height, [], []
    for outcome in order:
        ticks.append(y)
        names.append(labels[outcome])
        for offset, (subgroup, marker) in enumerate(zip(subgroups, "osD^v")):
            row = rows[(rows["outcome"] == outcome) & (rows["subgroup"] == subgroup)]
            if row.empty:
                continue
            row = row.iloc[0]
            ratio = 1 - row["pct_reduction"] / 100
            low, high = 1 - row["ci_high"] / 100, 1 - row["ci_low"] / 100
            position = y - 0.8 * (offset + 1) / (len(subgroups) + 1) * 1.2
            ends = np.clip(np.nan_to_num([low, high], nan=ceiling, neginf=floor, posinf=ceiling), floor, ceiling)
            ax.plot(ends, [position, position], color=f"C{offset}", linewidth=1.5)
            if np.isfinite(ratio) and ratio > 0:
                ax.plot(
                    ratio,
                    position,
                    marker=marker,
                    color=f"C{offset}",
                    linestyle="none",
                    label=subgroup if outcome == order[0] else None,
                )
        y -= len(subgroups) + 1
    ax.axvline(1, color="0.4", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(floor, ceiling)
    marks = [0.05, 0.1, 0.25, 0.5, 1, 2, 4]
    ax.set_xticks(marks, [f"{100 * (1 - m):.0f}%" for m in marks])
    ax.set_xlabel("% reduction in the treated arm (log-ratio scale; left of the line = fewer)")
    ax.set_yticks(ticks, names)
    ax.tick_params(axis="y", length=0)
    ax.legend(title="subgroup", fontsize="small", loc="lower right")
    ax.set_title(f"Effects by outcome ({method.replace('_', ' ')}, 95% intervals)")
    return ax


# ------------------------------------------------------------------ environment


def package_versions() -> pd.DataFrame:
    """The versions of Python and the main packages, for the report's record."""
    rows = [("python", sys.version.split()[0])]
    for name in PACKAGES:
        try:
            rows.append((name, version(name)))
        except PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"])


# -------------------------------------------------------------- rendering to HTML


def report_notebook() -> Path:
    """Where ``09_trial_report.ipynb`` is: the kit's ``notebooks`` folder beside the package."""
    path = Path(__file__).resolve().parents[1] / "notebooks" / REPORT_NOTEBOOK
    if not path.is_file():
        raise FileNotFoundError(
            f"the report notebook {REPORT_NOTEBOOK} was not found at {path}; fdkit report runs from a "
            "checkout of the kit (see the README's quick start)"
        )
    return path


def render_report(
    parameters: dict,
    out: str | Path,
    *,
    notebook: str | Path | None = None,
    timeout: int = 600,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Execute the report notebook with ``parameters`` and write it as self-contained HTML.

    Parameters
    ----------
    parameters : dict
        Values for the notebook's ``parameters`` cell (``records``, ``allocation``,
        ``follow_up_months``, ``harm_weights``, ``seed``); paths are made absolute.
    out : str or pathlib.Path
        The HTML file to write.
    notebook : path, optional
        The report notebook (``notebooks/09_trial_report.ipynb`` by default).
    progress : callable, optional
        Called as ``progress(cells_done, cells)`` after each cell runs.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    source = Path(notebook) if notebook is not None else report_notebook()
    document = load_notebook_node(str(source))  # papermill's reader adds the metadata it relies on
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in document.cells):
        raise ValueError(f"{source.name} has no cell tagged 'parameters'; its parameters would be ignored")
    values = {
        key: (
            str(Path(value).resolve())
            if key in ("records", "allocation", "harm_weights", "funnel") and value
            else value
        )
        for key, value in parameters.items()
    }
    document = parameterize_notebook(document, values)
    document.cells = [
        cell
        for cell in document.cells  # the lesson's own cells are not part of the report
        if not {"lesson", "solution"} & set(cell.get("metadata", {}).get("tags", []))
    ]

    def on_cell_executed(cell_index, **_):
        if progress is not None:
            progress(cell_index + 1, len(document.cells))

    with tempfile.TemporaryDirectory() as folder:
        execute_notebook(document, Path(folder), timeout=timeout, on_cell_executed=on_cell_executed)
    Path(out).write_text(notebook_to_html(document), encoding="utf-8")
    return Path(out)


def execute_notebook(document, cwd: str | Path, *, timeout: int = 600, on_cell_executed=None) -> None:
    """Run a notebook in place, in this Python (not whatever a 'python3' kernelspec points at).

    Parameters
    ----------
    document : nbformat.NotebookNode
        Executed in place: its outputs are filled in.
    cwd : path
        The kernel's working folder (notebooks find their data relative to it).
    on_cell_executed : callable, optional
        nbclient's hook, called after each cell (with ``cell``, ``cell_index`` and
        ``execute_reply`` keywords); the command line uses it to show progress.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as kernels:
        spec = Path(kernels) / "fdkit-current"
        spec.mkdir()
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "fdkit (this Python)",
                    "language": "python",
                }
            )
        )
        manager = KernelManager(
            kernel_name="fdkit-current", kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels])
        )
        NotebookClient(
            document,
            km=manager,
            timeout=timeout,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_executed=on_cell_executed,
        ).execute()


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
h1, h2, h3 { color: #1b4f4c; } table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: right; }
th { background: #f3f6f6; } img { max-width: 100%; } pre { background: #f7f7f7; padding: 0.5rem;
       overflow-x: auto; font-size: 0.8rem; } .jp-InputArea, .input_area { display: none; }
"""


def notebook_to_html(document) -> str:
    """An executed notebook as one self-contained HTML page without its code.

    Images are embedded as base64 data; any script or external link nbconvert adds is
    removed, so the page needs nothing but a browser.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(document)
    body = re.sub(r"<script\b.*?</script>", "", body, flags=re.S | re.I)
    body = re.sub(r"<link\b[^>]*>", "", body, flags=re.I)
    title = next(
        (
            line[2:].strip()
            for cell in document.cells
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("# ")
        ),
        "Trial report",
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
