"""Errors of citizen self-service. Each derives from an engine error kind, so every face answers
it with the status of the one table (engine.http_status)."""

from __future__ import annotations

from engine.errors import Forbidden, InvalidInput, NotFound

# The one answer for every failed identification: an unknown NIK, or a known one with a wrong
# No. KK or date of birth. Byte-identical, so no answer tells whether a NIK is registered.
NO_MATCH = (
    "Data tidak cocok dengan data penduduk. Periksa NIK, No. KK dan tanggal lahir sesuai "
    "Kartu Keluarga. Bila sudah benar, silakan datang ke kantor desa/kelurahan."
)
# The one answer for a tracking code that finds nothing (mistyped, guessed or malformed).
NO_SUCH_CODE = (
    "Kode lacak tidak ditemukan. Periksa kembali kode yang Anda terima saat mengajukan "
    "permohonan (16 huruf/angka, misalnya 7K3M-Q9TD-2XHN-V0PA)."
)


class IdentityFailed(InvalidInput):
    def __init__(self) -> None:
        super().__init__(NO_MATCH)


class NotIdentified(Forbidden):
    """No valid citizen pass (missing, forged or expired): identify again."""

    def __init__(self) -> None:
        super().__init__("Sesi Anda sudah berakhir. Masukkan NIK, No. KK dan tanggal lahir lagi.")


class UnknownCode(NotFound):
    def __init__(self) -> None:
        super().__init__(NO_SUCH_CODE)
