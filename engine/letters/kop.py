"""The kop surat (letterhead): the regency emblem the regency admin uploads, and a village's
printed data (address, phone, email, website) as the letter templates read it.

The emblem is accepted only as an image Pillow decodes (PNG or JPEG), within a size and
dimension limit checked before the pixels are decoded; it is re-encoded by us to one canonical
format (PNG, RGBA, at most EMBLEM_MAX_PX on its longer side, no metadata or ICC profile) and
only that is stored (regency setting EMBLEM_KEY, audited by its SHA-256). Without an uploaded
emblem the letter draws a neutral placeholder (engine.letters.layout), never the real arms.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from engine import regency_settings
from engine.errors import InvalidInput
from engine.letters.layout_emblem import Emblem
from engine.letters.render import VillageInfo
from engine.people.users import Actor
from engine.storage.models import Village

EMBLEM_KEY = "kop.emblem"
EMBLEM_MAX_BYTES = 2 * 1024 * 1024  # the upload
EMBLEM_MAX_SIDE = 4000  # px, either side of the upload (checked before decoding)
EMBLEM_MIN_SIDE = 32
EMBLEM_MAX_PX = 600  # px, the longer side as stored: 22 mm wide is ~700 dpi
_FORMATS = ("PNG", "JPEG")


def canonical_emblem(data: bytes) -> bytes:
    """The upload re-encoded as the canonical PNG, or InvalidInput saying why not."""
    if not data:
        raise InvalidInput("Berkas lambang kosong.", {"emblem": "Pilih berkas PNG atau JPEG."})
    if len(data) > EMBLEM_MAX_BYTES:
        raise InvalidInput(
            f"Berkas lambang terlalu besar ({len(data) // 1024} KB).",
            {"emblem": f"Maksimal {EMBLEM_MAX_BYTES // (1024 * 1024)} MB."},
        )
    bad = InvalidInput(
        "Berkas lambang bukan gambar PNG atau JPEG yang dapat dibaca.",
        {"emblem": "Unggah gambar PNG atau JPEG."},
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_FORMATS) as im:
                width, height = im.size
                if max(width, height) > EMBLEM_MAX_SIDE or min(width, height) < EMBLEM_MIN_SIDE:
                    raise InvalidInput(
                        f"Ukuran lambang {width}x{height} piksel tidak diterima.",
                        {
                            "emblem": f"Sisi gambar antara {EMBLEM_MIN_SIDE} dan "
                            f"{EMBLEM_MAX_SIDE} piksel."
                        },
                    )
                if max(width, height) > 4 * min(width, height):
                    raise InvalidInput(
                        f"Lambang {width}x{height} piksel terlalu memanjang.",
                        {"emblem": "Perbandingan sisi paling banyak 1:4."},
                    )
                im.load()
                rgba = im.convert("RGBA")
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Warning) as exc:
        raise bad from exc
    except Image.DecompressionBombError as exc:
        raise bad from exc
    rgba.thumbnail((EMBLEM_MAX_PX, EMBLEM_MAX_PX), Image.Resampling.LANCZOS)
    if rgba.getchannel("A").getextrema() == (255, 255):
        rgba = rgba.convert("RGB")  # opaque: no soft mask to embed
    out = io.BytesIO()
    rgba.save(out, format="PNG", optimize=True)
    return out.getvalue()


def set_emblem(session: Session, by: Actor, data: bytes | None) -> Emblem | None:
    """Store the uploaded emblem (re-encoded; None removes it: the placeholder is printed).
    Regency admin only; audited by the stored file's SHA-256."""
    regency_settings.require_change(by)
    png = None if data is None else canonical_emblem(data)
    regency_settings.put_blob(session, by, EMBLEM_KEY, png)
    return None if png is None else Emblem.of(png)


def load_emblem(session: Session) -> Emblem | None:
    png = regency_settings.get_blob(session, EMBLEM_KEY)
    return None if png is None else Emblem.of(png)


def village_info(session: Session, village: Village) -> VillageInfo:
    """A village as its letters print it: name, kind, kecamatan, the kop's address and contact
    lines, and the regency emblem."""
    return VillageInfo(
        code=village.code,
        name=village.name,
        kind=village.kind,
        district_name=village.district.name,
        address=village.address,
        postal_code=village.postal_code,
        phone=village.phone or "",
        email=village.email or "",
        website=village.website or "",
        emblem=load_emblem(session),
    )
