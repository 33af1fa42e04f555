"""The staff web app's pages under /staf, one module per area; each adds its pages to the one
router in staff_app.deps (no two page paths overlap, so their order does not matter)."""

from __future__ import annotations

from staff_app.deps import router
from staff_app.views import (  # noqa: F401 - imported for the pages they add to the router
    acting,
    admin,
    archive,
    auth,
    home,
    letter_types,
    letters,
    notifications,
    numbering,
    regency,
    requests,
    residents,
    signing,
)

__all__ = ["router"]
