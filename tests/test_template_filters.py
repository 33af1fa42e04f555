"""The letter template filters beyond dates (engine.letters.template_filters): the age a letter
prints (death letter: age at death) and the written-out citizenship."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from engine.letters.template_filters import FILTERS, age_on, kewarganegaraan


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1958, 10, 28), date(2026, 11, 20), 68),
        (date(1958, 11, 20), date(2026, 11, 20), 68),  # the birthday itself counts
        (date(1958, 11, 21), date(2026, 11, 20), 67),  # the day before it does not
        (date(2000, 2, 29), date(2025, 2, 28), 24),  # a leap-day birth in a common year...
        (date(2000, 2, 29), date(2025, 3, 1), 25),  # ...turns a year older on 1 March
        (date(2026, 11, 20), date(2026, 11, 20), 0),
        (date(1958, 10, 28), datetime(2026, 11, 20, 14, 30), 68),
    ],
)
def test_age_on_counts_completed_years(born, on, age):
    assert age_on(born, on) == age


@pytest.mark.parametrize(
    ("born", "on"),
    [(None, date(2026, 1, 1)), (date(1990, 1, 1), None), (date(2026, 1, 2), date(2026, 1, 1))],
)
def test_age_on_is_empty_without_both_dates_or_before_birth(born, on):
    assert age_on(born, on) is None


def test_citizenship_is_written_out_and_anything_else_kept():
    assert kewarganegaraan("WNI") == "Warga Negara Indonesia (WNI)"
    assert kewarganegaraan(" wna ") == "Warga Negara Asing (WNA)"
    assert kewarganegaraan("Stateless") == "Stateless"
    assert kewarganegaraan(None) is None


def test_filters_are_registered_on_the_letter_templates(tmp_path):
    from engine.letters.render import _environment

    env = _environment(str(tmp_path))
    for name, function in FILTERS.items():
        assert env.filters[name] is function
    template = env.from_string("{{ born|age_on(died) }} tahun, {{ 'WNI'|kewarganegaraan }}")
    rendered = template.render(born=date(1958, 10, 28), died=date(2026, 11, 20))
    assert rendered == "68 tahun, Warga Negara Indonesia (WNI)"
