"""Which database failures answer 503 (lost connection, database unavailable) and which conflicts are
retried, on the errors themselves: raised by the driver or by our own code, wrapped by SQLAlchemy or
chained with `raise ... from`."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from mif_common.errors import is_connection_lost, is_database_unavailable, is_transient_conflict


def raised_in(module_name: str, exc: BaseException) -> BaseException:
    """`exc` as raised by code of `module_name` (what its traceback says), e.g. an OSError inside asyncpg."""
    namespace: dict[str, Any] = {"__name__": module_name, "exc": exc}
    exec("def fail():\n    raise exc\n", namespace)
    try:
        namespace["fail"]()
    except BaseException as caught:
        return caught
    raise AssertionError("not raised")


def wrapped(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", {}, orig, connection_invalidated=invalidated)  # type: ignore[arg-type]


class _DriverTimeout(OSError):
    """An OSError class of the driver itself."""


_DriverTimeout.__module__ = "asyncpg.connect_utils"


def test_os_errors_are_a_lost_connection_only_from_the_driver() -> None:
    assert is_connection_lost(raised_in("asyncpg.protocol", OSError(113, "No route to host")))
    assert is_connection_lost(raised_in("sqlalchemy.pool.base", TimeoutError()))
    assert is_connection_lost(_DriverTimeout("timed out"))
    # The same errors from our own code (a disk, a file) are not the database going away.
    assert not is_connection_lost(raised_in("mif_documents.storage", OSError(28, "No space left on device")))
    assert not is_database_unavailable(raised_in("mif_documents.storage", TimeoutError()))
    # Refused or reset connections are, wherever they come from.
    assert is_connection_lost(ConnectionResetError())
    assert is_connection_lost(wrapped(raised_in("mif_x", ConnectionRefusedError())))


def test_closed_connection_messages_count_only_from_the_driver() -> None:
    assert is_connection_lost(asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"))
    assert is_connection_lost(
        wrapped(asyncpg.exceptions.InterfaceError("cannot perform operation: another operation (2) is in progress"))
    )
    assert not is_connection_lost(asyncpg.exceptions.InterfaceError("the pool is closing"))
    assert not is_connection_lost(RuntimeError("connection is closed"))  # ours: not the driver's words


def test_sqlstates_and_sqlalchemy_states() -> None:
    too_many = asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")  # 53300
    assert is_database_unavailable(wrapped(too_many))
    assert not is_connection_lost(wrapped(too_many))  # the server is there, it refuses work for now
    shutting_down = asyncpg.exceptions.AdminShutdownError("terminating connection")  # 57P01
    assert is_connection_lost(wrapped(shutting_down))
    assert is_connection_lost(wrapped(RuntimeError("gone"), invalidated=True))
    assert is_database_unavailable(sa_exc.DisconnectionError("pool could not replace the connection"))
    assert is_database_unavailable(
        sa_exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back.")
    )
    assert not is_database_unavailable(sa_exc.PendingRollbackError("This Session's transaction has been rolled back"))
    unique = asyncpg.exceptions.UniqueViolationError("duplicate key")
    assert not is_database_unavailable(wrapped(unique))
    assert not is_transient_conflict(wrapped(unique))


@pytest.mark.parametrize(
    "orig",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.LockNotAvailableError("could not obtain lock"),
    ],
)
def test_transient_conflicts_are_found_through_wrapping_and_chaining(orig: BaseException) -> None:
    assert is_transient_conflict(wrapped(orig))
    assert is_transient_conflict(chained(wrapped(orig), explicit=True))
    # An error merely handled earlier (implicit context, not `from`) does not count.
    assert not is_transient_conflict(chained(wrapped(orig), explicit=False))


def chained(cause: BaseException, *, explicit: bool) -> BaseException:
    """A RuntimeError raised while handling `cause`: `raise ... from cause`, or with only the implicit context."""
    try:
        try:
            raise cause
        except BaseException as exc:
            if explicit:
                raise RuntimeError("the service gave up") from exc
            raise RuntimeError("unrelated")  # the implicit context only
    except RuntimeError as outer:
        return outer
    raise AssertionError("not raised")
