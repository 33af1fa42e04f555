"""Message catalog (Babel/gettext): every page text goes through it; Bahasa Indonesia default.
Source strings are English; `locale/id/LC_MESSAGES/messages.po` holds the Indonesian."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LOCALE = "id"


@lru_cache(maxsize=4)
def translations(locale: str = DEFAULT_LOCALE) -> Translations:
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def gettext(message: str) -> str:
    return translations().gettext(message)


_ = gettext
