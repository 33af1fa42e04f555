"""The regency PKI: Root CA -> issuing CA -> one certificate per signer, plus a TSA certificate.

Key choice: RSA 3072 for every key. RSA is what Adobe Reader, poppler/NSS and the Indonesian
national CA (BSrE) ecosystem verify everywhere without surprises, and 3072 bits is the NIST
SP 800-57 size for protection beyond 2030, which matters because a letter must stay verifiable
for years. A 3072-bit signature costs < 1 ms here, so the larger key does not hurt throughput.

Two folders, never one (the ceremony is in docs/pki.md):

- the **root folder** (``root-ca.pem`` + ``root-ca.key.pem``) lives on an offline machine or USB
  stick. Only ``create_root`` and ``sign_issuing_csr`` read it: the root key signs the issuing
  CA once every few years and is needed for nothing else;
- the **server folder** (``keys_dir``, ``SURATDESA_KEYS_DIR``) holds the issuing CA, TSA and seal
  keys (private keys mode 0600) and the root *certificate* only. Everything the app does at run
  time (signer certificates, CRLs, the TSA, the seal and its key list, trust roots) needs
  nothing else.

``init_pki`` is the development shortcut: the whole ceremony at once, with the root folder next
to the server folder (``keys/dev-root/`` beside ``keys/dev/``). In production the issuing CA and
TSA keys belong in an HSM.
"""

from __future__ import annotations

from engine.trust.pki.ceremony import (
    create_root,
    has_legacy_root_key,
    init_pki,
    install_issuing_ca,
    load_csr,
    load_issuing_ca,
    load_issuing_ca_key,
    load_root_ca,
    load_root_cert_file,
    load_trust_roots,
    load_tsa,
    load_tsa_cert,
    request_issuing_ca,
    sign_issuing_csr,
    write_chain,
)
from engine.trust.pki.certificates import (
    DEFAULT_REGENCY,
    DISKOMINFO,
    EXTRA_ROOTS_DIR,
    ISSUING_VALID_DAYS,
    KEY_BITS,
    ROOT_DIR_SUFFIX,
    ROOT_VALID_DAYS,
    TSA_VALID_DAYS,
    PkiError,
    PkiPaths,
    RootPaths,
    SignerBundle,
    certificate_builder,
    default_root_dir,
    fingerprint,
    key_usage,
    new_key,
    pki_paths,
    root_paths,
)
from engine.trust.pki.crl import (
    CRL_VALID,
    ROOT_CRL_VALID,
    PublishedCrl,
    build_crl,
    install_root_crl,
    load_crl,
    published_crl,
    root_crl,
    sign_root_crl,
)
from engine.trust.pki.ocsp import CertStatus, OcspAnswer
from engine.trust.pki.revocation import (
    CRL_PATH,
    OCSP_PATH,
    ROOT_CRL_PATH,
    publication_url,
    set_publication_url,
    signer_pointers,
    with_pointers,
)
from engine.trust.pki.signers import (
    P12_KDF_ITERATIONS,
    P12_MAC_ITERATIONS,
    issue_signer,
    load_seal_key,
    signer_pkcs12,
)

__all__ = [
    "CRL_PATH",
    "CRL_VALID",
    "CertStatus",
    "OCSP_PATH",
    "OcspAnswer",
    "PublishedCrl",
    "ROOT_CRL_PATH",
    "ROOT_CRL_VALID",
    "install_root_crl",
    "load_crl",
    "publication_url",
    "published_crl",
    "root_crl",
    "set_publication_url",
    "sign_root_crl",
    "signer_pointers",
    "with_pointers",
    "DEFAULT_REGENCY",
    "DISKOMINFO",
    "EXTRA_ROOTS_DIR",
    "ISSUING_VALID_DAYS",
    "KEY_BITS",
    "P12_KDF_ITERATIONS",
    "P12_MAC_ITERATIONS",
    "PkiError",
    "PkiPaths",
    "ROOT_DIR_SUFFIX",
    "ROOT_VALID_DAYS",
    "RootPaths",
    "SignerBundle",
    "TSA_VALID_DAYS",
    "build_crl",
    "certificate_builder",
    "create_root",
    "default_root_dir",
    "fingerprint",
    "has_legacy_root_key",
    "init_pki",
    "install_issuing_ca",
    "issue_signer",
    "key_usage",
    "load_csr",
    "load_issuing_ca",
    "load_issuing_ca_key",
    "load_root_ca",
    "load_root_cert_file",
    "load_seal_key",
    "load_trust_roots",
    "load_tsa",
    "load_tsa_cert",
    "new_key",
    "pki_paths",
    "request_issuing_ca",
    "root_paths",
    "sign_issuing_csr",
    "signer_pkcs12",
    "write_chain",
]
