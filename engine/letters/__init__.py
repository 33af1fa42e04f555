"""Letters: numbering, rendering (template -> markup -> PDF), QR, key facts, issuing, revocation,
the archive and what the public may see."""
