// pgx (v4, the Go driver Grafana's PostgreSQL data source is built on): connecting,
// introspecting the schema as Grafana's query editor does, and querying with binary
// parameters and results.
//
// Usage: pgx-client HOST PORT DBNAME USER
// Prints one JSON object of what it saw; tests/serve.rs runs it against Strata and against
// the machine's PostgreSQL holding the same table, and compares the two.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
)

func main() {
	ctx := context.Background()
	host, port, dbname, user := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	url := fmt.Sprintf("postgres://%s@%s:%s/%s?sslmode=disable&application_name=strata-tests-pgx",
		user, host, port, dbname)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer conn.Close(ctx)

	out := map[string]interface{}{}
	query := func(name, sql string, args ...interface{}) {
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			out[name] = map[string]string{"error": err.Error()}
			return
		}
		defer rows.Close()
		var columns []string
		for _, f := range rows.FieldDescriptions() {
			columns = append(columns, string(f.Name))
		}
		var values [][]string
		for rows.Next() {
			row, err := rows.Values()
			if err != nil {
				out[name] = map[string]string{"error": err.Error()}
				return
			}
			var text []string
			for _, v := range row {
				text = append(text, fmt.Sprintf("%T %v", v, v))
			}
			values = append(values, text)
		}
		if err := rows.Err(); err != nil {
			out[name] = map[string]string{"error": err.Error()}
			return
		}
		out[name] = map[string]interface{}{"columns": columns, "rows": values}
	}

	// Grafana's query editor: the search path its table list is relative to (set here, as a
	// new Strata session's default is the lake's schemas, PostgreSQL's "$user", public), the
	// tables of a schema, then a table's columns and types.
	if _, err := conn.Exec(ctx, "SET search_path TO gold, public"); err != nil {
		out["set_search_path"] = err.Error()
	}
	query("search_path", "SELECT current_setting('search_path')")
	query("tables", `SELECT quote_ident(table_name) AS "table" FROM information_schema.tables
		WHERE quote_ident(table_schema) = 'gold' AND table_name = 'fct_orders' ORDER BY 1`)
	query("columns", `SELECT quote_ident(column_name) AS "column", data_type AS "type"
		FROM information_schema.columns WHERE quote_ident(table_schema) = 'gold'
		AND quote_ident(table_name) = 'fct_orders' ORDER BY ordinal_position`)
	// A time series panel: rows bucketed by day, with parameters sent in binary.
	query("series", `SELECT date_trunc('day', order_ts) AS "time", count(*) AS orders,
		sum(amount) AS revenue FROM gold.fct_orders
		WHERE order_id BETWEEN $1 AND $2 AND status <> $3 GROUP BY 1 ORDER BY 1 LIMIT 5`,
		int64(1), int64(500), "no such status")
	query("rows", `SELECT order_id, customer_id, order_date, order_ts, status, amount,
		hours_to_deliver, is_cancelled_or_returned FROM gold.fct_orders ORDER BY order_id LIMIT 3`)
	query("names", `SELECT count(*), sum(amount), max(order_id) + 1 FROM gold.fct_orders`)
	// The SQLSTATE of a failing statement, and the connection still answering after it.
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, "SELECT * FROM gold.no_such_table"); errors.As(err, &pgErr) {
		out["error"] = pgErr.Code
	}
	query("after_error", "SELECT count(*) FROM gold.fct_orders")

	encoded, _ := json.MarshalIndent(out, "", " ")
	fmt.Println(string(encoded))
}
