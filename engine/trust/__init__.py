"""Trust: the PKI, signing (PKCS#12 and HSM), the per-signer limit, the seal, and the verdict on a
PDF (strict update reader, verification, registry)."""
