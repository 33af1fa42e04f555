"""PAdES certification signatures for letters (pyHanko).

One letter = one certification signature (DocMDP "no changes", /SubFilter ETSI.CAdES.detached)
with an RFC 3161 signature timestamp; the signer's chain (issuing CA + root) is embedded in the
CMS and the TSA's chain in the timestamp token, so a verifier needs nothing but the root.

Speed (target: well under 30 ms per letter): the costly parts are done once per batch in
``load_signer`` / ``make_timestamper`` and reused for every letter:
- the PKCS#12 is decrypted once (PBKDF2 plus key parsing);
- pyHanko's SimpleSigner and DummyTimeStamper re-parse and re-validate the RSA private key on
  *every* signature (``load_der_private_key``); we keep the parsed key instead;
- pyHanko estimates the CMS size by making a complete dry-run signature before the real one;
  we measure that size once per (signer, timestamper) and pass ``bytes_reserved``;
- no ValidationContext and ``embed_validation_info=False``: pre-sign validation would walk the
  chain and look for revocation data on every call, and there is no revocation service (no
  network either). Revocation data for archives comes in the B-LTA update right after
  (engine.trust.lta: a DSS and a document timestamp);
- the CMS itself: the first letter of a batch is signed by pyHanko, and every later one reuses
  the DER of everything that letter's CMS has in common with it (certificates, signer
  identifier, signed attributes but the digest), and the development TSA its token's
  (``engine.trust.cms_fast``). A key on an HSM takes pyHanko's path for every letter.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, general, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps import DummyTimeStamper, HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, dummy_digest
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from engine.aio import run_sync
from engine.errors import SuratDesaError
from engine.trust import pki
from engine.trust.cms_fast import SET, SignatureTemplate, TokenTemplate, sign_with, tlv

MD_ALGORITHM = "sha256"
# Slack over the measured CMS size, in DER bytes: nonces, serials and times vary in length.
RESERVE_SLACK = 1024


class SigningError(SuratDesaError):
    """Signing refused; the message is for the user (Bahasa Indonesia)."""


class WrongPassphrase(SigningError):
    def __init__(self) -> None:
        super().__init__("Kata sandi penandatangan salah")


class SignerCertificateExpired(SigningError):
    pass


class TsaUnavailable(SigningError):
    """The timestamp service did not answer. Nothing is signed with a time of our own making:
    the letter is not issued and its number stays free (a batch waits, resumable)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "Layanan cap waktu (TSA) tidak menjawab: surat belum diterbitkan dan tidak ada "
            "nomor yang terpakai. Coba lagi setelah layanan cap waktu pulih."
        )


def run_with_tsa(coro):
    """``run_sync`` for work that asks the TSA: its failure to answer is TsaUnavailable."""
    try:
        return run_sync(coro)
    except (TimestampRequestError, TimeoutError, OSError) as e:
        raise TsaUnavailable() from e


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_key(key: rsa.RSAPrivateKey) -> asn1_keys.PrivateKeyInfo:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return asn1_keys.PrivateKeyInfo.load(der)


class _CachedKeySigner(signers.SimpleSigner):
    """SimpleSigner that keeps the parsed private key (stock code re-parses it per signature)
    and, after its first PAdES signature, assembles each CMS from that one's DER parts."""

    def __init__(self, pyca_key: rsa.RSAPrivateKey, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pyca_key = pyca_key
        self._template: SignatureTemplate | None = None

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if digest_algorithm.lower() == MD_ALGORITHM:
            return sign_with(self._pyca_key, data)
        return super().sign_raw(data, digest_algorithm)

    async def async_sign(  # type: ignore[override]
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info=None,
    ):
        if dry_run or not use_pades or not is_pdf_sig or encap_content_info is not None:
            return await super().async_sign(
                data_digest,
                digest_algorithm,
                dry_run=dry_run,
                use_pades=use_pades,
                timestamper=timestamper,
                signed_attr_settings=signed_attr_settings,
                is_pdf_sig=is_pdf_sig,
                encap_content_info=encap_content_info,
            )
        if digest_algorithm.lower() != MD_ALGORITHM:
            raise SigningError("Algoritma ringkasan tidak didukung")
        if self._template is None:  # pyHanko's own signature, cut into reusable parts
            made = await super().async_sign(
                data_digest,
                digest_algorithm,
                use_pades=True,
                signed_attr_settings=signed_attr_settings,
            )
            self._template = SignatureTemplate.from_cms(made)
        attrs = self._template.signed_attributes(data_digest)
        signature = sign_with(self._pyca_key, tlv(SET, attrs))
        token = None
        if timestamper is not None:
            token = await _token_der(timestamper, hashlib.sha256(signature).digest())
        return self._template.content_info(attrs, signature, token)


async def _token_der(timestamper: TimeStamper, digest: bytes) -> bytes:
    if isinstance(timestamper, DevTimeStamper):
        return timestamper.token_der(digest)
    return (await timestamper.async_timestamp(digest, MD_ALGORITHM)).dump()


class DevTimeStamper(DummyTimeStamper):
    """In-process RFC 3161 TSA for development, signing real tokens with the TSA key in keys_dir.

    Production points ``SURATDESA_TSA_URL`` at a real TSA instead.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: rsa.RSAPrivateKey,
        chain: list[x509.Certificate],
    ) -> None:
        store = SimpleCertificateStore()
        store.register_multiple([_asn1(c) for c in chain])
        super().__init__(
            tsa_cert=_asn1(tsa_cert),
            tsa_key=_asn1_key(tsa_key),
            certs_to_embed=store,
        )
        self._pyca_key = tsa_key
        self._template: TokenTemplate | None = None

    def token_der(self, message_digest: bytes) -> bytes:
        """A token over ``message_digest`` (SHA-256), from DER parts of the first one."""
        if self._template is None:
            _nonce, request = self.request_cms(message_digest, MD_ALGORITHM)
            first = self.request_tsa_response(request)["time_stamp_token"]
            self._template = TokenTemplate.from_token(first, self._pyca_key)
        return self._template.token(self._pyca_key, message_digest)

    async def async_timestamp(self, message_digest, md_algorithm) -> cms.ContentInfo:
        if md_algorithm.lower() != MD_ALGORITHM:
            return await super().async_timestamp(message_digest, md_algorithm)
        return cms.ContentInfo.load(self.token_der(message_digest))

    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, dt: datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        # Same attributes as DummyTimeStamper, minus its per-token private key parsing.
        h = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        h.update(tst_info_data)
        signed_attrs = cms.CMSAttributes(
            [
                general.simple_cms_attribute("content_type", "tst_info"),
                general.simple_cms_attribute(
                    "signing_time", cms.Time({"utc_time": core.UTCTime(dt)})
                ),
                general.simple_cms_attribute(
                    "signing_certificate", general.as_signing_certificate(self.tsa_cert)
                ),
                general.simple_cms_attribute("message_digest", h.finalize()),
            ]
        )
        if md_algorithm.lower() != MD_ALGORITHM:
            raise SigningError("Algoritma ringkasan tidak didukung")
        return sign_with(self._pyca_key, signed_attrs.dump()), signed_attrs


def make_timestamper(settings_tsa_url: str | None, keys_dir: Path) -> TimeStamper:
    """An RFC 3161 client for ``settings_tsa_url``, or the development TSA from keys_dir."""
    if settings_tsa_url:
        return HTTPTimeStamper(settings_tsa_url, timeout=10)
    tsa_cert, tsa_key = pki.load_tsa(keys_dir)
    chain = [pki.load_issuing_ca(keys_dir), pki.load_root_ca(keys_dir)]
    return DevTimeStamper(tsa_cert, tsa_key, chain)


@dataclass(frozen=True)
class KeySource:
    """How another process of ours opens the same key to sign the same batch
    (engine.letters.make_pool): the unlocked software key (PKCS#8 DER) with its certificates,
    or the token and its PIN. Held in memory for one run only and handed to our own child
    processes over a pipe, never written anywhere (not the database, the queue or a file);
    the child gets no more than the run's own memory already holds."""

    secret: bytes = field(repr=False)  # the PKCS#8 key, or the token PIN (UTF-8)
    certs: tuple[bytes, ...] = ()  # software key: its certificate, then the rest (DER)
    hsm: tuple[str, str, str] | None = None  # (module path, token label, key label)

    def open(self, keys_dir: Path) -> LoadedSigner:
        if self.hsm is not None:
            from engine.trust.hsm import load_hsm_signer  # python-pkcs11 only where used

            module, token, key_label = self.hsm
            pin = self.secret.decode()
            return load_hsm_signer(module, token, key_label, pin, keys_dir=keys_dir)
        # The run validated this very key when it unlocked it (about 0.2 s for RSA-3072).
        key = serialization.load_der_private_key(
            self.secret, password=None, unsafe_skip_rsa_key_validation=True
        )
        cert, *extra = (x509.load_der_x509_certificate(c) for c in self.certs)
        return _software_signer(key, cert, extra, keys_dir)


@dataclass
class LoadedSigner:
    """An opened signing key (a PKCS#12, or an HSM session from engine.trust.hsm), ready to sign a
    batch of letters. ``close()`` (or ``with``) releases what the key holds open; a no-op for a
    PKCS#12."""

    pyhanko_signer: signers.Signer
    cert: x509.Certificate
    common_name: str
    not_after: datetime
    # CMS size measured once per timestamper (see module docstring)
    _reserve: weakref.WeakKeyDictionary = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )
    on_close: Callable[[], None] | None = field(default=None, repr=False)
    # The B-LT validation data for this signer's letters (engine.trust.lta), made once a batch
    archive: object | None = field(default=None, repr=False, compare=False)
    # How a child process opens this key again (engine.letters.make_pool); None: it cannot
    source: KeySource | None = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> LoadedSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_valid_now(self) -> None:
        now = datetime.now(UTC)
        if now > self.not_after:
            raise SignerCertificateExpired(
                "Sertifikat penandatangan sudah kedaluwarsa sejak "
                f"{self.not_after:%d-%m-%Y}; minta sertifikat baru ke Diskominfo"
            )
        if now < self.cert.not_valid_before_utc:
            raise SigningError("Sertifikat penandatangan belum berlaku")


def load_signer(p12: bytes, passphrase: str, *, keys_dir: Path) -> LoadedSigner:
    """Open the signer's PKCS#12 once; raises WrongPassphrase or SignerCertificateExpired."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(p12, passphrase.encode())
    except ValueError as e:
        # cryptography reports a bad passphrase and a damaged file alike ("Invalid password or
        # PKCS12 data"); the passphrase is by far the likelier cause for a stored bundle.
        raise WrongPassphrase() from e
    if key is None or cert is None:
        raise SigningError("Berkas kunci penandatangan tidak lengkap")
    return _software_signer(key, cert, extra, keys_dir)


def _software_signer(key, cert: x509.Certificate, extra, keys_dir: Path) -> LoadedSigner:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningError("Jenis kunci penandatangan tidak didukung (harus RSA)")
    issuing = pki.load_issuing_ca(keys_dir)
    try:
        cert.verify_directly_issued_by(issuing)
    except (ValueError, TypeError, InvalidSignature) as e:
        raise SigningError(
            "Sertifikat penandatangan tidak diterbitkan oleh CA kabupaten yang berlaku"
        ) from e

    chain = {c.fingerprint(hashes.SHA256()): c for c in extra}
    for c in (issuing, pki.load_root_ca(keys_dir)):
        chain.setdefault(c.fingerprint(hashes.SHA256()), c)
    store = SimpleCertificateStore()
    store.register_multiple([_asn1(c) for c in chain.values()])

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    loaded = LoadedSigner(
        pyhanko_signer=_CachedKeySigner(
            pyca_key=key,
            signing_cert=_asn1(cert),
            signing_key=_asn1_key(key),
            cert_registry=store,
        ),
        cert=cert,
        common_name=str(cn[0].value) if cn else "",
        not_after=cert.not_valid_after_utc,
        source=KeySource(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            certs=tuple(c.public_bytes(serialization.Encoding.DER) for c in (cert, *extra)),
        ),
    )
    loaded.check_valid_now()
    return loaded


# pyHanko's own sync wrappers call asyncio.run() per call; engine.aio reuses a loop per thread.
_run = run_sync


async def _measure_cms_size(signer: LoadedSigner, timestamper: TimeStamper) -> int:
    cms_obj = await signer.pyhanko_signer.async_sign(
        dummy_digest(MD_ALGORITHM),
        MD_ALGORITHM,
        use_pades=True,
        dry_run=True,
        timestamper=timestamper,
        signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(UTC)),
    )
    return len(cms_obj.dump())


def _metadata(reason: str, location: str, field_name: str) -> signers.PdfSignatureMetadata:
    return signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm=MD_ALGORITHM,
        reason=reason,
        location=location,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=False,
        use_pades_lta=False,
    )


class _KeepMetaWriter(IncrementalPdfFileWriter):
    """An incremental writer that leaves /Info and the XMP metadata as they are: pyHanko's
    ``_update_meta`` would stamp a new modification date and producer into both, and rewrite
    a PDF/A letter's XMP packet (engine.letters.render.make_pdfa) with its own serializer."""

    def _update_meta(self) -> None:
        return None


async def _sign(
    pdf: bytes,
    signer: LoadedSigner,
    timestamper: TimeStamper,
    meta: signers.PdfSignatureMetadata,
    bytes_reserved: int | None,
) -> bytes:
    writer = _KeepMetaWriter(BytesIO(pdf))
    pdf_signer = signers.PdfSigner(meta, signer.pyhanko_signer, timestamper=timestamper)
    out = await pdf_signer.async_sign_pdf(writer, bytes_reserved=bytes_reserved)
    return out.getvalue()


def sign_letter(
    pdf: bytes,
    signer: LoadedSigner,
    timestamper: TimeStamper,
    *,
    reason: str,
    location: str,
    field_name: str = "Signature1",
) -> bytes:
    """Certify ``pdf`` (PAdES B-T, DocMDP no changes) and return the signed file."""
    signer.check_valid_now()
    meta = _metadata(reason, location, field_name)
    reserved = signer._reserve.get(timestamper)
    if reserved is None:
        size = run_with_tsa(_measure_cms_size(signer, timestamper))
        reserved = 2 * (size + RESERVE_SLACK)  # hex-encoded in the file
        signer._reserve[timestamper] = reserved
    try:
        return run_with_tsa(_sign(pdf, signer, timestamper, meta, reserved))
    except PyHankoSigningError as e:
        if "larger than expected" not in str(e):
            raise
        # A TSA answered with a bigger token than before: let pyHanko estimate, and remember.
        signer._reserve.pop(timestamper, None)
        return run_with_tsa(_sign(pdf, signer, timestamper, meta, None))


def baseline_sign(
    pdf: bytes,
    p12: bytes | str | Path,
    passphrase: str,
    *,
    keys_dir: Path,
    reason: str = "Surat keterangan",
    location: str = "Sukoharjo",
    field_name: str = "Signature1",
    timestamper: TimeStamper | None = None,
) -> bytes:
    """Stock pyHanko at default settings, as a naive integration would write it (benchmark only).

    Same signature profile as sign_letter, but the PKCS#12 is opened, the signer built and the
    CMS size estimated by pyHanko on every call; the timestamper is a stock DummyTimeStamper
    built from the PEM files unless one is given.
    """
    if isinstance(p12, bytes):
        signer = signers.SimpleSigner.load_pkcs12_data(p12, [], passphrase=passphrase.encode())
    else:
        signer = signers.SimpleSigner.load_pkcs12(p12, passphrase=passphrase.encode())
        if signer is None:
            raise WrongPassphrase()
    if timestamper is None:
        paths = pki.pki_paths(keys_dir)
        timestamper = DummyTimeStamper(
            tsa_cert=load_cert_from_pemder(paths.tsa_cert),
            tsa_key=load_private_key_from_pemder(paths.tsa_key, passphrase=None),
            # without the issuing CA in the token, the TSA cannot be chained to the root
            certs_to_embed=SimpleCertificateStore.from_certs(
                [load_cert_from_pemder(paths.issuing_cert), load_cert_from_pemder(paths.root_cert)]
            ),
        )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf)),
        _metadata(reason, location, field_name),
        signer=signer,
        timestamper=timestamper,
    )
    return out.getvalue()


__all__ = [
    "DevTimeStamper",
    "KeySource",
    "LoadedSigner",
    "SignerCertificateExpired",
    "SigningError",
    "TsaUnavailable",
    "WrongPassphrase",
    "baseline_sign",
    "load_signer",
    "make_timestamper",
    "sign_letter",
]
