"""Citizen self-service (issue 10): residents identify with NIK + No. KK + date of birth, ask
for the letter types a workflow opens to them (``citizen_requestable``), follow their request by
a tracking code and correct it when it is returned; the office hands the letter over
(engine.letters.pickup).

- `codes`: tracking codes (80 random bits, Crockford base32 in groups; only the hash is stored)
- `identity`: identification with one failure answer and the same work; the citizen pass
- `limits`: the per-address / per-NIK rate limits of the public pages
- `requests`: requestable types, the request, the correction, status by code, operator's list
- `status`: the one mapping from request states to what the citizen reads
- `history`: the PIN the office gives and the personal history page it opens
- `errors`: the citizen answers (no match, unknown code, not identified)
"""
