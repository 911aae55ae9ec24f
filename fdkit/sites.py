"""Sites: several units running one protocol, each with its own sealed trial, brought together.

A **site** is a unit that ran the trial on its own: its own police records, eligible list,
sealed allocation and screening funnel, all in one folder::

    SITE/persons.csv, events.csv, engagement.csv (optional)   the records (or in SITE/records/)
    SITE/allocation.csv + allocation.seal.json                 the sealed allocation
    SITE/eligible.csv                                          the eligible list the seal fingerprints
                                                               (eligible-wave1.csv, eligible-wave2.csv, ...
                                                               when the site randomised in several waves)
    SITE/funnel.csv (optional)                                 the screening funnel, for the CONSORT flow

:func:`load_site` reads one and refuses it, with a message naming the site, when its seal does
not hold (the allocation or the eligible list changed since it was sealed) or its records do
not cover the follow-up. ``fdkit synth --site`` writes the records beside the trial's files; a
unit assembling its own site folder with the command line puts them in ``SITE/records/``,
because the kit never writes an output (the allocation) into a records folder.
:func:`pool_frame` stacks the sites' outcome frames into one.

**Person IDs are site-scoped.** Two units number their people independently, so the same ID at
two sites is two people. The pooled frame therefore never holds a bare ID: ``person_id`` is
``"<site>/<site's own ID>"`` (site names cannot contain ``/``), the site's own ID is kept in
``site_person_id``, and :func:`check_pooled_frame` refuses a frame where the two disagree.
Every pooled analysis goes through that check, so a frame stacked by hand with clashing IDs
cannot slip through.

**One protocol.** A site whose allocation was sealed with an analysis plan (``fdkit randomise
--plan``) carries that plan in its seal. :func:`common_protocol` takes the plans of every site
and refuses, naming the site and the fields, any whose plan differs from the common protocol on
a field that must match before results are pooled (:data:`fdkit.plan.PROTOCOL_FIELDS`: the
outcomes, windows, day rule, method, interval, alpha, multiplicity and harm weights), and any
site sealed without a plan when the others have one.

**Strata.** In the pooled frame ``stratum`` is ``"<site> / <age band>"`` and ``wave`` is each
site's own wave, so :func:`fdkit.analysis.assignment_design` re-draws the allocation within
site x age band x wave, with each block's own number of treated places: exactly the
allocations the sites made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import analysis, balance, eligibility, outcomes, randomise
from .plan import Plan
from .records import FdkitDataError, Problem, Records, at_file_lines, load_records, read_table
from .synth import read_manifest

__all__ = [
    "ALLOCATION_FILE",
    "FUNNEL_COLUMNS",
    "FUNNEL_FILE",
    "ID_SEPARATOR",
    "POOL_FILES",
    "POOL_MANIFEST",
    "POOL_SETTINGS",
    "POOL_TABLES",
    "RESERVED_NAMES",
    "STRATUM_SEPARATOR",
    "PooledFolder",
    "ProtocolDeparture",
    "Site",
    "by_site",
    "check_pooled_frame",
    "check_site_name",
    "common_protocol",
    "describe_weights",
    "eligible_files",
    "load_site",
    "pool_frame",
    "protocol_differences",
    "protocol_settings",
    "read_funnel",
    "read_pooled",
    "records_folder",
    "site_facts",
    "site_frame",
    "site_plan",
    "write_pooled",
]

ALLOCATION_FILE = "allocation.csv"
FUNNEL_FILE = "funnel.csv"
ID_SEPARATOR = "/"
STRATUM_SEPARATOR = " / "
#: Names a site cannot take: the pooled analysis uses them for its own rows.
RESERVED_NAMES = ("pooled", "total", "all")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def check_site_name(name: str) -> str:
    """A site's name, checked: 1-40 letters, digits, ``-`` or ``_``, starting with a letter or digit.

    The name prefixes every person ID and stratum of the site in the pooled frame, so it can
    hold neither ``/`` nor spaces, nor anything a spreadsheet would run as a formula.

    Raises
    ------
    ValueError
        Saying what a name may hold.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name)[:60]
        raise ValueError(
            f"site name {shown} is not allowed: use 1 to 40 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if name.lower() in RESERVED_NAMES:
        raise ValueError(f"site name {name!r} is reserved for the pooled results; choose another")
    return name


def eligible_files(folder: Path, waves: int) -> list[Path]:
    """The eligible list of each wave in a site folder: ``eligible.csv``, or one per wave."""
    if waves <= 1:
        return [folder / "eligible.csv"]
    return [folder / f"eligible-wave{number}.csv" for number in range(1, waves + 1)]


# ------------------------------------------------------------------------- the protocol


def site_plan(name: str, folder: str | Path) -> randomise.SealedPlan | None:
    """The analysis plan a site's allocation was sealed with, or None; errors name the site."""
    name = check_site_name(name)
    allocation_file = Path(folder) / ALLOCATION_FILE
    if not allocation_file.is_file():
        raise _site_problem(name, Path(folder), f"no {ALLOCATION_FILE} in {folder}: a site needs its sealed allocation")
    try:
        return randomise.sealed_plan(allocation_file)
    except FdkitDataError as error:
        raise _for_site(name, error) from None


def protocol_differences(site: Plan, protocol: Plan) -> list[str]:
    """Where a site's sealed plan departs from the common protocol on a field that must match to pool.

    The fields are :data:`fdkit.plan.PROTOCOL_FIELDS`; each difference reads
    ``"field: <site's value> against <protocol's value>"``, cut to about 120 characters.
    """
    from .plan import PROTOCOL_FIELDS, differences

    return [_cut(str(found), 120) for found in differences(site, protocol, fields=PROTOCOL_FIELDS)]


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def common_protocol(
    plans: dict[str, randomise.SealedPlan | None], protocol: Plan | None = None, *, source: str = ""
) -> Plan | None:
    """The protocol every site follows, checked against each site's sealed plan.

    Parameters
    ----------
    plans : dict of str to SealedPlan or None
        Each site's sealed plan (:func:`site_plan`), by name, in the order given.
    protocol : fdkit.plan.Plan, optional
        The network's common protocol; by default the first site's sealed plan.
    source : str
        Where ``protocol`` came from, for messages (a file name).

    Returns
    -------
    fdkit.plan.Plan or None
        The protocol; None when no site sealed a plan and none was given.

    Raises
    ------
    fdkit.FdkitDataError
        Naming every site sealed without a plan (when there is a protocol to follow) and every
        site whose plan departs from the protocol on a field of :data:`fdkit.plan.PROTOCOL_FIELDS`.
    """
    sealed = {name: found for name, found in plans.items() if found is not None}
    if protocol is None and not sealed:
        return None
    if protocol is None:
        first = next(iter(sealed))
        protocol, source = sealed[first].plan, f"site {first}'s sealed plan"
    problems = [
        Problem(
            f"site {name}",
            f"its allocation was sealed without an analysis plan, so it cannot be shown to follow the common "
            f"protocol ({source}); a site joins a pooled trial by sealing the protocol with fdkit randomise --plan",
        )
        for name, found in plans.items()
        if found is None
    ]
    for name, found in sealed.items():
        if changed := protocol_differences(found.plan, protocol):
            problems.append(
                Problem(
                    f"site {name}",
                    f"its sealed analysis plan differs from the common protocol ({source}) on a field that must "
                    f"match to pool: {'; '.join(changed)} (the site's value first)",
                )
            )
    if problems:
        raise FdkitDataError(problems)
    return protocol


class ProtocolDeparture(ValueError):
    """An option that departs from a field the common protocol fixes (a usage error on the command line)."""


#: The pooled analysis's settings a protocol sets: setting -> (plan field, default without a protocol,
#: whether the protocol fixes it). The seed and the number of re-draws change only Monte Carlo error.
POOL_SETTINGS = {
    "primary": ("primary_outcome", "harm_suspect", True),
    "follow_up_months": ("follow_up_months", 12, True),
    "seed": ("seed", 1, False),
    "permutations": ("permutations", analysis.PERMUTATIONS, False),
}


def protocol_settings(protocol: Plan | None, *, weights: pd.DataFrame | None = None, **given) -> dict:
    """The pooled analysis's settings: each as given, else the protocol's, else the kit's default.

    Parameters
    ----------
    protocol : fdkit.plan.Plan or None
        The common protocol (:func:`common_protocol`).
    weights : pandas.DataFrame, optional
        The harm weights every site is scored with (the kit's illustrative table if None).
    **given
        ``primary``, ``follow_up_months``, ``seed``, ``permutations``: None when not given.

    Returns
    -------
    dict
        Those four settings, ``alpha`` and ``family`` (the protocol's multiplicity family: the
        outcomes adjusted together; None without a protocol, meaning every outcome).

    Raises
    ------
    ProtocolDeparture
        A given primary outcome or follow-up that differs from the protocol's, naming the field.
    fdkit.FdkitDataError
        A protocol the pooled analysis cannot follow (another primary method or interval), or
        harm weights that are not the ones the protocol pins.
    """
    from .harm import weights_sha256

    if unknown := set(given) - set(POOL_SETTINGS):
        raise TypeError(f"unknown settings {sorted(unknown)}")
    settings = {}
    for name, (field, default, fixed) in POOL_SETTINGS.items():
        value = given.get(name)
        planned = None if protocol is None else getattr(protocol, field)
        if fixed and value is not None and planned is not None and value != planned:
            raise ProtocolDeparture(
                f"--{name.replace('_', '-')} {value} departs from the common protocol ({field} = {planned!r}); "
                "a pooled analysis follows the protocol every site sealed"
            )
        settings[name] = next(option for option in (value, planned, default) if option is not None)
    settings["alpha"] = 0.05 if protocol is None else protocol.alpha
    settings["family"] = None if protocol is None else list(protocol.multiplicity_family or ())
    if protocol is None:
        return settings
    problems = []
    if protocol.primary_method != "ratio_of_means" or protocol.interval != "randomisation":
        problems.append(
            f"primary_method = {protocol.primary_method!r}, interval = {protocol.interval!r}: the pooled analysis "
            "is the ratio of means with the interval that inverts its randomisation test"
        )
    if (used := weights_sha256(weights)) != protocol.harm_weights_sha256:
        problems.append(
            f"harm_weights_sha256: the protocol pins harm weights {protocol.harm_weights_sha256[:16]}, but "
            f"{'the weights given' if weights is not None else 'the kit illustrative weights'} are {used[:16]}; "
            "give the pinned table (--harm-weights)"
        )
    if problems:
        raise FdkitDataError([Problem("the common protocol", problem) for problem in problems])
    return settings


# ------------------------------------------------------------------------------ a site


@dataclass(frozen=True)
class Site:
    """One site's sealed trial, read and checked.

    Attributes
    ----------
    name : str
    folder : pathlib.Path
    records : fdkit.Records
    allocation : fdkit.randomise.Allocation
    seal : dict
        The allocation's seal, as written.
    frame : pandas.DataFrame
        The site's own outcome frame (:func:`fdkit.outcomes.build_frame`), its own IDs.
    funnel : pandas.DataFrame
        The screening funnel: ``funnel.csv`` when the folder has one, else the trial's rule
        re-run on the first randomisation date.
    balance : pandas.DataFrame
        The baseline table (:func:`fdkit.balance.balance_table`).
    synthetic : dict or None
        The manifest of ``fdkit synth`` when the records are synthetic.
    plan : fdkit.randomise.SealedPlan or None
        The analysis plan sealed with the allocation, if there is one.
    """

    name: str
    folder: Path
    records: Records
    allocation: randomise.Allocation
    seal: dict
    frame: pd.DataFrame
    funnel: pd.DataFrame
    balance: pd.DataFrame
    synthetic: dict | None = None
    plan: randomise.SealedPlan | None = None

    @property
    def allocation_file(self) -> Path:
        return self.folder / ALLOCATION_FILE


def _for_site(name: str, error: FdkitDataError) -> FdkitDataError:
    """The same problems, each saying which site it belongs to."""
    problems = [
        dataclasses.replace(problem, file=f"site {name}: {problem.file}" if problem.file else f"site {name}")
        for problem in error.problems
    ]
    return FdkitDataError(problems, source=error.source)


def _site_problem(name: str, folder: Path, message: str) -> FdkitDataError:
    return FdkitDataError([Problem(f"site {name}", message)], source=folder)


def load_site(
    name: str,
    folder: str | Path,
    *,
    weights: pd.DataFrame | None = None,
    follow_up_months: int = 12,
    lookup: pd.DataFrame | None = None,
    extract_date=None,
) -> Site:
    """Read one site's folder and check its seal, records and follow-up.

    Parameters
    ----------
    name : str
        The site's name (:func:`check_site_name`).
    folder : path
        The site folder (see the module docstring).
    weights : pandas.DataFrame, optional
        Harm weights, the same for every site (the kit's illustrative table by default).
    follow_up_months : int
    lookup : pandas.DataFrame, optional
        An offence lookup for every site; otherwise each site folder's own ``offences.csv`` if
        it has one, else the kit's.
    extract_date : date-like, optional
        When the records were extracted (default today): no offence or birth may be later.

    Returns
    -------
    Site

    Raises
    ------
    fdkit.FdkitDataError
        Naming the site: a missing file, a seal that does not hold (the allocation or an
        eligible list changed since it was sealed), records that break the contract or do
        not cover the follow-up.
    """
    name = check_site_name(name)
    folder = Path(folder)
    allocation_file = folder / ALLOCATION_FILE
    if not folder.is_dir():
        raise _site_problem(name, folder, f"{folder} is not a folder")
    if not allocation_file.is_file():
        raise _site_problem(name, folder, f"no {ALLOCATION_FILE} in {folder}: a site needs its sealed allocation")
    try:
        sealed = randomise.read_allocation(allocation_file)
        lists = eligible_files(folder, len(sealed.waves))
        if missing := [path.name for path in lists if not path.is_file()]:
            raise _site_problem(
                name,
                folder,
                f"the seal cannot be checked without the eligible list{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} in {folder}",
            )
        checked = randomise.check_sealed(allocation_file, lists)
        plan = randomise.sealed_plan(allocation_file)
        records = load_records(records_folder(folder), lookup=lookup, extract_date=extract_date)
        frame = outcomes.build_frame(records, checked.allocation, weights=weights, follow_up_months=follow_up_months)
        funnel_file = folder / FUNNEL_FILE
        if funnel_file.is_file():
            funnel = read_funnel(funnel_file)
        else:
            funnel = eligibility.screen(records, checked.allocation.table["randomised_on"].min()).funnel
        baseline = balance.balance_table(records, checked.allocation, weights=weights)
    except FdkitDataError as error:
        raise _for_site(name, error) from None
    for arm in randomise.ARMS:
        if not (frame["arm"] == arm).any():
            raise _site_problem(name, folder, f"no one in the {arm} arm: the site has nothing to compare")
    return Site(
        name=name,
        folder=folder,
        records=records,
        allocation=checked.allocation,
        seal=json.loads(randomise.seal_path(allocation_file).read_text(encoding="utf-8")),
        frame=frame,
        funnel=funnel,
        balance=baseline,
        synthetic=read_manifest(records_folder(folder)),
        plan=plan,
    )


#: The columns of a funnel file (``fdkit screen --funnel-out``).
FUNNEL_COLUMNS = ("step", "description", "remaining", "excluded", "reason")


def read_funnel(path: str | Path) -> pd.DataFrame:
    """Read a screening funnel written by ``fdkit screen --funnel-out``; counts must be whole numbers.

    Raises
    ------
    fdkit.FdkitDataError
        Naming the file, column and rows when a column is missing or a count is not a whole number.
    """
    path = Path(path)
    funnel = read_table(path, required=FUNNEL_COLUMNS, not_blank=("step", "remaining", "excluded"))
    problems = []
    for column in ("remaining", "excluded"):
        numbers = pd.to_numeric(funnel[column], errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
        if bad.any():
            shown = tuple(str(v)[:60] for v in funnel.loc[bad, column].head(5))
            problems.append(
                Problem(
                    path.name,
                    f"counts must be whole numbers from 0: {', '.join(map(repr, shown))}",
                    column=column,
                    lines=tuple(int(i) for i in funnel.index[bad][:10]),
                    values=shown,
                    count=int(bad.sum()),
                    unit="row",
                )
            )
        funnel[column] = numbers
    if problems:
        raise FdkitDataError(at_file_lines(problems, path.parent), source=path)
    return funnel.astype({"remaining": "int64", "excluded": "int64"})


def records_folder(folder: str | Path) -> Path:
    """Where a site keeps its records: ``SITE/records/`` if there is one, else the site folder itself."""
    inner = Path(folder) / "records"
    return inner if inner.is_dir() else Path(folder)


# ----------------------------------------------------------------------- the pooled frame


def pool_frame(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack the sites' outcome frames into one, with site-scoped IDs and strata.

    Parameters
    ----------
    frames : dict of str to pandas.DataFrame
        Each site's own outcome frame (:func:`fdkit.outcomes.build_frame`), by site name.

    Returns
    -------
    pandas.DataFrame
        ``site``, ``person_id`` (``"<site>/<ID>"``), ``site_person_id`` (the site's own ID),
        ``age_band`` (the site's own stratum), ``stratum`` (``"<site> / <age band>"``), then
        the frames' columns (``arm``, ``wave``, ``randomised_on``, ``engaged`` when every site
        recorded engagement, the outcomes). Sorted by ``person_id``.
    """
    if len(frames) < 2:
        raise ValueError(f"pooling needs at least two sites; got {len(frames)}")
    parts = []
    for name, frame in frames.items():
        check_site_name(name)
        local = frame["person_id"].astype(str)
        part = frame.drop(columns=["person_id", "stratum"]).assign(
            site=name,
            person_id=name + ID_SEPARATOR + local,
            site_person_id=local.to_numpy(),
            age_band=frame["stratum"].astype(str).to_numpy(),
            stratum=name + STRATUM_SEPARATOR + frame["stratum"].astype(str),
        )
        parts.append(part)
    shared = [c for c in parts[0].columns if all(c in p.columns for p in parts)]
    dropped = sorted({c for p in parts for c in p.columns} - set(shared))
    lead = ["site", "person_id", "site_person_id", "arm", "age_band", "stratum"]
    pooled = pd.concat([p[shared] for p in parts], ignore_index=True)
    pooled = pooled[lead + [c for c in shared if c not in lead]]
    pooled.attrs["dropped_columns"] = dropped  # engagement recorded at some sites only
    return check_pooled_frame(pooled.sort_values("person_id", ignore_index=True))


def check_pooled_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Refuse a pooled frame whose person IDs or strata are not scoped by their site.

    Every row's ``person_id`` must be ``"<site>/<site_person_id>"`` and its ``stratum`` must
    start with ``"<site> / "``; IDs must be unique. This is what keeps the same ID at two
    sites two people, however the frame was made.

    Raises
    ------
    ValueError
        Naming the first rows that break the rule.
    """
    missing = [c for c in ("site", "person_id", "site_person_id", "stratum", "arm") if c not in frame]
    if missing:
        raise ValueError(f"a pooled frame needs the columns {', '.join(missing)} (use fdkit.sites.pool_frame)")
    site = frame["site"].astype(str)
    scoped = frame["person_id"].astype(str) == site + ID_SEPARATOR + frame["site_person_id"].astype(str)
    in_site = [s.startswith(prefix + STRATUM_SEPARATOR) for s, prefix in zip(frame["stratum"].astype(str), site)]
    bad = ~scoped.to_numpy() | ~pd.Series(in_site).to_numpy()
    if bad.any():
        shown = ", ".join(frame.loc[bad, "person_id"].astype(str).head(5).str.slice(0, 60))
        raise ValueError(
            f"{int(bad.sum())} rows of the pooled frame are not scoped by their site (person_id must be "
            f"'<site>/<site_person_id>' and stratum '<site> / <band>'): {shown}"
        )
    if (repeated := frame["person_id"].duplicated()).any():
        raise ValueError(f"the pooled frame repeats person_id {frame.loc[repeated, 'person_id'].iloc[0]!r}")
    return frame


def site_frame(pooled: pd.DataFrame, site: str) -> pd.DataFrame:
    """One site's rows of a pooled frame, as that site's own analysis sees them.

    ``stratum`` is the site's own age band again, so :func:`fdkit.analysis.ratio_of_means`
    gives exactly what the site's own ``fdkit analyse`` gives with the same seed (the IDs keep
    their site prefix, which sorts them in the same order).
    """
    rows = pooled[pooled["site"] == site]
    if rows.empty:
        raise ValueError(
            f"no site {site!r} in the pooled frame; the sites are {', '.join(sorted(set(pooled['site'])))}"
        )
    return rows.assign(stratum=rows["age_band"]).reset_index(drop=True)


# ------------------------------------------------------------------- the pooled folder

#: What ``fdkit pool`` writes, and ``fdkit report --pooled`` reads.
POOL_MANIFEST = "pool.json"
POOL_TABLES = {
    "frame": "frame.csv",
    "results": "results.csv",
    "heterogeneity": "heterogeneity.csv",
    "funnels": "funnels.csv",
    "balance": "balance.csv",
}
POOL_FILES = (POOL_MANIFEST, *POOL_TABLES.values())
_TEXT_COLUMNS = (
    "site",
    "person_id",
    "site_person_id",
    "arm",
    "age_band",
    "stratum",
    "outcome",
    "subgroup",
    "method",
    "interval",
    "note",
    "re_note",
    "step",
    "description",
    "reason",
    "characteristic",
)


@dataclass(frozen=True)
class PooledFolder:
    """A pooled folder, read back and checked against its manifest.

    Attributes
    ----------
    folder : pathlib.Path
    manifest : dict
        ``pool.json``: the settings, each site's facts and seal, and every file's SHA-256.
    frame, results, heterogeneity, funnels, balance : pandas.DataFrame
        The tables ``fdkit pool`` wrote (see :data:`POOL_TABLES`).
    """

    folder: Path
    manifest: dict
    frame: pd.DataFrame
    results: pd.DataFrame
    heterogeneity: pd.DataFrame
    funnels: pd.DataFrame
    balance: pd.DataFrame

    @property
    def site_names(self) -> list[str]:
        return [site["name"] for site in self.manifest["sites"]]


def site_facts(site: Site) -> dict:
    """What the pooled folder's manifest records about a site: its counts, files and seal."""
    table = site.allocation.table
    return {
        "name": site.name,
        "folder": str(site.folder),
        "people": len(site.frame),
        "treatment": int((site.frame["arm"] == "treatment").sum()),
        "control": int((site.frame["arm"] == "control").sum()),
        "waves": len(site.allocation.waves),
        "randomised_on": sorted(set(table["randomised_on"].dt.strftime("%Y-%m-%d"))),
        "allocation_sha256": _file_sha256(site.allocation_file),
        "seal": site.seal,
        "synthetic": None
        if site.synthetic is None
        else {key: site.synthetic.get(key) for key in ("scenario", "seed", "site")},
        "plan": None
        if site.plan is None
        else {"sha256": site.plan.sha256, "sealed_at": site.plan.sealed_at, "file": site.plan.file},
    }


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def describe_weights(path: str | Path | None) -> str:
    """The harm weights every site was scored with, for the manifest: the kit's, or a file with its fingerprint."""
    from .harm import ILLUSTRATIVE_LABEL

    if path is None:
        return ILLUSTRATIVE_LABEL
    return f"{Path(path).name} (SHA-256 {_file_sha256(Path(path))[:16]})"


def by_site(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Several sites' tables stacked, with a ``site`` column first."""
    return pd.concat(
        [table.assign(site=name)[["site", *table.columns]] for name, table in tables.items()], ignore_index=True
    )


def write_pooled(folder: str | Path, manifest: dict, tables: dict[str, pd.DataFrame]) -> dict:
    """Write a pooled folder's tables and its manifest (with every table's SHA-256) into ``folder``.

    The command line writes into a staging folder (:meth:`fdkit.files.OutputGuard.staged_folder`),
    so the pooled folder appears whole or not at all.

    Returns
    -------
    dict
        The manifest as written.
    """
    from . import files

    folder = Path(folder)
    if unknown := set(tables) ^ set(POOL_TABLES):
        raise ValueError(f"a pooled folder holds exactly the tables {', '.join(POOL_TABLES)}; got {sorted(unknown)}")
    written = {}
    for key, name in POOL_TABLES.items():
        table = tables[key]
        dates = [c for c in table.columns if pd.api.types.is_datetime64_any_dtype(table[c])]
        table = table.assign(**{c: table[c].dt.strftime("%Y-%m-%d") for c in dates})
        files.write_csv(table, folder / name)
        written[name] = _file_sha256(folder / name)
    manifest = {**manifest, "files": written}
    text = json.dumps(manifest, indent=2, sort_keys=True, default=_json_default) + "\n"
    files.atomic_write(folder / POOL_MANIFEST, lambda handle: handle.write(text))
    return manifest


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot record {type(value).__name__} in the pooled folder's manifest")


def read_pooled(folder: str | Path) -> PooledFolder:
    """Read a pooled folder written by ``fdkit pool``, refusing one that changed since.

    Raises
    ------
    fdkit.FdkitDataError
        When ``pool.json`` or a table is missing or unreadable, or a table's SHA-256 is not the
        one ``fdkit pool`` recorded (someone edited the results or the frame).
    """
    folder = Path(folder)
    manifest_file = folder / POOL_MANIFEST
    if not manifest_file.is_file():
        raise FdkitDataError(
            [Problem(POOL_MANIFEST, f"{folder} holds no {POOL_MANIFEST}: it is not a folder written by fdkit pool")],
            source=folder,
        )
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        recorded = dict(manifest["files"])
        manifest["sites"], manifest["settings"]  # noqa: B018 - both must be there
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FdkitDataError([Problem(POOL_MANIFEST, f"not readable ({error})")], source=folder) from None
    problems = []
    for name in POOL_TABLES.values():
        path = folder / name
        if not path.is_file():
            problems.append(Problem(name, "missing: fdkit pool writes it"))
        elif _file_sha256(path) != recorded.get(name):
            problems.append(
                Problem(name, "has changed since fdkit pool wrote it (its SHA-256 differs); run fdkit pool again")
            )
    if problems:
        raise FdkitDataError(problems, source=folder)
    tables = {
        key: pd.read_csv(
            folder / name,
            dtype={c: str for c in _TEXT_COLUMNS},
            keep_default_na=False,
            na_values=[""],
        )
        for key, name in POOL_TABLES.items()
    }
    for table in tables.values():
        for column in set(_TEXT_COLUMNS) & set(table.columns):
            table[column] = table[column].fillna("")
    frame = tables["frame"]
    frame["randomised_on"] = pd.to_datetime(frame["randomised_on"])
    return PooledFolder(folder=folder, manifest=manifest, **tables)
