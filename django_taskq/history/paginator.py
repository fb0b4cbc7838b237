"""A paginator that does not count a million rows to show the first hundred.

Django's changelist counts the (filtered) rows on every page view to number
the pages. ``COUNT(*)`` on PostgreSQL reads every row it counts (MVCC keeps
no row count), so on a history of a million rows each page view pays a
full scan. This paginator asks the planner first (``pg_class.reltuples``
for the whole table, the row estimate of ``EXPLAIN`` for a filtered list;
well under a millisecond): beyond ``exact_limit`` rows it shows that
estimate, marked ``estimated`` so the page says "about". Only when the
planner expects few rows does it count them, with a ``COUNT`` over a
``LIMIT`` that stops at ``exact_limit`` + 1, and within ``count_timeout_ms``
(a local ``statement_timeout``): few matches among many rows (a search, a
filter on an unindexed column) can mean reading the table, and then the
estimate is shown instead. Other databases count exactly (SQLite counts a
million rows of an index in tens of milliseconds).

An estimate is never below ``per_page + 1``: Django's changelist reads
every row, unsliced, when the count says they fit on one page, which an
underestimate must not make it do on a million rows (the admin sets
``list_max_show_all`` to one page for the same reason).
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.core.paginator import Paginator
from django.db import OperationalError, connections, transaction
from django.db.models import QuerySet

#: PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"

if TYPE_CHECKING:
    BasePaginator = Paginator[Any]
else:
    BasePaginator = Paginator


class EstimatedCountPaginator(BasePaginator):
    """Exact counts up to ``exact_limit`` rows; PostgreSQL's planner's estimate beyond."""

    exact_limit = 10_000
    count_timeout_ms = 100

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return queryset.count()
        estimate = self._estimate(queryset)
        if estimate <= self.exact_limit:
            bounded = self._bounded_count(queryset)
            if bounded is not None and bounded <= self.exact_limit:
                return bounded
            if bounded is not None:  # the planner expected fewer rows than there are
                estimate = bounded
        self.estimated = True
        return max(estimate, int(self.per_page) + 1)

    def _bounded_count(self, queryset: QuerySet[Any]) -> int | None:
        """COUNT up to ``exact_limit`` + 1 rows; None if that takes over ``count_timeout_ms``."""
        connection = connections[queryset.db]
        # In a request's transaction (ATOMIC_REQUESTS) this is a savepoint, and a timeout set
        # in it would outlive it: put the old one back. Alone, the timeout ends with it.
        outer = connection.in_atomic_block
        timeout = f"{self.count_timeout_ms}ms"
        try:
            with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
                if outer:
                    cursor.execute("SELECT current_setting('statement_timeout')")
                    previous = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [timeout])
                count = queryset.order_by()[: self.exact_limit + 1].count()
                if outer:
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
            return count
        except OperationalError as exc:
            cause = exc.__cause__  # psycopg 3 names it sqlstate, psycopg2 pgcode
            if QUERY_CANCELED in (getattr(cause, "sqlstate", None), getattr(cause, "pgcode", None)):
                return None
            raise

    def _estimate(self, queryset: QuerySet[Any]) -> int:
        connection = connections[queryset.db]
        with connection.cursor() as cursor:
            if not queryset.query.where:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [connection.ops.quote_name(queryset.model._meta.db_table)],
                )
                row = cursor.fetchone()
                if row is not None and row[0] > 0:  # -1: never vacuumed or analyzed
                    return int(row[0])
            sql, params = queryset.order_by().query.sql_with_params()
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])
