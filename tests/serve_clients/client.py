"""Python clients against a PostgreSQL-protocol server: psycopg 3 (text and binary results,
parameters, SQLSTATEs, a named server-side cursor), SQLAlchemy reflection and pandas.read_sql.

Usage: client.py HOST PORT DBNAME USER SECTION...
  SECTION: types | params | errors | sqlalchemy | pandas | named_cursor
The expected data comes as JSON in $STRATA_EXPECT:
  {"orders": N, "first_order": {"order_id": .., "customer_id": .., "status": "..",
   "amount": "12.34", "order_date": "2026-01-01"}, "schemas": [..], "gold_tables": [..],
   "columns": [..]}
Prints one `ok <check>` or `FAIL <check>: ...` line per check; exits 1 when any failed.
It runs unchanged against a real PostgreSQL holding the same rows (tests/serve.rs says how).
"""

import datetime as dt
import json
import os
import sys
import uuid
from decimal import Decimal

import psycopg

HOST, PORT, DBNAME, USER = sys.argv[1:5]
SECTIONS = sys.argv[5:]
EXPECT = json.loads(os.environ["STRATA_EXPECT"])
CONNINFO = f"host={HOST} port={PORT} dbname={DBNAME} user={USER} application_name=strata-tests-python"
failures = 0


def check(name, got, expected):
    global failures
    if got == expected:
        print(f"ok {name}")
    else:
        failures += 1
        print(f"FAIL {name}: expected {expected!r}, got {got!r}")


def attempt(name, fn):
    """Runs one group of checks; an exception is one failure, and the next group still runs."""
    global failures
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the run goes on
        failures += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}".replace("\n", " | "))


# (column, SQL expression, the Python value psycopg must return), one query each.
TYPES = [
    ("i2", "CAST(1 AS int2)", 1),
    ("i4", "CAST(2 AS int4)", 2),
    ("i8", "CAST(3000000000 AS int8)", 3000000000),
    ("f4", "CAST(1.5 AS float4)", 1.5),
    ("f8", "CAST(2.25 AS float8)", 2.25),
    ("num", "CAST('12345678901234567890.123456789' AS numeric(38, 9))",
     Decimal("12345678901234567890.123456789")),
    ("t", "CAST('hello' AS text)", "hello"),
    ("vc", "CAST('vc' AS varchar)", "vc"),
    ("b", "true", True),
    ("d", "DATE '2026-01-02'", dt.date(2026, 1, 2)),
    ("tm", "TIME '13:14:15.5'", dt.time(13, 14, 15, 500000)),
    ("ts", "TIMESTAMP '2026-01-02 03:04:05.123456'", dt.datetime(2026, 1, 2, 3, 4, 5, 123456)),
    ("tstz", "CAST('2026-01-02 03:04:05+00' AS timestamptz)",
     dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("iv", "INTERVAL '1 day 2 hours'", dt.timedelta(days=1, hours=2)),
    ("bin", "decode('0102ff', 'hex')", b"\x01\x02\xff"),
    ("js", "CAST('{\"a\": [1, 2]}' AS json)", {"a": [1, 2]}),
    ("u", "CAST('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AS uuid)",
     uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    ("arr", "ARRAY[1, 2, 3]", [1, 2, 3]),
    ("tarr", "ARRAY['x', 'y']", ["x", "y"]),
    ("n", "CAST(NULL AS int4)", None),
]


def types(conn):
    for binary in (False, True):
        fmt = "binary" if binary else "text"
        for name, expr, expected in TYPES:
            def run():
                with conn.cursor(binary=binary) as cur:
                    cur.execute(f"SELECT {expr} AS {name}")
                    value = cur.fetchone()[0]
                    check(f"types.{fmt}.{name}.column", cur.description[0].name, name)
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    check(f"types.{fmt}.{name}", value, expected)

            attempt(f"types.{fmt}.{name} ({expr})", run)

    def orders():
        first = EXPECT["first_order"]
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM gold.fct_orders")
            check("types.orders.count", cur.fetchone()[0], EXPECT["orders"])
            cur.execute(
                "SELECT order_id, customer_id, status, amount, order_date FROM gold.fct_orders "
                "ORDER BY order_id LIMIT 1"
            )
            got = cur.fetchone()
            check("types.orders.first.order_id", got[0], first["order_id"])
            check("types.orders.first.customer_id", got[1], first["customer_id"])
            check("types.orders.first.status", got[2], first["status"])
            check("types.orders.first.amount", got[3], Decimal(first["amount"]))
            check("types.orders.first.order_date", got[4], dt.date.fromisoformat(first["order_date"]))

    attempt("types.orders", orders)


def params(conn):
    def scalars():
        with conn.cursor() as cur:
            cur.execute(
                "SELECT %s::int8 + 1, %s::text || 'x', %s::numeric * 2, %s::date, %s::bool, "
                "%s::float8 / 2, %s::timestamp",
                (41, "ab", Decimal("1.25"), dt.date(2026, 1, 2), True, 3.0,
                 dt.datetime(2026, 1, 2, 3, 4, 5)),
            )
            check(
                "params.scalars",
                list(cur.fetchone()),
                [42, "abx", Decimal("2.50"), dt.date(2026, 1, 2), True, 1.5,
                 dt.datetime(2026, 1, 2, 3, 4, 5)],
            )

    def null():
        with conn.cursor() as cur:
            cur.execute("SELECT %s::int4 IS NULL, %s::text", (None, None))
            check("params.null", list(cur.fetchone()), [True, None])

    def where():
        first = EXPECT["first_order"]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT status, amount FROM gold.fct_orders WHERE order_id = %s", (first["order_id"],)
            )
            check("params.where_key", cur.fetchall(), [(first["status"], Decimal(first["amount"]))])
            cur.execute(
                "SELECT count(*) FROM gold.fct_orders WHERE status = %s AND amount >= %s",
                (first["status"], Decimal("0")),
            )
            check("params.where_status", cur.fetchone()[0], EXPECT["status_count"])
            # prepared after 5 executions by psycopg (prepare_threshold): named statements
            for i in range(7):
                cur.execute("SELECT %s::int4 * 2", (i,))
                check(f"params.repeat.{i}", cur.fetchone()[0], i * 2)

    attempt("params.scalars", scalars)
    attempt("params.null", null)
    attempt("params.where", where)


ERRORS = [
    ("unknown_table", "SELECT * FROM gold.no_such_table", "42P01"),
    ("unknown_column", "SELECT no_such_column FROM gold.fct_orders", "42703"),
    ("syntax", "SELEC 1", "42601"),
    ("division_by_zero", "SELECT 1 / 0", "22012"),
    ("bad_cast", "SELECT CAST('abc' AS int4)", "22P02"),
]


def errors(conn):
    for name, sql, code in ERRORS:
        def run():
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    cur.fetchall()
                check(f"errors.{name}", "no error", code)
            except psycopg.Error as e:
                check(f"errors.{name}", e.sqlstate, code)
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                check(f"errors.{name}.usable_after", cur.fetchone()[0], 1)

        attempt(f"errors.{name}", run)


def named_cursor(conn):
    def run():
        with conn.transaction():
            with conn.cursor(name="orders_cursor") as cur:
                cur.itersize = 100
                cur.execute("SELECT order_id FROM gold.fct_orders ORDER BY order_id")
                first = cur.fetchmany(3)
                check("named_cursor.fetchmany", len(first), 3)
                rest = list(cur)
                check("named_cursor.rows", len(first) + len(rest), EXPECT["orders"])

    attempt("named_cursor", run)


def engine():
    import sqlalchemy

    return sqlalchemy.create_engine(
        f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{DBNAME}", pool_pre_ping=True
    )


def sqlalchemy_reflection(_conn):
    import sqlalchemy

    def run():
        inspector = sqlalchemy.inspect(engine())
        schemas = inspector.get_schema_names()
        for schema in EXPECT["schemas"]:
            check(f"sqlalchemy.schema.{schema}", schema in schemas, True)
        tables = inspector.get_table_names(schema="gold")
        for table in EXPECT["gold_tables"]:
            check(f"sqlalchemy.table.{table}", table in tables, True)
        columns = {c["name"]: c for c in inspector.get_columns("fct_orders", schema="gold")}
        for column in EXPECT["columns"]:
            check(f"sqlalchemy.column.{column}", column in columns, True)
        check(
            "sqlalchemy.column.order_id.type",
            type(columns["order_id"]["type"]).__name__ if "order_id" in columns else None,
            "BIGINT",
        )
        check(
            "sqlalchemy.column.amount.type",
            type(columns["amount"]["type"]).__name__ if "amount" in columns else None,
            "NUMERIC",
        )
        check("sqlalchemy.has_table", inspector.has_table("fct_orders", schema="gold"), True)
        check("sqlalchemy.has_table.missing", inspector.has_table("nope", schema="gold"), False)

    attempt("sqlalchemy", run)


def pandas_read_sql(_conn):
    import pandas

    def run():
        frame = pandas.read_sql(
            "SELECT order_id, status, amount, order_date FROM gold.fct_orders ORDER BY order_id",
            engine(),
        )
        check("pandas.rows", len(frame), EXPECT["orders"])
        check("pandas.columns", list(frame.columns), ["order_id", "status", "amount", "order_date"])
        check("pandas.order_id.dtype", str(frame["order_id"].dtype), "int64")
        check("pandas.first.order_id", int(frame["order_id"].iloc[0]), EXPECT["first_order"]["order_id"])
        # pandas turns numeric into float64 (coerce_float)
        check("pandas.first.amount", float(frame["amount"].iloc[0]), float(EXPECT["first_order"]["amount"]))
        params = pandas.read_sql(
            "SELECT count(*) AS n FROM gold.fct_orders WHERE status = %(status)s",
            engine(),
            params={"status": EXPECT["first_order"]["status"]},
        )
        check("pandas.params", int(params["n"].iloc[0]), EXPECT["status_count"])

    attempt("pandas", run)


SECTION_FUNCTIONS = {
    "types": types,
    "params": params,
    "errors": errors,
    "named_cursor": named_cursor,
    "sqlalchemy": sqlalchemy_reflection,
    "pandas": pandas_read_sql,
}

with psycopg.connect(CONNINFO, autocommit=True) as connection:
    for section in SECTIONS:
        SECTION_FUNCTIONS[section](connection)
print(f"{'FAILED' if failures else 'PASSED'}: {failures} failed")
sys.exit(1 if failures else 0)
