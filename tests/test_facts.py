"""The trial facts table: one place for every figure about the real trial, each with a source."""

from __future__ import annotations

import pytest

from fdkit import facts, outcomes


def test_every_fact_has_a_unique_key_a_value_and_a_source():
    table = facts.facts()
    assert table["key"].is_unique
    assert (table["value"].str.strip() != "").all()
    assert (table["source"].str.strip() != "").all()
    assert (table["statement"].str.strip() != "").all()


def test_the_published_cohort_and_results_are_as_the_sources_give_them():
    # From the evaluation poster and press release (see /work/shared/DOMAIN.md section 1).
    assert (facts.number("treated_total"), facts.number("treated_11_17"), facts.number("treated_18_plus")) == (
        45,
        20,
        25,
    )
    assert facts.number("treated_11_17") + facts.number("treated_18_plus") == facts.number("treated_total")
    assert facts.value("control_size") == "not published"
    assert facts.number("reduction_knife_suspect") == 39.8
    assert facts.number("service_total") == 90


def test_outcomes_take_their_published_figures_from_the_facts_table():
    for outcome in outcomes.OUTCOMES:
        key = f"reduction_{outcome.name.replace('violence_sexual', 'violent_sexual').replace('other_npi', 'other')}"
        if outcome.published_reduction is None:
            assert key not in set(facts.facts()["key"])
        else:
            assert outcome.published_reduction == pytest.approx(facts.number(key))
    assert outcomes.PUBLISHED_UNDER_18["harm_suspect"] == facts.number("under_18_harm_suspect")


def test_an_unknown_fact_is_named_in_the_error():
    with pytest.raises(KeyError, match="no trial fact 'cohort_size'"):
        facts.value("cohort_size")
    with pytest.raises(ValueError, match="not a number"):
        facts.number("control_size")


# The sentences the kit's notebooks once held (issue 15's eight slips), and corrected versions.
SLIPS = [
    "It reported large reductions, but **without** published significance markers, tests or p-values.",
    "Small trials overstate the true effect, which is why the poster's own authors call for larger replications.",
    "The trial went on to take a second cohort.",
    "Under-18s engaged more often than adults (the synthetic world was built that way, following the trial's report).",
    "The Milton Keynes trial measured its headline outcome, crime harm as a suspect, this way.",
    "The town is tuned so that the trial's eligibility rule finds a cohort of about the trial's size.",
    "The Milton Keynes design had **low power** even for its own published effects.",
    "A replication should not be sized for the headline figure of a small pilot.",
    "Statistically significant: less than 5% likelihood the finding was due to chance.",
]
CORRECTIONS = [
    "The poster marked which were statistically significant, but the symbols were lost from the text.",
    "The poster calls its findings strong and resilient, and asks for larger replications.",
    "After the trial finished, the service took new young people as others completed their year.",
    "In the synthetic world under-18s engage more often; the kit's own assumption, as no figures survive.",
    "The sources say only that the trial used the Cambridge Crime Harm Index.",
    "The real eligible and control group sizes were never published.",
    "Under the kit's assumed control group, the Milton Keynes design had low power: an assumption, not a fact.",
    "It was a randomised controlled trial.",
    'The poster\'s key reads "less than 5% likelihood the finding was due to chance", which is not what a p-value is.',
]


@pytest.mark.parametrize("sentence", SLIPS)
def test_each_known_slip_is_caught(sentence):
    assert facts.unsupported_claims(sentence), sentence


@pytest.mark.parametrize("sentence", CORRECTIONS)
def test_the_corrected_wording_is_not_flagged(sentence):
    assert not facts.unsupported_claims(sentence)
