"""The first distinct values of an indexed column, without reading the whole table.

The admin's task name, queue and worker filters list the values found in
the history. ``SELECT DISTINCT`` reads every row (or every index entry) of a
table that may hold a million, on every page view. A *loose index scan*
instead jumps from one value to the next through the column's index: each
step is one ``MIN(col) WHERE col > previous`` probe, so listing ``limit``
values costs ``limit`` index probes whatever the table's size. PostgreSQL
and SQLite (and MySQL 8) run it as one recursive CTE; other databases fall
back to a plain DISTINCT with a LIMIT.
"""

from __future__ import annotations

from django.db import connections, models, router

_RECURSIVE_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})


def distinct_values(model: type[models.Model], column: str, limit: int) -> list[str]:
    """Up to ``limit`` distinct non-empty values of ``column``, in ascending order.

    ``column`` must be a model field name with an index whose first column
    it is, or the scan is no faster than DISTINCT.
    """
    field = model._meta.get_field(column)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{column} is a relation, not a column")
    alias = router.db_for_read(model)
    connection = connections[alias]
    if connection.vendor not in _RECURSIVE_VENDORS:
        found = (
            model._default_manager.using(alias)
            .exclude(**{column: ""})
            .order_by(column)
            .values_list(column, flat=True)
            .distinct()[:limit]
        )
        return [str(value) for value in found]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    col = quote(str(field.column))
    # The anchor starts above the empty string, so blank values are skipped;
    # the counter bounds the recursion itself, not only the rows returned.
    sql = (
        f"WITH RECURSIVE walk(v, n) AS ("
        f" SELECT MIN({col}), 1 FROM {table} WHERE {col} > %s"
        f" UNION ALL"
        f" SELECT (SELECT MIN({col}) FROM {table} WHERE {col} > walk.v), walk.n + 1"
        f" FROM walk WHERE walk.v IS NOT NULL AND walk.n < %s"
        f") SELECT v FROM walk WHERE v IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ["", limit])
        return [str(row[0]) for row in cursor.fetchall()]
