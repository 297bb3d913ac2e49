"""psqlODBC (the PostgreSQL ODBC driver Tableau, Excel and Power BI's ODBC path load) through
pyodbc: every catalog function a BI tool calls on gold.fct_orders, and a parameterized query.

Usage: odbc_catalog.py HOST PORT DBNAME USER
Prints one JSON object: for each call, its result columns and rows (values as text), or the
error it raised. tests/serve.rs runs it against Strata and against the machine's PostgreSQL
holding the same table, and compares the two.
"""

import json
import sys

import pyodbc

HOST, PORT, DBNAME, USER = sys.argv[1:5]
CONNECT = (
    f"Driver={{PostgreSQL Unicode}};Server={HOST};Port={PORT};Database={DBNAME};Uid={USER};"
    "Pwd=;SSLMode=disable;ConnSettings=SET application_name='strata-tests-odbc'"
)


def text(value):
    return None if value is None else str(value)


# psqlODBC's own extra column holding the table's oid, which differs between any two servers.
OBJECT_IDS = {"table oid"}


def result(cursor):
    columns = [d[0] for d in cursor.description] if cursor.description else []
    kept = [i for i, c in enumerate(columns) if c not in OBJECT_IDS]
    return {
        "columns": [columns[i] for i in kept],
        "rows": [[text(row[i]) for i in kept] for row in cursor.fetchall()],
    }


def call(name, fn):
    cursor = connection.cursor()
    try:
        out[name] = result(fn(cursor))
    except pyodbc.Error as e:
        out[name] = {"error": e.args[0] if e.args else str(e), "message": str(e)}
    finally:
        cursor.close()


connection = pyodbc.connect(CONNECT, autocommit=True, timeout=10)
out = {}
call("tables", lambda c: c.tables(table="fct_orders", schema="gold"))
call("table_types", lambda c: c.tables(table="fct_orders", schema="gold", tableType="TABLE"))
call("columns", lambda c: c.columns(table="fct_orders", schema="gold"))
call("column", lambda c: c.columns(table="fct_orders", schema="gold", column="amount"))
call("primary_keys", lambda c: c.primaryKeys("fct_orders", schema="gold"))
call("foreign_keys", lambda c: c.foreignKeys(table="fct_orders", schema="gold"))
call("referenced_by", lambda c: c.foreignKeys(foreignTable="fct_orders", foreignSchema="gold"))
call("statistics", lambda c: c.statistics("fct_orders", schema="gold"))
call("statistics_unique", lambda c: c.statistics("fct_orders", schema="gold", unique=True))
call("special_columns", lambda c: c.rowIdColumns("fct_orders", schema="gold"))
call("row_version_columns", lambda c: c.rowVerColumns("fct_orders", schema="gold"))
call("type_info", lambda c: c.getTypeInfo())
call("type_info_numeric", lambda c: c.getTypeInfo(pyodbc.SQL_NUMERIC))
call("procedures", lambda c: c.procedures(schema="gold"))
call("procedure_columns", lambda c: c.procedureColumns(schema="gold"))
call(
    "parameterized",
    lambda c: c.execute(
        "SELECT order_id, status, amount, order_date FROM gold.fct_orders "
        "WHERE order_id BETWEEN ? AND ? AND status <> ? ORDER BY order_id",
        3,
        12,
        "no such status",
    ),
)
call(
    "names",
    lambda c: c.execute("SELECT count(*), sum(amount), 1 + 1, CAST(max(order_id) AS text) "
                        "FROM gold.fct_orders"),
)
connection.close()
print(json.dumps(out, indent=1, sort_keys=True))
