"""Effects of the intervention: estimates, confidence intervals and p-values.

Every function here takes the per-person outcome frame of :func:`fdkit.outcomes.build_frame`
(one row per randomised person, ``arm``, ``stratum``, ``wave``, ``<outcome>_baseline``,
``<outcome>``) and reports intention-to-treat effects as a **% reduction**,
``100 * (1 - treated/control)``: the way Cambridge-tradition police trials report them.

**One interval per estimate.** Every interval printed beside a p-value is the set of effects
that same test does not reject (test inversion), so an interval excludes 0 exactly when
p < alpha (up to the Monte Carlo error of a randomisation p-value, reported as ``p_mcse``).
Every bound is a point of a fixed grid (0.1 percentage point on the % scale, see
:func:`invert_on_grid`), so results are bit-identical on every machine.

Methods (each says what it assumes; :data:`REGISTRY` lists them for the table, the design
diagnosis and the command line alike):

``ratio_of_means`` (primary)
    The ratio of the arms' follow-up means. The p-value is a **randomisation test of the
    ratio** (:func:`randomisation_test`): the design is re-drawn many times within wave x
    stratum (the declared assignment of :class:`fdkit.randomise.AssignmentDesign`) and the
    observed robust score statistic of the ratio is compared with the statistics those re-draws
    give; at no effect this is exact, whatever the outcome's distribution. The interval inverts
    it: the ratios ``theta`` the same test does not reject. The stratified percentile bootstrap
    stays available as ``interval="bootstrap"`` (it under-covers).

**Equal-tailed p-values.** Every randomisation p-value with a direction is twice the smaller
one-sided p-value, so a 5% test spends 2.5% on each direction and "a significant reduction"
is claimed at the 2.5% rate its reader assumes (the earlier two-sided ``|T|`` rule spent about
4% of its 5% on spurious reductions of crime harm).
``welch_t`` (by name only)
    Welch's t-test; its interval is Fieller's for the ratio of means (the ratios ``theta``
    for which Welch's test of ``mean_t - theta * mean_c = 0`` does not reject), so it never
    passes 100%. Relies on means being near-normal, which crime harm at ~150 people is not:
    in the kit's calibration its harm interval covers a true 40% reduction only 92.6% of the
    time, so it is not in the default table (the textbook test, kept for comparison).
``mann_whitney``
    The Mann-Whitney U test: are treated outcomes stochastically smaller? It tests a shift in
    distribution, not the ratio of means, so it gives no % estimate and no interval here.
``poisson_robust``
    A Poisson quasi-likelihood model, ``outcome ~ arm + stratum + log(1 + baseline)``; the
    % reduction is ``100 * (1 - exp(b_arm))``, adjusted for stratum and baseline. Its p-value
    is a randomisation test of the robust score statistic and its interval inverts it.
``negative_binomial`` (by name only)
    NB2 regression with Wald inference; counts only. Not in the default table: its Wald test
    over-rejects at this size (7-7.6% in the kit's calibration) and the fit breaks down at the
    Poisson boundary, where it falls back to the Poisson estimate with a note.

Also: :func:`interaction_test` (does the effect differ by age band? Ding, Feller & Miratrix's
plug-in randomisation test, calibrated in the kit's simulations; their confidence-set version,
valid by construction but conservative, by name; and a profile score version that imputes no
outcome, :func:`common_ratio_test`, the test across sites), :func:`cace` (the effect among those
who engaged, with a randomisation interval: significant exactly when the intention-to-treat test
is) and multiplicity adjustment in :func:`results_table`.

Randomness: every resampling function takes a ``seed``; each outcome, subgroup and method
draws from its own stream derived from it, and rows are sorted by ``person_id`` first, so
results depend neither on row order nor on which other analyses were run.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import outcomes as outcome_definitions
from ._blas import one_blas_thread
from .randomise import AssignmentDesign

__all__ = [
    "DEFAULT_METHODS",
    "CommonRatioTest",
    "Effect",
    "GRID_RESOLUTION",
    "METHODS",
    "PERMUTATIONS",
    "Method",
    "mann_whitney_p",
    "REGISTRY",
    "RESULT_COLUMNS",
    "RandomisationTest",
    "STATISTICS",
    "adjust_p_values",
    "assignment_design",
    "bootstrap_counts",
    "cace",
    "common_ratio_test",
    "interaction_test",
    "invert_on_grid",
    "mann_whitney",
    "negative_binomial",
    "p_value_mcse",
    "pct",
    "permutation_assignments",
    "poisson_fit",
    "poisson_robust",
    "randomisation_interval",
    "randomisation_test",
    "ratio_of_means",
    "ratio_of_means_core",
    "results_table",
    "score_test",
    "ShuffledDifferences",
    "shuffled_differences",
    "stratified_ratio",
    "stream",
    "subgroup_frame",
    "welch_t",
]

RESULT_COLUMNS = (
    "outcome",
    "subgroup",
    "method",
    "n_treated",
    "n_control",
    "mean_treated",
    "mean_control",
    "pct_reduction",
    "ci_low",
    "ci_high",
    "interval",
    "p_value",
    "p_mcse",
    "p_holm",
    "p_bh",
)

#: Interval bounds are multiples of this many percentage points (see :func:`invert_on_grid`).
GRID_RESOLUTION = 0.1
_GRID_PER_POINT = 10  # grid steps per percentage point
_GRID_TOP = 999  # 99.9%: the largest reduction on the grid (a ratio of 0.001)
_GRID_BOTTOM = -999_000  # -99,900%: a ratio of 1,000, beyond which a side is called unbounded


@dataclass(frozen=True)
class Effect:
    """One estimate: an outcome, a subgroup and a method (like scipy's test results).

    ``pct_reduction`` and its interval are in percent (positive = fewer in the treated arm);
    ``ci_low``/``ci_high`` are missing where a method gives no interval, and infinite where a
    side is unbounded. ``interval`` names how the interval was made; ``p_mcse`` is the Monte
    Carlo standard error of a randomisation p-value (0 for analytic p-values). ``note`` says
    why a figure is missing or unusual. ``null_distribution`` holds the test statistic under
    every re-draw of the design (randomisation methods), and :meth:`confidence_interval`
    inverts the same test at another level.
    """

    outcome: str
    subgroup: str
    method: str
    n_treated: int
    n_control: int
    mean_treated: float
    mean_control: float
    pct_reduction: float
    ci_low: float = np.nan
    ci_high: float = np.nan
    p_value: float = np.nan
    note: str = ""
    interval: str = ""
    p_mcse: float = np.nan
    statistic: float = field(default=np.nan, repr=False)  # a BLAS product: kept out of printed output
    null_distribution: np.ndarray | None = field(default=None, repr=False, compare=False)
    _p_at: Callable[[int], float] | None = field(default=None, repr=False, compare=False)

    @property
    def pvalue(self) -> float:
        """The p-value, by scipy's name."""
        return self.p_value

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """The % reductions the same test does not reject at ``1 - level``: ``(low, high)``."""
        p_at = self._p_at
        if p_at is None:
            raise ValueError(f"{self.method} gives no interval that can be recomputed at another level")
        alpha = 1 - level
        return _pct_bounds(invert_on_grid(lambda k: p_at(k) < alpha, _grid_index(self.pct_reduction)))[:2]

    def row(self) -> dict:
        """The table's columns (:data:`RESULT_COLUMNS` without the adjusted p-values, plus ``note``)."""
        return {name: getattr(self, name) for name in RESULT_COLUMNS + ("note",) if name not in ("p_holm", "p_bh")}

    def to_frame(self) -> pd.DataFrame:
        """A one-row tidy DataFrame."""
        return pd.DataFrame([self.row()])

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.3g}")


# ------------------------------------------------------------------------ helpers


def subgroup_frame(frame: pd.DataFrame, subgroup: str = "all") -> pd.DataFrame:
    """The rows of a subgroup (``"all"`` or a stratum), sorted by ``person_id``."""
    if subgroup != "all":
        if subgroup not in set(frame["stratum"]):
            raise ValueError(f"no subgroup {subgroup!r}; the strata are {', '.join(sorted(set(frame['stratum'])))}")
        frame = frame[frame["stratum"] == subgroup]
    if set(frame["arm"]) != {"treatment", "control"}:
        raise ValueError(f"subgroup {subgroup!r} does not have people in both arms")
    if frame["person_id"].is_monotonic_increasing:
        return frame.reset_index(drop=True)
    return frame.sort_values("person_id", ignore_index=True)


def _arrays(frame: pd.DataFrame, outcome: str):
    y = frame[outcome].to_numpy(dtype=float)
    treated = (frame["arm"] == "treatment").to_numpy()
    strata = pd.factorize(frame["stratum"], sort=True)[0]
    return y, treated, strata


def assignment_design(frame: pd.DataFrame) -> AssignmentDesign:
    """The declared design the frame's assignment was drawn from: wave x stratum blocks.

    Each block keeps its observed treated count. Frames without a ``wave`` column (simulated
    trials, hand-made examples) are treated as one wave.
    """
    treated = (frame["arm"] == "treatment").to_numpy()
    waves = frame["wave"].to_numpy() if "wave" in frame and frame["wave"].nunique() > 1 else None
    return AssignmentDesign.from_assignment(treated, frame["stratum"].astype(str).to_numpy(), waves)


def pct(ratio):
    """% reduction from a ratio of treated to control."""
    return 100.0 * (1.0 - np.asarray(ratio, dtype=float))


def _means(y, treated):
    return float(y[treated].mean()), float(y[~treated].mean())


def _ratio(mean_treated, mean_control):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(mean_treated, mean_control)


def stream(seed: int, *names: str) -> np.random.Generator:
    """A random stream for one named analysis, independent of every other."""
    key = [int(seed)] + [int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big") for n in names]
    return np.random.default_rng(np.random.SeedSequence(key))


def p_value_mcse(p_value, redraws: int, *, equal_tailed: bool = True):
    """Monte Carlo standard error of a randomisation p-value from ``redraws`` re-draws.

    An equal-tailed p-value is twice a one-sided share ``p / 2``, so its SE is
    ``2 sqrt((p/2)(1 - p/2) / B) = sqrt(p (2 - p) / B)``: with B = 4,000 (the kit's default) it is 0.0049 at p = 0.05.
    A one-sided p-value (``equal_tailed=False``, e.g. a chi-square-type statistic) has
    ``sqrt(p (1 - p) / B)``.
    """
    p_value = np.asarray(p_value, dtype=float)
    if equal_tailed:
        return np.sqrt(p_value * np.maximum(2 - p_value, 0.0) / redraws)
    return np.sqrt(p_value * (1 - p_value) / redraws)


# ------------------------------------------------------------ the grid of effects


def _theta(k: int) -> float:
    """The ratio at grid point ``k`` (``k / 10`` % reduction), exactly as a decimal would give it."""
    return (1000 - k) / 1000


def _grid_index(reduction: float) -> int:
    return int(np.clip(np.round(reduction * _GRID_PER_POINT), _GRID_BOTTOM, _GRID_TOP))


class _Breakdown(ArithmeticError):
    """A test could not be computed at a point (e.g. a model fit that does not converge)."""


def invert_on_grid(rejected: Callable[[int], bool], estimate: int, step: int = 16) -> tuple[float, float, str]:
    """The edges of the set of grid points a test does not reject.

    The grid is the % reduction in steps of :data:`GRID_RESOLUTION` (point ``k`` is a
    ``k / 10`` % reduction), from -99,900% (a ratio of 1,000) to 99.9%. Each edge is found by
    doubling out from the estimate and then bisecting on whole grid steps, so the bounds are
    exact grid points decided by a finite number of accept/reject decisions: bit-identical on
    every CPU, BLAS kernel and thread count. The no-effect point 0 is tested first, so the
    interval excludes 0 exactly when the test rejects no effect.

    ``step`` is the first stride (in grid steps) of the doubling: a guess at the interval's
    half-width saves evaluations; it never changes the answer for a monotone test.

    Returns
    -------
    (low, high, note) : the grid indices of the lowest and highest non-rejected points
        (``-inf`` when the lower side reaches the grid's end or the test breaks down there;
        ``+inf`` likewise above), and a note saying which side, if any, is unbounded.
    """
    try:
        null_rejected = rejected(0)
    except _Breakdown:
        null_rejected = False
    notes = []

    def edge(inside: int, direction: int, known_outside: int | None) -> float:
        limit = _GRID_TOP if direction > 0 else _GRID_BOTTOM
        outside, stride = known_outside, max(int(step), 1)
        try:
            while outside is None or abs(outside - inside) > 1:
                if outside is None:
                    probe = inside + direction * stride
                    if (probe - limit) * direction >= 0:
                        probe = limit
                    stride *= 2
                else:
                    probe = (inside + outside) // 2
                if rejected(probe):
                    outside = probe
                else:
                    inside = probe
                    if outside is None and probe == limit:
                        return direction * np.inf
        except _Breakdown:
            notes.append(f"the test breaks down {'above' if direction > 0 else 'below'} {inside / 10:g}%")
            return direction * np.inf
        return inside

    if null_rejected and estimate > 0:
        low, high = edge(estimate, -1, 0), edge(estimate, +1, None)
    elif null_rejected and estimate < 0:
        low, high = edge(estimate, -1, None), edge(estimate, +1, 0)
    else:
        low, high = edge(min(estimate, 0), -1, None), edge(max(estimate, 0), +1, None)
    if high == np.inf:
        notes.append("the interval reaches a 100% reduction")
    if low == -np.inf and not any("below" in n for n in notes):
        notes.append("the interval has no lower limit: any increase is consistent with the data")
    return low, high, "; ".join(notes)


def _pct_bounds(grid: tuple[float, float, str]) -> tuple[float, float, str]:
    """Grid indices to % bounds: ``k / 10``; the top side's unbounded edge is a 100% reduction."""
    low, high, note = grid
    return (
        -np.inf if low == -np.inf else low / _GRID_PER_POINT,
        100.0 if high == np.inf else high / _GRID_PER_POINT,
        note,
    )


# ------------------------------------------------ the shuffle, by hand (for teaching)


@dataclass(frozen=True)
class ShuffledDifferences:
    """The observed difference in means beside the differences that shuffled labels give.

    Attributes
    ----------
    observed : float
        Treated mean minus control mean, as randomised.
    shuffled : numpy.ndarray
        The same difference after each re-shuffle of the labels within strata.
    p_value : float
        Equal-tailed, as every randomisation p-value of the kit: twice the smaller of
        ``(1 + number of shuffled <= observed) / (1 + shuffles)`` and the same with ``>=``.
    """

    observed: float
    shuffled: np.ndarray
    p_value: float


def shuffled_differences(
    frame: pd.DataFrame, outcome: str, *, shuffles: int = 1000, seed: int = 0
) -> ShuffledDifferences:
    """Shuffle the treatment labels within each stratum, ``shuffles`` times, and recompute the difference.

    The randomisation test written out as a loop a learner can read: if the intervention did
    nothing, each person's outcome would have been the same whichever arm the draw put them in,
    so re-drawing the labels the way the trial drew them (same number treated in each stratum)
    shows the differences chance alone produces. The kit's own test
    (:func:`ratio_of_means`) does the same with a studentised score statistic, within wave x stratum.

    Parameters
    ----------
    frame : pandas.DataFrame
        The outcome frame of :func:`fdkit.outcomes.build_frame` (``person_id``, ``arm``, ``stratum``).
    outcome : str
        The outcome column.
    shuffles : int
        How many times to re-draw the labels.
    seed : int
        Seed of the random stream; rows are sorted by ``person_id`` first, so row order does not matter.

    Returns
    -------
    ShuffledDifferences
    """
    frame = subgroup_frame(frame)
    y, treated, strata = _arrays(frame, outcome)
    rng = stream(seed, "shuffle", outcome)
    observed = y[treated].mean() - y[~treated].mean()
    shuffled = np.empty(shuffles)
    for draw in range(shuffles):
        labels = treated.copy()
        for stratum in np.unique(strata):
            members = np.flatnonzero(strata == stratum)
            labels[members] = rng.permutation(treated[members])
        shuffled[draw] = y[labels].mean() - y[~labels].mean()
    below, above = np.sum(shuffled <= observed + 1e-12), np.sum(shuffled >= observed - 1e-12)
    p_value = min(1.0, 2 * (1 + min(below, above)) / (1 + shuffles))
    return ShuffledDifferences(float(observed), shuffled, float(p_value))


# ------------------------------------------------ the vectorised ratio-of-means core


def permutation_assignments(
    treated: np.ndarray, strata: np.ndarray, permutations: int, rng, waves: np.ndarray | None = None
) -> np.ndarray:
    """Re-draws of the design: ``permutations`` x n booleans, each wave x stratum keeping its treated count.

    A thin wrapper over :meth:`fdkit.randomise.AssignmentDesign.permutation_matrix`.
    """
    return AssignmentDesign.from_assignment(treated, strata, waves).permutation_matrix(permutations, rng)


def bootstrap_counts(treated: np.ndarray, strata: np.ndarray, resamples: int, rng) -> np.ndarray:
    """Stratified bootstrap as counts: how often each person appears in each resample.

    People are resampled with replacement within each arm-and-stratum cell, so every
    resample keeps the design's cell sizes.
    """
    counts = np.zeros((resamples, treated.size), dtype=np.int32)
    for cell in np.unique(strata * 2 + treated):
        members = np.flatnonzero(strata * 2 + treated == cell)
        picks = rng.integers(0, members.size, size=(resamples, members.size))
        np.add.at(counts, (np.arange(resamples)[:, None], members[picks]), 1)
    return counts


def _expected_treated_sum(y: np.ndarray, treated: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """The treated sum's expectation over re-draws of the design, per row of ``y``."""
    expected = np.zeros(y.shape[0])
    for block in np.unique(blocks):
        members = blocks == block
        expected += y[:, members].mean(axis=1) * treated[members].sum()
    return expected


#: Re-draws of the design for a randomisation test unless told otherwise (analyse, the report, plans,
#: pooling): an equal-tailed p-value's Monte Carlo SE is then at most 0.005 near p = 0.05.
PERMUTATIONS = 4000

#: The primary test's statistics (:func:`randomisation_test`); the first is the default.
STATISTICS = ("score", "studentised", "difference")


@dataclass(frozen=True)
class RandomisationTest:
    """Randomisation p-values of one hypothesis for many outcome vectors (rows) at once.

    Attributes
    ----------
    p_value : ndarray, shape (S,)
        Equal-tailed: ``min(1, 2 * min(p_reduction, p_increase))``, so a 5% test spends 2.5% on
        each direction.
    p_reduction, p_increase : ndarray, shape (S,)
        One-sided: ``(1 + #{T_b <= T_obs}) / (B + 1)`` (treated outcomes lower than the hypothesis
        says) and ``(1 + #{T_b >= T_obs}) / (B + 1)``, with a relative tolerance of 1e-9 for ties.
    observed : ndarray, shape (S,)
        The signed statistic for the actual assignment (negative: fewer events among the treated).
    null : ndarray, shape (S, B), optional
        The statistic under every re-draw.
    """

    p_value: np.ndarray
    p_reduction: np.ndarray
    p_increase: np.ndarray
    observed: np.ndarray
    null: np.ndarray | None = None


def randomisation_test(
    y: np.ndarray,
    treated: np.ndarray,
    blocks: np.ndarray,
    assignments: np.ndarray,
    *,
    theta: float = 1.0,
    statistic: str = "score",
    stratified: bool = False,
    keep_null: bool = False,
) -> RandomisationTest:
    """Test that treatment multiplies the mean outcome by ``theta``, by re-drawing the design.

    Parameters
    ----------
    y : ndarray, shape (S, n) or (n,)
        Observed outcomes: one row per data set (a simulated trial, say), one column per person.
    treated, blocks : ndarray, shape (n,)
        The actual assignment and each person's block (wave x stratum) code.
    assignments : ndarray of bool, shape (B, n)
        Re-draws of the design (:meth:`fdkit.randomise.AssignmentDesign.permutation_matrix`).
    theta : float
        The hypothesised ratio of means (1: no effect, where every statistic gives an exact test).
    statistic : {"score", "studentised", "difference"}
        ``"score"`` (the default): the robust score statistic of the ratio in the model
        ``E[y] = mu * theta^treated``. Under the hypothesis ``mu`` is the pooled
        ``sum(y) / (theta * n_t + n_c)``; the residuals ``r = y - mu * theta^treated`` of the actual
        assignment are kept, and each re-draw ``c`` gives ``U = c.r`` over its robust SE
        ``sqrt((1 - 2a) c.r^2 + a^2 sum(r^2))`` with ``a = theta n_t / (theta n_t + n_c)``. At
        ``theta = 1`` the residuals do not depend on the assignment, so the test is exact; elsewhere
        it does not need the effect to be the same multiple for everyone, and it is the test whose
        interval keeps its coverage when the intervention prevents some people's crimes and not
        others' (the kit's calibration, README). Its ``U`` is zero exactly at the ratio of means.
        ``"studentised"``: the Welch-type t of the treated outcomes divided by ``theta`` against the
        controls (the difference centred at its expectation under the design over
        ``sqrt(s_t^2/n_t + s_c^2/n_c)``): the kit's earlier statistic, whose interval under-covers
        large harm reductions. ``"difference"``: the centred difference alone (less powerful still).
    stratified : bool
        ``"score"`` only: fit ``mu`` within each block (``E[y] = mu_block * theta^treated``), so
        that blocks with different base rates and different shares treated (several sites, say)
        are compared with themselves; its ``U`` is zero at the common ratio of
        :func:`stratified_ratio`. By default one ``mu`` for everyone, zero at the ratio of means.
    keep_null : bool
        Also keep the statistic under every re-draw.

    Returns
    -------
    RandomisationTest
    """
    draws = np.vstack([treated[None, :], assignments]).astype(float)  # row 0: the actual assignment
    return _randomisation_test(y, treated, blocks, draws, theta, statistic, keep_null, stratified)


def _randomisation_test(
    y, treated, blocks, draws, theta=1.0, statistic="score", keep_null=False, stratified=False
) -> RandomisationTest:
    """:func:`randomisation_test` given the re-draws as floats, the actual assignment first."""
    y = np.atleast_2d(np.asarray(y, dtype=float))
    return _tail_p_values(_signed_statistics(y, treated, blocks, draws, theta, statistic, stratified), keep_null)


def _tie_tolerance(observed: np.ndarray) -> np.ndarray:
    """How close a re-draw's statistic must be to the observed one to count as a tie (same shape)."""
    return 1e-9 * np.maximum(1.0, np.where(np.isfinite(observed), np.abs(observed), 1.0))


def _tail_p_values(values: np.ndarray, keep_null: bool = False) -> RandomisationTest:
    """One-sided and equal-tailed p-values from signed statistics, the actual assignment in column 0."""
    observed, drawn = values[:, 0], values[:, 1:]
    tolerance = _tie_tolerance(observed)[:, None]
    with np.errstate(invalid="ignore"):
        lower = (drawn <= observed[:, None] + tolerance).sum(axis=1)
        upper = (drawn >= observed[:, None] - tolerance).sum(axis=1)
    p_reduction, p_increase = (1 + lower) / values.shape[1], (1 + upper) / values.shape[1]
    return RandomisationTest(
        np.minimum(1.0, 2 * np.minimum(p_reduction, p_increase)),
        p_reduction,
        p_increase,
        observed,
        drawn if keep_null else None,
    )


def _signed_statistics(y, treated, blocks, draws, theta, statistic, stratified=False) -> np.ndarray:
    """The signed statistic for every row of ``y`` (S) and every draw (B + 1): shape (S, B + 1)."""
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    if statistic == "score":
        residual, projected = _score_fit(y, treated, blocks if stratified else None, theta)
        return _studentised_score(residual, projected, draws)
    if stratified:
        raise ValueError("stratified applies to the score statistic only")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(map(repr, STATISTICS))}; got {statistic!r}")
    if theta != 1.0:
        y = np.where(treated, y / theta, y)  # each treated person's outcome had they not been treated
    sum_t = y @ draws.T  # (S, B + 1)
    difference = (sum_t - _expected_treated_sum(y, treated, blocks)[:, None]) * (1.0 / n_t + 1.0 / n_c)
    if statistic == "difference":
        return difference
    squares_t = (y * y) @ draws.T
    mean_t, mean_c = sum_t / n_t, (y.sum(axis=1)[:, None] - sum_t) / n_c
    var_t = np.maximum(squares_t - n_t * mean_t**2, 0.0) / max(n_t - 1, 1)
    var_c = np.maximum(((y * y).sum(axis=1)[:, None] - squares_t) - n_c * mean_c**2, 0.0) / max(n_c - 1, 1)
    return _ratio_or_signed_infinity(difference, np.sqrt(var_t / n_t + var_c / n_c))


def _score_fit(y: np.ndarray, treated: np.ndarray, blocks: np.ndarray | None, theta) -> tuple[np.ndarray, np.ndarray]:
    """Residuals and projection of the model ``E[y] = mu * theta^treated`` fitted under the hypothesis.

    ``mu`` is fitted within each block (one for everyone when ``blocks`` is None). ``theta`` is
    one ratio for every row of ``y`` or one per row (shape (S,)); the projection is then one
    row per ratio too.

    Returns
    -------
    residual : ndarray, shape (S, n)
    projected : ndarray, shape (n,) or (S, n)
    """
    theta = np.asarray(theta, dtype=float)
    ratio = theta[:, None] if theta.ndim else theta
    groups = np.zeros(treated.size, dtype=int) if blocks is None else blocks
    residual = np.empty_like(y)
    projected = np.empty(np.broadcast_shapes(np.shape(ratio), (treated.size,)))
    for group in np.unique(groups):
        members = groups == group
        group_t, group_c = int(treated[members].sum()), int((~treated[members]).sum())
        mu = y[:, members].sum(axis=1) / (theta * group_t + group_c)
        residual[:, members] = y[:, members] - mu[:, None] * np.where(treated[members], ratio, 1.0)
        projected[..., members] = ratio * group_t / (ratio * group_t + group_c)
    return residual, projected


def stratified_ratio(y: np.ndarray, treated: np.ndarray, blocks: np.ndarray):
    """The common ratio of means within blocks: where the stratified score statistic's ``U`` is zero.

    The maximum-likelihood ratio of the Poisson model ``E[y] = mu_block * theta^treated`` (a
    Mantel-Haenszel-type weighting of the blocks' ratios), which stays valid for any outcome as the
    root of an estimating equation. It solves ``sum_b (S_tb - theta n_tb S_b / (theta n_tb + n_cb)) = 0``
    over the blocks ``b`` with both arms (``S`` sums, ``n`` counts), whose left side falls as
    ``theta`` rises, so it is found by bisection on ``log theta``. When every block treats the same
    share, it is close to the ratio of the arms' means; when shares differ between blocks with
    different base rates, the ratio of the means is confounded and this is not.

    ``y`` may hold one outcome vector (a float is returned) or one per row (an array). The ratio is
    ``0`` when the treated have no events, ``inf`` when the controls have none, ``nan`` when no one
    has any.

    Examples
    --------
    >>> y = np.array([4.0, 2, 6, 8, 1, 0, 1, 1])
    >>> treated = np.array([1, 0, 0, 0, 1, 1, 0, 0], bool)
    >>> blocks = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> round(stratified_ratio(y, treated, blocks), 4)
    0.6965
    """
    values = np.atleast_2d(np.asarray(y, dtype=float))
    both = [block for block in np.unique(blocks) if 0 < treated[blocks == block].sum() < (blocks == block).sum()]
    if not both:
        ratio = np.full(values.shape[0], np.nan)
    else:
        members = np.array([blocks == block for block in both], dtype=float)  # (blocks, n)
        sum_t = values @ (members * treated).T  # (rows, blocks)
        total = values @ members.T
        n_t = (members * treated).sum(axis=1)
        n_c = members.sum(axis=1) - n_t
        low, high = np.full(values.shape[0], -50.0), np.full(values.shape[0], 50.0)
        for _ in range(200):
            middle = (low + high) / 2
            theta = np.exp(middle)[:, None]
            above = (sum_t - theta * n_t * total / (theta * n_t + n_c)).sum(axis=1) > 0
            low, high = np.where(above, middle, low), np.where(above, high, middle)
        ratio = np.exp((low + high) / 2)
        treated_sum, all_sum = sum_t.sum(axis=1), total.sum(axis=1)
        ratio = np.where(treated_sum == 0, 0.0, np.where(treated_sum == all_sum, np.inf, ratio))
        ratio = np.where(all_sum == 0, np.nan, ratio)
    return float(ratio[0]) if np.ndim(y) == 1 else ratio


def _studentised_score(residual: np.ndarray, projected, draws: np.ndarray) -> np.ndarray:
    """The robust score statistic ``U / sqrt(V)`` of every draw ``c``, holding the actual assignment's fit.

    ``U = c.r`` and ``V = sum((c - projected)^2 r^2)``, where ``r`` are the residuals of the model
    fitted under the hypothesis and ``projected`` is the actual assignment's projection on the
    model's covariates (weighted by the fitted means): for the ratio of means, the constant
    ``theta n_t / (theta n_t + n_c)``. Both expand into products of ``c`` with fixed vectors (``c``
    is 0/1), so no (draws x people) matrix is formed beyond ``draws`` itself.

    Parameters
    ----------
    residual : ndarray, shape (S, n)
    projected : float or ndarray, shape (n,) or (S, n)
    draws : ndarray, shape (D, n)

    Returns
    -------
    ndarray, shape (S, D)
    """
    squared = residual * residual
    score = residual @ draws.T
    spread = ((1 - 2 * projected) * squared) @ draws.T + (projected * projected * squared).sum(axis=1)[:, None]
    return _ratio_or_signed_infinity(score, np.sqrt(np.maximum(spread, 0.0)))


def _ratio_or_signed_infinity(numerator: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``numerator / scale``; where the scale is 0, 0 for a zero numerator and +-inf otherwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tiny = 1e-12 * np.maximum(1.0, np.abs(numerator).max(axis=1, keepdims=True))
        return np.where(
            scale > 0, numerator / scale, np.where(np.abs(numerator) > tiny, np.sign(numerator) * np.inf, 0.0)
        )


def ratio_of_means_core(
    y: np.ndarray,
    treated: np.ndarray,
    strata: np.ndarray,
    assignments: np.ndarray,
    counts: np.ndarray,
    alpha: float = 0.05,
    *,
    statistic: str = "score",
) -> dict[str, np.ndarray]:
    """Ratio of means with bootstrap CI and randomisation p-value, for many outcome vectors at once.

    Parameters
    ----------
    y : ndarray, shape (S, n) or (n,)
        Outcomes: one row per data set (a simulated trial, say), one column per person.
    treated, strata : ndarray, shape (n,)
        The actual assignment and each person's block (stratum, or wave x stratum) code.
    assignments : ndarray of bool, shape (B, n)
        Re-draws of the design (:func:`permutation_assignments`).
    counts : ndarray of int, shape (R, n)
        Bootstrap resamples as counts (:func:`bootstrap_counts`); one row of ones skips it.
    alpha : float
        1 - confidence level.
    statistic : {"score", "studentised", "difference"}
        The randomisation test's statistic (:func:`randomisation_test`).

    Returns
    -------
    dict of ndarray, each shape (S,)
        ``mean_treated``, ``mean_control``, ``ratio``, ``ci_low``/``ci_high`` (the
        bootstrap percentile interval for the ratio), ``p_value`` (equal-tailed) and ``p_mcse``.
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    sum_t = y[:, treated].sum(axis=1)
    mean_t, mean_c = sum_t / n_t, (y.sum(axis=1) - sum_t) / n_c
    p_value = randomisation_test(y, treated, strata, assignments, statistic=statistic).p_value

    # Stratified bootstrap: resampled sums by matrix products over the count matrix.
    weights = counts.astype(float)
    boot_t = (y[:, treated] @ weights[:, treated].T) / n_t  # (S, R)
    boot_c = (y[:, ~treated] @ weights[:, ~treated].T) / n_c
    ratios = _ratio(boot_t, boot_c)
    ratios = np.where(np.isnan(ratios), np.inf, ratios)  # 0/0 resamples: no control events, no ratio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2], axis=1)
    return {
        "mean_treated": mean_t,
        "mean_control": mean_c,
        "ratio": _ratio(mean_t, mean_c),
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "p_mcse": p_value_mcse(p_value, assignments.shape[0]),
    }


# ------------------------------------------------------------------------ methods


def _ratio_p_at(
    y, treated, blocks, assignments, statistic="score", scaled=None, stratified=False
) -> Callable[[int], float]:
    """The randomisation p-value of the ratio at grid point ``k`` (cached).

    By default the hypothesis is that treatment multiplies the treated arm's mean by the ratio
    there (:func:`randomisation_test` with ``theta``). With ``scaled`` (CACE), the outcomes of the
    people in ``scaled`` are divided by the ratio, which under that hypothesis gives everyone's
    outcome without the intervention, and no effect is tested on them.
    """
    cache: dict[int, float] = {}
    draws = np.vstack([treated[None, :], assignments]).astype(float)

    def p_at(k: int) -> float:
        if k not in cache:
            if scaled is None:
                test = _randomisation_test(y, treated, blocks, draws, _theta(k), statistic, stratified=stratified)
            else:
                test = _randomisation_test(np.where(scaled, y / _theta(k), y), treated, blocks, draws, 1.0, statistic)
            cache[k] = float(test.p_value[0])
        return cache[k]

    return p_at


def _no_treated_events(p_value: float, alpha: float) -> tuple[float, float, str]:
    """Limits when the treated arm has no events: a test of the ratio cannot tell ratios apart.

    Dividing zeros by a ratio leaves them zeros, and the score statistic's treated residuals are
    then all equal, so its robust variance vanishes with them; only no effect is tested (exactly).
    """
    if p_value < alpha:
        return (
            np.nan,
            100.0,
            "no events in the treated arm: every ratio above 0 is rejected, so the only limit is a "
            "100% reduction; the lower limit cannot be estimated",
        )
    return (
        -np.inf,
        100.0,
        "no events in the treated arm: every ratio is consistent with the data; the interval is unbounded below",
    )


def _no_control_events(p_value: float, alpha: float) -> tuple[float, float, str]:
    """Limits when the control arm has no events (the mirror of :func:`_no_treated_events`)."""
    if p_value < alpha:
        return (
            -np.inf,
            np.nan,
            "no events in the control arm: the ratio of means is infinite and every finite ratio is rejected; "
            "the upper limit cannot be estimated",
        )
    return (
        -np.inf,
        100.0,
        "no events in the control arm: the ratio of means is infinite; every ratio is consistent with the data",
    )


def _inverted(p_at, estimate_pct: float, alpha: float, step: int = 16) -> tuple[float, float, str]:
    return _pct_bounds(invert_on_grid(lambda k: p_at(k) < alpha, _grid_index(estimate_pct), step))


@one_blas_thread
def ratio_of_means(
    frame: pd.DataFrame,
    outcome: str,
    subgroup: str = "all",
    *,
    seed: int = 0,
    resamples: int = 2000,
    permutations: int = PERMUTATIONS,
    alpha: float = 0.05,
    interval: str = "randomisation",
    statistic: str = "score",
    stratified: bool = False,
) -> Effect:
    """Ratio of means with a randomisation test of the ratio and the interval that inverts it.

    The p-value is equal-tailed (twice the smaller one-sided p-value), so a "significant
    reduction" at 5% is a 2.5% claim, as it reads. The statistic is the robust score statistic of
    the ratio (:func:`randomisation_test`): at no effect an exact randomisation test, and its
    interval keeps its coverage when the intervention prevents some crimes and not others.

    Parameters
    ----------
    frame : pandas.DataFrame
        The outcome frame.
    outcome, subgroup : str
    seed : int
        Seeds the re-draws of the design (and the bootstrap).
    resamples : int
        Bootstrap resamples (``interval="bootstrap"`` only).
    permutations : int
        Re-draws of the design (wave x stratum); at 4,000 the p-value's Monte Carlo SE
        (``p_mcse``) is at most 0.005 near 0.05 (an equal-tailed p-value needs about twice the
        re-draws of a one-sided one for the same precision).
    alpha : float
    interval : {"randomisation", "bootstrap"}
        ``"randomisation"`` (the default): the ratios ``theta`` the test does not reject (on the
        0.1-point grid of :func:`invert_on_grid`). In the kit's calibration on the trial's design
        it covers true reductions from a 25% increase to a 70% reduction 93-97% of the time
        (``tests/test_calibration.py``). ``"bootstrap"``: the stratified percentile bootstrap,
        kept by name for teaching; it covers a true 40% reduction only about 86-92% of the time
        at this size.
    statistic : {"score", "studentised", "difference"}
        The test's statistic (:func:`randomisation_test`); the others are kept for comparison.
    stratified : bool
        Estimate the common ratio within wave x stratum blocks (:func:`stratified_ratio`) and test
        it with the score statistic fitted within them: for designs whose blocks treat different
        shares of people with different base rates, such as several sites pooled, where the ratio
        of the arms' raw means mixes the sites. ``mean_treated`` and ``mean_control`` stay the raw
        means; ``interval`` says "stratified".

    Examples
    --------
    >>> effect = ratio_of_means(frame, "knife_suspect", seed=1)  # doctest: +SKIP
    >>> effect.confidence_interval(0.9)  # doctest: +SKIP
    """
    if interval not in ("bootstrap", "randomisation"):
        raise ValueError(f"interval must be 'bootstrap' or 'randomisation'; got {interval!r}")
    if stratified and interval == "bootstrap":
        raise ValueError("the bootstrap interval is for the ratio of the raw means; it cannot be stratified")
    part = subgroup_frame(frame, subgroup)
    y, treated, _ = _arrays(part, outcome)
    declared = assignment_design(part)
    rng = stream(seed, outcome, subgroup, "ratio_of_means")
    assignments = declared.permutation_matrix(permutations, rng)
    test = randomisation_test(
        y, treated, declared.blocks, assignments, statistic=statistic, stratified=stratified, keep_null=True
    )
    mean_t, mean_c = _means(y, treated)
    ratio = stratified_ratio(y, treated, declared.blocks) if stratified else _ratio(mean_t, mean_c)
    estimate = float(pct(ratio))
    p_value = float(test.p_value[0])
    p_at = _ratio_p_at(y, treated, declared.blocks, assignments, statistic, stratified=stratified)
    note = ""
    if interval == "bootstrap":
        core = ratio_of_means_core(
            y,
            treated,
            declared.blocks,
            assignments[:1],
            bootstrap_counts(treated, declared.blocks, resamples, rng),
            alpha,
        )
        low, high = float(pct(core["ci_high"][0])), float(pct(core["ci_low"][0]))
        how = "stratified percentile bootstrap"
        if mean_t == 0:
            note = "no events in the treated arm: every resample gives a 100% reduction; the interval is degenerate"
    else:
        how = f"inverts the {'stratified ' if stratified else ''}{statistic} randomisation test"
        if mean_t == 0 and mean_c == 0:
            low, high, note = np.nan, np.nan, "no events in either arm: no ratio to estimate"
        elif mean_t == 0:
            low, high, note = _no_treated_events(p_value, alpha)
        elif mean_c == 0:
            low, high, note = _no_control_events(p_value, alpha)
        else:
            low, high, note = _inverted(p_at, estimate, alpha)
    return Effect(
        outcome,
        subgroup,
        "ratio_of_means",
        int(treated.sum()),
        int((~treated).sum()),
        mean_t,
        mean_c,
        estimate,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        note=note,
        interval=how,
        p_mcse=float(p_value_mcse(p_value, permutations)),
        statistic=float(test.observed[0]),
        null_distribution=test.null[0] if test.null is not None else None,
        _p_at=p_at if interval == "randomisation" and mean_t > 0 and mean_c > 0 else None,
    )


def randomisation_interval(
    y, treated, strata, assignments, alpha=0.05, statistic: str = "score"
) -> tuple[float, float]:
    """The ratios of means the randomisation test does not reject: ``(low, high)`` ratios.

    A thin wrapper over :func:`invert_on_grid` (bounds on the 0.1-point grid); ``nan`` when
    an arm has no events, ``0`` or ``inf`` where a side is unbounded.
    """
    y = np.asarray(y, dtype=float)
    mean_t, mean_c = _means(y, treated)
    if mean_t == 0 or mean_c == 0:
        return np.nan, np.nan
    p_at = _ratio_p_at(y, treated, strata, assignments, statistic)
    low, high, _ = _inverted(p_at, float(pct(mean_t / mean_c)), alpha)
    return float(1 - high / 100), float(1 - low / 100) if np.isfinite(low) else np.inf


def _welch_p_at(mean_t, mean_c, var_t, var_c, n_t, n_c) -> Callable[[int], float]:
    """Welch's test of ``mean_t - theta * mean_c = 0`` at grid point ``k`` (Fieller's interval)."""
    from scipy import stats

    def p_at(k: int) -> float:
        theta = _theta(k)
        part_t, part_c = var_t / n_t, theta**2 * var_c / n_c
        spread = part_t + part_c
        if spread <= 0:
            return 1.0 if mean_t == theta * mean_c else 0.0
        df = spread**2 / (part_t**2 / (n_t - 1) + part_c**2 / (n_c - 1))
        return float(2 * stats.t.sf(abs(mean_t - theta * mean_c) / np.sqrt(spread), df))

    return p_at


def welch_t(frame: pd.DataFrame, outcome: str, subgroup: str = "all", *, alpha: float = 0.05) -> Effect:
    """Welch's unequal-variance t-test, with Fieller's interval for the ratio of means.

    The interval holds the ratios ``theta`` for which Welch's test of
    ``mean_t - theta * mean_c = 0`` does not reject (degrees of freedom recomputed at each
    ``theta``): at ``theta = 1`` that is the test whose p-value is printed, so the interval
    excludes 0 exactly when p < alpha. Ratios are positive, so no limit passes 100%.

    Not a default method: with 20+44 and 25+59 people (the Milton Keynes design) and
    outcomes drawn from the kit's synthetic superpopulation, the interval's coverage at a
    true 40% reduction was 92.6% (Monte Carlo SE 0.6; 91.1% in an earlier run) for crime harm,
    against 94.3% and 94.8% for knife and violence counts; at no effect its harm test rejected
    6.0% (0.5)
    (``tests/test_calibration.py``). Harm's long right tail makes the treated mean's
    sampling distribution skewed, which a t reference distribution ignores. Ask for it by
    name (``methods=("welch_t",)``, ``--methods welch_t``) to compare with the textbook test.
    """
    from scipy import stats  # imported here: scipy.stats takes about a second to import

    part = subgroup_frame(frame, subgroup)
    y, treated, _ = _arrays(part, outcome)
    mean_t, mean_c = _means(y, treated)
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    test = stats.ttest_ind(y[treated], y[~treated], equal_var=False)
    base = dict(
        outcome=outcome,
        subgroup=subgroup,
        method="welch_t",
        n_treated=n_t,
        n_control=n_c,
        mean_treated=mean_t,
        mean_control=mean_c,
        pct_reduction=float(pct(_ratio(mean_t, mean_c))),
        p_mcse=0.0,
    )
    if mean_c == 0 or np.isnan(test.pvalue):
        return Effect(**base, p_value=float(test.pvalue), note="no variation or no events in the control arm")
    p_value = float(test.pvalue)
    if mean_t == 0:
        low, high, note = _no_treated_events(p_value, alpha)
        return Effect(**base, ci_low=low, ci_high=high, p_value=p_value, note=note, interval="Fieller")
    p_at = _welch_p_at(mean_t, mean_c, y[treated].var(ddof=1), y[~treated].var(ddof=1), n_t, n_c)
    low, high, note = _inverted(p_at, base["pct_reduction"], alpha)
    return Effect(
        **base, ci_low=low, ci_high=high, p_value=p_value, note=note, interval="Fieller (inverts Welch's t)", _p_at=p_at
    )


def mann_whitney(frame: pd.DataFrame, outcome: str, subgroup: str = "all") -> Effect:
    """Mann-Whitney U test (two-sided); no % estimate and no interval: it does not test the ratio of means.

    The p-value is scipy's ``mannwhitneyu(..., alternative="two-sided")``: its normal
    approximation with the tie correction and continuity correction when either arm has more
    than 8 people or there are ties (computed here, see :func:`mann_whitney_p`), its exact
    distribution otherwise.
    """
    part = subgroup_frame(frame, subgroup)
    y, treated, _ = _arrays(part, outcome)
    mean_t, mean_c = _means(y, treated)
    if np.ptp(y) == 0:
        p_value, note = 1.0, "every outcome is the same"
    else:
        p_value, note = mann_whitney_p(y[treated], y[~treated]), ""
    return Effect(
        outcome,
        subgroup,
        "mann_whitney",
        int(treated.sum()),
        int((~treated).sum()),
        mean_t,
        mean_c,
        # No % estimate: the test compares whole distributions (are treated outcomes stochastically
        # smaller?), not means, so printing the ratio of means beside its p-value would pair a test
        # with an estimate it never tested.
        float("nan"),
        p_value=p_value,
        note=note,
        interval="none (tests a shift, not the ratio)",
        p_mcse=0.0,
    )


def mann_whitney_p(first: np.ndarray, second: np.ndarray) -> float:
    """Two-sided Mann-Whitney p-value, the same as ``scipy.stats.mannwhitneyu``'s default.

    Where scipy uses its normal approximation (an arm of more than 8 people, or any ties:
    always, for crime outcomes full of zeros), it is computed here in numpy, because
    importing ``scipy.stats`` takes about a second, a fifth of ``fdkit analyse``. The
    approximation: ``U`` from average ranks, mean ``n1 n2 / 2``, variance
    ``n1 n2 / 12 * (n + 1 - sum(t^3 - t) / (n (n - 1)))`` over tie groups of size ``t``, and
    half a unit of continuity correction. Otherwise scipy's exact distribution is used.

    Examples
    --------
    >>> round(mann_whitney_p(np.array([0, 0, 1, 2, 5]), np.array([0, 3, 4, 6, 8, 9])), 4)
    0.1173
    """
    both = np.concatenate([first, second]).astype(float)
    n1, n2 = len(first), len(second)
    if not n1 or not n2:
        return float("nan")
    _, inverse, ties = np.unique(both, return_inverse=True, return_counts=True)
    if min(n1, n2) <= 8 and (ties == 1).all():
        from scipy import stats

        return float(stats.mannwhitneyu(first, second, alternative="two-sided").pvalue)
    average_ranks = np.cumsum(ties) - (ties - 1) / 2
    u_first = average_ranks[inverse[:n1]].sum() - n1 * (n1 + 1) / 2
    u = max(u_first, n1 * n2 - u_first)
    n = n1 + n2
    spread = np.sqrt(n1 * n2 / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1))))
    z = (u - n1 * n2 / 2 - 0.5) / spread
    return float(min(1.0, math.erfc(z / math.sqrt(2))))  # 2 * P(Z > z)


def _design_matrix(part: pd.DataFrame, outcome: str, interaction: bool = False) -> tuple[np.ndarray, list[str]]:
    treated = (part["arm"] == "treatment").to_numpy(dtype=float)
    columns, names = [np.ones(len(part)), treated], ["intercept", "treatment"]
    strata = sorted(set(part["stratum"]))
    for stratum in strata[1:]:
        dummy = (part["stratum"] == stratum).to_numpy(dtype=float)
        columns.append(dummy)
        names.append(f"stratum[{stratum}]")
        if interaction:
            columns.append(dummy * treated)
            names.append(f"treatment:stratum[{stratum}]")
    columns.append(np.log1p(part[f"{outcome}_baseline"].to_numpy(dtype=float)))
    names.append("log1p_baseline")
    return np.column_stack(columns), names


def _poisson_coefficients(y: np.ndarray, x: np.ndarray, offset: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """Poisson quasi-likelihood by Newton-Raphson with step halving; raises _Breakdown if it fails."""
    beta = np.zeros(x.shape[1])
    with np.errstate(all="ignore"):
        beta[0] = np.log(max(y.mean(), 1e-10)) - float(np.mean(offset)) if np.allclose(x[:, 0], 1) else 0.0

        def loglik(b):
            eta = offset + x @ b
            return float(y @ eta - np.exp(eta).sum())

        current = loglik(beta)
        for _ in range(max_iter):
            mu = np.exp(offset + x @ beta)
            try:
                step = np.linalg.solve(x.T @ (x * mu[:, None]), x.T @ (y - mu))
            except np.linalg.LinAlgError:
                raise _Breakdown("the Poisson model's information matrix is singular") from None
            size = 1.0
            while True:
                candidate = beta + size * step
                value = loglik(candidate)
                if value >= current - 1e-12 * abs(current) or size < 1e-10:
                    break
                size /= 2
            beta, change, current = candidate, value - current, value
            if not np.isfinite(current) or not np.all(np.isfinite(beta)):
                raise _Breakdown("the Poisson model's fit diverged")
            if abs(change) <= 1e-13 * (abs(current) + 1.0) and (
                np.max(np.abs(size * step)) < 1e-6 * (1 + np.max(np.abs(beta))) or abs(change) == 0
            ):
                return beta
    raise _Breakdown("the Poisson model's fit did not converge")


def poisson_fit(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson quasi-likelihood coefficients, fitted means and HC1 sandwich covariance.

    The sandwich is ``(X'WX)^-1 X' diag(r^2) X (X'WX)^-1 * n/(n-p)`` with ``W = diag(mu)``
    and ``r = y - mu``; it stays valid when the outcome is not Poisson (harm, overdispersion).
    Fitted by Newton-Raphson in numpy (no statsmodels refit in the interval search).
    """
    offset = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=float)
    beta = _poisson_coefficients(np.asarray(y, dtype=float), x, offset)
    mu = np.exp(offset + x @ beta)
    bread = np.linalg.inv(x.T @ (x * mu[:, None]))
    meat = x.T @ (x * ((y - mu) ** 2)[:, None])
    n, p = x.shape
    return beta, mu, bread @ meat @ bread * n / (n - p)


def score_test(y: np.ndarray, x: np.ndarray, assignments: np.ndarray, beta: float = 0.0) -> RandomisationTest:
    """Randomisation test of the robust score statistic for the treatment coefficient.

    Under the hypothesis that the coefficient (column 1 of ``x``) equals ``beta``, the model
    without it (with ``beta * treatment`` as an offset) is fitted once. Its robust score
    statistic ``U / sqrt(V)`` (Boos 1992) is then computed for the actual assignment and for
    every re-draw of the design, which needs no further fitting because the null model does
    not depend on the assignment. The p-value is equal-tailed: twice the smaller share of
    re-draws at least as extreme in either direction.

    For ``beta = 0`` this is an exact randomisation test. For other values (used to build
    the interval) the re-draws reuse the fitted null model of the actual assignment, which
    makes the test approximate; the calibration tests measure the interval's coverage.

    Parameters
    ----------
    y : ndarray, shape (n,)
    x : ndarray, shape (n, p)
        The design matrix, the treatment in column 1 (:func:`poisson_robust`'s model).
    assignments : ndarray of bool, shape (B, n)
        Re-draws of the design.
    beta : float
        The hypothesised coefficient: the log of the ratio.

    Returns
    -------
    RandomisationTest
        For one outcome vector (arrays of shape (1,)).
    """
    return _score_test(y, x, np.vstack([x[:, 1], assignments]).astype(float), beta)


def _score_test(y: np.ndarray, x: np.ndarray, candidates: np.ndarray, beta: float) -> RandomisationTest:
    """:func:`score_test` given the 0/1 candidate assignments, the actual one first."""
    return _tail_p_values(_score_statistics(y, x, candidates, beta)[None, :])


def _score_statistics(y: np.ndarray, x: np.ndarray, candidates: np.ndarray, beta: float) -> np.ndarray:
    """The signed robust score statistic ``U / sqrt(V)`` for every candidate assignment (shape (B + 1,)).

    With ``c`` a candidate, ``W = diag(mu)``, ``R`` the covariates and ``G = (R'WR)^-1``:

    - at ``beta = 0`` each candidate is projected on the covariates itself, ``c - c W R G R'``,
      so the statistic depends on the candidate and the data alone and the test is exact; its
      score ``U`` and robust variance ``V`` expand into products of ``c`` with n x 8 matrices, so
      no (B x n) projection is formed (``c`` is 0/1, so ``c^2 = c``);
    - elsewhere the actual assignment's projection is held fixed for every candidate
      (:func:`_studentised_score`). Re-projecting each candidate there would weight the actually
      treated by ``exp(beta)`` and the others by 1, which in the kit's calibration left the
      interval covering a true 70% harm reduction only 91% of the time; held fixed, 93.8-96.1%
      from a 25% increase to a 70% reduction.
    """
    z = x[:, 1]
    rest = np.delete(x, 1, axis=1)
    _, mu, _ = poisson_fit(y, rest, offset=beta * z)
    residual = y - mu
    squared = residual**2
    weighted = rest * mu[:, None]
    inverse = np.linalg.inv(rest.T @ weighted)
    if beta != 0:
        return _studentised_score(residual[None, :], rest @ (inverse @ (weighted.T @ z)), candidates)[0]
    q = rest.shape[1]
    products = candidates @ np.column_stack([residual, squared, weighted, rest * squared[:, None]])
    c_r, c_r2, c_wr, c_rr2 = products[:, 0], products[:, 1], products[:, 2 : 2 + q], products[:, 2 + q :]
    g = c_wr @ inverse  # (B + 1, q)
    score = c_r - g @ (rest.T @ residual)
    variance = (
        c_r2 - 2 * np.einsum("bq,bq->b", g, c_rr2) + np.einsum("bq,qk,bk->b", g, rest.T @ (rest * squared[:, None]), g)
    )
    spread = np.sqrt(np.where(variance > 1e-12 * np.abs(c_r2).max(), variance, 0.0))
    return _ratio_or_signed_infinity(score[None, :], spread[None, :])[0]


@one_blas_thread
def poisson_robust(
    frame: pd.DataFrame,
    outcome: str,
    subgroup: str = "all",
    *,
    seed: int = 0,
    permutations: int = PERMUTATIONS,
    alpha: float = 0.05,
) -> Effect:
    """Poisson quasi-likelihood regression adjusted for stratum and baseline.

    The estimate is ``100 * (1 - exp(b))`` for the treatment coefficient ``b``. Its p-value
    is a randomisation test of the robust score statistic (:func:`score_test`, re-draws
    within wave x stratum), exact under the sharp null; the interval collects the
    coefficients that test does not reject, on the grid of :func:`invert_on_grid`. Where the
    model cannot be fitted at a point of the search, that side is reported as unbounded with
    a note. Plain Wald tests with sandwich errors reject a true null 7-10% of the time at
    this trial's size, which is why they are not used.

    Calibration on the trial's design (4,000 trials, ``fdkit power --calibration --sims 4000
    --seed 7``): 2.2-2.5% of null trials are called a significant reduction and 2.3-2.9% an
    increase; the interval covers a true 0, 40, 54 or 70% reduction 94.0-96.1% of the time, but a
    true 25% increase only 92.8-93.2% (harm, knife, violence; MC SE 0.4), its misses stopping
    short of the increase: a known shortfall, kept as a test of its own.
    """
    part = subgroup_frame(frame, subgroup)
    y, treated, _ = _arrays(part, outcome)
    mean_t, mean_c = _means(y, treated)
    base = dict(
        outcome=outcome,
        subgroup=subgroup,
        method="poisson_robust",
        n_treated=int(treated.sum()),
        n_control=int((~treated).sum()),
        mean_treated=mean_t,
        mean_control=mean_c,
        interval="inverts the randomisation score test",
    )
    if mean_t == 0 or mean_c == 0:
        return Effect(
            **base,
            pct_reduction=float(pct(_ratio(mean_t, mean_c))),
            note="an arm has no events: the model's estimate does not exist",
        )
    x, _ = _design_matrix(part, outcome)
    assignments = assignment_design(part).permutation_matrix(permutations, stream(seed, outcome, subgroup, "poisson"))
    candidates = np.vstack([x[:, 1], assignments]).astype(float)
    cache: dict[int, float] = {}

    def p_at(k: int) -> float:
        if k not in cache:
            cache[k] = float(_score_test(y, x, candidates, float(np.log(_theta(k)))).p_value[0])
        return cache[k]

    try:
        beta, _, cov = poisson_fit(y, x)
        p_value = p_at(0)
    except _Breakdown as error:
        return Effect(**base, pct_reduction=np.nan, note=f"the model could not be fitted: {error}")

    estimate = float(pct(np.exp(beta[1])))
    # First stride: about the Wald half-width in grid steps (only speeds the search up).
    half_width = 100 * np.exp(beta[1]) * 1.96 * np.sqrt(max(cov[1, 1], 0.0)) * _GRID_PER_POINT
    low, high, note = _inverted(p_at, estimate, alpha, step=int(np.clip(half_width / 2, 4, 4096)))
    return Effect(
        **base,
        pct_reduction=estimate,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        note=note,
        p_mcse=float(p_value_mcse(p_value, permutations)),
        _p_at=p_at,
    )


def negative_binomial(frame: pd.DataFrame, outcome: str, subgroup: str = "all", *, alpha: float = 0.05) -> Effect:
    """Negative binomial (NB2) regression adjusted for stratum and baseline; counts only. By name only.

    Wald interval and p-value from the model's standard errors. **Not in the default table**:
    in the kit's calibration its Wald test rejected a true null 7-7.6% of the time at the
    trial's size. Where the fit does not converge, or the dispersion is at the Poisson
    boundary (where NB2 is the Poisson model and its Wald errors are not robust), it reports
    :func:`poisson_robust` instead, with a note.
    """
    import statsmodels.api as sm
    from scipy import stats

    if outcome_definitions.get(outcome).measure != "count":
        raise ValueError(f"{outcome} is not a count; the negative binomial model is for counts only")
    part = subgroup_frame(frame, subgroup)
    y, treated, _ = _arrays(part, outcome)
    mean_t, mean_c = _means(y, treated)
    base = dict(
        outcome=outcome,
        subgroup=subgroup,
        method="negative_binomial",
        n_treated=int(treated.sum()),
        n_control=int((~treated).sum()),
        mean_treated=mean_t,
        mean_control=mean_c,
    )
    if mean_t == 0 or mean_c == 0:
        return Effect(
            **base,
            pct_reduction=float(pct(_ratio(mean_t, mean_c))),
            note="an arm has no events: the model's estimate does not exist",
        )
    x, _ = _design_matrix(part, outcome)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = sm.NegativeBinomial(y, x).fit(disp=0, maxiter=200)
    dispersion = float(fitted.params[-1])
    if not fitted.mle_retvals.get("converged", True) or not np.isfinite(fitted.bse[1]) or dispersion < 1e-4:
        fallback = poisson_robust(frame, outcome, subgroup, alpha=alpha)
        return _relabel(
            fallback,
            "negative_binomial",
            "at the Poisson boundary (no overdispersion) or not converged: the robust Poisson model is reported",
        )
    z = stats.norm.ppf(1 - alpha / 2)
    b, se = float(fitted.params[1]), float(fitted.bse[1])
    return Effect(
        **base,
        pct_reduction=float(pct(np.exp(b))),
        ci_low=float(pct(np.exp(b + z * se))),
        ci_high=float(pct(np.exp(b - z * se))),
        p_value=float(2 * stats.norm.sf(abs(b / se))),
        interval="Wald (model-based errors)",
        p_mcse=0.0,
    )


def _relabel(effect: Effect, method: str, note: str) -> Effect:
    from dataclasses import replace

    return replace(effect, method=method, note="; ".join(n for n in (note, effect.note) if n))


# ----------------------------------------------------- subgroups, engagement, tables


def _supremum_grid() -> np.ndarray:
    """The grid indices at which the supremum interaction test evaluates its p-value.

    Points of the 0.1-point grid of :func:`invert_on_grid` spaced by at most 1% of the ratio
    (at least one grid step): the ratios ``theta`` from 0.001 to 1,000 in about 1,050
    points. ``p(theta)`` changes on the scale of the log ratio's standard error (0.3 or more
    at this trial's size), so finer steps would multiply the work and change nothing that
    matters. Built from integers alone, so the same on every machine.
    """
    reductions, k = [], 0
    while k <= _GRID_TOP:  # theta = (1000 - k) / 1000 from 1 down to 0.001
        reductions.append(k)
        k += max(1, (1000 - k) // 100)
    increases, k = [], 0
    while k >= _GRID_BOTTOM:  # theta from 1 up to 1,000
        increases.append(k)
        k -= max(1, (1000 - k) // 100)
    return np.unique(np.array(reductions + increases + [_GRID_BOTTOM]))


_SUPREMUM_GRID = _supremum_grid()
_INTERACTION_METHODS = ("supremum", "plug-in", "profile")


def _normal_scores(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's observed statistic (column 0) as a normal score within its re-draws (the rest).

    The mid-rank ``u = (#{T_b < T_obs} + #{T_b = T_obs} / 2 + 1/2) / (B + 1)`` (the observed
    assignment counted as half a tie), then ``z = Phi^-1(u)``: whatever shape the randomisation
    distribution has, ``u`` is close to uniform when the hypothesis holds (exactly so, up to ties,
    at no effect), so ``z`` is close to standard normal. Also returns ``u``.
    """
    from scipy.special import ndtri

    observed, drawn = values[:, :1], values[:, 1:]
    tolerance = _tie_tolerance(observed)
    with np.errstate(invalid="ignore"):
        below = (drawn < observed - tolerance).sum(axis=1) + 0.5 * (np.abs(drawn - observed) <= tolerance).sum(axis=1)
    u = (below + 0.5) / values.shape[1]
    return ndtri(u), u


@dataclass(frozen=True)
class CommonRatioTest:
    """:func:`common_ratio_test`'s answer.

    Attributes
    ----------
    chi2 : float
        ``Q``, the smallest sum of the groups' squared normal scores over common ratios.
    df : int
        Groups - 1.
    p_value : float
        ``P(chi2_df >= Q)``.
    p_mcse : float
        Its Monte Carlo SE from the re-draws behind each group's normal score.
    ratio : float
        The common ratio (a point of the grid) where the minimum is reached.
    scores : ndarray, shape (groups,)
        Each group's normal score there (negative: fewer events among its treated than the
        common ratio says).
    """

    chi2: float
    df: int
    p_value: float
    p_mcse: float
    ratio: float
    scores: np.ndarray


def common_ratio_test(y, treated, blocks, groups, assignments) -> CommonRatioTest:
    """A randomisation score test that every group shares one ratio of means (profile Q).

    For a common ratio ``theta``, each group ``g`` (a site, an age band) has the primary test's
    score statistic of the ratio fitted within its blocks (:func:`randomisation_test` with
    ``theta`` and ``stratified=True``), and its randomisation distribution over the group's own
    re-draws; the observed statistic's place in that distribution, as a normal score ``z_g(theta)``
    (:func:`_normal_scores`), is close to standard normal when ``theta`` is the group's true
    ratio. The groups are independent, so under a common ratio ``sum z_g(theta)^2`` at the true
    ratio is chi-squared on G degrees of freedom. ``theta`` is unknown: as Cochran's Q does for
    its weighted mean, ``Q = min over theta of sum z_g(theta)^2`` is referred to chi-squared on
    ``G - 1``. The minimum is searched over the points of the 0.1-point grid spaced by 1% of the
    ratio (:func:`_supremum_grid`) between the groups' own estimates (their stratified ratios):
    beyond them every group's score has the same sign and grows. A group's score at its own
    estimate is near zero, not exactly zero (it is a rank among re-draws), so the true minimum
    can lie a step or two outside; the R cross-check (``tools/r_check``) also searches ten grid
    points beyond each end and has found the same minima.

    Why not the plug-in test of Q: it imputes every treated person's untreated outcome as their
    outcome divided by the common ratio, which is not what an intervention that prevents some
    people's crimes does, and for crime harm it then rejects a true common 40% reduction too often
    (7.0%, MC SE 0.6, in the kit's simulated networks of sites). This test never imputes an
    outcome: like the primary test's interval it holds each group's fit at the hypothesis
    (``tests/test_pool_calibration.py`` gives its rates).

    Parameters
    ----------
    y : ndarray, shape (n,)
    treated, blocks, groups : ndarray, shape (n,)
        The actual assignment, each person's block (the design's wave x stratum) and group.
        Every block must lie within one group (the re-draws never move anyone between groups).
    assignments : ndarray of bool, shape (B, n)
        Re-draws of the design.

    Returns
    -------
    CommonRatioTest
    """
    from scipy import stats

    if (pd.DataFrame({"block": blocks, "group": groups}).groupby("block")["group"].nunique() > 1).any():
        raise ValueError("a block of the design spans two groups; the groups must be unions of blocks")
    draws = np.vstack([treated[None, :], assignments]).astype(float)
    members = [groups == group for group in np.unique(groups)]
    own = [stratified_ratio(y[m], treated[m], blocks[m]) for m in members]
    if not all(np.isfinite(ratio) and ratio > 0 for ratio in own):  # a group's arm without events
        return CommonRatioTest(np.nan, len(members) - 1, np.nan, np.nan, np.nan, np.full(len(members), np.nan))
    low, high = (_grid_index(float(pct(ratio))) for ratio in (max(own), min(own)))
    grid = np.union1d(_SUPREMUM_GRID[(_SUPREMUM_GRID >= low) & (_SUPREMUM_GRID <= high)], [low, high]).astype(int)
    thetas = (1000 - grid) / 1000
    each = [
        _normal_scores(
            _studentised_score(*_score_fit(np.tile(y[m], (thetas.size, 1)), treated[m], blocks[m], thetas), draws[:, m])
        )
        for m in members
    ]
    scores, ranks = np.array([z for z, _ in each]), np.array([u for _, u in each])  # (groups, grid)
    sums = (scores * scores).sum(axis=0)
    best = int(np.argmin(sums))
    q, df = float(sums[best]), len(members) - 1
    z, u = scores[:, best], ranks[:, best]
    # Monte Carlo error: each u is a share of B re-draws; z moves by du / phi(z), Q by 2 z dz.
    spread = np.sqrt((4 * z * z * u * (1 - u) / (assignments.shape[0] * stats.norm.pdf(z) ** 2)).sum())
    return CommonRatioTest(
        chi2=q,
        df=df,
        p_value=float(stats.chi2.sf(q, df)),
        p_mcse=float(stats.chi2.pdf(q, df) * spread) if spread > 0 else 0.0,  # Q = 0: every score exactly 0
        ratio=float(thetas[best]),
        scores=z,
    )


def _draw_sums(y, treated, members, draws) -> list[tuple[np.ndarray, ...]]:
    """What :func:`_heterogeneity` needs from each draw of the design, one tuple per stratum.

    Sums over the actually treated (``a``) and the rest (``c``) of the people a draw treats
    and of those it does not, their sums of squares times the drawn arm's size, one over the
    arm's degrees of freedom, and ``log(n_c / n_t)``; each of shape (D,).
    """
    columns = np.array(
        [
            values
            for mask in members
            for cell in (mask & treated, mask & ~treated)
            for values in (np.where(cell, y, 0.0), np.where(cell, y * y, 0.0))
        ]
    )
    drawn, totals = draws @ columns.T, columns.sum(axis=1)  # (D, 4 per stratum), (4 per stratum,)
    counts = draws @ np.array(members, dtype=float).T  # treated per stratum under each draw
    parts: list[tuple[np.ndarray, ...]] = []
    for number, mask in enumerate(members):
        a, a2, c, c2 = drawn[:, 4 * number : 4 * number + 4].T
        total_a, total_a2, total_c, total_c2 = totals[4 * number : 4 * number + 4]
        n_t = counts[:, number]
        n_c = mask.sum() - n_t
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append(
                (
                    a,
                    c,
                    total_a - a,
                    total_c - c,
                    n_t * a2,
                    n_t * c2,
                    n_c * (total_a2 - a2),
                    n_c * (total_c2 - c2),
                    1 / np.maximum(n_t - 1, 1),
                    1 / np.maximum(n_c - 1, 1),
                    np.log(n_c / n_t),
                )
            )
    return parts


def _heterogeneity(parts, scales):
    """Cochran-type Q of the strata's log ratios of means, for every draw and every hypothesised common ratio.

    Under the hypothesis that the effect is a common ratio ``theta`` in every stratum, each
    person's outcome without treatment is ``y0 = y / theta`` for the treated and ``y`` for the
    controls, and under a draw of the design the people it treats would have had ``theta * y0``.
    Q compares the strata's log ratios, so multiplying every treated outcome by ``theta``
    shifts each log ratio by the same ``log theta`` and leaves Q unchanged: Q depends on
    ``theta`` only through ``scale = 1 / theta`` applied to the actually treated. Each arm's sum
    in a stratum under a draw is then ``scale * a + c`` (``a`` over the actually treated, ``c``
    over the rest), so the draws' sums (:func:`_draw_sums`) serve every ``theta``.

    Parameters
    ----------
    parts : list of tuple of ndarray
        :func:`_draw_sums` of the draws (D of them).
    scales : ndarray, shape (T,)
        ``1 / theta`` for each hypothesised common ratio.

    Returns
    -------
    q : ndarray, shape (T, D)
        ``inf`` where a drawn arm of a stratum has no events (no log ratio).
    log_ratios : ndarray, shape (strata, T, D)
    """
    scale = np.asarray(scales, dtype=float)[:, None]
    squared = scale * scale
    log_ratios, variances = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for a, c, a_rest, c_rest, spread_a, spread_c, spread_a_rest, spread_c_rest, per_t, per_c, sizes in parts:
            sum_t, sum_c = scale * a + c, scale * a_rest + c_rest
            # Each arm's var / (n * mean^2) from sums: max(n * (sum of squares) / sum^2 - 1, 0) / (n - 1).
            cv_t = np.maximum((squared * spread_a + spread_c) / (sum_t * sum_t) - 1, 0) * per_t
            cv_c = np.maximum((squared * spread_a_rest + spread_c_rest) / (sum_c * sum_c) - 1, 0) * per_c
            log_ratios.append(np.log(sum_t / sum_c) + sizes)
            variances.append(cv_t + cv_c)
        if len(parts) == 2:  # Cochran's Q for two strata: the squared studentised difference
            q = (log_ratios[1] - log_ratios[0]) ** 2 / (variances[0] + variances[1])
        else:
            weights = [1 / v for v in variances]
            centre = sum(w * r for w, r in zip(weights, log_ratios)) / sum(weights)
            q = sum(w * (r - centre) ** 2 for w, r in zip(weights, log_ratios))
    return np.where(np.isfinite(q), q, np.inf), np.array(log_ratios)


def _heterogeneity_p_values(y, treated, members, assignments, scales, observed) -> np.ndarray:
    """Randomisation p-values of the observed Q, one per hypothesised ``1 / theta`` in ``scales``.

    The same re-draws serve every ``theta``; they are taken in blocks of hypotheses so that
    the arrays stay small (and in cache) however many hypotheses there are.
    """
    parts = _draw_sums(y, treated, members, assignments.astype(float))
    tolerance = 1e-9 * max(1.0, observed)
    block = max(1, 50_000 // assignments.shape[0])
    extreme = [
        (_heterogeneity(parts, scales[start : start + block])[0] >= observed - tolerance).sum(axis=1)
        for start in range(0, len(scales), block)
    ]
    return (1 + np.concatenate(extreme)) / (assignments.shape[0] + 1)


@one_blas_thread
def interaction_test(
    frame: pd.DataFrame,
    outcome: str,
    *,
    seed: int = 0,
    permutations: int = 2000,
    method: str = "plug-in",
    gamma: float = 0.001,
) -> pd.DataFrame:
    """Does the effect differ between strata? A randomisation test (Ding, Feller & Miratrix 2016).

    The statistic is Cochran's Q of the strata's log ratios of means, each studentised by its
    delta-method variance (with two strata, the squared studentised difference of the two
    log ratios). Its null hypothesis is that the effect is a **common** ratio ``theta`` in
    every stratum (every person's outcome with treatment is ``theta`` times the one without).
    For a given ``theta`` the test is exact: each person's outcome without treatment is imputed
    (treated outcomes divided by ``theta``), the design re-drawn within wave x stratum with
    treated outcomes multiplied back, and Q recomputed; ``p(theta)`` is ``(1 + the number of
    re-draws whose Q is at least the observed) / (re-draws + 1)``. But ``theta`` is unknown,
    and the two methods differ in what they do about it:

    ``"plug-in"`` (the default)
        ``p(theta_hat)`` at the estimated common ratio (the overall ratio of means). It
        ignores the error in ``theta_hat``, so it is not calibrated by construction, but in the
        kit's calibration on the trial's design (harm, 2,000 trials, 2,000 re-draws each;
        ``tests/test_calibration.py``) it rejects a true common effect 5.2% (MC SE 0.5) of the
        time at no effect and 5.6% (0.5) at a common 40% reduction, against 12-14% for the
        Wald test the kit used before.
        It is the default because it holds its level here and has about twice the power.
    ``"supremum"`` (by name; DFM's confidence-set method, their Section 4)
        ``p = min(1, max p(theta) + gamma)``, the maximum over a ``1 - gamma`` confidence set
        for ``theta``: the ratios the kit's ratio-of-means randomisation test
        (:func:`ratio_of_means`, on the same re-draws) does not reject at level ``gamma``, on
        the grid of :func:`invert_on_grid`. ``p(theta)`` is evaluated at the set's two edges
        and at the points of that grid within it spaced by at most 1% of the ratio (or one
        grid step), the same re-draws for every ``theta``. Calibrated by construction: when
        the effect is common, the set holds the true ``theta`` except with probability
        ``gamma``, and then ``p >= p(true theta)``, so it rejects at most ``alpha`` of the time
        (up to the grid). The price is power: it is conservative. In the same calibration it
        rejected a true common effect 1.9% (MC SE 0.3) of the time at no effect and 1.1% (0.2)
        at a common 40% reduction. With fewer than ``2 / gamma`` re-draws the (equal-tailed)
        ratio test can reject nothing, so the set is the whole grid: still valid, more
        conservative, and the note says so. In notebook 07's simulation of 300 trials with a
        real age difference it detected it (p < 0.05) in 3.7% of them for harm and none for
        knife crime, against 10% and 6% for the plug-in test: too cautious to be the default
        at this trial's size.
    ``"profile"`` (by name; the default of the test across sites, :func:`fdkit.pooling.heterogeneity_test`)
        :func:`common_ratio_test`: each stratum's primary score test of a common ratio, its
        observed statistic turned into a normal score within its own re-draws, and ``Q`` the
        smallest sum of their squares over common ratios, referred to chi-squared on strata - 1.
        It imputes no outcome. Across sites it holds its level where the plug-in test does not
        (a common 40% harm reduction: 7.0% for the plug-in); across this trial's two age bands it
        is conservative when the effect on harm is large, so the plug-in stays the default there.

    Parameters
    ----------
    frame : pandas.DataFrame
        The outcome frame (``person_id``, ``arm``, ``stratum``, optional ``wave``, the outcome).
    outcome : str
        The outcome column.
    seed : int
        Seeds the re-draws of the design; rows are sorted by ``person_id`` first.
    permutations : int
        Re-draws of the design (wave x stratum), shared by every ``theta`` and by the
        confidence set.
    method : {"plug-in", "supremum", "profile"}
        See above.
    gamma : float
        ``"supremum"`` only: the confidence set's level is ``1 - gamma`` and ``gamma`` is added
        to the p-value; 0.001 as Ding, Feller & Miratrix recommend.

    Returns
    -------
    pandas.DataFrame
        One row: ``outcome``, ``ratio_of_ratios`` (the second stratum's ratio divided by the
        first's, when there are two), ``chi2`` (the Q statistic), ``df``, ``p_value``,
        ``p_mcse`` (the Monte Carlo SE of the largest ``p(theta)``; for ``"profile"``, of its
        p-value through the groups' normal scores), ``method`` (which test ran) and ``note``.
        When an arm has no events in a stratum the ratios do not exist, and the row says so
        instead of reporting a number.
    """
    if method not in _INTERACTION_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _INTERACTION_METHODS))}; got {method!r}")
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must be between 0 and 1; got {gamma!r}")
    part = frame.sort_values("person_id", ignore_index=True)
    y = part[outcome].to_numpy(dtype=float)
    empty = part.assign(y=y).groupby(["stratum", "arm"])["y"].sum()
    label = {
        "plug-in": "plug-in randomisation test of Q",
        "supremum": f"supremum randomisation test of Q ({100 * (1 - gamma):g}% set)",
        "profile": "randomisation score test of a common ratio, profile Q",
    }[method]
    row = {"outcome": outcome, "method": label, "p_mcse": np.nan}
    if (empty == 0).any() or len(empty) < 2 * part["stratum"].nunique():
        cells = ", ".join(f"{arm} aged {stratum}" for (stratum, arm), total in empty.items() if total == 0)
        return pd.DataFrame(
            [
                {
                    **row,
                    "ratio_of_ratios": np.nan,
                    "chi2": np.nan,
                    "df": np.nan,
                    "p_value": np.nan,
                    "note": f"not estimable: no events among {cells or 'one arm'}",
                }
            ]
        )[_INTERACTION_COLUMNS]
    treated = (part["arm"] == "treatment").to_numpy()
    names = sorted(set(part["stratum"]))
    members = [(part["stratum"] == name).to_numpy() for name in names]
    declared = assignment_design(part)
    assignments = declared.permutation_matrix(permutations, stream(seed, outcome, "interaction"))
    q, log_ratios = _heterogeneity(_draw_sums(y, treated, members, treated[None, :].astype(float)), np.ones(1))
    observed = float(q[0, 0])
    theta = y[treated].mean() / y[~treated].mean()
    note = ""
    ratio_of_ratios = float(np.exp(log_ratios[1, 0, 0] - log_ratios[0, 0, 0])) if len(names) == 2 else np.nan
    if method == "profile":
        found = common_ratio_test(y, treated, declared.blocks, part["stratum"].to_numpy(), assignments)
        return pd.DataFrame(
            [
                {
                    **row,
                    "ratio_of_ratios": ratio_of_ratios,
                    "chi2": found.chi2,
                    "df": found.df,
                    "p_value": found.p_value,
                    "p_mcse": found.p_mcse,
                    "note": note,
                }
            ]
        )[_INTERACTION_COLUMNS]
    if method == "plug-in":
        scales = np.array([1 / theta])
    elif 2 / (permutations + 1) >= gamma:  # the smallest p-value the equal-tailed ratio test can give
        scales = 1000 / (1000 - _SUPREMUM_GRID)
        note = (
            f"{permutations:,} re-draws cannot reject any common ratio at level {gamma:g}, so the p-value is the "
            f"largest over every ratio on the grid (conservative); use at least {int(np.ceil(2 / gamma)):,}"
        )
    else:
        p_at = _ratio_p_at(y, treated, declared.blocks, assignments)
        low, high, _ = invert_on_grid(lambda k: p_at(k) < gamma, _grid_index(float(pct(theta))))
        edges = [k for k in (low, high) if np.isfinite(k)]
        grid = np.union1d(_SUPREMUM_GRID[(_SUPREMUM_GRID >= low) & (_SUPREMUM_GRID <= high)], edges).astype(int)
        scales = 1000 / (1000 - grid)  # 1 / theta at grid point k
    p_values = _heterogeneity_p_values(y, treated, members, assignments, scales, observed)
    largest = float(p_values.max())
    p_value = largest if method == "plug-in" else min(1.0, largest + gamma)
    return pd.DataFrame(
        [
            {
                **row,
                "ratio_of_ratios": ratio_of_ratios,
                "chi2": observed,
                "df": len(names) - 1,
                "p_value": p_value,
                "p_mcse": float(p_value_mcse(largest, permutations, equal_tailed=False)),
                "note": note,
            }
        ]
    )[_INTERACTION_COLUMNS]


_INTERACTION_COLUMNS = ["outcome", "ratio_of_ratios", "chi2", "df", "p_value", "p_mcse", "method", "note"]


@one_blas_thread
def cace(
    frame: pd.DataFrame,
    outcome: str,
    subgroup: str = "all",
    *,
    seed: int = 0,
    resamples: int | None = None,
    permutations: int = PERMUTATIONS,
    alpha: float = 0.05,
) -> Effect:
    """The effect among people who engaged (complier average causal effect), by randomisation.

    One-sided non-compliance: control people cannot receive the intervention, and some
    treated people do not engage. Assuming being offered the intervention does nothing to
    those who never engage (the exclusion restriction):

    - **Estimate**: the stratum-adjusted Wald (2SLS) estimator. In each stratum the
      intention-to-treat difference ``mean_c - mean_t`` is the compliers' reduction times
      the engaged share; strata are weighted by size. The % reduction is the compliers'
      reduction as a share of their estimated untreated mean.
    - **Interval and p-value** (Imbens & Rosenbaum 2005, on the ratio scale): the hypothesis
      "engaging multiplies a person's outcome by ``theta``" makes everyone's untreated outcome
      known (engaged people's divided by ``theta``), so it is tested by the randomisation test of
      no effect (:func:`randomisation_test`) on those outcomes, with the same re-draws as
      :func:`ratio_of_means`. At ``theta = 1``
      that is the intention-to-treat test itself: the CACE is significant exactly when the
      ITT is, and the p-value printed is the ITT's.

    ``resamples`` is accepted for compatibility and unused (the bootstrap interval is gone:
    it disagreed with the ITT test in 7-16% of simulated trials).

    Calibration (2,000 trials of the trial's design, 60-70% engaging, ``tests/test_calibration.py``):
    the interval covers a true 40 or 54% reduction or a 25% increase among the engaged 93.7-95.4%
    of the time, and a 70% reduction 93.5-93.8% for knife and violence but only about 91% for
    crime harm: dividing engaged people's harm by 0.3 makes it far more heavy-tailed than the
    controls', the weakness the primary test's score statistic avoids by not dividing. A known
    shortfall, kept as a test of its own.
    """
    if "engaged" not in frame:
        raise ValueError("the outcome frame has no engagement column; load records with engagement.csv")
    part = subgroup_frame(frame, subgroup)
    y, treated, strata = _arrays(part, outcome)
    engaged = part["engaged"].to_numpy(dtype=bool) & treated
    declared = assignment_design(part)
    assignments = declared.permutation_matrix(permutations, stream(seed, outcome, subgroup, "ratio_of_means"))
    mean_t, mean_c = _means(y, treated)
    base = dict(
        outcome=outcome,
        subgroup=subgroup,
        method="cace",
        n_treated=int(treated.sum()),
        n_control=int((~treated).sum()),
        mean_treated=mean_t,
        mean_control=mean_c,
        interval="inverts the ITT randomisation test (Imbens-Rosenbaum)",
    )
    per_stratum: list[tuple[float, float, float, float]] = []
    for code in np.unique(strata):
        in_stratum = strata == code
        t, c, e = in_stratum & treated, in_stratum & ~treated, in_stratum & engaged
        per_stratum.append(
            (in_stratum.sum(), y[c].mean() - y[t].mean(), e.sum() / t.sum(), y[e].mean() if e.any() else 0.0)
        )
    weights, itt, share, engaged_mean = np.asarray(per_stratum, dtype=float).T
    pi = float(weights @ share / weights.sum())
    note = f"{engaged.sum()} of {treated.sum()} treated engaged (share {engaged.sum() / treated.sum():.2f})"
    if pi == 0:
        return Effect(**base, pct_reduction=np.nan, note=note + "; no one engaged")
    reduction = float(weights @ itt / weights.sum()) / pi
    treated_compliers = float(weights @ (share * engaged_mean) / weights.sum()) / pi
    untreated_compliers = treated_compliers + reduction
    test = randomisation_test(y, treated, declared.blocks, assignments, keep_null=True)
    p_value = float(test.p_value[0])
    common: dict[str, Any] = dict(
        p_value=p_value, p_mcse=float(p_value_mcse(p_value, permutations)), statistic=float(test.observed[0])
    )
    if not untreated_compliers > 0:
        # The compliers' estimated untreated mean is not positive: a % reduction has no meaning.
        return Effect(
            **base,
            pct_reduction=np.nan,
            note=note + "; compliers' estimated untreated mean is not positive",
            **common,
        )
    estimate = 100 * reduction / untreated_compliers
    if y[engaged].sum() == 0:
        low, high, extra = _no_treated_events(p_value, alpha)
        p_at = None
    else:
        p_at = _ratio_p_at(y, treated, declared.blocks, assignments, scaled=engaged)
        low, high, extra = _inverted(p_at, estimate, alpha)
    return Effect(
        **base,
        pct_reduction=estimate,
        ci_low=low,
        ci_high=high,
        note="; ".join(n for n in (note, extra) if n),
        null_distribution=test.null[0] if test.null is not None else None,
        _p_at=p_at,
        **common,
    )


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p, kind="stable")[::-1]
    ranks = len(p) - np.arange(len(p))
    adjusted = np.minimum.accumulate(p[order] * len(p) / ranks)
    result = np.empty_like(p)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def adjust_p_values(table: pd.DataFrame, family: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Add Holm and Benjamini-Hochberg p-values across outcomes, per method and subgroup.

    Sensitivity outcomes (:data:`fdkit.outcomes.SENSITIVITY_OUTCOMES`) re-measure another
    outcome, so they are not part of the family and get no adjusted p-value. Computed directly
    (statsmodels' ``multipletests`` gives the same numbers but triggers a full garbage
    collection on every call, about 2 s per table).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``method``, ``subgroup``, ``p_value`` and (usually) ``outcome``.
    family : tuple of str, optional
        The outcomes adjusted together (a sealed plan's ``multiplicity_family``); the other rows
        get no adjusted p-value. By default every outcome that is not a sensitivity outcome.
    """
    table = table.copy()
    table["p_holm"], table["p_bh"] = np.nan, np.nan
    for _, rows in table.groupby(["method", "subgroup"], sort=False):
        ok = rows["p_value"].notna()
        if "outcome" in rows:
            ok &= ~rows["outcome"].isin(outcome_definitions.SENSITIVITY_OUTCOMES)
            if family is not None:
                ok &= rows["outcome"].isin(family)
        if ok.sum():
            index = rows.index[ok]
            p = rows.loc[ok, "p_value"].to_numpy(dtype=float)
            table.loc[index, "p_holm"] = _holm(p)
            table.loc[index, "p_bh"] = _benjamini_hochberg(p)
    return table


@dataclass(frozen=True)
class Method:
    """One analysis method, as the table, the design diagnosis and the command line know it.

    Attributes
    ----------
    name : str
    run : callable
        ``run(frame, outcome, subgroup, **options) -> Effect``; options it does not take are ignored.
    interval : str
        How its interval is made.
    default : bool
        In :func:`results_table` unless methods are named.
    counts_only : bool
        Only for count outcomes.
    diagnosable : bool
        :func:`fdkit.design.diagnose` can simulate it.
    """

    name: str
    run: Callable[..., Effect]
    interval: str
    default: bool = True
    counts_only: bool = False
    diagnosable: bool = False

    def __call__(self, frame, outcome, subgroup="all", **options) -> Effect:
        accepted = inspect.signature(self.run).parameters  # follows a decorator's __wrapped__
        return self.run(frame, outcome, subgroup, **{k: v for k, v in options.items() if k in accepted})


#: Every method by name: one registry for :func:`results_table`, :func:`fdkit.design.diagnose`
#: and the command line's choices.
REGISTRY: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ratio_of_means", ratio_of_means, "inverts the score randomisation test", diagnosable=True),
        Method("welch_t", welch_t, "Fieller (inverts Welch's t)", default=False, diagnosable=True),
        Method("mann_whitney", mann_whitney, "none", diagnosable=True),
        Method("poisson_robust", poisson_robust, "inverts the randomisation score test", diagnosable=True),
        Method("negative_binomial", negative_binomial, "Wald", default=False, counts_only=True),
    )
}
METHODS = tuple(REGISTRY)
DEFAULT_METHODS = tuple(name for name, method in REGISTRY.items() if method.default)


@one_blas_thread
def results_table(
    frame: pd.DataFrame,
    *,
    outcomes: tuple[str, ...] | None = None,
    methods: tuple[str, ...] = DEFAULT_METHODS,
    subgroups: tuple[str, ...] | None = None,
    seed: int = 0,
    resamples: int = 2000,
    permutations: int = PERMUTATIONS,
    alpha: float = 0.05,
    interval: str = "randomisation",
) -> pd.DataFrame:
    """Every outcome, subgroup and method in one tidy table.

    Parameters
    ----------
    frame : pandas.DataFrame
        The outcome frame (:func:`fdkit.outcomes.build_frame`).
    outcomes : tuple of str, optional
        Default: every outcome in the frame.
    methods : tuple of str
        Any of :data:`METHODS` (default :data:`DEFAULT_METHODS`); count-only methods are
        skipped for harm.
    subgroups : tuple of str, optional
        Default: ``"all"`` and each stratum.
    seed, resamples, permutations, alpha
        For the resampling methods.
    interval : {"randomisation", "bootstrap"}
        The ratio of means' interval (see :func:`ratio_of_means`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS` plus ``note``. ``interval`` names how each interval
        was made; ``p_mcse`` is each p-value's Monte Carlo SE.
    """
    outcomes = outcomes or tuple(o for o in outcome_definitions.OUTCOME_NAMES if o in frame)
    subgroups = subgroups or ("all", *sorted(set(frame["stratum"])))
    frame = frame.sort_values("person_id", ignore_index=True)  # once, not per method
    if unknown := set(methods) - set(REGISTRY):
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    options = dict(seed=seed, resamples=resamples, permutations=permutations, alpha=alpha, interval=interval)
    rows = []
    for subgroup in subgroups:
        for outcome in outcomes:
            for name in methods:
                method = REGISTRY[name]
                if method.counts_only and outcome_definitions.get(outcome).measure != "count":
                    continue
                rows.append(method(frame, outcome, subgroup, **options).row())
    table = adjust_p_values(pd.DataFrame(rows))
    return table[[*RESULT_COLUMNS, "note"]]
