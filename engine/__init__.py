"""Surat Desa core: specs, state machine, models, numbering, residents, rendering, signing,
verification. Knows nothing of HTTP; the faces (API, portal, CLI) call it."""
