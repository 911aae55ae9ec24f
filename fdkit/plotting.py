"""One look for every figure in the kit: call :func:`use_theme` once per notebook.

Text that comes from data or from the user (a stratum, an exclusion reason, a label passed
in) is drawn through :func:`literal`, so that matplotlib shows it exactly as written instead
of reading ``$...$`` in it as mathematics.
"""

from __future__ import annotations

from ._text import shorten

__all__ = ["ARM_COLOURS", "FIGURE_TEXT", "PALETTE", "literal", "use_theme", "shuffle_histogram", "before_and_after"]

#: Colours for the two arms, used wherever treatment and control are compared.
ARM_COLOURS = {"treatment": "#1b7f79", "control": "#9a9a9a"}
#: A colour-blind-safe cycle for everything else (Okabe-Ito).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
#: The longest label from the data a figure shows whole; a longer one is shortened (its table has it all).
FIGURE_TEXT = 120


def literal(text: object, limit: int | None = FIGURE_TEXT) -> str:
    r"""Text that matplotlib will draw exactly as written.

    matplotlib reads text holding two unescaped dollar signs as mathematics (mathtext), so a
    stratum or exclusion reason such as ``$\frac{a}$`` is either drawn as a formula or stops
    the figure with a parse error. Escaping every ``$`` as ``\$`` turns mathtext off for the
    whole text; matplotlib then draws each ``\$`` as ``$``, and backslashes, braces, ``%``
    and ``_`` are plain characters outside mathtext. Unless ``limit`` is None, the text is
    first shortened to about ``limit`` characters (:func:`fdkit._text.shorten`).

    Parameters
    ----------
    text : object
        Drawn as ``str(text)``.
    limit : int or None
        Shorten longer text to about this many characters (:data:`FIGURE_TEXT` by default).

    Examples
    --------
    >>> literal("cost $5{_}%, $10")
    'cost \\$5{_}%, \\$10'
    """
    shown = str(text) if limit is None else shorten(text, limit)
    return shown.replace("$", r"\$")


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
    ax.set(xlabel=literal(xlabel), ylabel="number of shuffles", title="Differences chance alone produces")
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
        ax.plot([0, 1], values.to_numpy()[:2], marker="o", linewidth=2, color=ARM_COLOURS.get(arm), label=literal(arm))
    ax.set_xticks([0, 1], [literal(column) for column in table.columns[:2]])  # a tick for each year
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylim(0, 1.1 * float(table.iloc[:, :2].to_numpy().max()))  # from 0: the fall is not exaggerated
    ax.set(ylabel=literal(ylabel), title=literal(title))
    ax.legend(frameon=False)
    return ax


def _axes(ax, figsize):
    """``ax``, or the axes of a new figure of ``figsize`` inches when it is None."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax
