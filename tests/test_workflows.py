import dataclasses
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pytest

from engine.config import PROJECT_ROOT
from engine.requests.workflows import (
    FieldErrors,
    WorkflowError,
    WorkflowErrors,
    WorkflowSpec,
    format_number,
    load_workflow,
    load_workflows,
    workflow_json_schema,
    workflow_problems,
)

SHIPPED = PROJECT_ROOT / "workflows"
TODAY = date(2026, 11, 20)

BASE = """\
id: test-letter
version: 2
title: Surat Uji
classification: "474.3"
number_format: "{classification}/{seq:03}/{village_code}/{month_roman}/{year}"
subjects:
  deceased: {label: Yang meninggal, alive: true}
  reporter: {label: Pelapor, required: false}
fields:
  - {name: when, label: Tanggal, type: date, required: true}
  - {name: cause, label: Sebab, type: choice, options: [Sakit, Lainnya]}
template: templates/t.html.j2
steps:
  draft: {role: operator, actions: {submit: review}}
  review: {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}
  signing: {role: head, actions: {sign: issued, return: review, reject: rejected}}
effects:
  issued: [mark_deceased: deceased]
"""


def write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "t.html.j2").write_text("<p>{{ when }}</p>\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in text")


def refused(tmp_path: Path, text: str) -> WorkflowError:
    path = write(tmp_path, text)
    with pytest.raises(WorkflowError) as info:
        load_workflow(path)
    e = info.value
    assert e.file == str(path)
    assert str(e) == (f"{path}:{e.line}: {e.reason}" if e.line else f"{path}: {e.reason}")
    return e


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


# --------------------------------------------------------------------------- shipped files


def test_shipped_workflows_load() -> None:
    specs = load_workflows(SHIPPED)
    yaml_ids = {path.stem for path in SHIPPED.glob("*.yaml")}
    assert set(specs) == yaml_ids  # every shipped YAML loads, under its file's name
    assert len(specs) >= 11
    umum = specs["surat-keterangan-umum"]
    assert [s.name for s in umum.subjects] == ["applicant"]
    assert umum.subjects[0].alive is True
    assert umum.initial_state == "draft"
    assert dict(umum.step("review").actions) == {
        "approve": "signing",
        "return": "draft",
        "reject": "rejected",
    }
    assert umum.step("signing").role == "head"
    assert umum.template_path == (SHIPPED / "templates" / "umum.html.j2").resolve()

    mati = specs["surat-keterangan-kematian"]
    assert [s.role for s in mati.steps.values()] == ["operator", "kasi", "sekdes", "head"]
    assert mati.classification == "400.12.3.1"  # Permendagri 83/2022 (docs/numbering.md)
    assert [(e.on_state, e.kind, e.subject) for e in mati.effects] == [
        ("issued", "mark_deceased", "deceased")
    ]
    assert mati.field("cause").options == ("Sakit", "Kecelakaan", "Lainnya")

    lahir = specs["surat-keterangan-kelahiran"]
    assert lahir.subject("mother").sex == "P"
    assert lahir.subject("father").required is False
    assert lahir.subject("father").sex == "L"
    for spec in specs.values():
        assert spec.template_path.is_file()
        assert len(spec.sha256) == 64


def test_shipped_validate_data() -> None:
    specs = load_workflows(SHIPPED)
    umum = specs["surat-keterangan-umum"]
    assert umum.validate_data({"keperluan": "  Melamar kerja "}) == {
        "keperluan": "Melamar kerja",
        "keterangan": None,
        "kelakuan_baik": None,
    }
    with pytest.raises(FieldErrors) as info:
        umum.validate_data({"keterangan": "x", "nama": "Budi"})
    assert info.value.errors == {
        "nama": "Isian tidak dikenal untuk surat ini",
        "keperluan": "Wajib diisi",
    }

    mati = specs["surat-keterangan-kematian"]
    good = {
        "date_of_death": "2026-11-19",
        "time_of_death": "14.30",
        "place_of_death": "Rumah",
        "cause": "sakit",
    }
    assert mati.validate_data(good, today=TODAY) == {
        "date_of_death": date(2026, 11, 19),
        "time_of_death": time(14, 30),
        "place_of_death": "Rumah",
        "cause": "Sakit",
        "reporter_relation": None,
    }
    with pytest.raises(FieldErrors) as info:
        mati.validate_data(
            {"date_of_death": "19-11-2026", "time_of_death": "25:00", "cause": "Dibunuh"},
            today=TODAY,
        )
    errors = info.value.errors
    assert errors["date_of_death"] == "Tanggal tidak valid, gunakan format YYYY-MM-DD"
    assert errors["time_of_death"].startswith("Jam tidak valid")
    assert errors["place_of_death"] == "Wajib diisi"
    assert errors["cause"].startswith("Pilihan tidak dikenal: Dibunuh")
    with pytest.raises(FieldErrors) as info:
        mati.validate_data({**good, "date_of_death": "2026-12-01"}, today=TODAY)
    assert info.value.errors == {"date_of_death": "Tanggal tidak boleh di masa depan"}
    with pytest.raises(FieldErrors, match="Tanggal tidak valid"):
        mati.validate_data({**good, "date_of_death": "2026-02-30"}, today=TODAY)

    lahir = specs["surat-keterangan-kelahiran"]
    cleaned = lahir.validate_data(
        {
            "child_name": "Ayu",
            "child_sex": "Perempuan",
            "birth_date": date(2026, 11, 1),
            "birth_place": "Sukoharjo",
        },
        today=TODAY,
    )
    assert cleaned["birth_date"] == date(2026, 11, 1)
    assert cleaned["birth_time"] is None
    with pytest.raises(FieldErrors) as info:
        lahir.validate_data(
            {"child_name": "Ayu\nBudi", "child_sex": 1, "birth_date": 20261101, "birth_place": "X"},
            today=TODAY,
        )
    assert set(info.value.errors) == {"child_name", "child_sex", "birth_date"}


# --------------------------------------------------------------------------- spec behaviour


def test_base_loads_with_initial_first_step(tmp_path: Path) -> None:
    spec = load_workflow(write(tmp_path, BASE))
    assert spec.id == "test-letter" and spec.version == 2
    assert spec.initial_state == "draft"
    assert spec.template == "templates/t.html.j2"
    assert spec.source_path == (tmp_path / "wf.yaml").resolve()


def test_explicit_initial(tmp_path: Path) -> None:
    text = BASE.replace("steps:\n", "initial: review\nsteps:\n")
    assert load_workflow(write(tmp_path, text)).initial_state == "review"


def test_spec_is_immutable(tmp_path: Path) -> None:
    spec = load_workflow(write(tmp_path, BASE))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.version = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.steps["x"] = spec.step("draft")  # type: ignore[index]
    with pytest.raises(TypeError):
        spec.step("draft").actions["sign"] = "issued"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.fields[0].required = False  # type: ignore[misc]
    with pytest.raises(KeyError):
        spec.step("nowhere")


def test_sha256_follows_yaml_and_template(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    first = load_workflow(path).sha256
    assert load_workflow(path).sha256 == first
    path.write_text(BASE.replace("title: Surat Uji", "title: Surat Uji Coba"))
    second = load_workflow(path).sha256
    assert second != first
    (tmp_path / "templates" / "t.html.j2").write_text("<p>changed</p>\n")
    assert load_workflow(path).sha256 != second


def test_validate_number_and_nik_fields(tmp_path: Path) -> None:
    text = edit(
        "  - {name: cause, label: Sebab, type: choice, options: [Sakit, Lainnya]}\n",
        "  - {name: age, label: Umur, type: number, min: 0, max: 150}\n"
        "  - {name: witness_nik, label: NIK saksi, type: nik}\n",
    )
    spec = load_workflow(write(tmp_path, text))
    ok = spec.validate_data(
        {"when": "2026-01-02", "age": "42", "witness_nik": "3311 0101 0190 0001"}, today=TODAY
    )
    assert ok["age"] == 42 and isinstance(ok["age"], int)
    assert ok["witness_nik"] == "3311010101900001"
    assert spec.validate_data({"when": "2026-01-02", "age": "1,5"})["age"] == Decimal("1.5")
    for bad, reason in [
        ("empat", "Harus berupa angka"),
        (True, "Harus berupa angka"),
        (151, "Maksimal 150"),
    ]:
        with pytest.raises(FieldErrors) as info:
            spec.validate_data({"when": "2026-01-02", "age": bad})
        assert info.value.errors == {"age": reason}
    with pytest.raises(FieldErrors) as info:
        spec.validate_data({"when": "2026-01-02", "witness_nik": "9911010101900001"})
    assert info.value.errors == {"witness_nik": "Kode provinsi '99' (digit 1-2) tidak dikenal"}


def test_a_whole_number_field_refuses_fractions(tmp_path: Path) -> None:
    text = edit(
        "  - {name: cause, label: Sebab, type: choice, options: [Sakit, Lainnya]}\n",
        "  - {name: order, label: Anak ke-, type: number, min: 1, whole: true}\n",
    )
    spec = load_workflow(write(tmp_path, text))
    assert spec.validate_data({"when": "2026-01-02", "order": "2.0"})["order"] == 2
    with pytest.raises(FieldErrors) as info:
        spec.validate_data({"when": "2026-01-02", "order": "2,5"})
    assert info.value.errors == {"order": "Harus bilangan bulat (tanpa koma)"}
    bad = edit(
        "  - {name: cause, label: Sebab, type: choice, options: [Sakit, Lainnya]}\n",
        "  - {name: cause, label: Sebab, type: text, whole: true}\n",
    )
    with pytest.raises(WorkflowError, match="'whole' hanya untuk jenis number"):
        load_workflow(write(tmp_path, bad))


def test_format_number() -> None:
    fmt = "{classification}/{seq:03}/{village_code}/{month_roman}/{year}"
    number = format_number(
        fmt, classification="474.3", seq=12, village_code="33.11.01.2001", month=11, year=2026
    )
    assert number == "474.3/012/33.11.01.2001/XI/2026"
    assert (
        format_number(
            "{seq}-{month:02}.{year}",
            classification="",
            seq=1234,
            village_code="",
            month=3,
            year=2027,
        )
        == "1234-03.2027"
    )


def test_json_schema() -> None:
    schema = workflow_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"id", "version", "steps", "fields", "subjects", "effects", "template"} <= set(
        schema["properties"]
    )
    assert set(schema["properties"]["fields"]["items"]["properties"]["type"]["enum"]) == {
        "text",
        "textarea",
        "date",
        "time",
        "number",
        "choice",
        "nik",
    }
    try:
        import jsonschema  # type: ignore[import-untyped]
        import yaml
    except ImportError:
        return  # not in the venv; the shape checks above still ran
    validator = jsonschema.Draft202012Validator(schema)
    for path in SHIPPED.glob("*.yaml"):
        validator.validate(yaml.safe_load(path.read_text()))


# --------------------------------------------------------------------------- refusals


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = edit("title: Surat Uji\n", "title: [Surat Uji\n")
    e = refused(tmp_path, text)
    assert e.reason.startswith("YAML tidak valid")
    assert e.line is not None and e.line >= line_of(text, "title:")


def test_duplicate_key(tmp_path: Path) -> None:
    text = edit("title: Surat Uji\n", "title: Surat Uji\ntitle: Lagi\n")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "title: Lagi")
    assert "ganda" in e.reason


def test_missing_top_level_key(tmp_path: Path) -> None:
    e = refused(tmp_path, edit("title: Surat Uji\n", ""))
    assert e.line == 1
    assert "'title' wajib ada" in e.reason


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = edit("title: Surat Uji\n", "title: Surat Uji\nsigner: head\n")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "signer:")
    assert "'signer' tidak dikenal" in e.reason


@pytest.mark.parametrize("version", ['"2"', "2.5", "true", "0"])
def test_version_must_be_a_positive_integer(tmp_path: Path, version: str) -> None:
    text = edit("version: 2\n", f"version: {version}\n")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "version:")
    assert e.reason.startswith("version:")


def test_unquoted_classification_is_refused(tmp_path: Path) -> None:
    text = edit('classification: "474.3"', "classification: 470.10")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "classification:")
    assert "tanda kutip" in e.reason


def test_unknown_role(tmp_path: Path) -> None:
    text = edit("review: {role: sekdes,", "review: {role: lurah,")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "role: lurah")
    assert "peran 'lurah' tidak dikenal" in e.reason


def test_unknown_action(tmp_path: Path) -> None:
    text = edit("{submit: review}", "{submit: review, forward: signing}")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "forward")
    assert "aksi 'forward' tidak dikenal" in e.reason


def test_declared_cancel_is_refused(tmp_path: Path) -> None:
    text = edit("{submit: review}", "{submit: review, cancel: cancelled}")
    e = refused(tmp_path, text)
    assert "bawaan" in e.reason


def test_unknown_field_type(tmp_path: Path) -> None:
    text = edit("type: date, required: true", "type: datetime, required: true")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "datetime")
    assert "jenis 'datetime' tidak dikenal" in e.reason


def test_target_neither_step_nor_terminal(tmp_path: Path) -> None:
    text = edit("approve: signing, return: draft", "approve: signing, return: drafts")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "drafts")
    assert "tujuan 'drafts'" in e.reason


def test_unreachable_step(tmp_path: Path) -> None:
    text = BASE.replace(
        "effects:\n", "  archive: {role: kasi, actions: {approve: signing}}\neffects:\n"
    )
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "archive:")
    assert "tidak bisa dicapai" in e.reason


def test_step_that_cannot_reach_an_end(tmp_path: Path) -> None:
    text = edit(
        "  review: {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}\n",
        "  review: {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}\n"
        "  loop_a: {role: kasi, actions: {approve: loop_b}}\n"
        "  loop_b: {role: kasi, actions: {approve: loop_a}}\n",
    ).replace("{submit: review}", "{submit: review, approve: loop_a}")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "loop_a: {")
    assert "tidak pernah sampai ke status akhir" in e.reason


def test_no_path_to_issued(tmp_path: Path) -> None:
    text = edit(
        "{sign: issued, return: review, reject: rejected}", "{reject: rejected, return: review}"
    )
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "steps:")
    assert "'issued'" in e.reason


def test_sign_must_lead_to_issued(tmp_path: Path) -> None:
    text = edit(
        "{sign: issued, return: review, reject: rejected}", "{sign: review, approve: issued}"
    )
    path = write(tmp_path, text)
    _, problems = workflow_problems(path)
    line = line_of(text, "sign: review")
    assert WorkflowError(
        path, line, "langkah 'signing', aksi 'sign': aksi sign harus menuju 'issued'"
    ).args in [p.args for p in problems]
    # and nothing but sign may issue a letter
    assert any("hanya aksi sign" in p.reason for p in problems)


def test_missing_template(tmp_path: Path) -> None:
    text = edit("templates/t.html.j2", "templates/missing.html.j2")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "template:")
    assert "tidak ditemukan" in e.reason


def test_template_outside_the_workflow_folder(tmp_path: Path) -> None:
    text = edit("templates/t.html.j2", "../../etc/passwd")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "template:")


@pytest.mark.parametrize(
    ("number_format", "reason"),
    [
        ("{classification}/{seq:03}/{village}/{year}", "{village} tidak dikenal"),
        ("{classification}/{village_code}/{year}", "harus memuat {seq}"),
        ("{classification}/{seq:03}/{village_code}", "harus memuat {year}"),
        ("{classification}/{seq:03/{year}", "tidak seimbang"),
        ("{classification}/{seq:03}}/{year}", "tidak seimbang"),
        ("{classification!r}/{seq:03}/{year}", "tidak didukung"),
    ],
)
def test_bad_number_format(tmp_path: Path, number_format: str, reason: str) -> None:
    text = edit(
        '"{classification}/{seq:03}/{village_code}/{month_roman}/{year}"', f'"{number_format}"'
    )
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "number_format:")
    assert reason in e.reason


def test_effect_with_unknown_subject(tmp_path: Path) -> None:
    text = edit("[mark_deceased: deceased]", "[mark_deceased: father]")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "mark_deceased")
    assert "subjek 'father'" in e.reason


def test_effect_with_unknown_kind(tmp_path: Path) -> None:
    text = edit("[mark_deceased: deceased]", "[mark_married: deceased]")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "mark_married")
    assert "jenis 'mark_married'" in e.reason


def test_choice_without_options(tmp_path: Path) -> None:
    text = edit("type: choice, options: [Sakit, Lainnya]}", "type: choice}")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "name: cause")
    assert "'options'" in e.reason


def test_duplicate_field_name(tmp_path: Path) -> None:
    text = edit("{name: cause,", "{name: when,")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "Sebab")
    assert "ganda" in e.reason


def test_duplicate_subject_name(tmp_path: Path) -> None:
    text = edit("  reporter: {label: Pelapor", "  deceased: {label: Pelapor")
    e = refused(tmp_path, text)
    assert e.line == line_of(text, "Pelapor")
    assert "ganda" in e.reason


def test_load_workflows_collects_every_problem_and_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, BASE, "b.yaml")
    bad = edit("review: {role: sekdes,", "review: {role: lurah,").replace(
        "id: test-letter", "id: other"
    )
    write(tmp_path, bad.replace("title: Surat Uji\n", ""), "c.yaml")
    with pytest.raises(WorkflowErrors) as info:
        load_workflows(tmp_path)
    errors = info.value.errors
    by_file = {(Path(e.file).name, e.line) for e in errors}
    assert ("b.yaml", 1) in by_file  # duplicate id, on the id line
    assert any("sudah dipakai" in e.reason for e in errors)
    c_reasons = [e.reason for e in errors if Path(e.file).name == "c.yaml"]
    assert len(c_reasons) == 2  # both the missing title and the unknown role
    assert "b.yaml:1:" in str(info.value)


def test_workflow_spec_type() -> None:
    assert dataclasses.is_dataclass(WorkflowSpec)


# --------------------------------------------------------------------------- a.n. signers


# Letters the sekdes may sign "a.n." the head: routine certificates only, never a letter about a
# death, a birth, a move or a person's identity.
SIGNED_ON_BEHALF = {
    "surat-keterangan-umum",
    "surat-keterangan-domisili",
    "surat-keterangan-usaha",
}


def test_on_behalf_signing_only_where_shipped() -> None:
    specs = load_workflows(SHIPPED)
    for wf_id, spec in specs.items():
        signers = {
            role: mark for step in spec.steps.values() for role, mark in step.signers.items()
        }
        if wf_id in SIGNED_ON_BEHALF:
            assert signers == {"sekdes": "a.n."}, wf_id
        else:
            assert signers == {}, wf_id


def test_signers_accepted(tmp_path: Path) -> None:
    text = edit(
        "signing: {role: head, actions: {sign: issued, return: review, reject: rejected}}",
        "signing: {role: head, actions: {sign: issued, return: review, reject: rejected},\n"
        '            signers: {sekdes: "a.n.", kasi: u.b.}}',
    )
    spec = load_workflow(write(tmp_path, text))
    assert dict(spec.step("signing").signers) == {"sekdes": "a.n.", "kasi": "u.b."}
    assert not spec.step("review").signers


@pytest.mark.parametrize(
    ("signers", "needle", "reason"),
    [
        ("{head: a.n.}", "head: a.n.", "penanda tangan 'head' tidak dikenal"),
        ("{operator: a.n.}", "operator: a.n.", "penanda tangan 'operator' tidak dikenal"),
        ("{sekdes: an}", "sekdes: an", "harus a.n. atau u.b., bukan 'an'"),
        ("[sekdes]", "[sekdes]", "'signers' harus berupa {peran: a.n.}"),
    ],
)
def test_signers_refused_with_line(tmp_path: Path, signers: str, needle: str, reason: str) -> None:
    text = edit(
        "signing: {role: head, actions: {sign: issued, return: review, reject: rejected}}",
        "signing:\n"
        "    role: head\n"
        "    actions: {sign: issued, return: review, reject: rejected}\n"
        f"    signers: {signers}",
    )
    e = refused(tmp_path, text)
    assert reason in e.reason and e.reason.startswith("langkah 'signing'")
    assert e.line == line_of(text, needle)


def test_signers_only_on_a_heads_signing_step(tmp_path: Path) -> None:
    text = edit(
        "review: {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}",
        "review:\n"
        "    role: sekdes\n"
        "    actions: {approve: signing, return: draft, reject: rejected}\n"
        "    signers: {kasi: u.b.}",
    )
    e = refused(tmp_path, text)
    assert "'signers' hanya untuk langkah peran head" in e.reason
    assert e.line == line_of(text, "signers:")


def test_signers_in_json_schema() -> None:
    step = workflow_json_schema()["properties"]["steps"]["additionalProperties"]
    signers = step["properties"]["signers"]
    assert set(signers["propertyNames"]["enum"]) == {"sekdes", "kasi"}
    assert set(signers["additionalProperties"]["enum"]) == {"a.n.", "u.b."}
