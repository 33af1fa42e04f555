"""Issue 12 item 3: issued letters are PDF/A-2b (ISO 19005-2, level B).

Two checks. Our own: the structural requirements the standard puts on such a file, on a letter
issued end to end: header, document ID, XMP metadata identifying PDF/A-2b (unfiltered,
consistent with any /Info), an sRGB output intent with its ICC profile, every font embedded
(``pdffonts``), no encryption or forbidden actions, and signature widgets that need no
appearance; and that the signature and the archival update leave the metadata exactly as
rendered. And an independent validator: veraPDF (the PDF/A-2 reference validator) is not in the
package registries reachable here, so Apache PDFBox's Preflight (Debian's libpdfbox2-java)
checks the rendered and the issued file. Preflight knows only PDF/A-1b (ISO 19005-1): the few
PDF/A-1 rules that ISO 19005-2 relaxed are allowed by code and message (``PDFA1_ONLY``), any
other finding fails the test."""

from __future__ import annotations

import io
import re
import subprocess
import xml.etree.ElementTree as ET
from io import BytesIO
from pathlib import Path

import pytest
from PIL import ImageCms
from pyhanko.pdf_utils.reader import PdfFileReader

from tests.conftest import IN_CI, require_tool
from tests.test_issuance import actor, ready_to_sign

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}


def _issued(services, logins, passphrase) -> tuple[bytes, str]:
    from tests.letters import GROGOL

    head = actor(services, "head.grogol")
    ((request_id, version),) = ready_to_sign(services, logins, GROGOL, "grogol", 1)
    letter = services.issuer.sign(head, request_id, version=version, passphrase=passphrase)
    return letter.pdf, letter.number


def test_an_issued_letter_meets_the_pdfa_2b_structure(services, logins, passphrase, tmp_path):
    pdf, number = _issued(services, logins, passphrase)
    reader = PdfFileReader(BytesIO(pdf))

    # File header: version <= 1.7 and a comment of at least four bytes above 127 (6.1.2).
    header = re.match(rb"%PDF-1\.([0-7])\r?\n%([^\r\n]{4,})", pdf)
    assert header and all(b > 127 for b in header.group(2)[:4])
    # Document ID in the trailer (6.1.3), no encryption (6.1.3), no JavaScript or attachments.
    assert "/ID" in reader.trailer and len(reader.trailer["/ID"]) == 2
    assert "/Encrypt" not in reader.trailer
    root = reader.root
    assert "/Names" not in root or not (
        {"/JavaScript", "/EmbeddedFiles"} & set(root["/Names"].keys())
    )
    # An open action may only be a destination (fpdf2 writes [page /FitH null]), not a script.
    assert "/AA" not in root
    opening = root.get("/OpenAction")
    assert opening is None or isinstance(opening, list), opening

    # XMP metadata (6.6): unfiltered, says PDF/A-2b, carries the title.
    meta = root["/Metadata"].get_object()
    assert meta["/Type"] == "/Metadata" and meta["/Subtype"] == "/XML"
    assert "/Filter" not in meta
    xmp = ET.fromstring(meta.data.decode("utf-8").split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    desc = xmp.find("rdf:RDF/rdf:Description", NS)
    assert desc.findtext("pdfaid:part", namespaces=NS) == "2"
    assert desc.findtext("pdfaid:conformance", namespaces=NS) == "B"
    title = desc.findtext("dc:title/rdf:Alt/rdf:li", namespaces=NS)
    assert title  # the workflow's title
    if "/Info" in reader.trailer:  # if a document info dictionary exists, it must agree
        info = reader.trailer["/Info"]
        assert str(info.get("/Title", title)) == title

    # Output intent (6.2.3): GTS_PDFA1 with an RGB ICC profile that parses.
    (intent,) = [i.get_object() for i in root["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1"
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3
    icc = ImageCms.ImageCmsProfile(io.BytesIO(profile.data))
    assert icc.profile.xcolor_space.strip() == "RGB"

    # Fonts (6.2.11.4): every font embedded.
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        [require_tool("pdffonts"), str(path)], capture_output=True, text=True, check=True
    ).stdout
    rows = out.splitlines()[2:]
    assert rows
    for row in rows:
        assert row.split()[-5] == "yes", row  # columns from the end: emb sub uni object ID

    # Annotations (6.3.2/6.3.3): the signature and timestamp widgets are printable, not
    # hidden, and of zero area (so they need no appearance stream).
    for ref in root["/AcroForm"]["/Fields"]:
        widget = ref.get_object()
        flags = int(widget.get("/F", 0))
        assert flags & 4 and not flags & (1 | 2 | 32), widget
        assert [float(x) for x in widget["/Rect"]] == [0, 0, 0, 0]


def test_signing_and_archiving_leave_the_metadata_as_rendered(services, logins, passphrase):
    pdf, _ = _issued(services, logins, passphrase)
    reader = PdfFileReader(BytesIO(pdf))
    sigs = reader.embedded_signatures
    first_end = int(sigs[0].byte_range[2]) + int(sigs[0].byte_range[3])
    # The metadata stream object is written once, in the rendered document, and never again.
    meta_ref = reader.root.raw_get("/Metadata")
    written = pdf.count(f"\n{meta_ref.idnum} 0 obj".encode())
    assert written == 1
    assert pdf.find(f"\n{meta_ref.idnum} 0 obj".encode()) < first_end


def test_a_stock_pyhanko_archival_timestamp_keeps_a_pdfa_letter_asli(services, logins, passphrase):
    """Stock pyHanko rewrites the XMP metadata stream in every incremental update; an archive
    using it must not turn a genuine letter into a forgery (engine.trust.pdf_updates)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers import PdfTimeStamper

    from engine.trust import signing
    from engine.trust.registry import verify_letter

    pdf, _ = _issued(services, logins, passphrase)
    ts = signing.make_timestamper(None, services.settings.keys_dir)
    extended = PdfTimeStamper(ts).timestamp_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), "sha256")
    verdict = verify_letter(extended.getvalue(), services.factory, services.settings.keys_dir)
    assert verdict.status == "VALID", verdict.reasons


@pytest.mark.parametrize(
    "body",
    [
        b"<< /Type /Metadata /Subtype /XML /Resources << >> /Length 10 >>\n"
        b"stream\n<x:xmpmeta\nendstream",
        b"<< /Type /XObject /Subtype /Form /Length 10 >>\nstream\n<x:xmpmeta\nendstream",
        b"<< /Type /Metadata /Subtype /XML /Length 10 >>\nstream\nBT (X) Tj\nendstream",
        b"<< /Type /Metadata /Subtype /XML >>",
    ],
    ids=["extra key", "not metadata", "not xmp", "not a stream"],
)
def test_a_rewritten_metadata_stream_must_stay_plain_xmp(services, logins, passphrase, body):
    from engine.trust.registry import verify_letter
    from tests.test_forgeries import _raw_revision

    pdf, _ = _issued(services, logins, passphrase)
    meta = PdfFileReader(BytesIO(pdf)).root.raw_get("/Metadata")
    forged = _raw_revision(pdf, {meta.idnum: body})
    verdict = verify_letter(forged, services.factory, services.settings.keys_dir)
    assert verdict.status == "INVALID"
    assert any("Metadata" in r for r in verdict.reasons), verdict.reasons


# --------------------------------------------------------------------------- Apache Preflight

JAVA_DIR = Path("/usr/share/java")
# Debian's libpdfbox2-java, and the two Java EE APIs its Preflight needs that Java 11+ dropped:
# javax.activation (libactivation-java) and javax.xml.bind (libjaxb-api-java). See .ci/run.
PREFLIGHT_JARS = (
    "preflight",
    "pdfbox2",
    "fontbox2",
    "xmpbox",
    "commons-logging",
    "javax.activation",
    "jaxb-api",
)
# Preflight's PDF/A-1b findings that ISO 19005-2 no longer makes errors, as (code, message):
PDFA1_ONLY = (
    # 19005-2 6.6.4: pdfaid:part is 2 in a PDF/A-2 file (19005-1 6.7.11 wants 1). Seeing it also
    # shows Preflight parsed our XMP and found the PDF/A identification.
    ("7.11.2", "part must be 1"),
    # 19005-2 6.2.10 allows transparency, so a page /Group /S /Transparency (fpdf2 writes one;
    # its blending space is covered by the output intent); 19005-1 6.4 forbade any.
    ("2.2.1", "Group has a transparency S entry"),
    # 19005-2 6.2.11.4.2: a CIDSet is optional (if present it must list every CID); 19005-1
    # 6.3.5 required one in every subset CIDFont. fpdf2 writes none in PDF/A-2 mode.
    ("3.1.11", "The CIDSet entry is missing"),
    # 19005-2 6.3.3 exempts annotations whose Rect has zero width and height from needing an
    # appearance; 19005-1 6.9 wants one on every form field. The signature and timestamp
    # widgets are [0 0 0 0] (asserted where this is allowed).
    ("5.3.1", "widget annotation lacks an appearance dictionary"),
)


def preflight(pdf: bytes, tmp_path: Path) -> list[tuple[str, str]]:
    """Apache Preflight's findings on ``pdf`` as (code, message), from its XML report."""
    java = require_tool("java")
    jars = [JAVA_DIR / f"{name}.jar" for name in PREFLIGHT_JARS]
    missing = [str(jar) for jar in jars if not jar.is_file()]
    if missing:
        if IN_CI:
            pytest.fail(f"Apache Preflight is required in CI but missing: {missing}")
        pytest.skip(f"Apache Preflight not installed: {missing}")
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    run = subprocess.run(
        [
            java,
            f"-Dpdfbox.fontcache={tmp_path}",  # not in $HOME
            "-cp",
            ":".join(map(str, jars)),
            "org.apache.pdfbox.preflight.Validator_A1b",
            "xml",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = ET.fromstring(run.stdout)
    assert report.tag == "preflight" and report.findtext("isValid") in ("true", "false"), run.stdout
    return [(e.findtext("code") or "", e.findtext("details") or "") for e in report.iter("error")]


def not_pdfa2_relaxed(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        (code, text)
        for code, text in errors
        if not any(code == c and part in text for c, part in PDFA1_ONLY)
    ]


def test_apache_preflight_finds_nothing_but_pdfa1_rules_that_pdfa2_relaxed(
    services, logins, passphrase, tmp_path
):
    pdf, _ = _issued(services, logins, passphrase)
    reader = PdfFileReader(BytesIO(pdf))
    end = pdf.index(b"%%EOF", reader.xrefs.get_startxref_for_revision(0)) + len(b"%%EOF\n")
    # The zero-area exemption (19005-2 6.3.3) behind the 5.3.1 allowance: every annotation
    # without an appearance has an empty Rect.
    for page in reader.root["/Pages"]["/Kids"]:
        for annot in page.get_object().get("/Annots", []):
            annot = annot.get_object()
            if "/AP" not in annot:
                assert [float(x) for x in annot["/Rect"]] == [0, 0, 0, 0], annot

    for name, doc in (("rendered", pdf[:end]), ("issued", pdf)):
        errors = preflight(doc, tmp_path / name)
        assert not not_pdfa2_relaxed(errors), (name, errors)
        assert ("7.11.2", "Error on MetaData, part must be 1") in errors, (name, errors)


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        (b"/FontFile2", b"/FontFileX", "3.1.3"),  # the fonts' programs not embedded
        (b"/OutputIntents", b"/OutputIntentX", "2.4.3"),  # no output intent: device colour
        (b"/DestOutputProfile", b"/DestOutputProfilX", "2.1.2"),  # an intent without profile
    ],
    ids=["font not embedded", "no output intent", "no ICC profile"],
)
def test_apache_preflight_catches_a_letter_that_is_not_pdfa(tmp_path, old, new, code):
    """The validator is not blind: a rendered letter with a real PDF/A defect (a key renamed,
    offsets unchanged) fails it."""
    from engine.letters.render import markup_to_pdf

    markup = "<letter><p>Surat <b>keterangan</b></p><qr/></letter>"
    pdf = markup_to_pdf(markup, title="Uji", verify_url="https://desa.example/v/Xk3mP9qR")
    assert not not_pdfa2_relaxed(preflight(pdf, tmp_path / "good"))
    assert old in pdf and len(old) == len(new)
    broken = not_pdfa2_relaxed(preflight(pdf.replace(old, new), tmp_path / "broken"))
    assert code in {c for c, _ in broken}, broken
