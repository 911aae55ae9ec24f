"""One look for every figure in the kit: call :func:`use_theme` once per notebook."""

from __future__ import annotations

__all__ = [
    "ARM_COLOURS",
    "PALETTE",
    "use_theme",
]

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
