"""Imported once by the fork server of engine.letters.make_pool (its preload), never by the
run itself: the fonts are loaded and prepared there (about 0.8 s), so that every signing process
forked from it starts with them instead of preparing them again for each batch."""

from engine.letters import make_pool  # noqa: F401 - the children's code, imported once
from engine.letters.pdf_fonts import prepare_fonts

prepare_fonts()
