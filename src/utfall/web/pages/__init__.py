"""Server-rendered pages (Jinja2; plain forms with a little progressive enhancement),
split by area like the API: session, persons, consents, relations, unit, analytics and
self-report. User administration lives in ``utfall.web.pages_accounts``."""

from fastapi import APIRouter

from utfall.web.pages import analytics, consents, persons, relations, selfreport, session, unit

router = APIRouter(include_in_schema=False)
for _area in (session, persons, consents, relations, unit, analytics, selfreport):
    router.include_router(_area.router)
from utfall.web.pages import worklist  # noqa: E402  (the unit's work list)

router.include_router(worklist.router)
from utfall.web.pages import dashboard, runs  # noqa: E402  (dashboard; /admin/runs)

for _area in (dashboard, runs):
    router.include_router(_area.router)
from utfall.web.pages import invitations  # noqa: E402  (self-report link: QR code, sending)

router.include_router(invitations.router)
from utfall.web.pages import own_view  # noqa: E402  (own view by personal link; goals)

router.include_router(own_view.router)
from utfall.web.pages import inbox  # noqa: E402  (clinical flags, inbox, corrections)

router.include_router(inbox.router)
from utfall.web.pages import enrolments  # noqa: E402  (phase changes and discharge)

router.include_router(enrolments.router)
from utfall.web.pages import quality  # noqa: E402  (gaps, data quality, training)

router.include_router(quality.router)
