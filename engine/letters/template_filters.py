"""Jinja2 filters for letter templates beyond the date and time formats.

Registered on the letter template environment in ``engine.letters.render`` (``FILTERS``):

  age_on(birth_date, on)   whole years completed on ``on``: ``{{ p.birth_date|age_on(d) }}``
                           -> 67. Empty (None) when either date is missing or ``on`` is before
                           the birth date, so a template can write ``{% if age is not none %}``.
  kewarganegaraan(code)    "WNI" -> "Warga Negara Indonesia (WNI)",
                           "WNA" -> "Warga Negara Asing (WNA)"; anything else unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def age_on(birth_date: object, on: object) -> int | None:
    """Completed years between ``birth_date`` and ``on`` (a birthday counts on the day itself;
    someone born on 29 February turns a year older on 1 March in a common year)."""
    born, day = _as_date(birth_date), _as_date(on)
    if born is None or day is None or day < born:
        return None
    years = day.year - born.year
    if (day.month, day.day) < (born.month, born.day):
        years -= 1
    return years


CITIZENSHIP_WORDS = {
    "WNI": "Warga Negara Indonesia (WNI)",
    "WNA": "Warga Negara Asing (WNA)",
}


def kewarganegaraan(code: object) -> object:
    """The citizenship code as a letter writes it out."""
    if isinstance(code, str):
        return CITIZENSHIP_WORDS.get(code.strip().upper(), code)
    return code


FILTERS: dict[str, Callable[..., object]] = {
    "age_on": age_on,
    "kewarganegaraan": kewarganegaraan,
}
