"""Surat Desa core: every rule and every write, with its audit event. Knows nothing of HTTP; the
faces (api, staff_app, verify_portal) and the CLI call it.

Sub-packages by concern: requests (workflows, state machine, requests, queues, batches), letters
(numbering, rendering, issuing, revocation, archive, public view), trust (PKI, signing, HSM,
seal, verification), people (NIK, residents, users, sign-in, acting heads, admin), storage
(models, database, migrations, audit log). Small shared modules sit at the top: config
(Settings), errors and http_status, services, dates, timeutil, text, regions, aio, ratelimit,
attachments, bootstrap, regency_settings (the regency admin's letterhead, numbering and
classification settings)."""
