"""Bad input to the public portal: every file and every code gets a clear verdict or refusal,
never a 500, and the server keeps answering (issue 4)."""

from __future__ import annotations

import select
import socket
import struct
import zlib
from io import BytesIO
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer

from engine.trust import pki, signing
from suratdesa.web import create_app
from tests.pdf_fixtures import PASSPHRASE, issue_test_signer, one_page_pdf
from tests.test_tamper import issue_letter

MB = 1024 * 1024


@pytest.fixture
def client(settings) -> TestClient:
    return TestClient(create_app(settings))


def api(client, body: bytes, ctype: str = "application/pdf") -> httpx.Response:
    return client.post("/api/public/verify", content=body, headers={"content-type": ctype})


def form(client, body: bytes, name: str = "surat.pdf") -> httpx.Response:
    return client.post("/verify", files={"file": (name, body, "application/pdf")})


def assert_invalid(client, body: bytes, *words: str) -> dict:
    """The JSON verdict is INVALID with reasons (containing ``words``), and the HTML page
    shows TIDAK SAH with the same first reason."""
    r = api(client, body)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["status"] == "INVALID" and report["valid"] is False, report
    assert report["reasons"], report
    text = " ".join(report["reasons"])
    for word in words:
        assert word in text, report["reasons"]
    page = form(client, body)
    assert page.status_code == 200, page.text
    assert "TIDAK SAH" in page.text
    assert report["reasons"][0].split(":")[0] in page.text
    return report


# --------------------------------------------------------------------------- files


def encrypted(pdf: bytes, user_password: str) -> bytes:
    w = copy_into_new_writer(PdfFileReader(BytesIO(pdf)))
    w.encrypt("pemilik-rahasia", user_password)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def deflate_bomb(prefix: bytes, inflated_mb: int) -> bytes:
    """A zlib stream of ~inflated_mb/1000 MB that inflates to ``prefix`` + inflated_mb MB of
    spaces (identical full-flushed deflate blocks repeated; the checksum is right)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    chunk = b" " * (16 * MB)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    n = inflated_mb // 16
    adler = zlib.adler32(prefix)
    for _ in range(n):
        adler = zlib.adler32(chunk, adler)
    return b"\x78\xda" + first + block * n + c.flush() + adler.to_bytes(4, "big")


def _with_xref_stream(objects: dict[int, bytes], root: bytes, compressed: dict[int, int]) -> bytes:
    """A PDF from raw object bodies, with a cross-reference stream (so objects may live in
    object streams: ``compressed`` maps object number -> its object stream)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref_num = max([*objects, *compressed]) + 1
    offsets[xref_num] = len(out)
    rows = []
    for num in range(xref_num + 1):
        if num in offsets:
            rows.append((1, offsets[num], 0))
        elif num in compressed:
            rows.append((2, compressed[num], 0))
        else:
            rows.append((0, 0, 65535 if num == 0 else 0))
    table = b"".join(struct.pack(">BIH", *row) for row in rows)
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root %s /Length %d >>\nstream\n" % (
        xref_num,
        xref_num + 1,
        root,
        len(table),
    )
    out += table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_num]
    return bytes(out)


def pdf_bomb(inflated_mb: int = 2048) -> bytes:
    """~2 MB on disk; the document catalog sits in an object stream that inflates to 2 GB,
    so any reader must inflate it to find the signature fields."""
    head = b"2 0 "
    catalog = b"<< /Type /Catalog /Pages 3 0 R /AcroForm << /Fields [] >> >>"
    data = deflate_bomb(head + catalog, inflated_mb)
    objstm = b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n" % (
        len(head),
        len(data),
    )
    objects = {
        3: b"<< /Type /Pages /Kids [] /Count 0 >>",
        5: objstm + data + b"\nendstream",
    }
    return _with_xref_stream(objects, b"2 0 R", {2: 5})


def deeply_nested(depth: int = 200_000) -> bytes:
    catalog = b"<< /Type /Catalog /Pages 3 0 R /X " + b"[" * depth + b"]" * depth + b" >>"
    objects = {2: catalog, 3: b"<< /Type /Pages /Kids [] /Count 0 >>"}
    return _with_xref_stream(objects, b"2 0 R", {})


def huge_page_tree(pages: int = 300_000) -> bytes:
    """A page tree claiming 300,000 pages whose kids all point back at the tree (a loop)."""
    kids = b" ".join([b"3 0 R"] * pages)
    objects = {
        2: b"<< /Type /Catalog /Pages 3 0 R >>",
        3: b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
    }
    return _with_xref_stream(objects, b"2 0 R", {})


def test_not_a_pdf_is_refused_plainly(client):
    r = api(client, b"Surat ini asli, percayalah.\n")
    assert r.status_code == 415, r.text
    assert r.json()["status"] == "refused" and "bukan PDF" in r.json()["detail"]
    page = form(client, b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "foto.png")
    assert page.status_code == 415
    assert "DITOLAK" in page.text and "bukan PDF" in page.text


def test_empty_file_is_refused_plainly(client):
    r = api(client, b"")
    assert r.status_code == 400 and "kosong" in r.json()["detail"], r.text
    page = form(client, b"", "kosong.pdf")
    assert page.status_code == 400 and "DITOLAK" in page.text and "kosong" in page.text
    # a form without the file field at all
    page = client.post("/verify", files={"lain": ("a.txt", b"x", "text/plain")})
    assert page.status_code == 400 and "Pilih berkas PDF" in page.text


@pytest.mark.parametrize("user_password", ["", "kata-sandi"])
def test_encrypted_pdf_gets_a_verdict(client, user_password):
    assert_invalid(client, encrypted(one_page_pdf(), user_password), "terenkripsi")


@pytest.mark.parametrize(
    "broken",
    [
        b"%PDF-1.7\n\x00\xff sampah\n%%EOF\n",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n",  # no %%EOF
        b"%PDF-1.7\n" + b"\xff" * 5000 + b"\nstartxref\n99999999\n%%EOF\n",
    ],
)
def test_broken_pdf_gets_a_verdict(client, broken):
    assert_invalid(client, broken)


def test_truncated_letter_gets_a_verdict(client, logins, passphrase):
    pdf = issue_letter(client, logins, passphrase)["pdf"]
    assert_invalid(client, pdf[: len(pdf) // 2])


def test_pdf_without_signature(client):
    assert_invalid(client, one_page_pdf(), "tidak memiliki tanda tangan")


def test_pdf_signed_by_another_ca(client, tmp_path):
    pki.init_pki(tmp_path)  # same names as the regency PKI, other keys
    signer = signing.load_signer(issue_test_signer(tmp_path).p12, PASSPHRASE, keys_dir=tmp_path)
    ts = signing.make_timestamper(None, tmp_path)
    forged = signing.sign_letter(one_page_pdf(), signer, ts, reason="r", location="l")
    # Not ours: TIDAK DIKENAL, never ASLI, and nothing from our registry.
    r = client.post(
        "/api/public/verify", content=forged, headers={"content-type": "application/pdf"}
    )
    report = r.json()
    assert report["status"] == "UNKNOWN" and report["valid"] is False, report
    assert any("tidak diterbitkan oleh layanan ini" in x for x in report["reasons"])
    assert report["registry"] is None
    page = client.post("/verify", files={"file": ("surat.pdf", forged, "application/pdf")})
    assert (
        "<strong>TIDAK DIKENAL</strong>" in page.text and "<strong>ASLI</strong>" not in page.text
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [(pdf_bomb, "tidak dapat diperiksa"), (deeply_nested, "tidak dapat diperiksa"),
     (huge_page_tree, "tidak memiliki tanda tangan")],
)  # fmt: skip
def test_pathological_pdf_is_refused_and_the_server_stays_up(client, make, reason):
    body = make()
    assert len(body) < 10 * MB  # under the upload limit: the worker has to deal with it
    report = assert_invalid(client, body, reason)
    assert report["signatures"] == []
    # The web process is fine and the worker pool serves the next upload.
    assert client.get("/verify").status_code == 200
    assert "tidak memiliki tanda tangan" in api(client, one_page_pdf()).json()["reasons"][0]


# --------------------------------------------------------------------------- 100 MB


def _raw_upload(base: str, head: bytes, body_chunks, limit: int) -> tuple[bytes, int]:
    """Send ``head`` then body chunks over a raw socket until the server answers (or
    ``limit`` bytes were sent); the response and how many body bytes went out."""
    url = urlsplit(base)
    sent = 0
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or sent >= limit:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        response = b""
        while b"\r\n\r\n" not in response or not _complete(response):
            part = sock.recv(65536)
            if not part:
                break
            response += part
    return response, sent


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _chunks(total: int, size: int = 256 * 1024, chunked: bool = False):
    block = b"%PDF-1.7\n" + b"0" * (size - 9)
    for _ in range(total // size):
        yield (b"%x\r\n" % size + block + b"\r\n") if chunked else block


def test_100_mb_upload_is_refused_without_reading_it(live_server):
    host = urlsplit(live_server).netloc.encode()
    # Declared size: refused from the headers, before the body.
    head = (
        b"POST /api/public/verify HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"Content-Type: application/pdf\r\nContent-Length: %d\r\n\r\n" % (100 * MB)
    )
    response, sent = _raw_upload(live_server, head, _chunks(100 * MB), limit=100 * MB)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"terlalu besar" in response
    assert sent < 100 * MB, sent

    # No declared size (chunked): refused once the stream passes the limit, not at the end.
    head = (
        b"POST /verify HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"Content-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    response, sent = _raw_upload(live_server, head, _chunks(100 * MB, chunked=True), 100 * MB)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"DITOLAK" in response and b"terlalu besar" in response
    assert sent < 60 * MB, sent

    # The server answers the next request normally.
    with httpx.Client(base_url=live_server, timeout=30) as http:
        r = http.post("/api/public/verify", content=one_page_pdf())
        assert r.status_code == 200 and r.json()["status"] == "INVALID"
        assert http.get("/v/" + "A" * 32).status_code == 404


def test_upload_just_over_the_limit_through_the_form(client):
    r = form(client, b"%PDF-1.7\n" + b"0" * (11 * MB))
    assert r.status_code == 413 and "terlalu besar" in r.text


# --------------------------------------------------------------------------- codes

BAD_CODES = [
    "A" * 32,  # well-formed, no such letter
    "a" * 32,
    "AAAA",
    "A" * 33,
    "1" * 32,  # 0, 1, 8, 9 are not base32
    "A" * 31 + "0",
    "X" * 5000,
    "%00" + "A" * 29,
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "A" * 16 + "%20" + "A" * 16,
    "' OR 1=1 --",
    "%F0%9F%98%80" * 8,
]


@pytest.mark.parametrize("code", BAD_CODES)
def test_unknown_or_malformed_code_is_not_found(client, code):
    r = client.get(f"/v/{code}")
    assert r.status_code == 404, (code, r.status_code)
    assert "TIDAK DITEMUKAN" in r.text
    assert "noindex" in r.headers.get("x-robots-tag", "")
    r = client.get(f"/api/public/letters/{code}")
    assert r.status_code == 404
    if "%2F" not in code:  # an encoded slash makes it another path: FastAPI's own 404
        assert r.json() == {"status": "not_found"}
    r = client.get(f"/v/{code}/surat.pdf")  # the public PDF is off by default
    assert r.status_code == 404 and b"%PDF" not in r.content


def test_path_tricks_never_reach_files(client):
    paths = ("/v/%2e%2e/%2e%2e/pki/root-ca.pem", "/v//", "/v/ ", "/v/A/B/C/D", "/V/x/%2E%2E%2F")
    for path in paths:
        r = client.get(path)
        assert r.status_code == 404 and "TIDAK DITEMUKAN" in r.text, (path, r.status_code)
        assert b"BEGIN CERTIFICATE" not in r.content and b"root:" not in r.content


def test_a_bad_seal_on_a_real_code_is_named_not_a_crash(client, logins, passphrase):
    letter = issue_letter(client, logins, passphrase)
    url = letter["verify_url"].removeprefix("http://testserver")
    for seal in ("RUSAK", "A" * 3000, "%FF%FE", "0189"):
        r = client.get(f"{url}/{seal}")
        assert r.status_code == 200, (seal, r.status_code)
        assert "SEGEL TIDAK SAH" in r.text and "ASLI" not in r.text  # the seal's own verdict
