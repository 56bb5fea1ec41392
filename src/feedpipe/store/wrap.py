"""The one error boundary: SQLAlchemy and driver errors of public store methods → StoreError."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from feedpipe.errors import StoreError
from feedpipe.store.engine import first_line, mask

C = TypeVar("C", bound=type)


def store_error(exc: SQLAlchemyError, where: str, owner: object = None) -> StoreError:
    """One line: what failed, on which store (password masked), and the driver's message."""
    engine = getattr(owner, "engine", None)
    on = f" on {engine.url!r}" if engine is not None else ""  # URL repr hides the password
    return StoreError(mask(f"store {where} failed{on}: {first_line(exc)}"))


def _wrapped(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise store_error(exc, func.__name__, args[0] if args else None) from exc

    call.__store_wrapped__ = True  # type: ignore[attr-defined]
    return call


def wrap_errors(cls: C) -> C:
    """Class decorator: every public method (inherited ones too) raises StoreError, `from` the
    SQLAlchemy error, instead of it. Domain errors a method raises on purpose pass through."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, classmethod):
            setattr(cls, name, classmethod(_wrapped(attr.__func__)))
        elif inspect.isfunction(attr) and not getattr(attr, "__store_wrapped__", False):
            setattr(cls, name, _wrapped(attr))
    return cls
