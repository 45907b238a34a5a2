"""OpenID Connect login (Authlib): a regional IdP (Inera IdP / SITHS style) whose care
assignments map to units and roles, and generic providers (municipalities) whose
subjects map to accounts kept in Utfall.

Flow: authorization code + PKCE (S256), ``state`` and ``nonce`` kept in an encrypted,
short-lived cookie of the browser that started the login; the ID token's signature
(provider JWKS), ``iss``, ``aud``, ``exp``/``iat``, ``nonce`` (and ``azp``) are checked
by Authlib's ``CodeIDToken``; then the assurance level ``acr`` against the
provider's configured minimum.

Configuration (environment):

* ``UTFALL_OIDC_PROVIDERS`` – names, comma-separated (e.g. ``region,kommun``)
* per NAME (upper case): ``UTFALL_OIDC_<NAME>_ISSUER``, ``_CLIENT_ID``,
  ``_CLIENT_SECRET``, ``_KIND`` (``siths`` or ``generic``), ``_LABEL``, ``_SCOPE``,
  ``_USER_CLAIM`` (``employeeHsaId`` for siths, ``sub`` for generic), ``_ACR_LEVELS``
  (ordered low → high), ``_ACR_MIN``
* ``UTFALL_OIDC_MAPPING`` – YAML file mapping care-unit HSA-ids to units and
  assignment purposes/rights to roles (see docs/security.md)
* ``UTFALL_OIDC_REDIRECT_BASE`` – the public base URL (else the request's)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc.errors import JoseError as RfcJoseError  # authlib.jose delegates to joserfc
from sqlalchemy import Connection, delete, insert, select, update

from utfall.access.accounts import (
    Account,
    AccountError,
    Identity,
    account_for_identity,
    check_role_units,
    create_user,
    load_account,
)
from utfall.store.models_access import UserAccount, UserUnit

LOA = tuple(f"http://id.elegnamnden.se/loa/1.0/loa{i}" for i in range(1, 5))
HSA_CLAIMS = ("commissionHsaId", "healthCareProviderHsaId", "healthCareUnitHsaId",
              "commissionPurpose", "commissionRight")
FLOW_SECONDS = 600
LEEWAY_SECONDS = 60
_CACHE_SECONDS = 300
_cache: dict[str, tuple[float, Any]] = {}


class OidcRefused(Exception):
    """A login the provider confirmed but Utfall refuses (``code`` names the page text:
    ``no_assignment``, ``acr_too_low``, ``no_account``, ``inactive``, ``failed``,
    ``cancelled``)."""

    def __init__(self, code: str, detail: str = "", username: str | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.username = username


@dataclass(frozen=True)
class Provider:
    """One configured OpenID provider."""

    name: str
    issuer: str
    client_id: str
    client_secret: str
    kind: str = "generic"  # siths / generic
    label: str = ""
    scope: str = "openid profile"
    user_claim: str = "sub"
    acr_levels: tuple[str, ...] = LOA
    acr_min: str | None = None


@dataclass(frozen=True)
class Mapping:
    """Care-unit HSA-ids → units, assignment purpose/right → roles."""

    units: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # hsa → (unit, cp)
    roles: tuple[dict[str, str], ...] = ()


def _env(name: str, key: str, default: str | None = None) -> str | None:
    return os.environ.get(f"UTFALL_OIDC_{name.upper()}_{key}", default)


def configured_providers() -> list[Provider]:
    """Providers named in ``UTFALL_OIDC_PROVIDERS`` with issuer and client set."""
    out = []
    for name in (os.environ.get("UTFALL_OIDC_PROVIDERS") or "").split(","):
        name = name.strip().lower()
        if not name or not name.isidentifier():
            continue
        issuer, client_id = _env(name, "ISSUER"), _env(name, "CLIENT_ID")
        if not issuer or not client_id:
            continue
        kind = (_env(name, "KIND", "generic") or "generic").lower()
        levels = tuple(v.strip() for v in (_env(name, "ACR_LEVELS") or "").split(",")
                       if v.strip()) or LOA
        out.append(Provider(
            name=name, issuer=issuer.rstrip("/"), client_id=client_id,
            client_secret=_env(name, "CLIENT_SECRET", "") or "", kind=kind,
            label=_env(name, "LABEL") or name,
            scope=_env(name, "SCOPE") or ("openid profile hsa" if kind == "siths"
                                           else "openid profile"),
            user_claim=_env(name, "USER_CLAIM") or ("employeeHsaId" if kind == "siths"
                                                    else "sub"),
            acr_levels=levels, acr_min=_env(name, "ACR_MIN") or None))
    return out


def provider_named(name: str) -> Provider | None:
    """The configured provider called ``name``."""
    return next((p for p in configured_providers() if p.name == name), None)


def load_mapping(path: str | None = None) -> Mapping:
    """The assignment mapping (``UTFALL_OIDC_MAPPING``); empty when unset."""
    path = path or os.environ.get("UTFALL_OIDC_MAPPING")
    if not path:
        return Mapping()
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    units = {}
    for row in data.get("units") or []:
        units[str(row["hsa_id"]).strip()] = (str(row["unit"]),
                                             str(row["care_provider"]).strip()
                                             if row.get("care_provider") else None)
    roles = tuple({k: str(v) for k, v in rule.items()} for rule in data.get("roles") or [])
    return Mapping(units, roles)


# ------------------------------------------------------------------ provider metadata


def _get_json(url: str) -> Any:
    now = time.monotonic()
    hit = _cache.get(url)
    if hit and now - hit[0] < _CACHE_SECONDS:
        return hit[1]
    response = httpx.get(url, timeout=10, follow_redirects=False)
    response.raise_for_status()
    value = response.json()
    _cache[url] = (now, value)
    return value


def metadata(provider: Provider) -> dict[str, Any]:
    """The provider's discovery document (its ``issuer`` must be the configured one)."""
    meta = _get_json(provider.issuer + "/.well-known/openid-configuration")
    if meta.get("issuer", "").rstrip("/") != provider.issuer:
        raise OidcRefused("failed", "issuer in discovery differs")
    return meta


def _keys(meta: dict[str, Any], refresh: bool = False) -> Any:
    if refresh:
        _cache.pop(meta["jwks_uri"], None)
    return JsonWebKey.import_key_set(_get_json(meta["jwks_uri"]))


# ------------------------------------------------------------------ the flow


def begin(provider: Provider, redirect_uri: str, next_path: str,
          login_hint: str | None = None) -> tuple[str, dict[str, Any]]:
    """The authorization URL and the flow state to keep in the browser's cookie."""
    meta = metadata(provider)
    flow = {"p": provider.name, "state": generate_token(32), "nonce": generate_token(32),
            "verifier": generate_token(64), "next": next_path, "at": int(time.time())}
    params: dict[str, str] = {
        "response_type": "code", "client_id": provider.client_id,
        "redirect_uri": redirect_uri, "scope": provider.scope, "state": flow["state"],
        "nonce": flow["nonce"], "code_challenge": create_s256_code_challenge(flow["verifier"]),
        "code_challenge_method": "S256"}
    if provider.acr_min and provider.acr_min in provider.acr_levels:
        wanted = provider.acr_levels[provider.acr_levels.index(provider.acr_min):]
        params["acr_values"] = " ".join(wanted)
    if login_hint:
        params["login_hint"] = login_hint[:200]
    return add_params_to_uri(meta["authorization_endpoint"], params), flow


def verify_id_token(id_token: str, keys: Any, provider: Provider, nonce: str,
                    now: float | None = None) -> dict[str, Any]:
    """Signature, ``iss``, ``aud``, ``azp``, ``exp``, ``iat`` and ``nonce`` of an ID token
    (Authlib ``CodeIDToken``); raises :class:`OidcRefused` (``failed``)."""
    try:
        claims = jwt.decode(
            id_token, keys, claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": provider.issuer},
                            "aud": {"essential": True, "value": provider.client_id},
                            "exp": {"essential": True}, "iat": {"essential": True},
                            "nonce": {"essential": True}},
            claims_params={"nonce": nonce, "client_id": provider.client_id})
        claims.validate(now=int(now if now is not None else time.time()),
                        leeway=LEEWAY_SECONDS)
    except (JoseError, RfcJoseError, ValueError) as exc:
        raise OidcRefused("failed", f"ID token: {exc}") from None
    if claims.get("alg") == "none" or claims.header.get("alg") in (None, "none"):
        raise OidcRefused("failed", "unsigned ID token")
    return dict(claims)


def finish(provider: Provider, flow: dict[str, Any], params: dict[str, str],
           redirect_uri: str) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) and return the verified claims."""
    if params.get("error"):
        raise OidcRefused("cancelled", str(params.get("error"))[:100])
    if flow.get("p") != provider.name or time.time() - int(flow.get("at", 0)) > FLOW_SECONDS:
        raise OidcRefused("failed", "flow expired or of another provider")
    import hmac

    if not hmac.compare_digest(str(params.get("state", "")), str(flow.get("state", ""))):
        raise OidcRefused("failed", "state differs")
    code = params.get("code")
    if not code:
        raise OidcRefused("failed", "no code")
    meta = metadata(provider)
    try:
        response = httpx.post(meta["token_endpoint"], timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": flow["verifier"]},
            auth=(provider.client_id, provider.client_secret))
    except httpx.HTTPError as exc:
        raise OidcRefused("failed", f"token endpoint: {exc.__class__.__name__}") from None
    if response.status_code != 200:
        raise OidcRefused("failed", f"token endpoint answered {response.status_code}")
    token = response.json()
    id_token = token.get("id_token")
    if not id_token:
        raise OidcRefused("failed", "no ID token")
    try:
        claims = verify_id_token(id_token, _keys(meta), provider, flow["nonce"])
    except OidcRefused:
        claims = verify_id_token(id_token, _keys(meta, refresh=True), provider, flow["nonce"])
    check_acr(provider, claims)
    return claims


def check_acr(provider: Provider, claims: dict[str, Any]) -> None:
    """Refuse an assurance level below the provider's configured minimum."""
    if not provider.acr_min:
        return
    levels = provider.acr_levels
    acr = claims.get("acr")
    if acr not in levels or provider.acr_min not in levels or \
            levels.index(acr) < levels.index(provider.acr_min):
        raise OidcRefused("acr_too_low", f"acr {acr!r} below {provider.acr_min!r}")


# ------------------------------------------------------------------ claims → account


def assignments(claims: dict[str, Any]) -> list[dict[str, str]]:
    """The care assignments in the claims: a ``commissions`` list of objects, or the
    one assignment chosen at login as top-level claims."""
    listed = claims.get("commissions")
    if isinstance(listed, list):
        return [{k: str(v) for k, v in a.items() if k in HSA_CLAIMS}
                for a in listed if isinstance(a, dict)]
    single = {k: str(claims[k]) for k in HSA_CLAIMS if claims.get(k)}
    return [single] if single.get("commissionHsaId") or single.get("healthCareUnitHsaId") \
        else []


def _role_for(mapping: Mapping, assignment: dict[str, str]) -> str | None:
    purpose = assignment.get("commissionPurpose", "").strip().lower()
    right = assignment.get("commissionRight", "").lower()
    for rule in mapping.roles:
        if rule.get("purpose", "").strip().lower() not in ("", purpose):
            continue
        if rule.get("right_contains") and rule["right_contains"].lower() not in right:
            continue
        return rule.get("role")
    return None


def map_assignments(conn: Connection, mapping: Mapping, claims: dict[str, Any]
                    ) -> tuple[str, list[str]]:
    """``(role, units)`` from the care assignments; :class:`OidcRefused`
    (``no_assignment``) when none maps to a unit with a role that fits its principal."""
    found: list[tuple[str, str]] = []
    for a in assignments(claims):
        hsa = a.get("commissionHsaId") or a.get("healthCareUnitHsaId") or ""
        target = mapping.units.get(hsa) or mapping.units.get(a.get("healthCareUnitHsaId", ""))
        if target is None:
            continue
        unit, care_provider = target
        if care_provider and care_provider != a.get("healthCareProviderHsaId"):
            continue
        role = _role_for(mapping, a)
        if role is None:
            continue
        try:
            check_role_units(conn, role, [unit])
        except AccountError:
            continue
        found.append((role, unit))
    if not found:
        raise OidcRefused("no_assignment")
    role = found[0][0]
    return role, list(dict.fromkeys(u for r, u in found if r == role))


def _display(claims: dict[str, Any], fallback: str) -> str:
    name = claims.get("name") or " ".join(
        str(claims[k]) for k in ("given_name", "family_name") if claims.get(k))
    return str(name or fallback)[:200]


def account_for_login(conn: Connection, provider: Provider, claims: dict[str, Any],
                      mapping: Mapping | None = None) -> tuple[Account, str | None]:
    """The account and unit of a verified login; creates or updates the account of a
    regional (siths) user from the assignments; a generic provider's subject must
    belong to an account an administrator created."""
    subject = claims.get(provider.user_claim)
    if not subject or not isinstance(subject, str):
        raise OidcRefused("no_account", f"claim {provider.user_claim} missing")
    identity = Identity(provider.issuer, subject)
    row = conn.execute(select(UserAccount).where(
        UserAccount.identity_provider == identity.provider,
        UserAccount.external_subject == identity.subject)).first()
    if row is not None and not row.active:
        raise OidcRefused("inactive", username=row.username)
    if provider.kind != "siths":
        account = account_for_identity(conn, identity)
        if account is None:
            raise OidcRefused("no_account")
        return account, account.units[0] if account.units else None
    role, units = map_assignments(conn, mapping or load_mapping(), claims)
    if row is None:
        username = subject if not conn.execute(select(UserAccount.id).where(
            UserAccount.username == subject)).first() else f"{subject}@{provider.name}"
        user_id = create_user(conn, username, role, units, display_name=_display(claims, subject),
                              provider=provider.issuer, subject=subject)
    else:
        user_id = row.id
        conn.execute(update(UserAccount).where(UserAccount.id == user_id).values(
            role=role, display_name=_display(claims, row.display_name)))
        conn.execute(delete(UserUnit).where(UserUnit.user_id == user_id))
        for unit in units:
            conn.execute(insert(UserUnit).values(user_id=user_id, unit_id=unit))
    account = load_account(conn, user_id)
    assert account is not None
    return account, units[0]


def now_utc() -> dt.datetime:
    """Current time (UTC)."""
    return dt.datetime.now(dt.UTC)
