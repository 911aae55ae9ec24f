"""One look for every figure in the kit: call :func:`use_theme` once per notebook."""

from __future__ import annotations

__all__ = ["ARM_COLOURS", "PALETTE", "use_theme", "shuffle_histogram", "before_and_after"]

#: Colours for the two arms, used wherever treatment and control are compared.
ARM_COLOURS = {"treatment": "#1b7f79", "control": "#9a9a9a"}
#: A colour-blind-safe cycle for everything else (Okabe-Ito).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_theme() -> None:
    """Apply the kit's plotting theme (seaborn's whitegrid, a colour-blind-safe palette).

    Figures are drawn at a size that reads well in JupyterLab and in an HTML report.
    """
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette=PALETTE, font_scale=0.95)
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "axes.titleweight": "bold",
            "axes.titlelocation": "left",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "savefig.bbox": "tight",
        }
    )


def shuffle_histogram(shuffles, *, xlabel: str, ax=None):
    """Histogram of the differences that shuffled labels give, with the observed one marked.

    Parameters
    ----------
    shuffles : fdkit.analysis.ShuffledDifferences
        From :func:`fdkit.analysis.shuffled_differences`.
    xlabel : str
        What the difference is (outcome and unit).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, figsize=(7.5, 3.6))
    ax.hist(shuffles.shuffled, bins=40, color=PALETTE[0], alpha=0.8, label=f"{len(shuffles.shuffled):,} shuffles")
    ax.axvline(shuffles.observed, color=PALETTE[3], linewidth=2.5, label="observed difference")
    ax.axvline(-shuffles.observed, color=PALETTE[3], linewidth=1.5, linestyle=":", label="as far on the other side")
    ax.set(xlabel=xlabel, ylabel="number of shuffles", title="Differences chance alone produces")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def before_and_after(table, *, ylabel: str, title: str, ax=None):
    """Each arm's mean before and after randomisation, on an axis that starts at 0.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per arm (index: ``treatment``, ``control``), two columns in time order: the
        first is the year before, the second the year after.
    ylabel, title : str
        Axis label and title.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, figsize=(6.5, 3.8))
    for arm, values in table.iterrows():
        ax.plot([0, 1], values.to_numpy()[:2], marker="o", linewidth=2, color=ARM_COLOURS.get(arm), label=arm)
    ax.set_xticks([0, 1], list(table.columns[:2]))  # a tick for each year, "year after" included
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylim(0, 1.1 * float(table.iloc[:, :2].to_numpy().max()))  # from 0: the fall is not exaggerated
    ax.set(ylabel=ylabel, title=title)
    ax.legend(frameon=False)
    return ax


def _axes(ax, figsize):
    """``ax``, or the axes of a new figure of ``figsize`` inches when it is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax
