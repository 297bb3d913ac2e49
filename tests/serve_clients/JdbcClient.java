// pgjdbc (what DBeaver, DataGrip and most BI tools use) against a PostgreSQL-protocol server:
// DatabaseMetaData (schemas, tables, columns, primary keys, type info), prepared statements with
// parameters, result types, fetch-size streaming (portal row limits), SQLSTATEs.
//
// Usage: javac -d OUT JdbcClient.java && java -cp OUT:postgresql.jar JdbcClient HOST PORT DB USER
// Expected data, in environment variables (no JSON parser in the JDK):
//   STRATA_EXPECT_ORDERS, STRATA_EXPECT_FIRST_ORDER (order_id,status,amount,order_date),
//   STRATA_EXPECT_STATUS_COUNT, STRATA_EXPECT_SCHEMAS and STRATA_EXPECT_GOLD_TABLES
//   (comma-separated), STRATA_EXPECT_COLUMNS (comma-separated fct_orders columns).
// Prints `ok <check>` or `FAIL <check>: ...` per check; exits 1 when any failed.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Properties;

public class JdbcClient {
    static int failures = 0;

    static void check(String name, Object got, Object expected) {
        if (Objects.equals(got, expected)) {
            System.out.println("ok " + name);
        } else {
            failures++;
            System.out.println("FAIL " + name + ": expected " + expected + ", got " + got);
        }
    }

    interface Body {
        void run() throws Exception;
    }

    static void attempt(String name, Body body) {
        try {
            body.run();
        } catch (Exception e) {
            failures++;
            String state = e instanceof SQLException ? ((SQLException) e).getSQLState() + " " : "";
            System.out.println("FAIL " + name + ": " + state + String.valueOf(e).replace('\n', ' '));
        }
    }

    static List<String> env(String name) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? List.of() : Arrays.asList(value.split(","));
    }

    static List<String> column(ResultSet rs, String name) throws SQLException {
        List<String> values = new ArrayList<>();
        while (rs.next()) {
            values.add(rs.getString(name));
        }
        rs.close();
        return values;
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        props.setProperty("ApplicationName", "strata-tests-jdbc");
        long orders = Long.parseLong(System.getenv("STRATA_EXPECT_ORDERS"));
        String[] first = System.getenv("STRATA_EXPECT_FIRST_ORDER").split(",");
        long statusCount = Long.parseLong(System.getenv("STRATA_EXPECT_STATUS_COUNT"));

        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData meta = conn.getMetaData();
            attempt("metadata.product", () -> {
                check("metadata.product", meta.getDatabaseProductName(), "PostgreSQL");
                System.out.println("info version " + meta.getDatabaseProductVersion());
            });
            attempt("metadata.schemas", () -> {
                List<String> schemas = column(meta.getSchemas(), "TABLE_SCHEM");
                for (String s : env("STRATA_EXPECT_SCHEMAS")) {
                    check("metadata.schemas." + s, schemas.contains(s), true);
                }
            });
            attempt("metadata.tables", () -> {
                List<String> tables = column(meta.getTables(null, "gold", "%", null), "TABLE_NAME");
                for (String t : env("STRATA_EXPECT_GOLD_TABLES")) {
                    check("metadata.tables." + t, tables.contains(t), true);
                }
                List<String> types = column(
                        meta.getTables(null, "gold", "fct_orders", new String[] {"TABLE", "VIEW"}), "TABLE_TYPE");
                check("metadata.tables.fct_orders.type", types, List.of("TABLE"));
            });
            attempt("metadata.columns", () -> {
                ResultSet rs = meta.getColumns(null, "gold", "fct_orders", "%");
                List<String> names = new ArrayList<>();
                String orderIdType = null;
                String amountType = null;
                while (rs.next()) {
                    String name = rs.getString("COLUMN_NAME");
                    names.add(name);
                    if (name.equals("order_id")) {
                        orderIdType = rs.getString("TYPE_NAME");
                    }
                    if (name.equals("amount")) {
                        amountType = rs.getString("TYPE_NAME");
                    }
                }
                rs.close();
                for (String c : env("STRATA_EXPECT_COLUMNS")) {
                    check("metadata.columns." + c, names.contains(c), true);
                }
                check("metadata.columns.order_id.type", orderIdType, "int8");
                check("metadata.columns.amount.type", amountType, "numeric");
            });
            attempt("metadata.primary_keys", () -> {
                List<String> keys = column(meta.getPrimaryKeys(null, "gold", "fct_orders"), "COLUMN_NAME");
                System.out.println("info primary keys " + keys);
                check("metadata.primary_keys.runs", true, true);
            });
            attempt("metadata.type_info", () -> {
                List<String> types = column(meta.getTypeInfo(), "TYPE_NAME");
                for (String t : List.of("int8", "numeric", "text", "date", "timestamp", "bool")) {
                    check("metadata.type_info." + t, types.contains(t), true);
                }
            });

            attempt("types", () -> {
                try (Statement st = conn.createStatement();
                        ResultSet rs = st.executeQuery("SELECT CAST(3000000000 AS int8) AS i8, CAST(2.25 AS float8) AS f8, "
                                + "CAST('12345678901234567890.123456789' AS numeric(38, 9)) AS num, DATE '2026-01-02' AS d, "
                                + "TIMESTAMP '2026-01-02 03:04:05.123456' AS ts, true AS b, CAST(NULL AS text) AS n, "
                                + "ARRAY[1, 2, 3] AS arr")) {
                    rs.next();
                    check("types.int8", rs.getLong("i8"), 3000000000L);
                    check("types.float8", rs.getDouble("f8"), 2.25);
                    check("types.numeric", rs.getBigDecimal("num"), new BigDecimal("12345678901234567890.123456789"));
                    check("types.date", rs.getDate("d").toString(), "2026-01-02");
                    check("types.timestamp", rs.getTimestamp("ts").toString(), "2026-01-02 03:04:05.123456");
                    check("types.bool", rs.getBoolean("b"), true);
                    check("types.null", rs.getString("n"), null);
                    Object[] arr = (Object[]) rs.getArray("arr").getArray();
                    check("types.array", Arrays.stream(arr).map(String::valueOf).toList(), List.of("1", "2", "3"));
                }
            });

            attempt("prepared", () -> {
                try (PreparedStatement ps = conn.prepareStatement(
                        "SELECT status, amount, order_date FROM gold.fct_orders WHERE order_id = ?")) {
                    ps.setLong(1, Long.parseLong(first[0]));
                    try (ResultSet rs = ps.executeQuery()) {
                        check("prepared.found", rs.next(), true);
                        check("prepared.status", rs.getString(1), first[1]);
                        check("prepared.amount", rs.getBigDecimal(2), new BigDecimal(first[2]));
                        check("prepared.order_date", rs.getDate(3).toString(), first[3]);
                    }
                }
                // pgjdbc switches to a named server-side statement after 5 executions
                try (PreparedStatement ps = conn.prepareStatement(
                        "SELECT count(*) FROM gold.fct_orders WHERE status = ? AND amount >= ?")) {
                    for (int i = 0; i < 7; i++) {
                        ps.setString(1, first[1]);
                        ps.setBigDecimal(2, new BigDecimal("0"));
                        try (ResultSet rs = ps.executeQuery()) {
                            rs.next();
                            check("prepared.repeat." + i, rs.getLong(1), statusCount);
                        }
                    }
                }
            });

            attempt("fetch_size", () -> {
                conn.setAutoCommit(false);
                try (Statement st = conn.createStatement()) {
                    st.setFetchSize(50);
                    long n = 0;
                    try (ResultSet rs = st.executeQuery("SELECT order_id FROM gold.fct_orders ORDER BY order_id")) {
                        while (rs.next()) {
                            n++;
                        }
                    }
                    check("fetch_size.rows", n, orders);
                }
                conn.commit();
                conn.setAutoCommit(true);
            });

            String[][] errors = {
                {"unknown_table", "SELECT * FROM gold.no_such_table", "42P01"},
                {"unknown_column", "SELECT no_such_column FROM gold.fct_orders", "42703"},
                {"syntax", "SELEC 1", "42601"},
                {"division_by_zero", "SELECT 1 / 0", "22012"},
            };
            for (String[] e : errors) {
                attempt("errors." + e[0], () -> {
                    String got = "no error";
                    try (Statement st = conn.createStatement()) {
                        st.executeQuery(e[1]).close();
                    } catch (SQLException ex) {
                        got = ex.getSQLState();
                    }
                    check("errors." + e[0], got, e[2]);
                    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
                        rs.next();
                        check("errors." + e[0] + ".usable_after", rs.getInt(1), 1);
                    }
                });
            }

            attempt("session", () -> {
                try (Statement st = conn.createStatement();
                        ResultSet rs = st.executeQuery("SELECT current_database(), current_schema()")) {
                    rs.next();
                    check("session.current_database", rs.getString(1), args[2]);
                    System.out.println("info current_schema " + rs.getString(2));
                }
            });
        }
        System.out.println((failures > 0 ? "FAILED" : "PASSED") + ": " + failures + " failed");
        System.exit(failures > 0 ? 1 : 0);
    }
}
