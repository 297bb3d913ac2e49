"""asyncpg (binary results for every type, prepared statements, cursors, SQLSTATEs).

Usage: asyncpg_client.py HOST PORT DBNAME USER
Prints one JSON object: each value as asyncpg decodes it (its Python type and repr), the
attributes and parameters of prepared statements, rows read through cursors, and the
SQLSTATE of each failing statement. tests/serve.rs runs it against Strata and against the
machine's PostgreSQL holding the same table, and compares the two.
"""

import asyncio
import json
import sys

import asyncpg

HOST, PORT, DBNAME, USER = sys.argv[1:5]

# asyncpg reads every one of these in PostgreSQL's binary format; for arrays other than text[]
# it first looks up the element type in the catalog (its recursive typeinfo_tree query).
VALUES = [
    "1",
    "1 + 1",
    "CAST('abc' AS varchar)",
    "CAST('abc' AS varchar(10))",
    "ARRAY[1, 2]",
    "ARRAY[CAST(1 AS int8), NULL, 3]",
    "ARRAY['a', 'b']",
    "ARRAY[true, false]",
    "ARRAY[DATE '2026-01-02']",
    "CAST(1 AS int2)",
    "CAST(2 AS int4)",
    "CAST(3000000000 AS int8)",
    "CAST(1.5 AS float4)",
    "CAST(2.25 AS float8)",
    "CAST('12345678901234567890.123456789' AS numeric(38, 9))",
    "CAST(-0.5 AS numeric(10, 2))",
    "CAST('hello' AS text)",
    "true",
    "DATE '2026-01-02'",
    "TIME '13:14:15.5'",
    "TIMESTAMP '2026-01-02 03:04:05.123456'",
    "CAST('2026-01-02 03:04:05+00' AS timestamptz)",
    "INTERVAL '1 day 2 hours'",
    "decode('0102ff', 'hex')",
    "CAST('{\"a\": [1, 2]}' AS json)",
    "CAST('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AS uuid)",
    "CAST(NULL AS int4)",
]

FAILING = {
    "undefined_table": "SELECT * FROM gold.no_such_table",
    "undefined_column": "SELECT no_such_column FROM gold.fct_orders",
    "syntax": "SELEC 1",
    "division_by_zero": "SELECT 1 / 0",
    "invalid_text": "SELECT CAST('abc' AS int4)",
    "undefined_function": "SELECT no_such_function(1)",
}


def value(v):
    return {"type": type(v).__name__, "repr": repr(v)}


def attributes(statement):
    return [[a.name, a.type.name] for a in statement.get_attributes()]


async def main():
    conn = await asyncpg.connect(host=HOST, port=int(PORT), database=DBNAME, user=USER,
                                 server_settings={"application_name": "strata-tests-asyncpg"})
    out = {"values": {}, "errors": {}}
    # The server's session time zone makes timestamptz values comparable.
    await conn.execute("SET TimeZone = 'UTC'")
    out["time_zone"] = await conn.fetchval("SELECT current_setting('TimeZone')")
    for expr in VALUES:
        statement = await conn.prepare(f"SELECT {expr}")
        out["values"][expr] = {"attributes": attributes(statement),
                               "value": value(await statement.fetchval())}

    query = ("SELECT order_id, customer_id, order_date, order_ts, status, amount "
             "FROM gold.fct_orders WHERE status = $1 AND order_id >= $2 ORDER BY order_id LIMIT 5")
    statement = await conn.prepare(query)
    out["prepared"] = {
        "parameters": [t.name for t in statement.get_parameters()],
        "attributes": attributes(statement),
        "rows": [[repr(v) for v in r] for r in await statement.fetch("completed", 1)],
        "again": [[repr(v) for v in r] for r in await statement.fetch("completed", 10)],
    }

    ordered = "SELECT order_id, amount FROM gold.fct_orders ORDER BY order_id LIMIT 25"
    async with conn.transaction():
        cursor = await conn.cursor(ordered)
        first = await cursor.fetch(10)
        second = await cursor.fetch(10)
        row = await cursor.fetchrow()
        streamed = [r async for r in conn.cursor(ordered, prefetch=7)]
    out["cursor"] = {
        "first": [[repr(v) for v in r] for r in first],
        "second": [[repr(v) for v in r] for r in second],
        "row": row and [repr(v) for v in row],
        "iterated": len(streamed),
    }

    for name, sql in FAILING.items():
        try:
            await conn.fetch(sql)
            out["errors"][name] = None
        except asyncpg.PostgresError as e:
            out["errors"][name] = e.sqlstate
    # The session is still usable after the errors.
    out["after_errors"] = await conn.fetchval("SELECT count(*) FROM gold.fct_orders")
    names = await conn.prepare(
        "SELECT count(*), sum(amount), max(order_id) + 1, CAST(min(order_id) AS text) "
        "FROM gold.fct_orders")
    out["names"] = attributes(names)
    await conn.close()
    print(json.dumps(out, indent=1, sort_keys=True))


asyncio.run(main())
