"""Hypothesis over the engine's input cleaners: the one text rule (engine.text), the fonts' coverage
(engine.letters.pdf_fonts.unprintable), workflow field cleaning, and the archive's query, cursor and
CSV cell rules. Whatever the input, a cleaner answers with a clean value or its own refusal; never
another exception, never a value that breaks storage or the letter."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import PROJECT_ROOT
from engine.errors import InvalidInput
from engine.letters import archive
from engine.letters.pdf_fonts import _FONT_FILES, _load_font, printable_codepoints, unprintable
from engine.requests.workflows import FieldErrors, load_workflows
from engine.text import TextProblem, clean_text, forbidden_char, text_problem

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)
SPECS = load_workflows(PROJECT_ROOT / "workflows")
# All of Unicode, surrogates included (JSON can carry them).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
CONTROLS = st.sampled_from(
    [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\r"]
)
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)


@BOUNDED
@given(text=ANY_TEXT, multiline=st.booleans())
def test_clean_text_returns_clean_text_or_refuses(text, multiline):
    try:
        cleaned = clean_text(text, multiline=multiline)
    except TextProblem as exc:
        assert str(exc)
        return
    cleaned.encode("utf-8")  # storable in PostgreSQL, sendable as JSON
    assert "\x00" not in cleaned
    assert forbidden_char(cleaned, multiline=multiline) is None
    if not multiline:
        assert "\n" not in cleaned and "\r" not in cleaned
    assert "\r" not in cleaned


@BOUNDED
@given(before=ANY_TEXT, bad=st.one_of(CONTROLS, SURROGATES), after=ANY_TEXT)
def test_any_control_character_or_lone_surrogate_is_refused(before, bad, after):
    for multiline in (False, True):
        with pytest.raises(TextProblem):
            clean_text(f"a{before}{bad}{after}z", multiline=multiline)
        assert text_problem(f"a{bad}z", multiline=multiline)


@BOUNDED
@given(text=st.text(st.sampled_from(sorted(chr(c) for c in printable_codepoints())), max_size=80))
def test_text_of_printable_characters_passes_unchanged(text):
    assert unprintable(text) == []
    assert clean_text(text, max_length=None) == text.strip()


def test_printable_set_is_what_every_embedded_font_face_really_has():
    """The check at input and the fonts in the PDF agree: every code point the rule lets through
    has a glyph in each reduced face the renderer embeds."""
    allowed = printable_codepoints()
    assert {ord(c) for c in "AZaz09ÑñÜüŁłŉ€—‘’“”"} <= allowed
    for key in _FONT_FILES:
        assert allowed <= set(_load_font(key).proto.cmap), key
    assert unprintable("中文 😀 ع ק ∑") == ["中", "文", "😀", "ع", "ק", "∑"]


@BOUNDED
@given(value=st.one_of(ANY_TEXT, st.integers(), st.floats(), st.none(), st.booleans()))
def test_every_workflow_field_cleaner_answers_with_a_value_or_a_reason(value):
    for spec in SPECS.values():
        for field in spec.fields:
            try:
                cleaned = field.clean(value)
            except ValueError as exc:
                assert str(exc)
                str(exc).encode("utf-8")  # the reason itself can be sent back
                continue
            if isinstance(cleaned, str):
                cleaned.encode("utf-8")
                assert unprintable(cleaned) == []
                assert forbidden_char(cleaned, multiline=True) is None


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.dictionaries(ANY_TEXT, st.one_of(ANY_TEXT, st.integers()), max_size=4))
def test_validate_data_refuses_with_field_errors_only(data):
    spec = SPECS["surat-keterangan-umum"]
    try:
        spec.validate_data(data)
    except FieldErrors as exc:
        for name, reason in exc.errors.items():
            name.encode("utf-8")
            reason.encode("utf-8")


@BOUNDED
@given(cursor=st.one_of(ANY_TEXT, st.text("0123456789_-:T+.", max_size=120)))
def test_archive_cursor_decoding_never_raises_and_bounds_ids(cursor):
    position = archive.decode_cursor(cursor)
    if position is not None:
        at, ident = position
        assert 1 <= ident <= archive.MAX_ID
        assert archive.EARLIEST <= at.date() <= archive.LATEST
    try:
        archive.check_cursor(cursor)
    except InvalidInput as exc:
        assert "cursor" in exc.errors


@BOUNDED
@given(
    at=st.datetimes(datetime(1900, 1, 2), datetime(2100, 12, 30), timezones=st.just(UTC)),
    ident=st.integers(1, archive.MAX_ID),
)
def test_archive_cursor_round_trips(at, ident):
    row = archive.ArchiveRow(ident, 1, "", "", "", "", "", at, "active", None)
    assert archive.decode_cursor(archive.encode_cursor(row)) == (at, ident)


@BOUNDED
@given(
    name=ANY_TEXT,
    date_from=st.one_of(st.none(), st.dates(date(1, 1, 1), date(9999, 12, 31))),
    date_to=st.one_of(st.none(), st.dates(date(1, 1, 1), date(9999, 12, 31))),
)
def test_archive_query_is_refused_or_can_be_built(name, date_from, date_to):
    q = archive.ArchiveQuery(None, name=name, date_from=date_from, date_to=date_to)
    try:
        archive.check(q)
    except InvalidInput as exc:
        assert set(exc.errors) <= {"number", "name", "nik", "workflow_id", "date_from", "date_to"}
        return
    archive._filtered(q)  # the WIB day boundaries do not overflow


@BOUNDED
@given(value=ANY_TEXT)
def test_csv_cells_never_start_a_formula(value):
    cell = archive.csv_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (value, "'" + value)
