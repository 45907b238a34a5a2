"""Login, logout, own password, and user administration pages (admin role).

Thin over ``utfall.access.accounts`` / ``utfall.access.admin``. The login form's
CSRF token is a signed pre-session value (``utfall.access.sessions``) sent as a
cookie and a hidden field; a cross-site ``Origin`` or ``Sec-Fetch-Site`` is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from utfall.access import admin
from utfall.access.accounts import (
    DEVICE_DAYS,
    AccountError,
    LoginFailed,
    authenticate_local,
    create_user,
    device_of,
    new_device_cookie,
)
from utfall.access.sessions import (
    check_login_csrf,
    create_session,
    new_login_csrf,
    revoke_session,
    valid_login_csrf,
)
from utfall.i18n import t
from utfall.web import services
from utfall.web.deps import as_list, checked_form, current_principal, form_data, needs_role
from utfall.web.render import locale_of, render
from utfall.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    client_of,
    set_cookie,
)

router = APIRouter(include_in_schema=False)
DEVICE_COOKIE = "utfall_device"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """Only local paths (no open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target


def secret(request: Request) -> bytes:
    """The server's signing key (settings)."""
    return request.app.state.settings.effective_secret_key


def cross_site(request: Request) -> bool:
    """True when the browser says the request comes from another site
    (``Sec-Fetch-Site: cross-site``, or an ``Origin`` of another host). ``Origin: null``
    decides nothing: browsers send it for every form post under
    ``Referrer-Policy: no-referrer``."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        host = request.headers.get("host")
        return origin not in {own, f"{request.url.scheme}://{host}"}
    return False


def oidc_providers(request: Request) -> list[Any]:
    """Configured OpenID providers (buttons on the login page)."""
    from utfall.access.oidc import configured_providers

    return configured_providers()


def login_form(request: Request, *, status: int = 200, error: str | None = None,
               username: str = "", target: str = "/") -> Response:
    """The login page with a (re)issued signed pre-session CSRF value."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    if value is None or not valid_login_csrf(secret(request), value):  # None is never valid
        value = new_login_csrf(secret(request))
    response = render(request, "login.html", {
        "login_csrf": value, "next": target, "username": username, "error": error,
        "providers": oidc_providers(request)}, status)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, value, max_age=3600)
    return response


def start_session(request: Request, response: Response, token: str) -> None:
    """Set the session cookie and drop the pre-session value."""
    set_cookie(request, response, SESSION_COOKIE, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


# ------------------------------------------------------------------ login / logout


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    """The login form (and the regional/municipal login buttons)."""
    return login_form(request, target=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, form: dict[str, Any] = Depends(form_data)) -> Response:
    """Check the password, start a session, go to ``next``."""
    locale = locale_of(request)
    target = safe_next(form.get("next"))
    if cross_site(request) or not check_login_csrf(
            secret(request), request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        return render(request, "error.html", {"status": 403, "key": "web.error.csrf"}, 403)
    username = str(form.get("username", ""))[:100]
    device = device_of(secret(request), request.cookies.get(DEVICE_COOKIE))
    engine = request.app.state.engine
    failed: LoginFailed | None = None
    with engine.begin() as conn:  # failed attempts are recorded (committed) too
        try:
            account = authenticate_local(conn, username, str(form.get("password", "")),
                                         client_of(request), device)
        except LoginFailed as exc:
            failed = exc
        else:
            token = create_session(conn, account.id, account.units[0] if account.units
                                   else None)
    if failed is not None:
        return login_form(request, status=401 if failed.code == "invalid" else 429,
                          error=t(f"web.login.{failed.code}", locale), username=username,
                          target=target)
    if account.role in ("unit_manager", "analyst"):  # load the stored run, never compute
        from utfall.analytics.jobs import warm

        warm()
    response = _redirect(target)
    start_session(request, response, token)
    set_cookie(request, response, DEVICE_COOKIE, new_device_cookie(secret(request), account.id),
               max_age=DEVICE_DAYS * 86400)
    return response


@router.post("/logout")
def logout(request: Request, form: dict[str, Any] = Depends(checked_form)) -> Response:
    """End the session."""
    with request.app.state.engine.begin() as conn:
        revoke_session(conn, request.cookies.get(SESSION_COOKIE))
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------ own password


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, principal: Principal = Depends(current_principal)
                  ) -> Response:
    """Change one's own password (local accounts)."""
    return render(request, "password.html", {"error": None, "local": _is_local(request,
                                                                               principal)})


def _is_local(request: Request, principal: Principal) -> bool:
    from sqlalchemy import select

    from utfall.store.models_access import UserAccount

    with request.app.state.engine.connect() as conn:
        return conn.execute(select(UserAccount.identity_provider).where(
            UserAccount.id == principal.account.id)).scalar_one() == "local"


@router.post("/account/password", response_class=HTMLResponse)
def password_post(request: Request, form: dict[str, Any] = Depends(checked_form),
                  principal: Principal = Depends(current_principal)) -> Response:
    """Check the current password and the policy, set the new one."""
    new = str(form.get("new_password", ""))
    error = None
    if new != str(form.get("new_password2", "")):
        error = t("web.password.mismatch", locale_of(request))
    else:
        try:
            with request.app.state.engine.begin() as conn:
                admin.change_own_password(conn, principal.account.id,
                                          str(form.get("current_password", "")), new,
                                          keep_session=principal.session.id)
        except AccountError as exc:
            error = _local_text(str(exc), locale_of(request))
    if error:
        return render(request, "password.html", {"error": error, "local": True}, 422)
    return _redirect("/account/password?saved=1")


def _local_text(message: str, locale: str) -> str:
    """The Swedish or English half of a ``sv / en`` account message."""
    text = message
    if " / " in message:
        sv, en = message.split(" / ", 1)
        text = en if locale == "en" else sv
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


# ------------------------------------------------------------------ administration


def _users_ctx(request: Request, values: dict[str, Any], error: str | None) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        users = admin.list_users(conn)
        units = services.units(conn)
    return {"users": users, "units": units, "values": values, "error": error,
            "roles": admin_roles()}


def admin_roles() -> tuple[str, ...]:
    from utfall.access.accounts import ASSIGNABLE_ROLES

    return ASSIGNABLE_ROLES


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, principal: Principal = Depends(needs_role("admin"))
               ) -> Response:
    """Accounts and unit memberships."""
    return render(request, "users.html", _users_ctx(request, {}, None))


@router.post("/admin/users", response_class=HTMLResponse)
def users_post(request: Request, form: dict[str, Any] = Depends(checked_form),
               principal: Principal = Depends(needs_role("admin"))) -> Response:
    """Create a local account."""
    try:
        with request.app.state.engine.begin() as conn:
            create_user(conn, str(form.get("username", "")), str(form.get("role", "")),
                        as_list(form.get("units")), password=str(form.get("password", "")),
                        display_name=str(form.get("display_name") or "") or None)
    except AccountError as exc:
        values = {k: v for k, v in form.items() if k != "password"}
        return render(request, "users.html", _users_ctx(
            request, values, _local_text(str(exc), locale_of(request))), 422)
    return _redirect("/admin/users?saved=1")


def _edit_ctx(request: Request, user_id: int, error: str | None = None,
              values: dict[str, Any] | None = None) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        users = admin.list_users(conn)
        units = services.units(conn)
    user = next((u for u in users if u.id == user_id), None)
    if user is None:
        raise HTTPException(404)
    return {"user": user, "units": units, "roles": admin_roles(), "error": error,
            "values": values or {"role": user.role, "units": list(user.units),
                                 "display_name": user.display_name}}


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: int,
              principal: Principal = Depends(needs_role("admin"))) -> Response:
    """One account: role, units, state and password."""
    return render(request, "user_edit.html", _edit_ctx(request, user_id))


def _username(request: Request, user_id: int) -> str:
    return _edit_ctx(request, user_id)["user"].username


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def user_post(request: Request, user_id: int, form: dict[str, Any] = Depends(checked_form),
              principal: Principal = Depends(needs_role("admin"))) -> Response:
    """Save role, units and name, or run an action (deactivate, activate, unlock,
    reset password) named by the submit button's ``action``."""
    username = _username(request, user_id)
    action = str(form.get("action", "save"))
    actor = principal.actor
    try:
        with request.app.state.engine.begin() as conn:
            if action == "save":
                admin.edit_user(conn, actor, username, role=str(form.get("role", "")),
                                units=as_list(form.get("units")),
                                display_name=str(form.get("display_name") or ""))
            elif action in ("deactivate", "activate"):
                admin.set_active(conn, actor, username, action == "activate")
            elif action == "unlock":
                admin.unlock(conn, actor, username)
            elif action == "reset_password":
                new = str(form.get("new_password", ""))
                if new != str(form.get("new_password2", "")):
                    raise AccountError(t("web.password.mismatch", "sv") + " / "
                                       + t("web.password.mismatch", "en"))
                admin.reset_password(conn, actor, username, new)
            else:
                raise HTTPException(400)
    except AccountError as exc:
        values = None
        if action == "save":
            values = {"role": form.get("role"), "units": as_list(form.get("units")),
                      "display_name": form.get("display_name")}
        return render(request, "user_edit.html", _edit_ctx(
            request, user_id, _local_text(str(exc), locale_of(request)), values), 422)
    return _redirect(f"/admin/users/{user_id}?saved={action}")
