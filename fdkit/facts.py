"""Facts about the Milton Keynes trial, each with its source, kept in one table.

Every figure the notebooks quote about the real trial (cohort sizes, windows, published
reductions, the evidence base around it) lives in ``fdkit/data/trial_facts.csv``, one row per
fact with the sentence it supports and where it comes from. Notebooks print facts from here
instead of typing them, and a test checks that no notebook states a trial figure that is not in
the table.

Some facts are absences: the control group's size, the test used and the p-values were not
published. Those rows hold ``not published`` (or ``not recoverable``) as their value, so that a
notebook can say so from the same place.

:data:`UNSUPPORTED_CLAIMS` lists claims that the kit once made and that the sources do not
support, each as a pattern and the reason, so that tests can keep them out.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import pandas as pd

__all__ = ["UNSUPPORTED_CLAIMS", "facts", "value", "number", "cite", "numbers", "unsupported_claims"]

_COLUMNS = ("key", "value", "unit", "statement", "source")

#: Claims the trial's sources do not support: (regular expression, why it is wrong).
#: :func:`unsupported_claims` matches them case-insensitively, emphasis removed, whitespace collapsed.
UNSUPPORTED_CLAIMS: tuple[tuple[str, str], ...] = (
    (
        r"without (?:any )?published significance markers|(?:has|had|with) no significance markers",
        "The poster has a key marking significant results; its symbols were lost when the text was extracted.",
    ),
    (
        r"(?:authors|evaluators|poster)[^.]{0,80}(?:overstate|exaggerat)"
        r"|(?:overstate|exaggerat)[^.]{0,120}(?:authors|evaluators)(?! claim)",
        "The authors call the findings strong and resilient and ask for replication because the cohort is small; "
        "they do not say their estimates are overstated.",
    ),
    (
        r"trial (?:went on to )?(?:take|took|randomised|recruited) a second cohort|second cohort was randomised",
        "The service took new cohorts (90 people in all) after the trial had finished; no second randomised cohort "
        "is reported.",
    ),
    (
        r"engaged more often[^.]{0,100}(?:trial|report|poster)",
        "No engagement figures survive in the sources.",
    ),
    (
        r"(?:trial|headline outcome)[^.]{0,80}measured[^.]{0,80}this way",
        "The sources say only that the Cambridge Crime Harm Index was used, not how (for example, whether "
        "police-initiated crimes were excluded).",
    ),
    (
        r"(?:about|roughly|near) the (?:real )?trial's size|(?:cohort|group) of the trial's size",
        "The eligible and control group sizes were never published.",
    ),
    (
        r"milton keynes (?:design|trial)(?: had| has| would)[^.]{0,80}"
        r"(?:low power|not have produced|minimum detectable)(?![^.]{0,200}assum)",
        "The trial's power and minimum detectable effect are not known: they rest on an assumed control group size "
        "and the kit's synthetic harm distribution, and must be stated as such.",
    ),
    (
        r"(?:milton keynes|the) (?:trial|study) (?:was|is) (?:a |only a )?(?:small )?pilot|a small pilot",
        "It was a randomised controlled trial, not a pilot.",
    ),
    (
        r"less than 5% (?:likelihood|chance|probability) (?:that )?the (?:finding|result) (?:was|is) due to chance"
        r"(?![^.]{0,200}(?:misread|not what|is not|isn't|wrong|incorrect))",
        "This is the poster key's misreading of a p-value; quote it only to correct it.",
    ),
)


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    source = resources.files("fdkit").joinpath("data/trial_facts.csv")
    with resources.as_file(source) as path:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = set(_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"trial_facts.csv: missing columns {sorted(missing)}")
    if table["key"].duplicated().any():
        raise ValueError(f"trial_facts.csv: repeated keys {table.loc[table['key'].duplicated(), 'key'].tolist()}")
    if (table["source"].str.strip() == "").any():
        raise ValueError(f"trial_facts.csv: facts without a source: {table.loc[table['source'] == '', 'key'].tolist()}")
    return table.loc[:, list(_COLUMNS)]


def facts() -> pd.DataFrame:
    """Return every trial fact: ``key``, ``value``, ``unit``, ``statement`` and ``source``.

    Examples
    --------
    >>> from fdkit import facts
    >>> facts.facts().set_index("key").loc["treated_total", "value"]
    '45'
    """
    return _table().copy()


def value(key: str) -> str:
    """Return one fact's value as written in the table (text).

    Raises
    ------
    KeyError
        If the table has no fact with that key; the message lists the keys.
    """
    table = _table().set_index("key")
    if key not in table.index:
        raise KeyError(f"no trial fact {key!r}; known facts: {', '.join(table.index)}")
    return table.loc[key, "value"]


def number(key: str) -> float | int:
    """Return a numeric fact as an ``int`` when it is whole, otherwise a ``float``.

    Examples
    --------
    >>> from fdkit import facts
    >>> facts.number("treated_total"), facts.number("reduction_knife_suspect")
    (45, 39.8)
    """
    text = value(key)
    try:
        parsed = float(text)
    except ValueError:
        raise ValueError(f"trial fact {key!r} is not a number: {text!r}") from None
    return int(parsed) if parsed.is_integer() and "." not in text else parsed


def cite(key: str) -> str:
    """Return a fact's statement followed by its source in brackets, ready to print."""
    row = _table().set_index("key").loc[key]
    return f"{row['statement']} ({row['source']})"


def numbers() -> set[float]:
    """Every number that appears in a fact's value or statement, for checking notebook text."""
    found: set[float] = set()
    for text in pd.concat([_table()["value"], _table()["statement"]]):
        for match in re.findall(r"\d[\d,]*(?:\.\d+)?", text):
            found.add(float(match.replace(",", "")))
    return found


def unsupported_claims(text: str) -> list[str]:
    """Every passage of ``text`` that makes a claim in :data:`UNSUPPORTED_CLAIMS`, with the reason.

    Markdown emphasis (``*``) is removed and whitespace collapsed before matching.

    Examples
    --------
    >>> from fdkit import facts
    >>> facts.unsupported_claims("The trial went on to take a second cohort.")[0].split(":")[0]
    "'trial went on to take a second cohort'"
    """
    plain = " ".join(text.replace("*", "").split())
    return [
        f"{match.group(0)!r}: {why}"
        for pattern, why in UNSUPPORTED_CLAIMS
        for match in re.finditer(pattern, plain, re.IGNORECASE)
    ]
