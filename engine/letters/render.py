"""Letter PDF rendering: an editable Jinja2 template -> letter markup -> PDF (fpdf2).

A regency admin changes a letter's wording and layout by editing its template under
`workflows/templates/`; no Python. The template renders (autoescaped) to a small XML markup
that this module lays out with fpdf2 primitives:

Blocks (children of <letter>, <col>):
  <letter font="serif|sans" size="12" leading="1.2"
          margin-top="15" margin-right="20" margin-bottom="20" margin-left="25">  root
  <p align="left|center|right|justify" size="12" font="serif|sans" leading="1.2"
     indent="0" left="0" before="0" after="0">inline content</p>
  <hr style="single|double" weight="0.3" gap="0.8" before="1" after="1"/>   full-width rule
  <table widths="45 4 *" left="10" size="12" leading="1.2" before="0" after="0">
      <tr><td align="left|center|right">inline</td>...</tr></table>   widths in mm, * = rest
  <space h="6"/>                         vertical space in mm
  <row before="0" after="0"><col width="80">blocks</col><col width="*">blocks</col></row>
                                         side-by-side columns, kept on one page
  <qr size="27"/>                        the verification QR (required on a signed letter;
                                         on a draft it only reserves its space)
  <img src="logo.png" width="22"/>       image file next to the template
  <emblem width="22"/>                   the regency emblem the regency admin uploaded (a
                                         neutral placeholder until then)
  <footer bottom="7">blocks</footer>     (child of <letter>) drawn at the foot of every page,
                                         inside the bottom margin, its last line ending
                                         ``bottom`` mm above the paper's edge
  <pagebreak/>
Inline: text, <b>, <i>, <u>, <br/>, <span size="9">; whitespace collapses as in HTML,
&nbsp; keeps words together. Units are millimetres, font sizes points.

Template variables: title, number (None on a draft), village (VillageInfo: name, address,
postal_code, phone, email, website, ...), portal_url (the verify portal's address, on a
signed letter), kind_upper ("DESA"/"KELURAHAN"), kind ("Desa"/"Kelurahan"), head_title
("Kepala Desa"/"Lurah"), signer (SignerInfo), subjects, subject_labels, fields, field_labels,
issued_on, draft, verify_url.
Filters: tanggal (28 November 2026), hari (Sabtu), jam (14.30 WIB).

The parsed fonts are cached per process; each document gets its own copy of the mutable
parts (fpdf2 subsets the font object in place when it writes the file).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, time
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import jinja2
from fpdf import FPDF
from fpdf.enums import DocumentCompliance, OutputIntentSubType
from fpdf.output import PDFICCProfile
from fpdf.util import builtin_srgb2014_bytes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.dates import format_jam, format_tanggal, nama_hari
from engine.letters.layout import TemplateMarkupError, _Layout
from engine.letters.layout_emblem import Emblem
from engine.letters.pdf_fonts import LetterOutput
from engine.letters.template_filters import FILTERS as TEMPLATE_FILTERS

PAPERS: dict[str, tuple[float, float]] = {"F4": (215.0, 330.0), "A4": (210.0, 297.0)}


@dataclass(frozen=True)
class Person:
    """A resident as printed."""

    name: str
    nik: str
    birth_place: str
    birth_date: date
    sex: str  # "Laki-laki" / "Perempuan"
    religion: str
    marital_status: str
    occupation: str
    address: str  # full address line incl. RT/RW, village
    citizenship: str = "WNI"  # the registry's: "WNI" | "WNA"


@dataclass(frozen=True)
class VillageInfo:
    code: str
    name: str
    kind: str  # "desa" | "kelurahan"
    district_name: str
    address: str
    postal_code: str
    phone: str = ""  # the kop's contact lines; empty: not printed
    email: str = ""
    website: str = ""
    emblem: Emblem | None = None  # the regency emblem (engine.letters.kop); None: placeholder


@dataclass(frozen=True)
class SignerInfo:
    title_lines: tuple[str, ...]  # ("KEPALA DESA GROGOL",) or ("a.n. KEPALA DESA GROGOL", ...)
    name: str
    nip: str | None


@dataclass(frozen=True)
class LetterContent:
    title: str
    number: str | None  # None for a draft preview
    village: VillageInfo
    signer: SignerInfo
    subjects: Mapping[str, Person]
    subject_labels: Mapping[str, str]
    fields: Mapping[str, object]
    field_labels: Mapping[str, str]
    issued_on: date


# --------------------------------------------------------------------------- Jinja


@lru_cache(maxsize=32)
def _environment(directory: str) -> jinja2.Environment:
    # Sandboxed: a template may be typed by the regency admin in the browser
    # (engine.requests.letter_type_editor), so no template reaches Python internals (no
    # `__class__`, no unsafe callables) and none changes the data it is given.
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,  # resident data is text, never markup
        auto_reload=True,  # an edited template applies without a restart
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.Undefined,  # an absent optional field renders empty / falsy
    )
    env.filters["tanggal"] = lambda d: format_tanggal(d) if isinstance(d, date) else d
    env.filters["hari"] = lambda d: nama_hari(d) if isinstance(d, date) else d
    env.filters["jam"] = lambda t: format_jam(t) if isinstance(t, time) else t
    env.filters.update(TEMPLATE_FILTERS)  # age_on, kewarganegaraan
    return env


def render_markup(
    template_path: Path, content: LetterContent, *, verify_url: str | None, draft: bool
) -> str:
    """The letter markup the template produces (useful to debug an edited template)."""
    template_path = Path(template_path)
    env = _environment(str(template_path.resolve().parent))
    template = env.get_template(template_path.name)
    kelurahan = content.village.kind == "kelurahan"
    return template.render(
        title=content.title,
        number=content.number,
        village=content.village,
        kind_upper="KELURAHAN" if kelurahan else "DESA",
        kind="Kelurahan" if kelurahan else "Desa",
        head_title="Lurah" if kelurahan else "Kepala Desa",
        signer=content.signer,
        subjects=content.subjects,
        subject_labels=content.subject_labels,
        fields=content.fields,
        field_labels=content.field_labels,
        issued_on=content.issued_on,
        draft=draft,
        verify_url=verify_url,
        portal_url=verify_url.rsplit("/v/", 1)[0] + "/v" if verify_url else None,
    )


# --------------------------------------------------------------------------- PDF/A-2b

SRGB = "sRGB IEC61966-2.1"
# The XMP packet: fpdf2's properties, but its namespaces declared on rdf:Description, where Apache
# Preflight's XMP parser looks for them (tests/test_pdfa.py; it cannot read fpdf2's own packet).
_XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <pdfaid:part>2</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
   <xmp:CreatorTool>{creator}</xmp:CreatorTool>
   <xmp:CreateDate>{date}</xmp:CreateDate>
   <xmp:ModifyDate>{date}</xmp:ModifyDate>
   <xmp:MetadataDate>{date}</xmp:MetadataDate>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


def make_pdfa(pdf: FPDF) -> None:
    """Make ``pdf`` a PDF/A-2b document (ISO 19005-2, level B). It is made with
    ``FPDF(enforce_compliance=DocumentCompliance.PDFA_2B)`` (PDF 1.7, no document information
    dictionary to contradict the XMP) and has its title and creator set. This adds the XMP
    metadata (pdfaid:part 2, conformance B, dc:title, xmp dates) and an sRGB output intent
    (/S /GTS_PDFA1; /DestOutputProfile the ICC's sRGB2014 profile that fpdf2 ships, ICC v2 and so
    valid in PDF/A-1 and -2 alike), since pages draw in DeviceRGB and DeviceGray. Fonts are
    embedded already (engine.letters.pdf_fonts) and fpdf2 writes the document /ID. The signature
    and the archival updates afterwards leave the metadata untouched
    (engine.trust.signing._KeepMetaWriter)."""
    date = pdf.creation_date.astimezone(UTC).isoformat(timespec="seconds")
    title, creator = (escape(getattr(pdf, k, None) or "") for k in ("title", "creator"))
    pdf.set_xmp_metadata(_XMP.format(title=title, creator=creator, date=date))
    pdf.add_output_intent(
        OutputIntentSubType.PDFA,
        output_condition_identifier=SRGB,
        registry_name="http://www.color.org",
        dest_output_profile=PDFICCProfile(builtin_srgb2014_bytes(), n=3, alternate="DeviceRGB"),
        info=SRGB,
    )


# --------------------------------------------------------------------------- entry point

_ENTITIES = {"&nbsp;": "&#160;", "&ndash;": "&#8211;", "&mdash;": "&#8212;"}


def _parse(markup: str) -> ET.Element:
    for name, ref in _ENTITIES.items():
        markup = markup.replace(name, ref)
    try:
        root = ET.fromstring(markup)
    except ET.ParseError as exc:
        raise TemplateMarkupError(f"letter markup is not well-formed: {exc}") from None
    if root.tag != "letter":
        raise TemplateMarkupError(f"the template must produce one <letter>, not <{root.tag}>")
    return root


def markup_to_pdf(
    markup: str,
    *,
    title: str,
    verify_url: str | None,
    paper: str = "F4",
    draft: bool = False,
    base_dir: Path | None = None,
    font_cache: bool = True,
    qr_text: str | None = None,
    prepared_fonts: bool = True,
    qr_mask: str = "fast",
    emblem: Emblem | None = None,
) -> bytes:
    """Lay out letter markup (see the module docstring) as a PDF. ``prepared_fonts=False``
    (fpdf2 subsets each font per document) and ``qr_mask="best"`` (all eight masks scored)
    are the previous render path, kept for bench/ and the scan test."""
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {sorted(PAPERS)}, not {paper!r}")
    root = _parse(markup)
    size = PAPERS[paper]
    pdf = FPDF(unit="mm", format=size, enforce_compliance=DocumentCompliance.PDFA_2B)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_title(title)
    pdf.set_lang("id")
    pdf.set_creator("Surat Desa")
    pdf.set_author("")
    make_pdfa(pdf)
    layout = _Layout(
        pdf,
        size,
        root,
        cached=font_cache,
        draft=draft,
        verify_url=verify_url,
        base_dir=(base_dir or Path.cwd()).resolve(),
        qr_text=qr_text,
        qr_mask=qr_mask,
        emblem=emblem,
    )
    layout.new_page()
    layout.blocks(root, layout.left, layout.right - layout.left, True)
    if not draft and layout.qr_count == 0:
        raise TemplateMarkupError("a signed letter needs <qr/> in its template")
    if font_cache and prepared_fonts:
        return bytes(pdf.output(output_producer_class=LetterOutput))
    return bytes(pdf.output())


def render_letter(
    template_path: Path,
    content: LetterContent,
    *,
    verify_url: str | None,
    paper: str = "F4",
    draft: bool = False,
    qr_text: str | None = None,
) -> bytes:
    """The letter as PDF bytes. A draft has no QR and a DRAFT watermark; a letter being
    signed must carry its verification URL (printed and in the QR). ``qr_text`` is what the
    QR encodes when it carries more than the printed URL (the URL plus the offline seal)."""
    if draft and verify_url is not None:
        raise ValueError("a draft has no verification URL: nothing unsigned carries a QR")
    if not draft and not verify_url:
        raise ValueError("a letter to be signed needs its verify_url for the QR")
    template_path = Path(template_path)
    markup = render_markup(template_path, content, verify_url=verify_url, draft=draft)
    title = content.title if content.number is None else f"{content.title} {content.number}"
    return markup_to_pdf(
        markup,
        title=title,
        verify_url=verify_url,
        paper=paper,
        draft=draft,
        base_dir=template_path.resolve().parent,
        qr_text=qr_text,
        emblem=content.village.emblem,
    )
