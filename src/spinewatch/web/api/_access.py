"""Small helpers the routes share: the permission check, loading a row, recording a view.

The permission RULES are not here: :func:`allow` only asks
:func:`spinewatch.accounts.permissions.require` (the one place they live), first for the role
(so that a refused caller learns nothing about which ids exist) and again with the object.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import models
from django.http import HttpRequest

from spinewatch.accounts.permissions import Action, require
from spinewatch.audit.trail import record
from spinewatch.registry.errors import NotFoundError

__all__ = ["ID_DESCRIPTION", "allow", "load", "plain", "responses", "viewed"]

M = TypeVar("M", bound=models.Model)

ID_DESCRIPTION = "the record's id (as returned by the API)"


def responses(ok: Mapping[int, Any], *codes: int) -> dict[int, Any]:
    """A route's documented responses: ``ok`` plus the error schemas of ``codes``."""
    from spinewatch.web.api import schemas as s

    schemas: dict[int, Any] = {
        400: s.ErrorOut,
        401: s.ErrorOut,
        403: s.ErrorOut,
        404: s.ErrorOut,
        409: s.ConflictOut,
        422: s.ValidationErrorOut,
    }
    return {**ok, **{code: schemas[code] for code in codes}}


def plain(value: Any) -> Any:
    """An enum member as its value (the services and the database store values)."""
    return value.value if isinstance(value, enum.Enum) else value


def allow(request: HttpRequest, action: Action, obj: Any = None) -> None:
    """Raise PermissionDenied (-> 403) unless the caller may do ``action`` (to ``obj``)."""
    require(request.user, action, obj)


def load(queryset: models.QuerySet[M], pk: int, what: str) -> M:
    """The row ``pk`` of ``queryset``, else :class:`NotFoundError` (-> 404) naming it."""
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise NotFoundError(f"{what} {pk} does not exist")
    return row


def viewed(
    object_type: str | type[models.Model] | models.Model,
    object_id: object,
    *,
    study_id: str | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record that the caller viewed identifiable data (audit action ``view``, via ``api``)."""
    record(
        actor=None,
        action="view",
        object_type=object_type,
        object_id=object_id,
        patient_study_id=study_id,
        detail=detail,
    )
