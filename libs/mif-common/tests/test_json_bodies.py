"""List bodies written without `jsonable_encoder` are the bytes `JSONResponse(jsonable_encoder(...))` wrote:
models through pydantic's serializer (`dump_models`), rows of a model's columns through orjson
(`dump_rows`), on representative values: datetimes (UTC with and without microseconds, other offsets),
dates, None, enums and literals, decimals, floats Python writes differently, non-ASCII and control
characters, nested models and lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.requests import Request

from mif_common.json_bodies import dump_models, dump_models_as_pydantic, dump_rows
from mif_common.listing import model_columns
from mif_common.pagination import PageParams, page_response

UTC_NOW = datetime(2026, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)
AWKWARD = "".join(chr(i) for i in range(32)) + '\x7f\u2028\u2029 "\\/ <&> é ü ß ç € 😀 \ufeff'


class Statut(StrEnum):
    ouverte = "ouverte"
    cloturee = "clôturée"


class Row(BaseModel):
    """A model that copies columns: what `dump_rows` replaces."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    nom: str
    statut: Statut
    role: Literal["admin", "technicien"]
    client_id: int | None
    actif: bool
    montant: Decimal | None
    mise_en_service: date | None
    date_creation: datetime
    date_modification: datetime | None


class Livraison(BaseModel):
    canal: str
    date_envoi: datetime | None


class Nested(BaseModel):
    id: int
    livraisons: list[Livraison]
    chef: Livraison | None
    tags: list[str]


class Detail(BaseModel):
    """A JSON field of any content: floats may be in it."""

    id: int
    detail: dict[str, Any]
    ratio: float | None


def rows() -> list[dict[str, Any]]:
    moments = [
        UTC_NOW,
        UTC_NOW.replace(microsecond=0),
        UTC_NOW.replace(microsecond=1000),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 10, 20, 30, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 3, 1, 10, 20, 30, 5, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    ]
    out = []
    for n, moment in enumerate(moments):
        out.append(
            {
                "id": n + 1 if n else 2**62,
                "nom": [AWKWARD, "Équipement n°1", "", "x" * 300, "tab\there", "naïve"][n],
                "statut": ["ouverte", "clôturée"][n % 2],
                "role": ["admin", "technicien"][n % 2],
                "client_id": None if n % 2 else n,
                "actif": n % 3 == 0,
                "montant": [None, Decimal("12.50"), Decimal("0"), Decimal("1E+3"), Decimal("-0.000001"), None][n],
                "mise_en_service": None if n == 2 else date(2020, 2, 29) + timedelta(days=n),
                "date_creation": moment,
                "date_modification": None if n == 1 else moment - timedelta(microseconds=n * 7),
            }
        )
    return out


def old(items: list[Any]) -> bytes:
    """What `page_response` wrote before."""
    return bytes(JSONResponse(jsonable_encoder(items)).body)


def test_rows_are_written_as_their_model_wrote_them() -> None:
    data = rows()
    models = [Row.model_validate(r) for r in data]
    assert dump_rows(data) == old(models)
    assert dump_rows([]) == old([]) == b"[]"


def test_models_are_written_as_jsonable_encoder_wrote_them() -> None:
    models = [Row.model_validate(r) for r in rows()]
    assert dump_models(models) == old(models)
    nested = [
        Nested(
            id=1,
            livraisons=[Livraison(canal="email", date_envoi=UTC_NOW), Livraison(canal="sms", date_envoi=None)],
            chef=None,
            tags=[AWKWARD, ""],
        ),
        Nested(id=2, livraisons=[], chef=Livraison(canal="push", date_envoi=UTC_NOW.replace(microsecond=0)), tags=[]),
    ]
    assert dump_models(nested) == old(nested)
    assert dump_models([]) == b"[]"


@pytest.mark.parametrize(
    "value", [0.1, 1.0, -0.0, 1e16, 1e-07, 2.5e-05, 123456789.123, 1.5e300, 12345678901234567890.0]
)
def test_models_that_may_hold_floats_are_written_as_before(value: float) -> None:
    """Python writes `1e-07` where pydantic writes `1e-7`: such models keep `json.dumps`."""
    models = [Detail(id=1, detail={"v": value, "s": AWKWARD, "n": None, "l": [1, "a"]}, ratio=value)]
    assert dump_models(models) == old(models)


def test_lists_already_written_by_pydantic_stay_so() -> None:
    models = [Detail(id=1, detail={"v": 1e-07}, ratio=2.5e-05)]
    assert dump_models_as_pydantic(models) == TypeAdapter(list[Detail]).dump_json(models)


def test_page_response_answers_the_same_body_and_headers() -> None:
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/v1/x",
            "query_string": b"limit=2&offset=2&q=%C3%A9",
            "headers": [],
        }
    )
    models = [Row.model_validate(r) for r in rows()]
    params = PageParams(limit=2, offset=2, sort=None, q="é")
    response = page_response(request, models, total=9, params=params)
    before = JSONResponse(jsonable_encoder(models))
    assert response.body == before.body
    assert response.media_type == before.media_type == "application/json"
    assert response.headers["content-type"] == before.headers["content-type"]
    assert response.headers["x-total-count"] == "9" and 'rel="next"' in response.headers["link"]


class Base(DeclarativeBase):
    pass


class Table(Base):
    __tablename__ = "t"
    id: Mapped[int] = mapped_column(primary_key=True)
    nom: Mapped[str]
    user_id: Mapped[int]


class Copy(BaseModel):
    nom: str
    id: int


class Aliased(BaseModel):
    id: int = Field(validation_alias="user_id")


class Checked(BaseModel):
    nom: str

    @model_validator(mode="after")
    def _fix(self) -> Checked:
        return self


class Stripped(BaseModel):
    nom: Annotated[str, AfterValidator(str.strip)]


def test_model_columns_are_the_fields_in_order_and_refuse_transforms() -> None:
    assert [c.name for c in model_columns(Copy, Table)] == ["nom", "id"]
    assert [(c.name, c.element.name) for c in model_columns(Aliased, Table)] == [("id", "user_id")]  # type: ignore[attr-defined]
    for model in (Checked, Stripped):
        with pytest.raises(AssertionError):
            model_columns(model, Table)
