"""People: NIK, residents, staff users and tokens, sign-in, sessions, acting heads, admin writes,
signer certificates."""
