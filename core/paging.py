"""One page of a list: the rows shown, where they stand and how many there are in all.

Shared by every list (documents, invoices, clients, entries, ...), the HTML pages and the API alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")

MAX_PER_PAGE = 200


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def bounds(page: int, per_page: int) -> tuple[int, int]:
    """``page`` from 1 and ``per_page`` within 1..MAX_PER_PAGE."""
    return max(1, int(page)), min(MAX_PER_PAGE, max(1, int(per_page)))


def paginate(session: Session, stmt: Select[Any], page: int = 1, per_page: int = 50) -> Page[Any]:
    page, per_page = bounds(page, per_page)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=items, page=page, per_page=per_page, total=total)
