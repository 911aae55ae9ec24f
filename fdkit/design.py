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

**Built once.** Building the superpopulation screens three towns on five dates (about 10 s),
so it is cached: in memory for the session and on disk (``$FDKIT_CACHE_DIR``, else
``~/.cache/fdkit``), keyed by a hash of the scenario, the build's arguments and the source of
every module and data file that shapes it. A changed scenario or kit rebuilds it.

**Diagnosis like DeclareDesign.** :func:`diagnose` reports power, bias, RMSE, coverage, type S
and type M, each with its Monte Carlo standard error (``*_se`` columns), for the methods of
:data:`fdkit.analysis.REGISTRY` that can be simulated.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import eligibility, offences, outcomes, synth
from ._blas import one_blas_thread
from ._dates import add_months
from .randomise import AssignmentDesign

__all__ = [
    "CALIBRATION_REDUCTIONS",
    "DIAGNOSANDS",
    "DIAGNOSIS_METHODS",
    "Design",
    "MILTON_KEYNES",
    "SimulatedTrials",
    "SitesDesign",
    "Superpopulation",
    "build_superpopulation",
    "cache_dir",
    "calibration_table",
    "diagnose",
    "diagnose_sites",
    "mdes",
    "mdes_sites",
    "power_curve",
    "simulate_site_trials",
    "simulate_trials",
    "split_size",
]


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


_DEFAULT_DATES = ("2021-02-01", "2021-08-01", "2022-02-01", "2022-08-01", "2023-02-01")
_CACHE_FORMAT = 1
_MEMORY: dict[str, Superpopulation] = {}
#: Modules and data whose source shapes the superpopulation: any change rebuilds the cache.
_SOURCES = ("synth.py", "eligibility.py", "outcomes.py", "offences.py", "harm.py", "design.py", "_dates.py")


def cache_dir() -> Path:
    """Where built superpopulations are kept: ``$FDKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/fdkit``."""
    if folder := os.environ.get("FDKIT_CACHE_DIR"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fdkit"


def _cache_key(scenario: synth.Scenario, towns, reference_dates, follow_up_months) -> str:
    digest = hashlib.sha256()
    digest.update(repr((_CACHE_FORMAT, scenario, tuple(towns), tuple(reference_dates), follow_up_months)).encode())
    package = Path(__file__).parent
    for name in _SOURCES:
        digest.update((package / name).read_bytes())
    for data in sorted((package / "data").rglob("*")):
        if data.is_file():
            digest.update(data.name.encode() + data.read_bytes())
    return digest.hexdigest()[:24]


def _save(population: Superpopulation, path: Path) -> None:
    """Write the arrays atomically (temporary file in the same folder, fsync, rename)."""
    episodes = population.episodes
    arrays = {f"episodes.{c}": episodes[c].to_numpy() for c in episodes.columns if c not in ("person_id", "stratum")}
    arrays["episodes.person_id"] = episodes["person_id"].to_numpy(dtype=str)
    arrays["episodes.stratum"] = episodes["stratum"].to_numpy(dtype=str)
    arrays["episodes.reference_date"] = episodes["reference_date"].to_numpy(dtype="datetime64[ns]")
    for name in _EVENT_FIELDS:
        arrays[name] = getattr(population, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, columns=np.array(list(episodes.columns)), **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _load(path: Path) -> Superpopulation:
    with np.load(path, allow_pickle=False) as stored:
        columns = [str(c) for c in stored["columns"]]
        episodes = pd.DataFrame({c: stored[f"episodes.{c}"] for c in columns})
        episodes["person_id"] = episodes["person_id"].astype(str)
        episodes["stratum"] = episodes["stratum"].astype(str)
        return Superpopulation(episodes=episodes, **{name: stored[name] for name in _EVENT_FIELDS})


_EVENT_FIELDS = (
    "event_episode",
    "event_values",
    "event_role",
    "event_group",
    "event_code",
    "event_knife",
    "event_decider",
)


def build_superpopulation(
    scenario: synth.Scenario | None = None,
    *,
    towns: tuple[int, ...] = (1, 2, 3),
    reference_dates: tuple[str, ...] = _DEFAULT_DATES,
    follow_up_months: int = 12,
    cache: bool = True,
) -> Superpopulation:
    """Screen several synthetic towns on several dates and keep every eligible episode.

    Built once per scenario and kit version: with ``cache=True`` the result is kept in
    memory and on disk (:func:`cache_dir`), keyed by a hash of everything that shapes it, and
    later calls load it (well under a second instead of about 10 s). An unreadable or
    unwritable cache is ignored, never trusted: the superpopulation is then simply rebuilt.
    """
    scenario = synth.load_scenario() if scenario is None else scenario
    if not cache:
        return _build_superpopulation(scenario, towns, reference_dates, follow_up_months)
    key = _cache_key(scenario, towns, reference_dates, follow_up_months)
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / f"superpopulation-{key}.npz"
    population = None
    if path.is_file():
        try:
            population = _load(path)
        except (OSError, ValueError, KeyError):
            population = None
    if population is None:
        population = _build_superpopulation(scenario, towns, reference_dates, follow_up_months)
        try:
            _save(population, path)
        except OSError:
            pass  # a read-only home: work without the disk cache
    _MEMORY[key] = population
    return population


def _build_superpopulation(scenario, towns, reference_dates, follow_up_months) -> Superpopulation:
    """Build the superpopulation (see :func:`build_superpopulation`).

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
    assignment : fdkit.randomise.AssignmentDesign
        The declared design ``treated`` was conducted from; analyses re-draw from it.
    engaged : ndarray of bool, shape (sims, n), optional
        Who engaged (treated people only), when trials were simulated with engagement rates.
    """

    follow_up: dict[str, np.ndarray]
    baseline: dict[str, np.ndarray]
    treated: np.ndarray
    strata: np.ndarray
    stratum_names: tuple[str, ...]
    assignment: AssignmentDesign | None = field(default=None, repr=False)
    engaged: np.ndarray | None = field(default=None, repr=False)

    def redraws(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Re-draws of the declared design for randomisation inference: (count, n) booleans."""
        if self.assignment is None:
            raise ValueError("these simulated trials carry no declared assignment to re-draw")
        return self.assignment.permutation_matrix(count, rng)

    def frame(self, sim: int) -> pd.DataFrame:
        """One simulated trial as an outcome frame that :mod:`fdkit.analysis` accepts."""
        n = self.treated.size
        data = {
            "person_id": [f"S{i:05d}" for i in range(n)],
            "arm": np.where(self.treated, "treatment", "control"),
            "stratum": np.array(self.stratum_names)[self.strata],
        }
        if self.engaged is not None:
            data["engaged"] = self.engaged[sim]
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
    picks, labels = [], []
    for stratum in names:
        n_treated, n_control = size[stratum]
        pool = np.flatnonzero(episodes["stratum"].to_numpy() == stratum)
        if pool.size == 0:
            raise ValueError(f"the superpopulation has no episodes in stratum {stratum!r}")
        picks.append(pool[rng.integers(0, pool.size, size=(sims, n_treated + n_control))])
        labels.extend([stratum] * (n_treated + n_control))
    chosen = np.concatenate(picks, axis=1)  # (sims, n) episode rows, drawn independently
    # The same declared design as an allocation: exact treated places per stratum.
    assignment = AssignmentDesign.declare(labels, {s: size[s][0] for s in names})
    treated = assignment.conduct(seed=int(seed))
    strata = assignment.blocks
    wanted = population.outcome_names if outcomes is None else tuple(outcomes)
    follow_up = {o: episodes[o].to_numpy(dtype=float)[chosen] for o in wanted}
    baseline = {o: episodes[f"{o}_baseline"].to_numpy(dtype=float)[chosen] for o in wanted}
    engaged = None
    if effects is not None:
        engaged = _apply_effects(population, chosen, treated, strata, names, effects, engagement, follow_up, rng)
    return SimulatedTrials(follow_up, baseline, treated, strata, names, assignment, engaged)


def _apply_effects(
    population, chosen, treated, strata, names, effects, engagement, follow_up, rng
) -> np.ndarray | None:
    """Thin (or, for multipliers above 1, repeat) the treated people's follow-up events.

    Thinning is what :func:`fdkit.synth.follow_up` does to records; a multiplier ``m`` above 1
    repeats each crime ``floor(m)`` or ``floor(m) + 1`` times, ``m`` on average, so a design can
    also be checked under a true increase.
    """
    sims, n = chosen.shape
    engaged_people = np.zeros((sims, n), dtype=bool) if engagement is not None else None
    starts = np.searchsorted(population.event_episode, np.arange(len(population.episodes)))
    ends = np.searchsorted(population.event_episode, np.arange(len(population.episodes)), side="right")
    for code, stratum in enumerate(names):
        spec = effects[stratum] if isinstance(effects, dict) else effects
        keep = spec.keep_probability(
            population.event_role, population.event_group, population.event_code, population.event_knife
        )
        columns = np.flatnonzero(treated & (strata == code))
        sim_grid, column_grid = np.meshgrid(np.arange(sims), columns, indexing="ij")
        sim_index, column = sim_grid.ravel(), column_grid.ravel()
        if engaged_people is not None:
            engaged = rng.random(sim_index.size) < engagement[stratum]
            sim_index, column = sim_index[engaged], column[engaged]
            engaged_people[sim_index, column] = True
        episode = chosen[sim_index, column]
        lengths = ends[episode] - starts[episode]
        owner = np.repeat(np.arange(episode.size), lengths)
        offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        event = np.repeat(starts[episode], lengths) + offset
        # One draw per crime: every row of a crime uses the draw of the row that decides it.
        draws = rng.random(event.size)
        decider = population.event_decider[event]
        multiplier = keep[decider]
        # An event happens floor(m) + Bernoulli(m - floor(m)) times: kept with probability m when
        # m < 1 (thinning), repeated when m > 1 (an increase); on average m times either way.
        happens = np.floor(multiplier) + (draws[np.arange(event.size) - (event - decider)] < multiplier % 1)
        changed = happens != 1
        for k, name in enumerate(population.outcome_names):
            if name not in follow_up:
                continue
            change = (happens[changed] - 1) * population.event_values[event[changed], k]
            np.add.at(follow_up[name], (sim_index[owner[changed]], column[owner[changed]]), change)
    return engaged_people


# ------------------------------------------------------------------ design diagnosis

#: The Milton Keynes design: (treated, control) per age band; the control sizes are the
#: shipped synthetic trial's, since the real control group's size was not published.
MILTON_KEYNES = {"11-17": (20, 44), "18-25": (25, 59)}
#: The methods :func:`diagnose` can simulate: those of the analysis registry marked diagnosable.
DIAGNOSIS_METHODS = ("ratio_of_means", "welch_t", "mann_whitney", "poisson_robust")
#: What :func:`diagnose` reports for each method; each has a Monte Carlo SE column ``<name>_se``.
DIAGNOSANDS = ("power", "reject_reduction", "reject_increase", "bias", "rmse", "coverage", "type_s", "type_m")
#: The true effects the kit's calibration table checks (% reduction; negative is an increase): no
#: effect, 40% (a planning target), 54% (the trial's headline), 70% (its under-18 harm figure) and a
#: 25% increase.
CALIBRATION_REDUCTIONS = (0.0, 40.0, 54.0, 70.0, -25.0)


@dataclass(frozen=True)
class Design:
    """A trial design to diagnose by simulation (DeclareDesign's idea: declare, then diagnose).

    Attributes
    ----------
    size : dict of stratum to (n_treated, n_control)
    reduction : float
        The true % reduction; negative for an increase. Every treated person's follow-up crimes
        (as suspect and as victim) happen ``1 - reduction/100`` times as often: each is kept with
        that probability for a reduction, repeated for an increase (:func:`simulate_trials`), so
        every outcome's expected ratio of means is ``1 - reduction/100``. Not a constant
        multiple of each person's outcome: the intervention prevents some crimes and not others.
    outcome : str
        The outcome analysed (crime harm as a suspect by default).
    methods : tuple of str
        Any of :data:`DIAGNOSIS_METHODS`; ``ratio_of_means`` is the primary analysis.
    permutations, resamples : int
        Re-draws for the randomisation tests and bootstrap resamples.
    interval : {"randomisation", "bootstrap"}
        Which interval of the ratio of means to assess for coverage: by default the one
        ``fdkit analyse`` prints, which inverts the test.
    statistic : {"score", "studentised", "difference"}
        The ratio of means' randomisation statistic (:func:`fdkit.analysis.randomisation_test`).
    alpha : float
    """

    size: dict
    reduction: float = 0.0
    outcome: str = "harm_suspect"
    methods: tuple[str, ...] = ("ratio_of_means",)
    permutations: int = 1000
    resamples: int = 1000
    interval: str = "randomisation"
    statistic: str = "score"
    alpha: float = 0.05

    @property
    def true_ratio(self) -> float:
        return 1 - self.reduction / 100

    def effects(self):
        if not -900 <= self.reduction <= 100:
            raise ValueError(
                f"reduction must be a percentage from -900 (ten times as much crime) to 100; got {self.reduction}"
            )
        return (
            None
            if self.reduction == 0
            else synth.Effects(suspect={"*": self.true_ratio}, victim={"*": self.true_ratio})
        )


@dataclass(frozen=True)
class _Verdicts:
    """Each simulated trial's p-value, the sign of its statistic (-1: fewer events among the
    treated) and whether its interval holds the truth (nan where a method gives no interval)."""

    p_value: np.ndarray
    direction: np.ndarray
    covered: np.ndarray


@one_blas_thread
def diagnose(design_: Design, population: Superpopulation, *, sims: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Simulate many trials of a design and summarise how each method performs.

    Every method is scored on the same estimate, the ratio of means; the methods differ in
    their p-values and intervals. Coverage is that of the interval each method prints
    (for an interval that inverts a test: whether the test at the true ratio does not reject,
    which is exactly whether the inverted interval contains it).

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``n_treated``, ``n_control``, ``reduction`` (true,
        %), ``mean_estimate``, ``sims``, then each of :data:`DIAGNOSANDS` followed by its
        Monte Carlo standard error (``power_se`` ...). ``power`` is the share with
        p < alpha, and ``reject_reduction`` and ``reject_increase`` split it by direction: a
        significant reduction and a significant increase (with no true effect, each tail's false
        alarm rate, which an equal-tailed 5% test keeps near 2.5%); ``bias`` and ``rmse`` are of
        the % reduction; ``coverage`` is missing for Mann-Whitney, which gives no interval;
        ``type_s`` (among significant results, the share with the wrong sign) and ``type_m``
        (among significant results, the mean |log ratio| over the true |log ratio|: the
        exaggeration ratio on the log-ratio scale, where increases and reductions weigh alike)
        are missing when the true reduction is 0.
    """
    if unknown := set(design_.methods) - set(DIAGNOSIS_METHODS):
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {', '.join(DIAGNOSIS_METHODS)}")
    trials = simulate_trials(
        population, design_.size, sims=sims, seed=seed, effects=design_.effects(), outcomes=(design_.outcome,)
    )
    y = trials.follow_up[design_.outcome]
    treated = trials.treated
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 5]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = y[:, treated].mean(axis=1) / y[:, ~treated].mean(axis=1)
    judges = {
        "ratio_of_means": _ratio_of_means_verdicts,
        "welch_t": _welch_verdicts,
        "mann_whitney": _mann_whitney_verdicts,
        "poisson_robust": _poisson_verdicts,
    }
    rows = [_summary(method, design_, ratio, judges[method](design_, trials, y, rng)) for method in design_.methods]
    return pd.DataFrame(rows)


def _ratio_of_means_verdicts(design_: Design, trials: SimulatedTrials, y: np.ndarray, rng) -> _Verdicts:
    from . import analysis

    treated, truth = trials.treated, design_.true_ratio
    assignments = trials.redraws(design_.permutations, rng)
    test = analysis.randomisation_test(y, treated, trials.strata, assignments, statistic=design_.statistic)
    if design_.interval == "bootstrap":
        counts = analysis.bootstrap_counts(treated, trials.strata, design_.resamples, rng)
        core = analysis.ratio_of_means_core(y, treated, trials.strata, assignments[:1], counts, design_.alpha)
        covered = (core["ci_low"] <= truth) & (core["ci_high"] >= truth)
    else:  # the inverted interval contains the truth exactly when the test there does not reject
        at_truth = analysis.randomisation_test(
            y, treated, trials.strata, assignments, theta=max(truth, 1e-12), statistic=design_.statistic
        )
        covered = at_truth.p_value >= design_.alpha
    return _Verdicts(test.p_value, np.sign(test.observed), covered.astype(float))


def _welch_verdicts(design_: Design, trials: SimulatedTrials, y: np.ndarray, rng) -> _Verdicts:
    from scipy import stats  # imported only when needed: it takes about a second

    treated = trials.treated
    test = stats.ttest_ind(y[:, treated], y[:, ~treated], axis=1, equal_var=False)
    return _Verdicts(
        np.nan_to_num(test.pvalue, nan=1.0),
        np.sign(np.nan_to_num(test.statistic)),
        _fieller_covers(y, treated, design_.true_ratio, design_.alpha).astype(float),
    )


def _mann_whitney_verdicts(design_: Design, trials: SimulatedTrials, y: np.ndarray, rng) -> _Verdicts:
    from scipy import stats

    treated = trials.treated
    test = stats.mannwhitneyu(y[:, treated], y[:, ~treated], axis=1, alternative="two-sided")
    # U counts the pairs in which the treated person has more: below half the pairs, fewer among the treated.
    shift = test.statistic - treated.sum() * (~treated).sum() / 2
    return _Verdicts(np.nan_to_num(test.pvalue, nan=1.0), np.sign(shift), np.full(y.shape[0], np.nan))


def _poisson_verdicts(design_: Design, trials: SimulatedTrials, y: np.ndarray, rng) -> _Verdicts:
    """The robust Poisson score test, trial by trial (each needs its own model fit).

    A trial in which an arm has no events has no estimate: it counts as not significant and is
    left out of the coverage.
    """
    from . import analysis

    assignments = trials.redraws(design_.permutations, rng)
    p_value, direction, covered = np.ones(y.shape[0]), np.zeros(y.shape[0]), np.full(y.shape[0], np.nan)
    for sim in range(y.shape[0]):
        outcome = y[sim]
        if outcome[trials.treated].sum() == 0 or outcome[~trials.treated].sum() == 0:
            continue
        x, _ = analysis._design_matrix(trials.frame(sim), design_.outcome)
        try:
            test = analysis.score_test(outcome, x, assignments)
            at_truth = analysis.score_test(outcome, x, assignments, float(np.log(design_.true_ratio)))
        except (ArithmeticError, np.linalg.LinAlgError):  # the model cannot be fitted in this trial
            continue
        p_value[sim], direction[sim] = test.p_value[0], np.sign(test.observed[0])
        covered[sim] = float(at_truth.p_value[0] >= design_.alpha)
    return _Verdicts(p_value, direction, covered)


def _fieller_covers(y: np.ndarray, treated: np.ndarray, truth: float, alpha: float) -> np.ndarray:
    """Whether Fieller's interval (Welch's test of ``mean_t - truth * mean_c = 0``) holds the truth."""
    from scipy import stats

    t, c = y[:, treated], y[:, ~treated]
    part_t, part_c = t.var(axis=1, ddof=1) / t.shape[1], truth**2 * c.var(axis=1, ddof=1) / c.shape[1]
    spread = part_t + part_c
    with np.errstate(divide="ignore", invalid="ignore"):
        df = spread**2 / (part_t**2 / (t.shape[1] - 1) + part_c**2 / (c.shape[1] - 1))
        statistic = np.abs(t.mean(axis=1) - truth * c.mean(axis=1)) / np.sqrt(spread)
        p_value = 2 * stats.t.sf(statistic, df)
    return np.where(np.isnan(p_value), True, p_value >= alpha)


def _binomial_se(share: float, count: int) -> float:
    return float(np.sqrt(share * (1 - share) / count)) if count else np.nan


def _summary(method: str, design_: Design, ratio: np.ndarray, verdicts: _Verdicts) -> dict:
    """The diagnosands and their Monte Carlo SEs from each trial's ratio, p-value, direction and coverage."""
    significant = verdicts.p_value < design_.alpha
    finite = np.isfinite(ratio)
    estimate = 100 * (1 - ratio[finite])
    truth = design_.reduction
    sims = ratio.size
    errors = estimate - truth
    mse = float(np.mean(errors**2))
    rmse = float(np.sqrt(mse))
    row = {
        "method": method,
        "n_treated": sum(t for t, _ in design_.size.values()),
        "n_control": sum(c for _, c in design_.size.values()),
        "reduction": truth,
        "sims": sims,
        "mean_estimate": float(np.mean(estimate)),
    }
    for name, flags in (
        ("power", significant),
        ("reject_reduction", significant & (verdicts.direction < 0)),
        ("reject_increase", significant & (verdicts.direction > 0)),
    ):
        row[name] = float(np.mean(flags))
        row[f"{name}_se"] = _binomial_se(row[name], sims)
    row["bias"] = float(np.mean(errors))
    row["bias_se"] = float(np.std(errors, ddof=1) / np.sqrt(errors.size))
    row["rmse"] = rmse
    row["rmse_se"] = float(np.std(errors**2, ddof=1) / np.sqrt(errors.size) / (2 * rmse)) if rmse > 0 else np.nan
    covered = np.asarray(verdicts.covered, dtype=float)
    if np.all(np.isnan(covered)):
        row["coverage"], row["coverage_se"] = np.nan, np.nan
    else:
        share = float(np.nanmean(covered))
        row["coverage"], row["coverage_se"] = share, _binomial_se(share, int(np.sum(~np.isnan(covered))))
    log_truth = np.log(design_.true_ratio) if design_.true_ratio > 0 else -np.inf
    with np.errstate(divide="ignore"):
        log_ratio = np.log(ratio[significant & finite])
    log_ratio = log_ratio[np.isfinite(log_ratio)]
    if truth and np.isfinite(log_truth) and log_ratio.size:
        wrong = float(np.mean(np.sign(log_ratio) != np.sign(log_truth)))
        exaggeration = np.abs(log_ratio) / abs(log_truth)
        row["type_s"], row["type_s_se"] = wrong, _binomial_se(wrong, log_ratio.size)
        row["type_m"] = float(np.mean(exaggeration))
        row["type_m_se"] = (
            float(np.std(exaggeration, ddof=1) / np.sqrt(exaggeration.size)) if exaggeration.size > 1 else np.nan
        )
    else:
        row["type_s"] = row["type_s_se"] = row["type_m"] = row["type_m_se"] = np.nan
    return row


def calibration_table(diagnosis: pd.DataFrame) -> pd.DataFrame:
    """The calibration of each method, one row per outcome and method, for people to read.

    Parameters
    ----------
    diagnosis : pandas.DataFrame
        Rows of :func:`diagnose` (an ``outcome`` column added) at several true reductions,
        one of them 0: what ``fdkit power --calibration`` computes.

    Returns
    -------
    pandas.DataFrame
        Text cells, each a percentage to 1 decimal with its Monte Carlo SE in brackets, under
        two-level column labels: ``false alarms`` (with no true effect, the share of trials the 5%
        test calls a significant ``reduction``, and a significant ``increase``: about 2.5% each for
        a calibrated test); ``interval covers`` (the 95% interval's coverage at each true effect:
        93-97% for a calibrated interval; "none" for a method that prints no interval); and
        ``power`` (a significant reduction when the truth is a 40% one), where 40% was simulated.
    """
    if not (diagnosis["reduction"] == 0).any():
        raise ValueError("calibration needs trials with no true effect (reduction 0)")

    def cell(result, name):
        if np.isnan(result[name]):
            return "none" if name == "coverage" else ""
        return f"{100 * result[name]:.1f} ({100 * result[f'{name}_se']:.1f})"

    def effect_label(reduction):
        if reduction == 0:
            return "no effect"
        return f"{reduction:g}% less" if reduction > 0 else f"{-reduction:g}% more"

    several = diagnosis[["n_treated", "n_control"]].drop_duplicates().shape[0] > 1
    rows = []
    for (outcome, n_treated, n_control, method), part in diagnosis.groupby(
        ["outcome", "n_treated", "n_control", "method"], sort=False
    ):
        by_effect = part.set_index("reduction")
        row = {("", "outcome"): outcome, ("", "method"): method}
        if several:
            row[("", "design")] = f"{n_treated}/{n_control}"
        row[("false alarms", "reduction")] = cell(by_effect.loc[0], "reject_reduction")
        row[("false alarms", "increase")] = cell(by_effect.loc[0], "reject_increase")
        for reduction, result in by_effect.iterrows():
            row[("interval covers", effect_label(reduction))] = cell(result, "coverage")
        if 40 in by_effect.index:
            row[("power", "40% less")] = cell(by_effect.loc[40], "reject_reduction")
        rows.append(row)
    table = pd.DataFrame(rows)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


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
        # An increase adds a marker word, so the seeds of reductions stay what they always were.
        key = [int(seed), n_treated, n_control, abs(int(round(reduction * 1000)))] + ([1] if reduction < 0 else [])
        point_seed = int(np.random.SeedSequence(key).generate_state(1)[0])
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

    Found by bisection on a grid of reductions spaced ``tolerance`` points apart (the result
    is the first grid point whose power reaches ``power``), each step a diagnosis with
    ``sims`` simulated trials and the same seed, so the power curve being searched is
    smooth. Uses the primary test (the score randomisation test unless ``statistic``
    says otherwise). Returns ``nan`` if even a 100% reduction falls short.
    """

    def power_at(step: int) -> float:
        spec = Design(size=size, reduction=step * tolerance, methods=("ratio_of_means",), **options)
        return diagnose(spec, population, sims=sims, seed=seed)["power"].iloc[0]

    return _smallest_reduction(power_at, power, tolerance)


def _smallest_reduction(power_at: Callable[[int], float], power: float, tolerance: float) -> float:
    """The first grid point (multiples of ``tolerance`` %) whose power reaches ``power``; nan if none.

    Bisection on a fixed grid of reductions: the answer is a grid point decided by whole-number
    power comparisons, identical on every machine.
    """
    low, high = 0, int(round(100 / tolerance))
    if power_at(high) < power:
        return float("nan")
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return round(high * tolerance, 1)


def _report_progress(done: int, total: int, label: str, final: bool = False) -> None:
    import sys

    if sys.stderr.isatty():
        end = "\n" if final else ""
        print(f"\r  [{done}/{total}] {label:<40}", end=end, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ multi-site designs


@dataclass(frozen=True)
class SitesDesign:
    """A network of sites running one protocol, to diagnose by simulation (``fdkit power --sites``).

    Every simulated network draws its sites afresh: each site's cohort from the superpopulation
    (split across age bands in the Milton Keynes proportions, :func:`split_size`), randomised with
    its own places per age band, and two things that make sites differ:

    - a **base rate**: every person's outcomes at the site are multiplied by
      ``exp(baseline_sd * z)`` (a town where crime is commoner has more of everything);
    - a **site effect**: the site's true ratio of means is ``(1 - reduction/100) * exp(effect_sd * z')``.
      The common part is applied as :func:`simulate_trials` applies any true effect (each treated
      person's events thinned); the site's departure from it multiplies the treated people's
      outcomes there, so ``effect_sd`` is the between-site standard deviation of the log ratio:
      the ``tau`` of a random-effects meta-analysis (:func:`fdkit.pooling.random_effects`).

    The pooled analysis is the primary one, stratified by site x age band
    (:func:`fdkit.pooling.pooled_effect`).

    Attributes
    ----------
    sites : int
    per_site : (int, int) or tuple of (int, int)
        Treated and control people at every site, or at each site in turn (``sites`` pairs).
    reduction : float
        The true % reduction at the median site.
    effect_sd, baseline_sd : float
        Between-site standard deviations of the log ratio and of the log base rate.
    outcome : str
    permutations : int
    alpha : float
    """

    sites: int
    per_site: tuple
    reduction: float = 0.0
    effect_sd: float = 0.0
    baseline_sd: float = 0.0
    outcome: str = "harm_suspect"
    permutations: int = 1000
    alpha: float = 0.05

    def __post_init__(self):
        if self.sites < 2:
            raise ValueError(f"a network needs at least two sites; got {self.sites}")
        if len(self.site_sizes) != self.sites:
            raise ValueError(f"per_site lists {len(self.site_sizes)} sites' sizes for {self.sites} sites")
        if min(min(pair) for pair in self.site_sizes) < 2:
            raise ValueError(f"every site needs at least 2 treated and 2 control people; got {self.per_site}")
        if self.effect_sd < 0 or self.baseline_sd < 0:
            raise ValueError("between-site standard deviations cannot be negative")

    @property
    def site_sizes(self) -> tuple[tuple[int, int], ...]:
        """(treated, control) at each site."""
        if len(self.per_site) == 2 and all(isinstance(n, int | np.integer) for n in self.per_site):
            return tuple((int(self.per_site[0]), int(self.per_site[1])) for _ in range(self.sites))
        return tuple((int(t), int(c)) for t, c in self.per_site)

    def size(self, site: int = 0) -> dict:
        """One site's (treated, control) per age band, in the Milton Keynes proportions."""
        return split_size(*self.site_sizes[site])


@dataclass(frozen=True)
class SimulatedNetworks:
    """Many simulated networks of one :class:`SitesDesign`, as arrays.

    Attributes
    ----------
    y : ndarray, shape (sims, n)
        The outcome of every person of every network (sites side by side).
    treated : ndarray of bool, shape (n,)
    site : ndarray of int, shape (n,)
        Each person's site (0 to sites - 1).
    stratum_names : tuple of str
        Each site's age band names (the same at every site).
    strata : ndarray of int, shape (n,)
        Each person's age band at their site.
    assignment : fdkit.randomise.AssignmentDesign
        The declared design, blocks site x age band: the pooled test re-draws from it.
    base_rate, site_ratio : ndarray, shape (sims, sites)
        Each site's drawn base-rate multiplier and true ratio of means.
    """

    y: np.ndarray
    treated: np.ndarray
    site: np.ndarray
    stratum_names: tuple[str, ...]
    strata: np.ndarray
    assignment: AssignmentDesign
    base_rate: np.ndarray
    site_ratio: np.ndarray

    def frames(self, sim: int) -> dict[str, pd.DataFrame]:
        """One simulated network as one outcome frame per site (``site1``, ...), for :func:`fdkit.sites.pool_frame`."""
        frames = {}
        for number in range(int(self.site.max()) + 1):
            mine = self.site == number
            count = int(mine.sum())
            frames[f"site{number + 1}"] = pd.DataFrame(
                {
                    "person_id": [f"S{i:05d}" for i in range(count)],
                    "arm": np.where(self.treated[mine], "treatment", "control"),
                    "stratum": np.array(self.stratum_names)[self.strata[mine]],
                    "wave": 1,
                    "outcome": self.y[sim, mine],
                }
            )
        return frames


def simulate_site_trials(population: Superpopulation, spec: SitesDesign, *, sims: int, seed: int) -> SimulatedNetworks:
    """Simulate ``sims`` networks of the design (see :class:`SitesDesign`); seeded, the same on every machine."""
    common = Design(spec.size(), reduction=spec.reduction, outcome=spec.outcome)
    parts = [
        simulate_trials(
            population,
            spec.size(number),
            sims=sims,
            seed=int(np.random.SeedSequence([int(seed), 7, number]).generate_state(1)[0]),
            effects=common.effects(),
            outcomes=(spec.outcome,),
        )
        for number in range(spec.sites)
    ]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 8]))
    base_rate = np.exp(spec.baseline_sd * rng.standard_normal((sims, spec.sites)))
    departure = np.exp(spec.effect_sd * rng.standard_normal((sims, spec.sites)))
    columns = []
    for number, part in enumerate(parts):
        y = part.follow_up[spec.outcome] * base_rate[:, [number]]
        columns.append(np.where(part.treated[None, :], y * departure[:, [number]], y))
    site = np.concatenate([np.full(part.treated.size, number) for number, part in enumerate(parts)])
    treated = np.concatenate([part.treated for part in parts])
    strata = np.concatenate([part.strata for part in parts])
    labels = np.char.add(np.char.add(site.astype(str), " / "), np.array(parts[0].stratum_names)[strata])
    return SimulatedNetworks(
        y=np.concatenate(columns, axis=1),
        treated=treated,
        site=site,
        stratum_names=parts[0].stratum_names,
        strata=strata,
        assignment=AssignmentDesign.from_assignment(treated, labels),
        base_rate=base_rate,
        site_ratio=common.true_ratio * departure,
    )


@one_blas_thread
def diagnose_sites(spec: SitesDesign, population: Superpopulation, *, sims: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Power of the pooled primary analysis for a network of sites, with its Monte Carlo SE.

    Returns
    -------
    pandas.DataFrame
        One row: ``sites``, ``n_treated``/``n_control`` (in all), ``reduction`` (the median
        site's), ``effect_sd``, ``baseline_sd``, ``method``, ``sims``, ``mean_estimate`` (the
        pooled % reduction, on average), ``power`` and ``power_se``, the shares of networks
        significant in each direction (``reject_reduction``, ``reject_increase``), ``coverage``
        and ``coverage_se`` (how often the pooled interval holds the common true ratio; only when
        ``effect_sd`` is 0, since sites with different true effects share no one ratio), and
        what each site's own analysis finds: ``site_power`` (the share of sites with p < alpha),
        ``every_site_significant`` and ``any_site_significant`` (shares of networks).
    """
    from . import analysis

    networks = simulate_site_trials(population, spec, sims=sims, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 9]))

    def test(
        columns: np.ndarray, stratified: bool, thetas=(1.0,)
    ) -> tuple[list[analysis.RandomisationTest], np.ndarray]:
        """The primary test of ``columns`` (a site, or every site) at each ratio, re-drawing their own blocks."""
        treated = networks.treated[columns]
        declared = AssignmentDesign.from_assignment(treated, networks.assignment.blocks[columns].astype(str))
        draws = declared.permutation_matrix(spec.permutations, rng)
        y = networks.y[:, columns]
        found = [
            analysis.randomisation_test(y, treated, declared.blocks, draws, theta=theta, stratified=stratified)
            for theta in thetas
        ]
        return found, declared.blocks

    # The pooled analysis is stratified (pooling.pooled_effect); each site's own is its fdkit analyse. Its
    # interval holds the common ratio exactly when the test there does not reject (one defined only when
    # every site has the same true ratio).
    truth = max(1 - spec.reduction / 100, 1e-12)
    common = spec.effect_sd == 0
    (pooled, *at_truth), blocks = test(np.arange(networks.treated.size), True, (1.0, truth) if common else (1.0,))
    site_tests = [test(np.flatnonzero(networks.site == number), False)[0][0] for number in range(spec.sites)]
    by_site = np.column_stack([site.p_value < spec.alpha for site in site_tests])
    significant = pooled.p_value < spec.alpha
    coverage = float(np.mean(at_truth[0].p_value >= spec.alpha)) if common else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = analysis.pct(analysis.stratified_ratio(networks.y, networks.treated, blocks))
    power = float(np.mean(significant))
    return pd.DataFrame(
        [
            {
                "sites": spec.sites,
                "n_treated": sum(t for t, _ in spec.site_sizes),
                "n_control": sum(c for _, c in spec.site_sizes),
                "reduction": spec.reduction,
                "effect_sd": spec.effect_sd,
                "baseline_sd": spec.baseline_sd,
                "method": "ratio_of_means",
                "sims": sims,
                "mean_estimate": float(np.mean(estimate[np.isfinite(estimate)])),
                "power": power,
                "power_se": _binomial_se(power, sims),
                "reject_reduction": float(np.mean(significant & (pooled.observed < 0))),
                "reject_increase": float(np.mean(significant & (pooled.observed > 0))),
                "coverage": coverage,
                "coverage_se": _binomial_se(coverage, sims) if common else np.nan,
                "site_power": float(by_site.mean()),
                "every_site_significant": float(by_site.all(axis=1).mean()),
                "any_site_significant": float(by_site.any(axis=1).mean()),
            }
        ]
    )


def mdes_sites(
    population: Superpopulation,
    spec: SitesDesign,
    *,
    power: float = 0.8,
    sims: int = 1000,
    seed: int = 0,
    tolerance: float = 1.0,
) -> float:
    """The smallest true % reduction (at the median site) the pooled analysis detects with ``power``.

    The same bisection on a fixed grid as :func:`mdes`, each step a :func:`diagnose_sites` of
    ``sims`` networks with the same seed (``spec.reduction`` is ignored). ``nan`` if even a 100%
    reduction falls short.
    """
    from dataclasses import replace

    def power_at(step: int) -> float:
        return diagnose_sites(replace(spec, reduction=step * tolerance), population, sims=sims, seed=seed)[
            "power"
        ].iloc[0]

    return _smallest_reduction(power_at, power, tolerance)
