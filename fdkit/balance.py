"""Baseline balance: did randomisation give two arms that look alike before treatment?

Randomisation makes the arms alike *on average*; any one allocation can still, by chance,
put more prolific offenders in one arm. The balance table shows each baseline
characteristic by arm with its **standardised mean difference** (SMD): the difference in
means divided by the pooled standard deviation,

.. math:: d = \\frac{\\bar x_T - \\bar x_C}{\\sqrt{(s_T^2 + s_C^2)/2}}

(for a yes/no characteristic ``s^2 = p(1-p)``). Unlike a p-value it does not grow with the
sample size; ``|d| < 0.1`` is the usual mark of good balance. In a randomised trial
imbalance is chance by definition, so the table is a description, not a test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import outcomes
from .eligibility import age_on
from .plotting import literal
from .randomise import Allocation
from .records import Records, placeholder_births

__all__ = [
    "CHARACTERISTICS",
    "balance_table",
    "baseline_frame",
    "plot_balance",
    "smd",
]

#: Baseline characteristics: column of the frame, label, and whether it is yes/no.
CHARACTERISTICS = (
    ("age", "age (years)", False),
    ("male", "male", True),
    ("harm_suspect_baseline", "crime harm as a suspect, prior 24 months (days)", False),
    ("knife_suspect_baseline", "knife offences as a suspect, prior 24 months", False),
    ("violence_suspect_baseline", "violent crimes as a suspect, prior 24 months", False),
    ("violence_sexual_suspect_baseline", "violent or sexual crimes as a suspect, prior 24 months", False),
    ("other_npi_suspect_baseline", "other non-police-initiated crimes as a suspect, prior 24 months", False),
    ("violence_victim_baseline", "violent crimes as a victim, prior 24 months", False),
    ("knife_victim_baseline", "knife crimes as a victim, prior 24 months", False),
)


def baseline_frame(records: Records, allocation: Allocation, weights: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per randomised person with their baseline characteristics (no follow-up needed)."""
    frame = outcomes.build_frame(records, allocation, weights=weights, allow_incomplete=True)
    persons = records.persons.set_index("person_id")
    dob = frame["person_id"].map(persons["date_of_birth"])
    frame["age"] = age_on(dob, frame["randomised_on"])
    if (unknown := placeholder_births(dob)).any():  # a placeholder date of birth: age unknown, not 123
        frame["age"] = frame["age"].astype("float64").mask(unknown)
    frame["male"] = frame["person_id"].map(persons["sex"]).eq("M").astype(float)
    columns = ["person_id", "arm", "stratum"] + [name for name, _, _ in CHARACTERISTICS]
    return frame[columns]


def smd(treated: pd.Series, control: pd.Series, binary: bool = False) -> float:
    """Standardised mean difference of treated minus control.

    When neither arm varies the difference is 0 if the means agree and ±inf if not.
    """
    mean_t, mean_c = treated.mean(), control.mean()
    if binary:
        var_t, var_c = mean_t * (1 - mean_t), mean_c * (1 - mean_c)
    else:
        var_t, var_c = treated.var(ddof=1), control.var(ddof=1)
    pooled = np.sqrt((var_t + var_c) / 2)
    if pooled > 0:
        return float((mean_t - mean_c) / pooled)
    return 0.0 if mean_t == mean_c else float(np.sign(mean_t - mean_c) * np.inf)


def balance_table(
    records: Records,
    allocation: Allocation,
    *,
    by_stratum: bool = False,
    weights: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Baseline characteristics by arm, with standardised mean differences.

    Parameters
    ----------
    records : fdkit.Records
    allocation : fdkit.randomise.Allocation
    by_stratum : bool, default False
        Also give the table within each stratum.
    weights : pandas.DataFrame, optional
        Harm weights for prior harm (the illustrative table by default).

    Returns
    -------
    pandas.DataFrame
        ``subgroup``, ``characteristic``, ``mean_treatment``, ``mean_control``,
        ``sd_treatment``, ``sd_control`` (missing for yes/no characteristics), ``smd``,
        ``n_treatment`` and ``n_control``.
    """
    frame = baseline_frame(records, allocation, weights)
    groups = [("all", frame)]
    if by_stratum:
        groups += [(stratum, part) for stratum, part in frame.groupby("stratum", sort=True)]
    rows = []
    for subgroup, part in groups:
        treated, control = part[part["arm"] == "treatment"], part[part["arm"] == "control"]
        for column, label, binary in CHARACTERISTICS:
            rows.append(
                {
                    "subgroup": subgroup,
                    "characteristic": label,
                    "mean_treatment": treated[column].mean(),
                    "mean_control": control[column].mean(),
                    "sd_treatment": np.nan if binary else treated[column].std(ddof=1),
                    "sd_control": np.nan if binary else control[column].std(ddof=1),
                    "smd": smd(treated[column], control[column], binary),
                    "n_treatment": len(treated),
                    "n_control": len(control),
                }
            )
    return pd.DataFrame(rows)


def plot_balance(table: pd.DataFrame, ax=None, threshold: float = 0.1):
    """A "Love plot": each characteristic's SMD as a dot, with the ±threshold band shaded.

    Characteristics and subgroups (strata from the data) are drawn literally
    (:func:`fdkit.plotting.literal`).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * table["characteristic"].nunique() + 1.2))
    labels = list(dict.fromkeys(table["characteristic"]))
    positions = {label: i for i, label in enumerate(reversed(labels))}
    ax.axvspan(-threshold, threshold, color="0.92", zorder=0)
    ax.axvline(0, color="0.5", linewidth=0.8)
    for marker, (subgroup, part) in zip("osD^v", table.groupby("subgroup", sort=False)):
        ax.scatter(part["smd"], part["characteristic"].map(positions), marker=marker, label=literal(subgroup), zorder=3)
    ax.set_yticks(range(len(labels)), [literal(label) for label in reversed(labels)])
    ax.set_xlabel("standardised mean difference (treatment − control)")
    ax.set_title("Baseline balance")
    if table["subgroup"].nunique() > 1:
        ax.legend(title="subgroup", loc="lower right", fontsize="small")
    limit = max(0.5, float(table["smd"].abs().max()) * 1.1)
    ax.set_xlim(-limit, limit)
    return ax
