"""HTTP routes of the auth service: parse, call the service, shape the answer."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from mif_auth import owners, service, sign_in, users
from mif_auth import repository as repo
from mif_auth.config import AuthSettings
from mif_auth.keys import KeyRing
from mif_auth.models import User
from mif_auth.schemas import (
    ChangePasswordRequest,
    MeOut,
    ProfileUpdate,
    RefreshRequest,
    TokenPair,
    TokenState,
    UserAdminUpdate,
    UserCreate,
    UserOut,
)
from mif_common.auth import CurrentPrincipal, Role, role_allows
from mif_common.db import Session
from mif_common.errors import BadRequest, Forbidden, Unauthorized, Unprocessable, UnsupportedMediaType, problem_response
from mif_common.json_bodies import dump_rows
from mif_common.openapi import problem_responses
from mif_common.pagination import PageParams, json_page, page_params
from mif_common.params import MAX_ID, EntityId
from mif_common.request_context import client_ip

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"])

MAX_FORM_BYTES = 16 * 1024

Body = TypeVar("Body", bound=BaseModel)


# Assets, asked as the caller about a client organisation missing from the replica.
Assets = Annotated[owners.AssetsOrganisations, Depends(owners.AssetsOrganisations.for_request)]


def settings_of(request: Request) -> AuthSettings:
    settings: AuthSettings = request.app.state.settings
    return settings


def keyring_of(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def client_of(request: Request) -> service.ClientInfo:
    return service.ClientInfo(
        ip=client_ip(request.headers, request.client.host if request.client else None),
        user_agent=request.headers.get("user-agent"),
    )


async def current_user(principal: CurrentPrincipal, session: Session) -> User:
    """The caller's account, refused if deactivated, if its client organisation is deactivated, or if the
    token predates a change to the account (auth checks its own database, not the token states)."""
    user = await repo.user_by_id(session, principal.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("This account no longer exists or is deactivated.")
    if principal.token_version != user.token_version:
        raise Unauthorized("This token was issued before a change to the account; sign in again.")
    organisation = await service.organisation_refusal(session, user)
    if organisation is not None:
        raise organisation
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def user_with_role(role: Role) -> Callable[[User], Awaitable[User]]:
    """Like `require_roles`, but on the live account: a demoted or deactivated user is refused now."""

    async def check(user: CurrentUser) -> User:
        if not role_allows(Role(user.role), {role}):
            raise Forbidden(f"This action needs the role {role.value}.")
        return user

    return check


AdminUser = Annotated[User, Depends(user_with_role(Role.admin))]
ManagerUser = Annotated[User, Depends(user_with_role(Role.responsable))]


_BODY_MEDIA = ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")


async def read_object(request: Request, *, purpose: str, contents: str) -> dict[str, Any]:
    """The body as one flat object: the text fields of a form (urlencoded or multipart, no files) or
    a JSON object. `purpose` ("a sign-in") and `contents` ("the credentials") word the refusals."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise BadRequest(f"The request body is too large for {purpose}.")
    raw: dict[str, Any]
    if not content_type and not await request.body():
        raw = {}
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=20)
        except HTTPException:  # too large, or the body stopped arriving: answered as such (413, 408)
            raise
        except Exception as exc:  # malformed multipart: the client's fault, never a 500
            raise BadRequest("The form body could not be read.") from exc
        raw = {k: v for k, v in form.items() if isinstance(v, str)}
    elif content_type == "application/json":
        try:
            raw = json.loads(await request.body())
        except (ValueError, RecursionError) as exc:  # the request guard refuses deep bodies first
            raise BadRequest("The body is not valid JSON.") from exc
        if not isinstance(raw, dict):
            raise BadRequest("The JSON body must be an object.")
    else:
        raise UnsupportedMediaType(
            f"Send {contents} as application/x-www-form-urlencoded, multipart/form-data or JSON."
        )
    # Multipart fields are not seen by the request guard (mif_common.guard): a NUL cannot be stored or
    # compared by PostgreSQL, so it is refused here for every content type alike.
    with_nul = sorted(
        k.replace("\x00", "") for k, v in raw.items() if "\x00" in k or (isinstance(v, str) and "\x00" in v)
    )
    if with_nul:
        raise BadRequest(
            f"A NUL character is not accepted in any field; remove it from: {', '.join(with_nul)[:200]}.",
            errors=[{"field": k, "message": "must not contain a NUL character"} for k in with_nul],
        )
    return raw


async def read_fields(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """Read string fields from a form (urlencoded or multipart) or a JSON object."""
    raw = await read_object(request, purpose="a sign-in", contents="the credentials")
    values, errors = {}, []
    for name in names:
        value = raw.get(name)
        if not isinstance(value, str) or not value or len(value) > 254:
            errors.append({"field": name, "message": "required text of at most 254 characters"})
        else:
            values[name] = value
    if errors:
        raise Unprocessable(f"Missing or invalid: {', '.join(e['field'] for e in errors)}.", errors=errors)
    return values


async def read_body(request: Request, model: type[Body], *, purpose: str, contents: str) -> Body:
    """A request body model read from a form (urlencoded or multipart) or a JSON object, with the same
    rules and the same 422 answer as a JSON body FastAPI validates itself."""
    raw = await read_object(request, purpose=purpose, contents=contents)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from exc


def _body_doc(model: type[BaseModel], *, secret: tuple[str, ...] = ()) -> dict[str, Any]:
    """OpenAPI request body of `model`, the same in each content type `read_object` accepts."""

    def schema() -> dict[str, Any]:
        described = model.model_json_schema()
        for name in secret:
            described["properties"][name]["format"] = "password"
        return described

    return {"requestBody": {"required": True, "content": {media: {"schema": schema()} for media in _BODY_MEDIA}}}


def _token_answer(result: TokenPair | service.Refusal) -> JSONResponse:
    if isinstance(result, service.Refusal):
        err = result.error
        return problem_response(err.status, err.detail, title=err.title, slug=err.slug, headers=err.headers)
    return JSONResponse(result.model_dump(), headers={"Cache-Control": "no-store"})


_CREDENTIALS_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            }
            for media in _BODY_MEDIA
        },
    }
}
_EMAIL_DOC: dict[str, Any] = json.loads(json.dumps(_CREDENTIALS_DOC).replace('"username"', '"email"'))
# A sign-in is refused with a problem: wrong credentials, a deactivated account or a deactivated client
# organisation (401, sign_in.login), too many failures for the account or the address (429, with Retry-After).
_SIGN_IN_REFUSALS = problem_responses(
    401,
    429,
    s401="Wrong username/e-mail or password, a deactivated account, or the account's client organisation deactivated.",
    s429="Too many failed sign-ins: on this account from this address, from this address on any accounts, or "
    "(a short, growing delay) on this account from everywhere: retry after `Retry-After` seconds.",
)


@auth_router.post(
    "/login",
    response_model=TokenPair,
    openapi_extra=_CREDENTIALS_DOC,
    summary="Sign in with username or e-mail",
    responses=_SIGN_IN_REFUSALS,
)
async def login(request: Request, session: Session) -> JSONResponse:
    fields = await read_fields(request, ("username", "password"))
    result = await sign_in.login(
        session,
        identifier=fields["username"],
        password=fields["password"],
        settings=settings_of(request),
        keyring=keyring_of(request),
        client=client_of(request),
    )
    return _token_answer(result)


@auth_router.post(
    "/token",
    response_model=TokenPair,
    openapi_extra=_EMAIL_DOC,
    summary="Sign in with e-mail",
    responses=_SIGN_IN_REFUSALS,
)
async def token(request: Request, session: Session) -> JSONResponse:
    fields = await read_fields(request, ("email", "password"))
    result = await sign_in.login(
        session,
        identifier=fields["email"],
        password=fields["password"],
        settings=settings_of(request),
        keyring=keyring_of(request),
        client=client_of(request),
    )
    return _token_answer(result)


@auth_router.post(
    "/refresh",
    response_model=TokenPair,
    summary="Rotate a refresh token",
    responses=problem_responses(
        401,
        s401="Unknown, used, revoked or expired refresh token, a deactivated account, or the account's client "
        "organisation deactivated.",
    ),
)
async def refresh(body: RefreshRequest, request: Request, session: Session) -> JSONResponse:
    result = await sign_in.refresh(
        session,
        raw_token=body.refresh_token,
        settings=settings_of(request),
        keyring=keyring_of(request),
        client=client_of(request),
    )
    return _token_answer(result)


@auth_router.post("/logout", status_code=204, summary="End the session of a refresh token")
async def logout(body: RefreshRequest, session: Session) -> Response:
    await sign_in.logout(session, raw_token=body.refresh_token)
    return Response(status_code=204)


@auth_router.post(
    "/change-password",
    response_model=TokenPair,
    openapi_extra=_body_doc(ChangePasswordRequest, secret=("current_password", "new_password")),
    summary="Change one's password",
)
async def change_password(user: CurrentUser, request: Request, session: Session) -> TokenPair:
    """Sent as JSON or as a form (the web frontend sends multipart). Every other session ends; the answer
    is a fresh token pair."""
    body = await read_body(request, ChangePasswordRequest, purpose="a password change", contents="the passwords")
    return await sign_in.change_password(
        session,
        user=user,
        current_password=body.current_password,
        new_password=body.new_password,
        settings=settings_of(request),
        keyring=keyring_of(request),
        client=client_of(request),
    )


@auth_router.get("/me", response_model=MeOut, summary="The signed-in user")
async def me(user: CurrentUser) -> User:
    return user


@auth_router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(keyring_of(request).jwks, headers={"Cache-Control": "public, max-age=300"})


@auth_router.get(
    "/internal/token-states",
    response_model=list[TokenState],
    summary="Every user's token state (gateway and services at start-up; never routed from outside)",
)
async def internal_token_states(session: Session) -> list[TokenState]:
    return [
        TokenState(user_id=uid, is_active=active, token_version=version, organisation_active=org)
        for uid, active, version, org in await repo.token_states(session)
    ]


@auth_router.get(
    "/internal/token-states/{user_id}",
    response_model=TokenState,
    summary="One user's token state (a user the gateway or a service has not heard of yet; never routed from "
    "outside); 404 when no such user exists",
)
async def internal_token_state(user_id: EntityId, session: Session) -> TokenState:
    row = await repo.token_state(session, user_id)
    if row is None:
        raise service.UserNotFound(f"No user with id {user_id}.")
    uid, active, version, org = row
    return TokenState(user_id=uid, is_active=active, token_version=version, organisation_active=org)


# --- users --------------------------------------------------------------------------------------

_USER_SORT = {
    "id": User.id,
    "username": User.username,
    "email": User.email,
    "full_name": User.full_name,
    "role": User.role,
    "created_at": User.created_at,
    "last_login": User.last_login,
}

_USERS = repo.users_list(_USER_SORT)


@users_router.get("", response_model=list[UserOut], summary="List users (managers)")
async def list_users(
    request: Request,
    session: Session,
    _: ManagerUser,
    params: Annotated[PageParams, Depends(page_params)],
    role: Annotated[str | None, Query(pattern="^(admin|responsable|technicien|client)$")] = None,
    is_active: bool | None = None,
    client_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
) -> Response:
    terms: dict[str, Any] = {}
    if role:
        terms["role"] = role
    if is_active is not None:
        terms["is_active"] = is_active
    if client_id is not None:
        terms["client_id"] = client_id
    if params.q:
        terms["q"] = f"%{params.q.lower()}%"
    # The session's connection: the caller's account was just read on it (`ManagerUser`).
    rows, total = await _USERS.page_and_total(
        await session.connection(), terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
    )
    return json_page(request, dump_rows(rows), total=total, params=params)


@users_router.post("", response_model=UserOut, status_code=201, summary="Create a user (admin)")
async def create_user(body: UserCreate, request: Request, session: Session, _: AdminUser, assets: Assets) -> User:
    return await users.create_user(
        session,
        data=body,
        settings=settings_of(request),
        assets=assets,
    )


@users_router.get("/me", response_model=UserOut, summary="Own profile")
async def my_profile(user: CurrentUser) -> User:
    return user


@users_router.put("/update", response_model=UserOut, summary="Edit own profile (full_name, password)")
async def update_my_profile(body: ProfileUpdate, user: CurrentUser, request: Request, session: Session) -> User:
    return await users.update_profile(session, user=user, data=body, settings=settings_of(request))


@users_router.get("/{user_id}", response_model=UserOut, summary="One user (managers, or oneself)")
async def get_user(user_id: EntityId, caller: CurrentUser, session: Session) -> User:
    if not role_allows(Role(caller.role), {Role.responsable}) and caller.id != user_id:
        raise Forbidden("You may only read your own account.")
    return await users.get_user(session, user_id)


@users_router.put("/{user_id}", response_model=UserOut, summary="Edit a user (admin)")
async def update_user(
    user_id: EntityId, body: UserAdminUpdate, request: Request, session: Session, actor: AdminUser, assets: Assets
) -> User:
    return await users.update_user(
        session,
        user_id=user_id,
        data=body,
        actor=actor,
        settings=settings_of(request),
        assets=assets,
    )


@users_router.delete("/{user_id}", status_code=204, summary="Deactivate a user (admin; soft delete)")
async def deactivate_user(user_id: EntityId, session: Session, actor: AdminUser) -> Response:
    await users.deactivate_user(session, user_id=user_id, actor=actor)
    return Response(status_code=204)


@users_router.patch("/{user_id}/activate", response_model=UserOut, summary="Reactivate a user (admin)")
async def activate_user(user_id: EntityId, session: Session, _: AdminUser) -> User:
    return await users.activate_user(session, user_id=user_id)


@users_router.post(
    "/{user_id}/unlock",
    status_code=204,
    summary="Clear a user's sign-in throttling (admin)",
    description="Failed sign-ins on the account until now stop counting: every address locked out of it "
    "and the delay on it end at once. An address refused for failing on many accounts stays refused.",
)
async def unlock_sign_in(user_id: EntityId, session: Session, actor: AdminUser) -> Response:
    await sign_in.unlock_sign_in(session, user_id=user_id, actor=actor)
    return Response(status_code=204)
