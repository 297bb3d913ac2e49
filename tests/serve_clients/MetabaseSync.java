import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * What Metabase sends through pgjdbc when it syncs a PostgreSQL database (its postgres driver
 * and sql-jdbc sync: describe-database, describe-table, describe-table-fks, index info, table
 * privileges, the SELECT probe of each table, field values), for gold.fct_orders.
 *
 * <p>Usage: java MetabaseSync HOST PORT DBNAME USER. Prints one JSON object of the results
 * (values as text); tests/serve.rs runs it against Strata and against the machine's
 * PostgreSQL holding the same table, and compares the two.
 */
public class MetabaseSync {
    static final String SCHEMA = "gold";
    static final String TABLE = "fct_orders";
    static final Map<String, Object> out = new TreeMap<>();

    interface Call {
        ResultSet run() throws SQLException;
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2]
                + "?sslmode=disable&ApplicationName=strata-tests-metabase";
        try (Connection conn = DriverManager.getConnection(url, args[3], "")) {
            DatabaseMetaData meta = conn.getMetaData();
            Predicate<List<String>> any = row -> true;

            // describe-database: the schemas, each schema's tables, a SELECT probe per table.
            record("schemas", meta::getSchemas, row -> SCHEMA.equals(row.get(0)));
            String[] types = {"TABLE", "PARTITIONED TABLE", "VIEW", "FOREIGN TABLE",
                "MATERIALIZED VIEW", "EXTERNAL TABLE", "DYNAMIC_TABLE"};
            record("tables", () -> meta.getTables(null, SCHEMA, "%", types),
                    row -> TABLE.equals(row.get(2)));
            try (PreparedStatement probe = conn.prepareStatement(
                    "SELECT TRUE AS \"_\" FROM \"gold\".\"fct_orders\" WHERE 1 <> 1 LIMIT 0")) {
                out.put("select_probe", probe.execute() ? "result set" : "no result set");
            }
            record("table_privileges", () -> conn.createStatement().executeQuery(String.join("\n",
                    "with table_privileges as (",
                    " select",
                    "   NULL as role,",
                    "   t.schemaname as schema,",
                    "   t.objectname as table,",
                    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname || '\"',  'update') as update,",
                    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname || '\"',  'select') as select,",
                    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname || '\"',  'insert') as insert,",
                    "   pg_catalog.has_table_privilege(current_user, '\"' || t.schemaname || '\"' || '.' || '\"' || t.objectname || '\"',  'delete') as delete",
                    " from (",
                    "   select schemaname, tablename as objectname from pg_catalog.pg_tables",
                    "   union",
                    "   select schemaname, viewname as objectname from pg_catalog.pg_views",
                    "   union",
                    "   select schemaname, matviewname as objectname from pg_catalog.pg_matviews",
                    " ) t",
                    " where t.schemaname !~ '^pg_'",
                    "   and t.schemaname <> 'information_schema'",
                    "   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')",
                    ")",
                    "select t.*",
                    "from table_privileges t")),
                    row -> SCHEMA.equals(row.get(1)) && TABLE.equals(row.get(2)));

            // describe-table: enum types first, then the columns; keys and indexes.
            record("enum_types", () -> conn.createStatement().executeQuery(
                    "SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                            + "WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)"), any);
            record("columns", () -> meta.getColumns(null, SCHEMA, TABLE, null), any);
            record("primary_keys", () -> meta.getPrimaryKeys(null, SCHEMA, TABLE), any);
            record("imported_keys", () -> meta.getImportedKeys(null, SCHEMA, TABLE), any);
            record("index_info", () -> meta.getIndexInfo(null, SCHEMA, TABLE, false, false), any);

            // The session set-up and the field values of a category column.
            try (Statement s = conn.createStatement()) {
                s.execute("SHOW timezone;");
                s.execute("SET SESSION TIMEZONE TO 'UTC';");
            }
            record("field_values", () -> conn.createStatement().executeQuery(
                    "SELECT \"gold\".\"fct_orders\".\"status\" AS \"status\" FROM \"gold\".\"fct_orders\" "
                            + "GROUP BY \"gold\".\"fct_orders\".\"status\" "
                            + "ORDER BY \"gold\".\"fct_orders\".\"status\" ASC LIMIT 1000"), any);
        }
        System.out.println(json(out));
    }

    /** The result's column names and its rows that `keep` accepts, or the error. */
    static void record(String name, Call call, Predicate<List<String>> keep) {
        Map<String, Object> result = new TreeMap<>();
        try (ResultSet rs = call.run()) {
            ResultSetMetaData md = rs.getMetaData();
            List<String> columns = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                columns.add(md.getColumnLabel(i));
            }
            List<List<String>> rows = new ArrayList<>();
            while (rs.next()) {
                List<String> row = new ArrayList<>();
                for (int i = 1; i <= columns.size(); i++) {
                    row.add(rs.getString(i));
                }
                if (keep.test(row)) {
                    rows.add(row);
                }
            }
            result.put("columns", columns);
            result.put("rows", rows);
        } catch (SQLException e) {
            result.put("error", e.getSQLState() + " " + e.getMessage());
        }
        out.put(name, result);
    }

    static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String s) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            b.append(String.format("\\u%04x", (int) c));
                        } else {
                            b.append(c);
                        }
                    }
                }
            }
            return b.append('"').toString();
        }
        if (value instanceof Map<?, ?> map) {
            List<String> parts = new ArrayList<>();
            map.forEach((k, v) -> parts.add(json(k.toString()) + ": " + json(v)));
            return "{" + String.join(", ", parts) + "}";
        }
        if (value instanceof List<?> list) {
            List<String> parts = new ArrayList<>();
            list.forEach(v -> parts.add(json(v)));
            return "[" + String.join(", ", parts) + "]";
        }
        return json(value.toString());
    }
}
