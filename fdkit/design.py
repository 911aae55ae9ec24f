"""Simulated trials from the synthetic world, for checking methods and planning replications.

Calibration and power need many trials whose truth is known. Generating a whole town per
simulated trial would be slow, so the kit uses a documented reduced form of
:mod:`fdkit.synth`:

1. **A superpopulation of eligible episodes.** A few synthetic towns are generated with
   :func:`fdkit.synth.generate` (no treatment) and screened with the trial's rule on a run
   of monthly reference dates. Each (person, reference date) pair that is eligible is an
   *episode*, carrying the person's stratum, baseline outcomes (24 months before) and every
   event of their follow-up year.
2. **A simulated trial** draws its cohort from the episodes, stratum by stratum, with
   replacement; the first ``treated[s]`` people of each stratum are treated (the draw is
   random, so fixed positions are a random allocation).
3. **True effects** are applied to treated people exactly as in :func:`fdkit.synth.follow_up`:
   each follow-up event is kept with the probability :class:`fdkit.synth.Effects` gives it
   (and, with an engagement rate, only for those who engage).

Episodes drawn at one screening date resemble the shipped trial's cohort; the test suite
checks that the superpopulation's outcome means agree with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import eligibility, offences, outcomes, synth
from ._dates import add_months


@dataclass(frozen=True)
class Superpopulation:
    """Eligible episodes and their follow-up events (see the module docstring).

    Attributes
    ----------
    episodes : pandas.DataFrame
        One row per episode: ``person_id``, ``town`` (the seed it came from), ``reference_date``,
        ``stratum``, ``<outcome>_baseline`` and ``<outcome>`` (the untreated follow-up).
    event_episode : ndarray of int
        For each follow-up event, the row of ``episodes`` it belongs to (sorted).
    event_values : ndarray, shape (events, outcomes)
        What each event adds to each outcome (:func:`fdkit.outcomes.event_values`).
    event_role, event_group, event_code, event_knife : ndarray
        What :meth:`fdkit.synth.Effects.keep_probability` needs.
    event_decider : ndarray of int
        For each event, the event that decides whether it survives treatment: the first row
        of its crime for that episode (the suspect row where the person is both suspect and
        victim), as in :func:`fdkit.synth.follow_up`.
    """

    episodes: pd.DataFrame
    event_episode: np.ndarray
    event_values: np.ndarray
    event_role: np.ndarray
    event_group: np.ndarray
    event_code: np.ndarray
    event_knife: np.ndarray
    event_decider: np.ndarray

    @property
    def outcome_names(self) -> tuple[str, ...]:
        return outcomes.OUTCOME_NAMES


def build_superpopulation(
    scenario: synth.Scenario | None = None,
    *,
    towns: tuple[int, ...] = (1, 2, 3),
    reference_dates: tuple[str, ...] = ("2021-02-01", "2021-08-01", "2022-02-01", "2022-08-01", "2023-02-01"),
    follow_up_months: int = 12,
) -> Superpopulation:
    """Screen several synthetic towns on several dates and keep every eligible episode.

    Parameters
    ----------
    scenario : fdkit.synth.Scenario, optional
        The default Milton-Keynes-like scenario if omitted.
    towns : tuple of int
        Seeds of the towns to generate.
    reference_dates : tuple of str
        Screening dates; each needs 24 months of records before it and ``follow_up_months``
        after it inside the scenario's window.
    follow_up_months : int

    Returns
    -------
    Superpopulation
    """
    from .randomise import Allocation

    scenario = synth.load_scenario() if scenario is None else scenario
    frames, events = [], []
    for town in towns:
        records = synth.generate(scenario, seed=town).records
        for day in reference_dates:
            eligible = eligibility.screen(records, day).eligible
            table = pd.DataFrame(
                {
                    "person_id": eligible["person_id"],
                    "stratum": eligible["age_band"],
                    "arm": "control",
                    "wave": 1,
                    "randomised_on": pd.Timestamp(day),
                }
            )
            frame = outcomes.build_frame(records, Allocation(table=table), follow_up_months=follow_up_months)
            frame["town"], frame["reference_date"] = town, pd.Timestamp(day)
            frames.append(frame)
            start, end = pd.Timestamp(day), add_months(pd.Timestamp(day), follow_up_months)
            mine = records.events[
                records.events["person_id"].isin(eligible["person_id"])
                & (records.events["offence_date"] >= start)
                & (records.events["offence_date"] < end)
            ]
            events.append(mine.assign(town=town, reference_date=start))
    episodes = pd.concat(frames, ignore_index=True)
    columns = ["person_id", "town", "reference_date", "stratum"] + [
        c for o in outcomes.OUTCOME_NAMES for c in (f"{o}_baseline", o)
    ]
    episodes = episodes[columns]
    index = episodes.reset_index().set_index(["town", "reference_date", "person_id"])["index"]
    follow = pd.concat(events, ignore_index=True)
    follow["episode"] = index.reindex(
        pd.MultiIndex.from_frame(follow[["town", "reference_date", "person_id"]])
    ).to_numpy()
    follow = follow.sort_values(["episode", "crime_id", "role"], ignore_index=True)
    classified = offences.classify(follow.drop(columns=["town", "reference_date", "episode"]))
    values = outcomes.event_values(follow.drop(columns=["town", "reference_date", "episode"]))
    return Superpopulation(
        episodes=episodes,
        event_episode=follow["episode"].to_numpy(dtype=np.int64),
        event_values=values[list(outcomes.OUTCOME_NAMES)].to_numpy(),
        event_role=classified["role"].to_numpy(dtype=str),
        event_group=classified["group"].to_numpy(dtype=str),
        event_code=classified["offence_code"].to_numpy(dtype=str),
        event_knife=classified["knife_involved"].to_numpy(dtype=bool),
        event_decider=np.arange(len(follow))
        - follow.groupby(["episode", "crime_id"], sort=False).cumcount().to_numpy(),
    )


@dataclass(frozen=True)
class SimulatedTrials:
    """Many simulated trials of one design, as arrays.

    Attributes
    ----------
    follow_up : dict of str to ndarray, shape (sims, n)
        Each outcome's follow-up value for every person of every trial.
    baseline : dict of str to ndarray, shape (sims, n)
    treated : ndarray of bool, shape (n,)
    strata : ndarray of int, shape (n,)
        Integer stratum codes (sorted stratum names).
    stratum_names : tuple of str
    """

    follow_up: dict[str, np.ndarray]
    baseline: dict[str, np.ndarray]
    treated: np.ndarray
    strata: np.ndarray
    stratum_names: tuple[str, ...]

    def frame(self, sim: int) -> pd.DataFrame:
        """One simulated trial as an outcome frame that :mod:`fdkit.analysis` accepts."""
        n = self.treated.size
        data = {
            "person_id": [f"S{i:05d}" for i in range(n)],
            "arm": np.where(self.treated, "treatment", "control"),
            "stratum": np.array(self.stratum_names)[self.strata],
        }
        for name in self.follow_up:
            data[f"{name}_baseline"] = self.baseline[name][sim]
            data[name] = self.follow_up[name][sim]
        return pd.DataFrame(data)


def simulate_trials(
    population: Superpopulation,
    size: dict[str, tuple[int, int]],
    *,
    sims: int,
    seed: int,
    effects: dict[str, synth.Effects] | synth.Effects | None = None,
    engagement: dict[str, float] | None = None,
    outcomes: tuple[str, ...] | None = None,
) -> SimulatedTrials:
    """Draw simulated trials from the superpopulation and apply true effects.

    Parameters
    ----------
    population : Superpopulation
    size : dict of stratum to (n_treated, n_control)
        E.g. the Milton Keynes design, ``{"11-17": (20, 44), "18-25": (25, 59)}``.
    sims : int
    seed : int
    effects : Effects or dict of stratum to Effects, optional
        True effects on treated people's follow-up events; none if omitted.
    engagement : dict of stratum to float, optional
        If given, effects reach only treated people who engage (drawn at these rates).
    outcomes : tuple of str, optional
        Simulate only these outcomes (all by default); large designs need much less memory.

    Returns
    -------
    SimulatedTrials
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4]))
    names = tuple(sorted(size))
    episodes = population.episodes
    picks, treated, strata = [], [], []
    for code, stratum in enumerate(names):
        n_treated, n_control = size[stratum]
        pool = np.flatnonzero(episodes["stratum"].to_numpy() == stratum)
        if pool.size == 0:
            raise ValueError(f"the superpopulation has no episodes in stratum {stratum!r}")
        picks.append(pool[rng.integers(0, pool.size, size=(sims, n_treated + n_control))])
        treated.append(np.r_[np.ones(n_treated, bool), np.zeros(n_control, bool)])
        strata.append(np.full(n_treated + n_control, code))
    chosen = np.concatenate(picks, axis=1)  # (sims, n) episode rows
    treated, strata = np.concatenate(treated), np.concatenate(strata)
    wanted = population.outcome_names if outcomes is None else tuple(outcomes)
    follow_up = {o: episodes[o].to_numpy(dtype=float)[chosen] for o in wanted}
    baseline = {o: episodes[f"{o}_baseline"].to_numpy(dtype=float)[chosen] for o in wanted}
    if effects is not None:
        _apply_effects(population, chosen, treated, strata, names, effects, engagement, follow_up, rng)
    return SimulatedTrials(follow_up, baseline, treated, strata, names)


def _apply_effects(population, chosen, treated, strata, names, effects, engagement, follow_up, rng) -> None:
    """Thin the treated people's follow-up events, as :func:`fdkit.synth.follow_up` does."""
    sims, n = chosen.shape
    starts = np.searchsorted(population.event_episode, np.arange(len(population.episodes)))
    ends = np.searchsorted(population.event_episode, np.arange(len(population.episodes)), side="right")
    for code, stratum in enumerate(names):
        spec = effects[stratum] if isinstance(effects, dict) else effects
        keep = spec.keep_probability(
            population.event_role, population.event_group, population.event_code, population.event_knife
        )
        columns = np.flatnonzero(treated & (strata == code))
        sim_index, column = np.meshgrid(np.arange(sims), columns, indexing="ij")
        sim_index, column = sim_index.ravel(), column.ravel()
        if engagement is not None:
            engaged = rng.random(sim_index.size) < engagement[stratum]
            sim_index, column = sim_index[engaged], column[engaged]
        episode = chosen[sim_index, column]
        lengths = ends[episode] - starts[episode]
        owner = np.repeat(np.arange(episode.size), lengths)
        offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        event = np.repeat(starts[episode], lengths) + offset
        # One draw per crime: every row of a crime uses the draw of the row that decides it.
        draws = rng.random(event.size)
        decider = population.event_decider[event]
        removed = draws[np.arange(event.size) - (event - decider)] >= keep[decider]
        for k, name in enumerate(population.outcome_names):
            if name not in follow_up:
                continue
            loss = population.event_values[event[removed], k]
            np.subtract.at(follow_up[name], (sim_index[owner[removed]], column[owner[removed]]), loss)


# ------------------------------------------------------------------ design diagnosis

#: The Milton Keynes design: (treated, control) per age band; the control sizes are the
#: shipped synthetic trial's, since the real control group's size was not published.
MILTON_KEYNES = {"11-17": (20, 44), "18-25": (25, 59)}
DIAGNOSIS_METHODS = ("ratio_of_means", "welch_t", "mann_whitney")


@dataclass(frozen=True)
class Design:
    """A trial design to diagnose by simulation (DeclareDesign's idea: declare, then diagnose).

    Attributes
    ----------
    size : dict of stratum to (n_treated, n_control)
    reduction : float
        The true % reduction: every treated person's follow-up events (as suspect and as
        victim) are kept with probability ``1 - reduction/100``, so every outcome's expected
        ratio of means is ``1 - reduction/100``.
    outcome : str
        The outcome analysed (crime harm as a suspect by default).
    methods : tuple of str
        Any of :data:`DIAGNOSIS_METHODS`; ``ratio_of_means`` is the primary analysis.
    permutations, resamples : int
        Re-draws for the randomisation test and bootstrap resamples.
    interval : {"randomisation", "bootstrap"}
        Which interval of the ratio of means to assess for coverage.
    alpha : float
    """

    size: dict
    reduction: float = 0.0
    outcome: str = "harm_suspect"
    methods: tuple[str, ...] = ("ratio_of_means",)
    permutations: int = 1000
    resamples: int = 1000
    interval: str = "randomisation"
    alpha: float = 0.05

    @property
    def true_ratio(self) -> float:
        return 1 - self.reduction / 100

    def effects(self):
        if not 0 <= self.reduction <= 100:
            raise ValueError(f"reduction must be a percentage from 0 to 100; got {self.reduction}")
        return (
            None
            if self.reduction == 0
            else synth.Effects(suspect={"*": self.true_ratio}, victim={"*": self.true_ratio})
        )


def diagnose(design_: Design, population: Superpopulation, *, sims: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Simulate many trials of a design and summarise how each method performs.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``n_treated``, ``n_control``, ``reduction`` (true,
        %), ``mean_estimate``, ``power`` (share with p < alpha), ``bias`` and ``rmse`` (of the
        % reduction), ``coverage`` (share of intervals containing the truth; missing for
        Mann-Whitney, which gives none), ``type_s`` (among significant results, the share with
        the wrong sign) and ``type_m`` (among significant results, mean |estimate| / |truth|:
        the exaggeration ratio, on the % reduction scale, where a significant *increase* can
        be far larger in size than any reduction, so at small sizes it can be large). Type S
        and M are missing when the true reduction is 0. Every method is scored on the same
        estimate, the ratio of means; the methods differ in their p-values and intervals.
    """
    from scipy import stats

    from . import analysis

    trials = simulate_trials(
        population, design_.size, sims=sims, seed=seed, effects=design_.effects(), outcomes=(design_.outcome,)
    )
    y = trials.follow_up[design_.outcome]
    treated = trials.treated
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 5]))
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = 100 * (1 - y[:, treated].mean(axis=1) / y[:, ~treated].mean(axis=1))
    for method in design_.methods:
        if method == "ratio_of_means":
            assignments = analysis.permutation_assignments(treated, trials.strata, design_.permutations, rng)
            counts = (
                analysis.bootstrap_counts(treated, trials.strata, design_.resamples, rng)
                if design_.interval == "bootstrap"
                else np.ones((1, treated.size), dtype=np.int32)
            )
            core = analysis.ratio_of_means_core(y, treated, trials.strata, assignments, counts, design_.alpha)
            p_value = core["p_value"]
            if design_.interval == "bootstrap":
                covered = (core["ci_low"] <= design_.true_ratio) & (core["ci_high"] >= design_.true_ratio)
            else:  # the randomisation interval contains the truth exactly when the test at the truth does not reject
                scaled = y.copy()
                scaled[:, treated] /= max(design_.true_ratio, 1e-12)
                covered = (
                    analysis.ratio_of_means_core(scaled, treated, trials.strata, assignments, counts, design_.alpha)[
                        "p_value"
                    ]
                    >= design_.alpha
                )
        elif method == "welch_t":
            test = stats.ttest_ind(y[:, treated], y[:, ~treated], axis=1, equal_var=False)
            p_value = np.nan_to_num(test.pvalue, nan=1.0)
            low, high = test.confidence_interval(1 - design_.alpha)
            true_difference = _expected_difference(population, design_)
            covered = (low <= true_difference) & (high >= true_difference)
        elif method == "mann_whitney":
            p_value = stats.mannwhitneyu(y[:, treated], y[:, ~treated], axis=1, alternative="two-sided").pvalue
            p_value = np.nan_to_num(p_value, nan=1.0)
            covered = np.full(sims, np.nan)
        else:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(DIAGNOSIS_METHODS)}")
        rows.append(_summary(method, design_, estimate, p_value, covered))
    return pd.DataFrame(rows)


def _expected_difference(population: Superpopulation, design_: Design) -> float:
    """The design's true difference in means: the superpopulation's stratum means, weighted by arm."""
    means = population.episodes.groupby("stratum")[design_.outcome].mean()
    n_t = sum(t for t, _ in design_.size.values())
    n_c = sum(c for _, c in design_.size.values())
    treated = sum(means[s] * t for s, (t, _) in design_.size.items()) / n_t
    control = sum(means[s] * c for s, (_, c) in design_.size.items()) / n_c
    return design_.true_ratio * treated - control


def _summary(method, design_, estimate, p_value, covered) -> dict:
    significant = p_value < design_.alpha
    finite = np.isfinite(estimate)
    truth = design_.reduction
    chosen = estimate[significant & finite]
    return {
        "method": method,
        "n_treated": sum(t for t, _ in design_.size.values()),
        "n_control": sum(c for _, c in design_.size.values()),
        "reduction": truth,
        "mean_estimate": float(np.mean(estimate[finite])),
        "power": float(np.mean(significant)),
        "bias": float(np.mean(estimate[finite]) - truth),
        "rmse": float(np.sqrt(np.mean((estimate[finite] - truth) ** 2))),
        "coverage": float(np.nanmean(covered)) if not np.all(np.isnan(covered.astype(float))) else np.nan,
        "type_s": float(np.mean(np.sign(chosen) != np.sign(truth))) if truth and chosen.size else np.nan,
        "type_m": float(np.mean(np.abs(chosen)) / abs(truth)) if truth and chosen.size else np.nan,
    }


def split_size(n_treated: int, n_control: int, like: dict = MILTON_KEYNES) -> dict:
    """Share totals across strata in the proportions of a reference design (the trial's by default)."""
    names = sorted(like)
    shares_t = np.array([like[s][0] for s in names], float)
    shares_c = np.array([like[s][1] for s in names], float)

    def share(total, weights):
        raw = total * weights / weights.sum()
        counts = np.floor(raw).astype(int)
        counts[np.argsort(raw - counts)[::-1][: total - counts.sum()]] += 1  # largest remainders
        return counts

    treated, control = share(n_treated, shares_t), share(n_control, shares_c)
    return {s: (int(t), int(c)) for s, t, c in zip(names, treated, control)}


def power_curve(
    population: Superpopulation,
    sizes: list[tuple[int, int]],
    reductions: list[float],
    *,
    sims: int = 1000,
    seed: int = 0,
    progress: bool | Callable[..., None] = False,
    **options,
) -> pd.DataFrame:
    """Diagnose every combination of total sizes (n_treated, n_control) and true reductions.

    Sizes are split across strata in the trial's proportions (:func:`split_size`). Extra
    keyword arguments go to :class:`Design`. Returns the rows of :func:`diagnose`, stacked.
    ``progress`` may be True (a line on a terminal's stderr) or a callable, called as
    ``progress(number, total, label)`` as design ``number`` (from 1) starts, and as
    ``progress(total, total, "done", final=True)`` at the end.
    """
    report = progress if callable(progress) else _report_progress
    rows = []
    combinations = [(size, reduction) for size in sizes for reduction in reductions]
    for number, ((n_treated, n_control), reduction) in enumerate(combinations, 1):
        if progress:
            report(number, len(combinations), f"{n_treated}+{n_control}, {reduction:g}% reduction")
        spec = Design(size=split_size(n_treated, n_control), reduction=reduction, **options)
        # Each point's seed depends on the point itself, so adding points to a curve changes no other.
        point_seed = int(
            np.random.SeedSequence([int(seed), n_treated, n_control, int(round(reduction * 1000))]).generate_state(1)[0]
        )
        rows.append(diagnose(spec, population, sims=sims, seed=point_seed))
    if progress:
        report(len(combinations), len(combinations), "done", final=True)
    return pd.concat(rows, ignore_index=True)


def mdes(
    population: Superpopulation,
    size: dict,
    *,
    power: float = 0.8,
    sims: int = 1000,
    seed: int = 0,
    tolerance: float = 1.0,
    **options,
) -> float:
    """The smallest true % reduction the primary analysis detects with the given power.

    Found by bisection on the reduction (to within ``tolerance`` points), each step a
    diagnosis with ``sims`` simulated trials and the same seed, so the power curve being
    searched is smooth. Returns ``nan`` if even a 100% reduction falls short.
    """

    def power_at(reduction):
        spec = Design(size=size, reduction=reduction, methods=("ratio_of_means",), **options)
        return diagnose(spec, population, sims=sims, seed=seed)["power"].iloc[0]

    low, high = 0.0, 100.0
    if power_at(high) < power:
        return float("nan")
    while high - low > tolerance:
        middle = (low + high) / 2
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return round(float(high), 1)


def _report_progress(done: int, total: int, label: str, final: bool = False) -> None:
    import sys

    if sys.stderr.isatty():
        end = "\n" if final else ""
        print(f"\r  [{done}/{total}] {label:<40}", end=end, file=sys.stderr, flush=True)
