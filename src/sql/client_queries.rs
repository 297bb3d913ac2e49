//! Whole catalog queries of PostgreSQL clients that DataFusion cannot plan, answered by an
//! equivalent query over the same catalog tables (as datafusion-pg-catalog's parser does for
//! the queries of pgcli, DBeaver and psql it knows).
//!
//! asyncpg looks up the types of a result it has no codec for (every array type but `oid[]`
//! and `text[]`) with `typeinfo_tree`, a recursive query over `pg_type` whose columns are
//! correlated subqueries, one of them itself recursive (a domain's base type), which
//! DataFusion cannot decorrelate. Strata's catalog has no user domains or composite result
//! types, so the equivalent follows a domain's base type one level (PostgreSQL's own domains
//! have one) and leaves composite attributes empty; checked against PostgreSQL, it answers
//! the same rows for arrays, ranges, multiranges and domains.

use datafusion::sql::sqlparser::ast::{SetExpr, Statement, TableFactor};

/// asyncpg's `INTRO_LOOKUP_TYPES` (PostgreSQL 14 and later) without correlated subqueries
/// or recursion (DataFusion 55 loses the work table of a recursive term that joins it with
/// an OR): the same columns, the same `$1::oid[]` parameter, the same order, the tree
/// followed four levels deep, deeper than any type of PostgreSQL's or Strata's (an array of
/// a domain over a base type is three).
const ASYNCPG_TYPE_LOOKUP: &str = "
WITH typeinfo AS (
    SELECT
        t.oid AS oid,
        ns.nspname AS ns,
        t.typname AS name,
        t.typtype AS kind,
        CASE WHEN t.typtype = 'd' THEN t.typbasetype END AS basetype,
        t.typelem AS elemtype,
        elem_t.typdelim AS elemdelim,
        COALESCE(range_t.rngsubtype, multirange_t.rngsubtype) AS range_subtype,
        CAST(NULL AS oid[]) AS attrtypoids,
        CAST(NULL AS text[]) AS attrnames
    FROM pg_catalog.pg_type AS t
    INNER JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace
    LEFT JOIN pg_catalog.pg_type elem_t
        ON t.typlen = -1 AND t.typelem <> 0 AND t.typelem = elem_t.oid
    LEFT JOIN pg_catalog.pg_range range_t ON t.oid = range_t.rngtypid
    LEFT JOIN pg_catalog.pg_range multirange_t ON t.oid = multirange_t.rngmultitypid
),
level0 AS (SELECT ti.*, 0 AS depth FROM typeinfo ti WHERE ti.oid = any($1::oid[])),
level1 AS (
    SELECT ti.*, 1 AS depth FROM typeinfo ti INNER JOIN level0 tt ON
        (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)
        OR (tt.range_subtype IS NOT NULL AND ti.oid = tt.range_subtype)
        OR (tt.basetype IS NOT NULL AND ti.oid = tt.basetype)
),
level2 AS (
    SELECT ti.*, 2 AS depth FROM typeinfo ti INNER JOIN level1 tt ON
        (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)
        OR (tt.range_subtype IS NOT NULL AND ti.oid = tt.range_subtype)
        OR (tt.basetype IS NOT NULL AND ti.oid = tt.basetype)
),
level3 AS (
    SELECT ti.*, 3 AS depth FROM typeinfo ti INNER JOIN level2 tt ON
        (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)
        OR (tt.range_subtype IS NOT NULL AND ti.oid = tt.range_subtype)
        OR (tt.basetype IS NOT NULL AND ti.oid = tt.basetype)
),
typeinfo_tree AS (
    SELECT * FROM level0 UNION ALL SELECT * FROM level1
    UNION ALL SELECT * FROM level2 UNION ALL SELECT * FROM level3
)
SELECT DISTINCT
    *,
    CASE WHEN basetype = 0 THEN '-' ELSE format_type(basetype, NULL) END AS basetype_name,
    CASE WHEN elemtype = 0 THEN '-' ELSE format_type(elemtype, NULL) END AS elemtype_name,
    CASE WHEN range_subtype = 0 THEN '-' ELSE format_type(range_subtype, NULL) END
        AS range_subtype_name
FROM typeinfo_tree
ORDER BY depth DESC
";

/// The SQL to run instead of `statement`, when it is a client query Strata answers by an
/// equivalent.
pub fn replacement(statement: &Statement) -> Option<&'static str> {
    is_asyncpg_type_lookup(statement).then_some(ASYNCPG_TYPE_LOOKUP)
}

/// asyncpg's type lookup: a recursive `typeinfo_tree` over a derived table that reads
/// `pg_type` (the shape every asyncpg release since 0.18 sends).
fn is_asyncpg_type_lookup(statement: &Statement) -> bool {
    let Statement::Query(query) = statement else {
        return false;
    };
    let Some(with) = &query.with else {
        return false;
    };
    with.recursive
        && with.cte_tables.iter().any(|cte| {
            cte.alias.name.value == "typeinfo_tree" && reads_pg_type_in_derived_table(&cte.query)
        })
}

fn reads_pg_type_in_derived_table(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    let SetExpr::SetOperation { left, .. } = query.body.as_ref() else {
        return false;
    };
    let SetExpr::Select(select) = left.as_ref() else {
        return false;
    };
    select.from.iter().any(|from| match &from.relation {
        TableFactor::Derived { subquery, .. } => subquery.to_string().contains("pg_type"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    /// asyncpg 0.30's `INTRO_LOOKUP_TYPES`, abridged to its shape.
    const ASYNCPG: &str = "WITH RECURSIVE typeinfo_tree(oid, ns, name, kind, basetype, \
        elemtype, elemdelim, range_subtype, attrtypoids, attrnames, depth) AS ( \
        SELECT ti.oid, ti.ns, ti.name, 0 FROM (SELECT t.oid AS oid, ns.nspname AS ns, \
        t.typname AS name FROM pg_catalog.pg_type AS t INNER JOIN pg_catalog.pg_namespace ns \
        ON (ns.oid = t.typnamespace)) AS ti WHERE ti.oid = any($1::oid[]) UNION ALL \
        SELECT ti.oid, ti.ns, ti.name, tt.depth + 1 FROM (SELECT t.oid AS oid, \
        ns.nspname AS ns, t.typname AS name FROM pg_catalog.pg_type AS t) ti, typeinfo_tree tt \
        WHERE (tt.elemtype IS NOT NULL AND ti.oid = tt.elemtype)) \
        SELECT DISTINCT *, basetype::regtype::text AS basetype_name FROM typeinfo_tree \
        ORDER BY depth DESC";

    fn parsed(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn asyncpg_type_lookup_is_answered_by_its_equivalent() {
        assert_eq!(replacement(&parsed(ASYNCPG)), Some(ASYNCPG_TYPE_LOOKUP));
        // The equivalent is not itself replaced, and other recursive queries are left.
        assert_eq!(replacement(&parsed(ASYNCPG_TYPE_LOOKUP)), None);
        assert_eq!(
            replacement(&parsed(
                "WITH RECURSIVE typeinfo_tree(n) AS (SELECT 1 UNION ALL \
                 SELECT n + 1 FROM typeinfo_tree WHERE n < 3) SELECT * FROM typeinfo_tree"
            )),
            None
        );
    }
}
