"""RSA-3072 against EC P-256 for the signer's and the TSA's keys: the same rendered letters
signed by ``engine.trust.signing.sign_letter`` with each pair, certificates issued by the
development issuing CA (whatever its own key). Used by bench/sign.py; also runs alone:

    .venv/bin/python bench/sign_keys.py
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asn1crypto import x509 as asn1_x509  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: E402
from pyhanko.sign.validation import validate_pdf_signature  # noqa: E402
from pyhanko_certvalidator import ValidationContext  # noqa: E402
from pyhanko_certvalidator.registry import SimpleCertificateStore  # noqa: E402

from engine.trust import pki  # noqa: E402
from engine.trust.signing import (  # noqa: E402
    DevTimeStamper,
    LoadedSigner,
    _asn1,
    _asn1_key,
    _CachedKeySigner,
    sign_letter,
)

KINDS = {
    "RSA-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "EC P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
}


def _certificate(keys_dir: Path, key, name: str, *, tsa: bool) -> x509.Certificate:
    issuing, issuing_key = pki.load_issuing_ca_key(keys_dir)
    now = datetime.now(UTC) - timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuing.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()),
            critical=False,
        )
        .add_extension(
            pki.key_usage(digital_signature=True, content_commitment=not tsa), critical=True
        )
    )
    if tsa:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuing_key, hashes.SHA256())


def make_pair(keys_dir: Path, signer_kind: str, tsa_kind: str):
    """A loaded signer and a development TSA with fresh keys of the given kinds."""
    chain = [pki.load_issuing_ca(keys_dir), pki.load_root_ca(keys_dir)]
    key = KINDS[signer_kind]()
    cert = _certificate(keys_dir, key, f"Bench signer {signer_kind}", tsa=False)
    store = SimpleCertificateStore()
    store.register_multiple([_asn1(c) for c in chain])
    signer = LoadedSigner(
        pyhanko_signer=_CachedKeySigner(
            pyca_key=key, signing_cert=_asn1(cert), signing_key=_asn1_key(key), cert_registry=store
        ),
        cert=cert,
        common_name=f"Bench signer {signer_kind}",
        not_after=cert.not_valid_after_utc,
    )
    tsa_key = KINDS[tsa_kind]()
    tsa_cert = _certificate(keys_dir, tsa_key, f"Bench TSA {tsa_kind}", tsa=True)
    return signer, DevTimeStamper(tsa_cert, tsa_key, chain)


def _valid(pdf: bytes, keys_dir: Path) -> bool:
    der = pki.load_root_ca(keys_dir).public_bytes(serialization.Encoding.DER)
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(der)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    status = validate_pdf_signature(PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0], context)
    stamp = status.timestamp_validity
    return bool(status.bottom_line and stamp is not None and stamp.valid)


def compare(keys_dir: Path, pdfs: list[bytes]) -> list[str]:
    """Lines of a table: median sign_letter ms per signer/TSA key pair (the pairs take turns
    letter by letter, so load on the machine falls on all alike), bytes added, validity."""
    pairs = {(s, t): make_pair(keys_dir, s, t) for s in KINDS for t in KINDS}
    first = {
        kinds: sign_letter(pdfs[0], signer, tsa, reason="Bench", location="Sukoharjo")
        for kinds, (signer, tsa) in pairs.items()
    }
    took: dict[tuple[str, str], list[float]] = {kinds: [] for kinds in pairs}
    for pdf in pdfs:
        for kinds, (signer, tsa) in pairs.items():
            t = time.perf_counter()
            sign_letter(pdf, signer, tsa, reason="Bench", location="Sukoharjo")
            took[kinds].append(time.perf_counter() - t)
    head = f"  {'signer key':10} {'TSA key':10} {'sign+timestamp':>15} {'bytes added':>12}  valid"
    lines = [head]
    for (signer_kind, tsa_kind), times in took.items():
        ms = statistics.median(times) * 1000
        added = len(first[(signer_kind, tsa_kind)]) - len(pdfs[0])
        ok = "yes" if _valid(first[(signer_kind, tsa_kind)], keys_dir) else "NO"
        lines.append(f"  {signer_kind:10} {tsa_kind:10} {ms:12.1f} ms {added:12d}  {ok}")
    return lines


def main() -> None:
    from bench.render_compare import TEMPLATES, sample
    from engine.letters.render import markup_to_pdf, render_markup

    keys = Path(tempfile.mkdtemp(prefix="bench-keys-")) / "keys"
    pki.init_pki(keys)
    pdfs = []
    for i in range(20):
        content, url = sample("umum", i)
        markup = render_markup(TEMPLATES / "umum.html.j2", content, verify_url=url, draft=False)
        pdfs.append(markup_to_pdf(markup, title="x", verify_url=url, base_dir=TEMPLATES))
    print("\n".join(compare(keys, pdfs)))


if __name__ == "__main__":
    main()
