"""Notices: who hears about a request's move, written as outbox rows with the audit event, and
delivered after commit.

- `outbox`: `on_audit_event`, called by `engine.storage.audit.append` in the same transaction,
  maps an event to its recipients (the village's users holding the role whose queue the new
  state is in; the request's creator when it is returned, rejected or issued; the resident of a
  citizen request at their contact) and writes one `Notice` per recipient and transport. Staff
  always get an "inapp" notice (the staff app's Pemberitahuan page and unread count; delivered
  when written); an e-mail address or phone number adds an "email" or "webhook" notice.
- `transports`: e-mail over SMTP and the signed JSON webhook for a WhatsApp/SMS gateway.
- `dispatcher`: claims due notices (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the single
  writer), delivers them outside any transaction, records every attempt, retries with
  exponential backoff, and marks a notice failed after the configured attempts. The web process
  runs one in a thread woken by commits that wrote notices; `suratdesa notify run` is the same
  pass for a separate worker.
"""
