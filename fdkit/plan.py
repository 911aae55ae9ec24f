"""The analysis plan: how the trial will be analysed, fixed before anyone sees an outcome.

A replication is believed when its analysis was chosen before the outcomes were known. The
seal (:mod:`fdkit.randomise`) fixes *who* was allocated; an analysis plan fixes *how* the trial
will be analysed: the primary and secondary outcomes, the follow-up and baseline windows, the
day rule, the methods and alpha, the multiplicity family and its adjustment, the pre-specified
subgroups, the engagement (CACE) analysis, the harm weights and offence lookup (pinned by
fingerprint), and where the trial is registered. It is detailed enough for a third party to
run it, and the kit runs it: ``fdkit analyse`` and ``fdkit report`` follow a sealed plan with
no analysis options at all (:mod:`fdkit.adherence`).

A plan is a small, flat TOML file, ``analysis-plan.toml``::

    fdkit plan --out analysis-plan.toml --primary harm_suspect --subgroups 11-17,18-25
    fdkit plan --check analysis-plan.toml
    fdkit randomise ... --plan analysis-plan.toml      # the plan is sealed with the allocation

:class:`Plan` holds it (a frozen dataclass; every field is checked when one is made, and every
problem is reported at once, naming the field). :func:`read_plan` and :func:`write_plan` read
and write the file; :func:`fingerprint` is the plan's SHA-256, computed from its values alone
(so comments, spacing and key order in the file do not change it); :func:`differences` lists
where two plans disagree, field by field (``fields=PROTOCOL_FIELDS`` for the choices that must
match before the results of several sites can be pooled).

This module's names (:class:`Plan`, :data:`FIELDS`, :data:`PROTOCOL_FIELDS`,
:func:`read_plan`, :func:`parse_plan`, :func:`write_plan`, :func:`fingerprint`,
:func:`differences`, :class:`Difference`) are a stable interface: other commands build on them.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis import PERMUTATIONS
from .records import FdkitDataError, Problem

__all__ = [
    "ADJUSTMENTS",
    "DAY_RULE",
    "DAY_RULES",
    "Difference",
    "FIELDS",
    "INTERVALS",
    "PLAN_FILE",
    "PRIMARY_METHODS",
    "PROTOCOL_FIELDS",
    "Plan",
    "PlanError",
    "check_files",
    "differences",
    "fingerprint",
    "parse_plan",
    "read_plan",
    "write_plan",
]

#: The name a plan file has beside the allocation it was sealed with.
PLAN_FILE = "analysis-plan.toml"

#: The day rule every window of the kit follows (:mod:`fdkit.outcomes`, :mod:`fdkit.eligibility`).
DAY_RULE = "first-day-in-last-day-out"
DAY_RULES = {
    DAY_RULE: (
        "every window includes its first day and excludes its last: the follow-up starts on the "
        "randomisation day, and the baseline ends the day before it"
    )
}
#: Methods the kit's report can put at its head (the others are sensitivity methods).
PRIMARY_METHODS = ("ratio_of_means",)
INTERVALS = ("randomisation", "bootstrap")
ADJUSTMENTS = ("holm", "benjamini-hochberg", "none")
_FORMAT = 1
KIT_WEIGHTS, KIT_LOOKUP = "the kit's illustrative weights", "the kit's offence lookup"
_SHOWN = 60  # characters of a value echoed in a message


class PlanError(FdkitDataError):
    """A plan made in code (not read from a file) has wrong values; ``problems`` names each field."""

    def _render(self) -> str:
        count = len(self.problems)
        return "\n".join(
            [f"{count} problem{'s' if count != 1 else ''} in the analysis plan:", *(f"- {p}" for p in self.problems)]
        )


def _kit_weights_sha256() -> str:
    from .harm import weights_sha256

    return weights_sha256()


def _kit_lookup_sha256() -> str:
    from .offences import lookup_sha256

    return lookup_sha256()


def _outcome_names() -> tuple[str, ...]:
    from .outcomes import OUTCOME_NAMES

    return OUTCOME_NAMES


def _sensitivity_outcomes() -> tuple[str, ...]:
    from .outcomes import SENSITIVITY_OUTCOMES

    return SENSITIVITY_OUTCOMES


def _method_names() -> tuple[str, ...]:
    from .analysis import METHODS

    return METHODS


def _default_secondary() -> tuple[str, ...]:
    return tuple(name for name in _outcome_names() if name != "harm_suspect")


def _default_sensitivity() -> tuple[str, ...]:
    from .analysis import DEFAULT_METHODS

    return tuple(name for name in DEFAULT_METHODS if name not in PRIMARY_METHODS)


def _about(text: str) -> dict[str, str]:
    return {"about": text}


@dataclass(frozen=True)
class Plan:
    """An analysis plan. Every field is checked on construction; see :data:`FIELDS` for the order.

    Attributes
    ----------
    plan_format : int
        The version of this file format (1).
    trial, registration_id, protocol_url : str
        The trial's name, its registry identifier (``ISRCTN12345678``) and where its protocol
        can be read (a web address or DOI); empty until known.
    primary_outcome : str
        One of :data:`fdkit.outcomes.OUTCOME_NAMES`.
    secondary_outcomes : tuple of str
        In the order they will be reported.
    follow_up_months, baseline_months : int
        The windows after and before randomisation, in calendar months (1 to 120).
    day_rule : str
        :data:`DAY_RULE`, the one rule the kit implements, stated so a reader knows it.
    primary_method : str
        One of :data:`PRIMARY_METHODS`.
    sensitivity_methods : tuple of str
        Other methods of :data:`fdkit.analysis.REGISTRY`, reported beside the primary one.
    interval : str
        The primary method's interval (:data:`INTERVALS`).
    alpha : float
        The significance level (0.05: the kit's tests are calibrated, and its intervals
        labelled, at 5%).
    seed, permutations, resamples : int
        For the randomisation tests and the bootstrap, so that anyone re-running the plan gets
        the same digits.
    multiplicity_family : tuple of str
        The outcomes whose p-values are adjusted together (by default every outcome of the plan
        except those that re-measure another, :data:`fdkit.outcomes.SENSITIVITY_OUTCOMES`).
    multiplicity_adjustment : str
        :data:`ADJUSTMENTS`: the adjusted p-value the report leads with.
    subgroups : tuple of str
        Strata (age bands) analysed on their own, with a test of whether the effect differs.
    cace : bool
        Estimate the effect among those who engaged.
    harm_weights, offence_lookup : str
        The CSV files of the weights and lookup, relative to the plan's folder; empty for the
        kit's own (illustrative weights, and the kit's lookup).
    harm_weights_sha256, offence_lookup_sha256 : str
        Their fingerprints (:func:`fdkit.harm.weights_sha256`,
        :func:`fdkit.offences.lookup_sha256`); filled in from the files when left out.
    """

    plan_format: int = field(default=_FORMAT, metadata=_about("the version of this file's format"))
    trial: str = field(default="", metadata=_about("the trial's name"))
    registration_id: str = field(default="", metadata=_about("the trial's registry identifier, e.g. ISRCTN12345678"))
    protocol_url: str = field(default="", metadata=_about("where the protocol can be read: a web address or a DOI"))
    primary_outcome: str = field(default="harm_suspect", metadata=_about("the one outcome that answers the trial"))
    secondary_outcomes: tuple[str, ...] = field(
        default_factory=_default_secondary, metadata=_about("in the order they will be reported")
    )
    follow_up_months: int = field(default=12, metadata=_about("months from randomisation, 1 to 120"))
    baseline_months: int = field(default=24, metadata=_about("months before randomisation, 1 to 120"))
    day_rule: str = field(default=DAY_RULE, metadata=_about(DAY_RULES[DAY_RULE]))
    primary_method: str = field(default="ratio_of_means", metadata=_about("the method of the primary analysis"))
    sensitivity_methods: tuple[str, ...] = field(
        default_factory=_default_sensitivity, metadata=_about("reported beside the primary method")
    )
    interval: str = field(
        default="randomisation", metadata=_about("the primary method's interval: randomisation or bootstrap")
    )
    alpha: float = field(default=0.05, metadata=_about("significance level (two-sided)"))
    seed: int = field(default=0, metadata=_about("seed of the randomisation tests and the bootstrap"))
    permutations: int = field(
        default=PERMUTATIONS, metadata=_about("re-draws of the design for each randomisation test")
    )
    resamples: int = field(default=2000, metadata=_about("bootstrap resamples (interval = bootstrap only)"))
    multiplicity_family: tuple[str, ...] | None = field(
        default=None, metadata=_about("outcomes adjusted together for multiple testing")
    )
    multiplicity_adjustment: str = field(
        default="holm", metadata=_about("holm, benjamini-hochberg or none: the adjusted p-value reported first")
    )
    subgroups: tuple[str, ...] = field(default=(), metadata=_about("strata (age bands) analysed on their own"))
    cace: bool = field(default=True, metadata=_about("estimate the effect among those who engaged"))
    harm_weights: str = field(
        default="",
        metadata=_about("CSV of offence_code,weight beside this plan; empty: the kit's illustrative weights"),
    )
    harm_weights_sha256: str = field(default="", metadata=_about("the weights' fingerprint"))
    offence_lookup: str = field(
        default="", metadata=_about("CSV offence lookup beside this plan; empty: the kit's lookup")
    )
    offence_lookup_sha256: str = field(default="", metadata=_about("the lookup's fingerprint"))

    def __post_init__(self):
        for name in ("secondary_outcomes", "sensitivity_methods", "subgroups", "multiplicity_family"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if self.multiplicity_family is None:  # every hypothesis of the plan (a name it got wrong is reported once)
            hypotheses = set(_outcome_names()) - set(_sensitivity_outcomes())
            family = tuple(dict.fromkeys(o for o in self.outcomes if isinstance(o, str) and o in hypotheses))
            object.__setattr__(self, "multiplicity_family", family)
        if not self.harm_weights and not self.harm_weights_sha256:
            object.__setattr__(self, "harm_weights_sha256", _kit_weights_sha256())
        if not self.offence_lookup and not self.offence_lookup_sha256:
            object.__setattr__(self, "offence_lookup_sha256", _kit_lookup_sha256())
        if problems := field_problems(self):
            raise PlanError([Problem(None, f"{name}: {text}") for name, text in problems])

    @property
    def outcomes(self) -> tuple[str, ...]:
        """The primary outcome, then the secondary ones, in order."""
        return (self.primary_outcome, *self.secondary_outcomes)

    @property
    def methods(self) -> tuple[str, ...]:
        """The primary method, then the sensitivity methods."""
        return (self.primary_method, *self.sensitivity_methods)

    @property
    def sha256(self) -> str:
        """:func:`fingerprint` of this plan."""
        return fingerprint(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields in :data:`FIELDS` order, tuples as lists."""
        return {name: (list(v) if isinstance(v := getattr(self, name), tuple) else v) for name in FIELDS}

    def to_toml(self, *, comments: bool = True) -> str:
        """The plan as TOML that :func:`parse_plan` reads back to an equal plan.

        With ``comments`` (for a person editing the file) each field says what it is; without,
        one line per field (what a seal holds).
        """
        lines = [
            "# fdkit analysis plan: how this trial will be analysed, fixed before any outcome is seen.",
            "# Check it with `fdkit plan --check FILE`; seal it with `fdkit randomise ... --plan FILE`.",
            "# Once sealed, `fdkit analyse` and `fdkit report` run exactly this plan.",
        ]
        for section, names in _SECTIONS:
            if comments:
                lines += ["", f"# --- {section}"]
            for spec in dataclasses.fields(self):
                if spec.name in names:
                    value = _toml_value(getattr(self, spec.name))
                    lines.append(f"{spec.name} = {value}" + (f"  # {spec.metadata['about']}" if comments else ""))
        return "\n".join(lines if comments else lines[3:]) + "\n"

    def describe(self) -> str:
        """A few lines for the command line: the choices that matter most, and the fingerprint."""
        secondary = ", ".join(self.secondary_outcomes) or "none"
        subgroups = ", ".join(self.subgroups) or "none"
        return "\n".join(
            [
                f"primary outcome: {self.primary_outcome}, over {self.follow_up_months} months "
                f"(baseline {self.baseline_months} months)",
                f"secondary outcomes: {secondary}",
                f"methods: {', '.join(self.methods)} (interval: {self.interval}; alpha {self.alpha:g}; "
                f"seed {self.seed}, {self.permutations:,} re-draws)",
                f"multiplicity: {self.multiplicity_adjustment} over {len(self.multiplicity_family or ())} outcomes; "
                f"subgroups: {subgroups}; engagement (CACE): {'yes' if self.cace else 'no'}",
                f"harm weights: {self.harm_weights or KIT_WEIGHTS}; "
                f"offence lookup: {self.offence_lookup or KIT_LOOKUP}",
                f"fingerprint (SHA-256): {self.sha256}",
            ]
        )


#: Every field of a plan, in the order its file lists them.
FIELDS: tuple[str, ...] = tuple(spec.name for spec in dataclasses.fields(Plan))

#: The fields that define the analysis itself, which must agree before sites' results are pooled
#: (the registration, seed and file names may differ from site to site; the weights may not).
PROTOCOL_FIELDS: tuple[str, ...] = (
    "primary_outcome",
    "secondary_outcomes",
    "follow_up_months",
    "baseline_months",
    "day_rule",
    "primary_method",
    "interval",
    "alpha",
    "multiplicity_family",
    "multiplicity_adjustment",
    "harm_weights_sha256",
)

_SECTIONS = (
    ("the trial", ("plan_format", "trial", "registration_id", "protocol_url")),
    ("outcomes", ("primary_outcome", "secondary_outcomes")),
    ("windows", ("follow_up_months", "baseline_months", "day_rule")),
    ("methods", ("primary_method", "sensitivity_methods", "interval", "alpha", "seed", "permutations", "resamples")),
    ("multiplicity", ("multiplicity_family", "multiplicity_adjustment")),
    ("subgroups and engagement", ("subgroups", "cace")),
    (
        "tables pinned by fingerprint",
        ("harm_weights", "harm_weights_sha256", "offence_lookup", "offence_lookup_sha256"),
    ),
)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


# ------------------------------------------------------------------------- checking


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _whole(value, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number from {low:,} to {high:,}; got {_shown(value)}"
    if not low <= value <= high:
        return f"must be a whole number from {low:,} to {high:,}; got {value:,}"
    return None


def _text(value, longest: int, *, pattern: re.Pattern | None = None, shape: str = "") -> str | None:
    if not isinstance(value, str):
        return f"must be text; got {_shown(value)}"
    if len(value) > longest:
        return f"must be at most {longest} characters; got {len(value)}"
    if any(character in value for character in "\r\n\t"):
        return "must be one line, without tabs"
    if value[:1] in ("=", "+", "-", "@"):
        return f"must not begin with {value[0]} (a spreadsheet would run it as a formula)"
    if value and pattern is not None and not pattern.fullmatch(value):
        return f"must be {shape}; got {_shown(value)}"
    return None


def _names(value, allowed: Sequence[str], what: str) -> str | None:
    if not isinstance(value, tuple | list) or not all(isinstance(item, str) for item in value):
        return f"must be a list of {what} names; got {_shown(value)}"
    if unknown := [item for item in value if item not in allowed]:
        return f"unknown {what} {_shown(unknown[0])}; choose from {', '.join(allowed)}"
    if repeated := sorted({item for item in value if list(value).count(item) > 1}):
        return f"names {repeated[0]!r} more than once"
    return None


def _choice(value, allowed: Sequence[str], what: str) -> str | None:
    if value not in allowed:
        return f"unknown {what} {_shown(value)}; choose from {', '.join(allowed)}"
    return None


_REGISTRATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9./_-]{2,79}")
_KNOWN_REGISTRIES = {"ISRCTN": re.compile(r"ISRCTN\d{8}"), "NCT": re.compile(r"NCT\d{8}")}
_PROTOCOL = re.compile(r"(https?://|doi:|10\.)\S+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def field_problems(plan: Plan) -> list[tuple[str, str]]:
    """Every problem with a plan's values, as ``(field, what is wrong)`` pairs in field order."""
    outcomes, sensitivity = _outcome_names(), _sensitivity_outcomes()
    found: dict[str, str | None] = {
        "plan_format": None if plan.plan_format == _FORMAT else f"must be {_FORMAT}; got {_shown(plan.plan_format)}",
        "trial": _text(plan.trial, 200),
        "registration_id": _registration_problem(plan.registration_id),
        "protocol_url": _text(plan.protocol_url, 300, pattern=_PROTOCOL, shape="a web address (https://...) or a DOI"),
        "primary_outcome": _choice(plan.primary_outcome, [o for o in outcomes if o not in sensitivity], "outcome"),
        "secondary_outcomes": _names(plan.secondary_outcomes, outcomes, "outcome"),
        "follow_up_months": _whole(plan.follow_up_months, 1, 120),
        "baseline_months": _whole(plan.baseline_months, 1, 120),
        "day_rule": _choice(plan.day_rule, tuple(DAY_RULES), "day rule"),
        "primary_method": _choice(plan.primary_method, PRIMARY_METHODS, "primary method")
        and f"must be {' or '.join(PRIMARY_METHODS)} (the method the kit's report is built on; name others "
        f"as sensitivity_methods); got {_shown(plan.primary_method)}",
        "sensitivity_methods": _names(plan.sensitivity_methods, _method_names(), "method"),
        "interval": _choice(plan.interval, INTERVALS, "interval"),
        "alpha": None
        if not isinstance(plan.alpha, bool) and plan.alpha == 0.05
        else "must be 0.05: the kit's tests are calibrated, and its intervals labelled, at the 5% level; "
        f"got {_shown(plan.alpha)}",
        "seed": _whole(plan.seed, 0, 2**63 - 1),
        "permutations": _whole(plan.permutations, 100, 1_000_000),
        "resamples": _whole(plan.resamples, 100, 1_000_000),
        "multiplicity_family": _names(plan.multiplicity_family, outcomes, "outcome"),
        "multiplicity_adjustment": _choice(plan.multiplicity_adjustment, ADJUSTMENTS, "adjustment"),
        "subgroups": _subgroup_problem(plan.subgroups),
        "cace": None if isinstance(plan.cace, bool) else f"must be true or false; got {_shown(plan.cace)}",
        "harm_weights": _text(plan.harm_weights, 300),
        "harm_weights_sha256": _sha_problem(plan.harm_weights_sha256),
        "offence_lookup": _text(plan.offence_lookup, 300),
        "offence_lookup_sha256": _sha_problem(plan.offence_lookup_sha256),
    }
    # Relations between fields, once each field on its own is sound.
    if not found["secondary_outcomes"] and plan.primary_outcome in plan.secondary_outcomes:
        found["secondary_outcomes"] = f"names the primary outcome {plan.primary_outcome!r} as secondary too"
    if not found["sensitivity_methods"] and plan.primary_method in plan.sensitivity_methods:
        found["sensitivity_methods"] = f"names the primary method {plan.primary_method!r} as a sensitivity method too"
    if not found["multiplicity_family"] and isinstance(plan.multiplicity_family, tuple | list):
        if outside := [o for o in plan.multiplicity_family if o not in plan.outcomes]:
            found["multiplicity_family"] = f"names {outside[0]!r}, which is not an outcome of this plan"
        elif measured_twice := [o for o in plan.multiplicity_family if o in sensitivity]:
            found["multiplicity_family"] = (
                f"names {measured_twice[0]!r}, which re-measures another outcome and is not a hypothesis of its own"
            )
    return [(name, text) for name in FIELDS if (text := found.get(name))]


def _registration_problem(value) -> str | None:
    if problem := _text(value, 80, pattern=_REGISTRATION, shape="a registry identifier such as ISRCTN12345678"):
        return problem
    for prefix, shape in _KNOWN_REGISTRIES.items():
        if value.upper().startswith(prefix) and not shape.fullmatch(value):
            return f"an {prefix} identifier is {prefix} and 8 digits; got {_shown(value)}"
    return None


def _subgroup_problem(value) -> str | None:
    if not isinstance(value, tuple | list) or not all(isinstance(item, str) for item in value):
        return f"must be a list of strata names; got {_shown(value)}"
    for item in value:
        if problem := _text(item, 60):
            return f"{_shown(item)} {problem}"
        if not item.strip() or item == "all":
            return f"{_shown(item)} is not a stratum name ('all' is every stratum together, always analysed)"
    if repeated := sorted({item for item in value if list(value).count(item) > 1}):
        return f"names {repeated[0]!r} more than once"
    return None


def _sha_problem(value) -> str | None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        return f"must be a SHA-256 fingerprint (64 hexadecimal digits); got {_shown(value)}"
    return None


# ----------------------------------------------------------------- reading, writing


def parse_plan(text: str, *, source: str | Path = PLAN_FILE, folder: str | Path | None = None) -> Plan:
    """A plan from the text of a plan file.

    Parameters
    ----------
    text : str
        TOML, as :meth:`Plan.to_toml` writes it (fields may be left out: they take the
        defaults, except ``primary_outcome``, which a plan must state).
    source : str or pathlib.Path
        The file's name, for messages.
    folder : path, optional
        Where the plan's ``harm_weights`` and ``offence_lookup`` files are, to fill in a
        fingerprint the text leaves out. Without it a plan naming a file must give its
        fingerprint.

    Raises
    ------
    fdkit.FdkitDataError
        For text that is not TOML, unknown fields, a missing primary outcome, and every field
        whose value is wrong: each problem names the field and the line it is on.
    """
    name = Path(source).name
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FdkitDataError([Problem(name, f"not a readable TOML file ({error})")], source=source) from None
    problems = []
    for key, value in values.items():
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; the fields are {', '.join(FIELDS)}"
            what = "a table" if isinstance(value, dict) else "a field"
            problems.append(_at(name, text, key, f"{key}: {what} an analysis plan does not have{hint}"))
    if "primary_outcome" not in values:
        problems.append(Problem(name, "primary_outcome: missing; a plan must name its primary outcome"))
    known = {key: value for key, value in values.items() if key in FIELDS}
    unread = set()  # fingerprints of files that could not be read: their problem is already reported
    for table, pinned in (("harm_weights", "harm_weights_sha256"), ("offence_lookup", "offence_lookup_sha256")):
        if isinstance(known.get(table), str) and known[table] and not known.get(pinned):
            if folder is None:
                problems.append(Problem(name, f"{pinned}: missing; give the fingerprint of {known[table]!r}"))
                continue
            try:
                known[pinned] = _file_sha256(table, Path(folder) / known[table])
            except FdkitDataError as error:
                problems += [_at(name, text, table, f"{table}: {p}") for p in error.problems]
                unread.add(pinned)
    try:
        plan = Plan(**known)
    except FdkitDataError as error:
        for problem in error.problems:
            if (key := problem.message.split(":")[0]) not in unread:
                problems.append(_at(name, text, key, problem.message))
    if problems:
        raise FdkitDataError(problems, source=source)
    return plan


def _at(name: str, text: str, key: str, message: str) -> Problem:
    """A problem placed on the line that sets ``key`` (when there is one)."""
    match = re.search(rf"^[ \t]*\[?{re.escape(key)}\]?[ \t]*(=|$)", text, flags=re.MULTILINE)
    lines = (text.count("\n", 0, match.start()) + 1,) if match else ()
    return Problem(name, message, lines=lines, count=len(lines))


def _file_sha256(table: str, path: Path) -> str:
    """The fingerprint of a plan's weights or lookup file (its problems if it cannot be read)."""
    from .harm import read_weights, weights_sha256
    from .offences import lookup_sha256, read_lookup

    if not path.is_file():
        raise FdkitDataError([Problem(path.name, f"not found in {path.parent}")])
    return weights_sha256(read_weights(path)) if table == "harm_weights" else lookup_sha256(read_lookup(path))


def read_plan(path: str | Path) -> Plan:
    """Read and check a plan file (see :func:`parse_plan`); its tables are found beside it."""
    path = Path(path)
    if not path.is_file():
        raise FdkitDataError(
            [Problem(path.name, "analysis plan not found; fdkit plan --out FILE writes one")], source=path
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise FdkitDataError([Problem(path.name, "not a text file (UTF-8)")], source=path) from None
    return parse_plan(text, source=path, folder=path.parent)


def write_plan(plan: Plan, path: str | Path, *, guard=None) -> Path:
    """Write a plan file atomically (through ``guard``, a :class:`fdkit.files.OutputGuard`, if given)."""
    from .files import atomic_write

    if guard is not None:
        return guard.write_text(plan.to_toml(), path)
    return atomic_write(path, lambda handle: handle.write(plan.to_toml()))


def fingerprint(plan: Plan) -> str:
    """The plan's SHA-256: of its values written canonically, so the file's layout does not count."""
    canonical = json.dumps(plan.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_files(plan: Plan, folder: str | Path) -> list[Problem]:
    """Whether the tables a plan pins are what it pinned: the files in ``folder``, or the kit's own.

    Returns
    -------
    list of Problem
        One for each table that is missing or whose fingerprint differs from the plan's.
    """
    from .harm import read_weights, weights_sha256
    from .offences import lookup_sha256, read_lookup

    problems = []
    for table, readers in (
        ("harm_weights", (read_weights, weights_sha256, "the kit's illustrative weights")),
        ("offence_lookup", (read_lookup, lookup_sha256, "the kit's offence lookup")),
    ):
        read, sha, kit = readers
        named, pinned = getattr(plan, table), getattr(plan, f"{table}_sha256")
        if named:
            path = Path(folder) / named
            if not path.is_file():
                problems.append(Problem(PLAN_FILE, f"{table}: the file {named} is not in {folder}"))
                continue
            try:
                found = sha(read(path))
            except FdkitDataError as error:
                problems.append(Problem(PLAN_FILE, f"{table}: {named} cannot be read ({error.problems[0]})"))
                continue
            what = named
        else:
            found, what = sha(), kit
        if found != pinned:
            problems.append(
                Problem(
                    PLAN_FILE,
                    f"{table}: {what} {'has' if named else 'have'} changed since the plan was written "
                    f"(SHA-256 {found[:16]}, the plan pins {pinned[:16]})",
                )
            )
    return problems


# --------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Difference:
    """One field on which two plans disagree."""

    field: str
    first: Any
    second: Any

    def __str__(self) -> str:
        return f"{self.field}: {_toml_value(self.first)} against {_toml_value(self.second)}"


def differences(first: Plan, second: Plan, fields: Iterable[str] | None = None) -> tuple[Difference, ...]:
    """Where two plans disagree, field by field (in :data:`FIELDS` order).

    Parameters
    ----------
    first, second : Plan
    fields : iterable of str, optional
        The fields to compare (default every one; :data:`PROTOCOL_FIELDS` for those that
        must match before results are pooled).

    Examples
    --------
    >>> [str(d) for d in differences(Plan(), Plan(follow_up_months=6))]
    ['follow_up_months: 12 against 6']
    """
    wanted = FIELDS if fields is None else tuple(fields)
    if unknown := [name for name in wanted if name not in FIELDS]:
        raise ValueError(f"not fields of a plan: {', '.join(unknown)}")
    return tuple(
        Difference(name, getattr(first, name), getattr(second, name))
        for name in FIELDS
        if name in wanted and getattr(first, name) != getattr(second, name)
    )
