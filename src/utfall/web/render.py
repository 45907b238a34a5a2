"""Jinja2 rendering with the request's language (Swedish default, English switch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup

from utfall.domain import formats, labels
from utfall.i18n import LOCALES, t
from utfall.web.formats import install as _install_number_filters
from utfall.web.security import LANG_COOKIE

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
_install_number_filters(TEMPLATES.env)  # num, pct, shown: Swedish number formats


def _filter(fmt: Any) -> Any:
    @pass_context
    def apply(context: Any, value: Any, *args: Any) -> str:
        return fmt(value, *args, locale=context.get("locale", "sv"))

    return apply


# Swedish formats in templates: {{ d|day }} "12 mars 2026", {{ t|clock }} "14:05"
# (Europe/Stockholm), {{ t|when }} "12 mars 2026 14:05" (numbers: utfall.web.formats);
# {{ label("care_setting", code) }} a code's readable text.
TEMPLATES.env.filters["day"] = _filter(formats.format_date)
TEMPLATES.env.filters["month"] = _filter(formats.format_month)
TEMPLATES.env.filters["clock"] = _filter(formats.format_time)
TEMPLATES.env.filters["when"] = _filter(formats.format_datetime)


_UNIT_NAMES_TTL = 60.0  # seconds; unit names change rarely (one small query a minute)


def unit_names(request: Request, want: str | None = None) -> dict[str, str]:
    """Unit id → name, cached per app (its store) for a minute, read again sooner when
    ``want`` is missing (a unit added since); templates never show a unit id."""
    import time

    state = request.app.state
    engine = getattr(state, "engine", None)
    if engine is None:
        return {}
    cache: dict[str, Any] | None = getattr(state, "unit_names_cache", None)
    now = time.monotonic()
    missing = want is not None and cache is not None and want not in cache["names"]
    if (cache is None or now - cache["at"] > _UNIT_NAMES_TTL or not cache["names"]
            or (missing and now - cache["at"] > 1.0)):
        from sqlalchemy import select

        from utfall.store.models import Unit

        with engine.connect() as conn:
            cache = {"at": now, "names": dict(conn.execute(select(Unit.unit_id, Unit.name)).all())}
        state.unit_names_cache = cache
    return cache["names"]


def locale_of(request: Request) -> str:
    """``?lang=``, then the language cookie, then the configured default."""
    lang = (request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
            or getattr(request.state, "forced_locale", None))
    if lang in LOCALES:
        return str(lang)
    default = getattr(request.app.state, "locale", "sv")
    return default if default in LOCALES else "sv"


def translator(locale: str):
    """``_(key, **values)`` for templates."""

    def _(key: str, **values: Any) -> str:
        return t(key, locale, **values)

    return _


def local(value: Any, locale: str) -> str:
    """Text of a ``{sv, en}`` mapping or object (or the value itself)."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get(locale) or value.get("sv") or "")
    if hasattr(value, "sv"):
        return str(getattr(value, locale, None) or value.sv)
    return str(value)


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    """Render ``name`` with the common context (user, language, CSRF token)."""
    locale = locale_of(request)
    principal = getattr(request.state, "principal", None)
    ctx: dict[str, Any] = {
        "request": request,
        "locale": locale,
        "_": translator(locale),
        "L": lambda v: local(v, locale),
        "principal": principal,
        "csrf_token": principal.session.csrf_token if principal else "",
        "svg": Markup,
        "label": lambda kind, code, **kw: labels.label(kind, code, locale, **kw),
        "unit_label": lambda unit_id: (unit_names(request, unit_id).get(unit_id) or unit_id
                                       or "")
        if unit_id else "",
    }
    ctx.update(context or {})
    response = TEMPLATES.TemplateResponse(request, name, ctx, status_code=status_code)
    return response
