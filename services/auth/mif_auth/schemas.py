"""Request and response bodies of the auth service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic_core import PydanticCustomError

from mif_common.bodies import RefId, Strict

Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=50, pattern=r"^[A-Za-z0-9._@-]+$")
]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
RoleName = Literal["admin", "responsable", "technicien", "client"]
Password = Annotated[str, Field(min_length=1, max_length=200)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


# A password a request cannot do without: blank (as an untouched form field sends it) is missing.
RequiredPassword = Annotated[Password, AfterValidator(_not_blank)]


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    refresh_token: str
    expires_in: int


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=10, max_length=200)]


class ChangePasswordRequest(Strict):
    current_password: RequiredPassword
    new_password: RequiredPassword


class UserCreate(Strict):
    username: Username
    full_name: FullName
    email: EmailStr
    role: RoleName
    password: Password
    client_id: RefId | None = None


class UserAdminUpdate(Strict):
    username: Username | None = None
    full_name: FullName | None = None
    email: EmailStr | None = None
    role: RoleName | None = None
    client_id: RefId | None = None


class ProfileUpdate(Strict):
    full_name: FullName | None = None
    password: Password | None = None
    current_password: Password | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    full_name: str
    role: RoleName
    is_active: bool
    client_id: int | None
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None


class MeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    full_name: str
    role: RoleName
    is_active: bool
    client_id: int | None


class TokenState(BaseModel):
    """What the gateway and the services check access tokens against (mif_common.auth.token_state)."""

    user_id: int
    is_active: bool
    token_version: int
    # False for a client user whose organisation is deactivated.
    organisation_active: bool = True
