//! The `pg_catalog` tables that describe the lake: namespaces, relations, their columns and
//! descriptions, built from the live snapshot; and the fixed ones (the database, the role).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float32Array, Int32Array, RecordBatch, StringArray,
    new_null_array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemTable, TableProvider};
use datafusion::common::{DataFusionError, Result};
use datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables;

use super::live::{DATABASE_OID, Live, LiveRelation, OWNER_OID, Snapshot};
use super::live_table::{LiveTable, bools, ints, repeat_text, smallints, texts};
use super::session::OWNER;
use super::types;

/// `pg_class`'s own oid, the `classoid` of relation and column descriptions.
const PG_CLASS_OID: i32 = 1259;
/// PostgreSQL's heap access method, which `\d+` shows for tables.
const HEAP_AM_OID: i32 = 2;
/// The default collation, which text columns carry.
const DEFAULT_COLLATION_OID: i32 = 100;

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

fn smallint(name: &str) -> Field {
    Field::new(name, DataType::Int16, false)
}

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}

fn text_list(name: &str) -> Field {
    Field::new(name, DataType::new_list(DataType::Utf8, true), true)
}

fn nulls(field: &Field, n: usize) -> ArrayRef {
    new_null_array(field.data_type(), n)
}

/// The tables built from the snapshot, by name.
pub fn live_tables(live: &Arc<Live>) -> Vec<(&'static str, Arc<dyn TableProvider>)> {
    let table =
        |fields, rows| Arc::new(LiveTable::new(fields, live, rows)) as Arc<dyn TableProvider>;
    vec![
        (
            "pg_namespace",
            table(
                vec![
                    int("oid"),
                    text("nspname"),
                    int("nspowner"),
                    text_list("nspacl"),
                ],
                pg_namespace,
            ),
        ),
        ("pg_class", table(pg_class_fields(), pg_class)),
        ("pg_attribute", table(pg_attribute_fields(), pg_attribute)),
        (
            "pg_description",
            table(
                vec![
                    int("objoid"),
                    int("classoid"),
                    int("objsubid"),
                    text("description"),
                ],
                pg_description,
            ),
        ),
        (
            "pg_tables",
            table(
                vec![
                    text("schemaname"),
                    text("tablename"),
                    text("tableowner"),
                    text("tablespace"),
                    boolean("hasindexes"),
                    boolean("hasrules"),
                    boolean("hastriggers"),
                    boolean("rowsecurity"),
                ],
                pg_tables,
            ),
        ),
        (
            "pg_views",
            table(
                vec![
                    text("schemaname"),
                    text("viewname"),
                    text("viewowner"),
                    text("definition"),
                ],
                pg_views,
            ),
        ),
    ]
}

fn pg_namespace(s: &Snapshot) -> Vec<ArrayRef> {
    let n = s.namespaces.len();
    vec![
        ints(s.namespaces.iter().map(|ns| ns.oid)),
        texts(s.namespaces.iter().map(|ns| Some(ns.name.as_str()))),
        ints(std::iter::repeat_n(OWNER_OID, n)),
        nulls(&text_list("nspacl"), n),
    ]
}

fn pg_class_fields() -> Vec<Field> {
    vec![
        int("oid"),
        text("relname"),
        int("relnamespace"),
        int("reltype"),
        int("reloftype"),
        int("relowner"),
        int("relam"),
        int("relfilenode"),
        int("reltablespace"),
        int("relpages"),
        Field::new("reltuples", DataType::Float32, false),
        int("relallvisible"),
        int("reltoastrelid"),
        boolean("relhasindex"),
        boolean("relisshared"),
        text("relpersistence"),
        text("relkind"),
        smallint("relnatts"),
        smallint("relchecks"),
        boolean("relhasrules"),
        boolean("relhastriggers"),
        boolean("relhassubclass"),
        boolean("relrowsecurity"),
        boolean("relforcerowsecurity"),
        boolean("relispopulated"),
        text("relreplident"),
        boolean("relispartition"),
        int("relrewrite"),
        int("relfrozenxid"),
        int("relminmxid"),
        text_list("relacl"),
        text_list("reloptions"),
        text("relpartbound"),
    ]
}

fn pg_class(s: &Snapshot) -> Vec<ArrayRef> {
    let r = &s.relations;
    let n = r.len();
    let zeros = || ints(std::iter::repeat_n(0, n));
    let no = || bools(std::iter::repeat_n(false, n));
    vec![
        ints(r.iter().map(|r| r.oid)),
        texts(r.iter().map(|r| Some(r.name.as_str()))),
        ints(r.iter().map(|r| r.namespace)),
        zeros(),
        zeros(),
        ints(std::iter::repeat_n(OWNER_OID, n)),
        ints(r.iter().map(|r| if r.view { 0 } else { HEAP_AM_OID })),
        ints(r.iter().map(|r| if r.view { 0 } else { r.oid })),
        zeros(),
        zeros(),
        Arc::new(Float32Array::from_iter_values(std::iter::repeat_n(-1.0, n))),
        zeros(),
        zeros(),
        no(),
        no(),
        repeat_text(Some("p"), n),
        texts(r.iter().map(|r| Some(if r.view { "v" } else { "r" }))),
        smallints(r.iter().map(|r| r.columns.len() as i16)),
        smallints(std::iter::repeat_n(0, n)),
        bools(r.iter().map(|r| r.view)),
        no(),
        no(),
        no(),
        no(),
        bools(std::iter::repeat_n(true, n)),
        texts(r.iter().map(|r| Some(if r.view { "n" } else { "d" }))),
        no(),
        zeros(),
        zeros(),
        zeros(),
        nulls(&text_list("relacl"), n),
        nulls(&text_list("reloptions"), n),
        repeat_text(None, n),
    ]
}

fn pg_attribute_fields() -> Vec<Field> {
    vec![
        int("attrelid"),
        text("attname"),
        int("atttypid"),
        int("attstattarget"),
        smallint("attlen"),
        smallint("attnum"),
        int("attndims"),
        int("attcacheoff"),
        int("atttypmod"),
        boolean("attbyval"),
        text("attalign"),
        text("attstorage"),
        text("attcompression"),
        boolean("attnotnull"),
        boolean("atthasdef"),
        boolean("atthasmissing"),
        text("attidentity"),
        text("attgenerated"),
        boolean("attisdropped"),
        boolean("attislocal"),
        int("attinhcount"),
        int("attcollation"),
        text_list("attacl"),
        text_list("attoptions"),
        text_list("attfdwoptions"),
        text("attmissingval"),
    ]
}

/// One column as PostgreSQL describes it.
struct Attribute<'a> {
    relation: &'a LiveRelation,
    num: i16,
    field: &'a Field,
    ty: pgwire::api::Type,
}

impl Attribute<'_> {
    fn len(&self) -> i16 {
        types::type_info(self.ty.oid()).map_or(-1, |t| t.len)
    }

    fn is_text(&self) -> bool {
        types::type_info(self.ty.oid()).is_some_and(|t| t.category == 'S')
    }

    fn is_array(&self) -> bool {
        types::element(&self.ty).is_some()
    }
}

fn attributes(s: &Snapshot) -> Vec<Attribute<'_>> {
    s.relations
        .iter()
        .flat_map(|relation| {
            relation
                .columns
                .iter()
                .enumerate()
                .map(move |(i, field)| Attribute {
                    relation,
                    num: i as i16 + 1,
                    field,
                    ty: types::pg_field_type(field),
                })
        })
        .collect()
}

fn pg_attribute(s: &Snapshot) -> Vec<ArrayRef> {
    let a = attributes(s);
    let n = a.len();
    let no = || bools(std::iter::repeat_n(false, n));
    let empty = || repeat_text(Some(""), n);
    vec![
        ints(a.iter().map(|a| a.relation.oid)),
        texts(a.iter().map(|a| Some(a.field.name().as_str()))),
        ints(a.iter().map(|a| a.ty.oid() as i32)),
        ints(std::iter::repeat_n(-1, n)),
        smallints(a.iter().map(Attribute::len)),
        smallints(a.iter().map(|a| a.num)),
        ints(a.iter().map(|a| i32::from(a.is_array()))),
        ints(std::iter::repeat_n(-1, n)),
        ints(a.iter().map(|a| types::type_modifier(a.field.data_type()))),
        bools(a.iter().map(|a| matches!(a.len(), 1 | 2 | 4 | 8))),
        texts(a.iter().map(|a| Some(if a.len() == 8 { "d" } else { "i" }))),
        texts(
            a.iter()
                .map(|a| Some(if a.len() == -1 { "x" } else { "p" })),
        ),
        empty(),
        bools(a.iter().map(|a| !a.field.is_nullable())),
        no(),
        no(),
        empty(),
        empty(),
        no(),
        bools(std::iter::repeat_n(true, n)),
        ints(std::iter::repeat_n(0, n)),
        ints(a.iter().map(|a| {
            if a.is_text() {
                DEFAULT_COLLATION_OID
            } else {
                0
            }
        })),
        nulls(&text_list("attacl"), n),
        nulls(&text_list("attoptions"), n),
        nulls(&text_list("attfdwoptions"), n),
        repeat_text(None, n),
    ]
}

fn pg_description(s: &Snapshot) -> Vec<ArrayRef> {
    let mut rows: Vec<(i32, i32, &str)> = Vec::new();
    for r in &s.relations {
        if let Some(d) = &r.description {
            rows.push((r.oid, 0, d));
        }
        for (i, d) in r.column_descriptions.iter().enumerate() {
            if let Some(d) = d {
                rows.push((r.oid, i as i32 + 1, d));
            }
        }
    }
    vec![
        ints(rows.iter().map(|r| r.0)),
        ints(std::iter::repeat_n(PG_CLASS_OID, rows.len())),
        ints(rows.iter().map(|r| r.1)),
        texts(rows.iter().map(|r| Some(r.2))),
    ]
}

fn pg_tables(s: &Snapshot) -> Vec<ArrayRef> {
    let t: Vec<&LiveRelation> = s.relations.iter().filter(|r| !r.view).collect();
    let n = t.len();
    let no = || bools(std::iter::repeat_n(false, n));
    vec![
        texts(t.iter().map(|r| Some(r.schema.as_str()))),
        texts(t.iter().map(|r| Some(r.name.as_str()))),
        repeat_text(Some(OWNER), n),
        repeat_text(None, n),
        no(),
        no(),
        no(),
        no(),
    ]
}

fn pg_views(s: &Snapshot) -> Vec<ArrayRef> {
    let v: Vec<&LiveRelation> = s.relations.iter().filter(|r| r.view).collect();
    vec![
        texts(v.iter().map(|r| Some(r.schema.as_str()))),
        texts(v.iter().map(|r| Some(r.name.as_str()))),
        repeat_text(Some(OWNER), v.len()),
        texts(v.iter().map(|r| r.definition.as_deref())),
    ]
}

/// `pg_type`'s columns of type `regproc`: function oids in PostgreSQL.
const PG_TYPE_REGPROC_COLUMNS: [&str; 8] = [
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
    "typsubscript",
];

/// datafusion-pg-catalog's `pg_type` with its `regproc` columns as the `pg_proc` oids
/// PostgreSQL stores (0 for none): it has the function names there, which clients compare to
/// oids (pgjdbc's `typinput = 'array_in'::regproc`, the cast planned as a `pg_proc` lookup)
/// and join to `pg_proc.oid`.
fn pg_type(upstream: &PgCatalogStaticTables) -> Result<Arc<dyn TableProvider>> {
    let mut procs: HashMap<String, i32> = HashMap::new();
    for batch in upstream.pg_proc.data() {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| DataFusionError::Internal(format!("pg_proc has no column {name}")))
        };
        let oids = cast(column("oid")?, &DataType::Int32)?;
        let names = cast(column("proname")?, &DataType::Utf8)?;
        for (oid, name) in oids
            .as_primitive::<arrow::datatypes::Int32Type>()
            .iter()
            .zip(names.as_string::<i32>().iter())
        {
            if let (Some(oid), Some(name)) = (oid, name) {
                // Overloads share a name; the lowest oid is the one PostgreSQL's own
                // catalog names in pg_type (each type's functions have one signature).
                procs
                    .entry(name.to_string())
                    .and_modify(|o| *o = (*o).min(oid))
                    .or_insert(oid);
            }
        }
    }
    let upstream_schema = upstream.pg_type.schema();
    let fields: Vec<Field> = upstream_schema
        .fields()
        .iter()
        .map(|f| {
            if PG_TYPE_REGPROC_COLUMNS.contains(&f.name().as_str()) {
                Field::new(f.name(), DataType::Int32, false)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batches = upstream
        .pg_type
        .data()
        .iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(upstream_schema.fields())
                .map(|(column, field)| {
                    if !PG_TYPE_REGPROC_COLUMNS.contains(&field.name().as_str()) {
                        return Ok(Arc::clone(column));
                    }
                    let names = cast(column, &DataType::Utf8)?;
                    let oids: Int32Array = names
                        .as_string::<i32>()
                        .iter()
                        // `-` is how PostgreSQL shows the oid 0: no function.
                        .map(|name| Some(name.and_then(|n| procs.get(n).copied()).unwrap_or(0)))
                        .collect();
                    Ok(Arc::new(oids) as ArrayRef)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

/// Tables whose content never changes: the one database, the one role, no indexes and no
/// constraints; PostgreSQL's types, from `upstream`.
pub fn fixed_tables(
    upstream: &PgCatalogStaticTables,
) -> Result<Vec<(&'static str, Arc<dyn TableProvider>)>> {
    let database = vec![
        (int("oid"), ints([DATABASE_OID])),
        (text("datname"), texts([Some(crate::session::CATALOG)])),
        (int("datdba"), ints([OWNER_OID])),
        // UTF8
        (int("encoding"), ints([6])),
        (text("datlocprovider"), texts([Some("c")])),
        (boolean("datistemplate"), bools([false])),
        (boolean("datallowconn"), bools([true])),
        (int("datconnlimit"), ints([-1])),
        (int("datfrozenxid"), ints([0])),
        (int("datminmxid"), ints([1])),
        // pg_default
        (int("dattablespace"), ints([1663])),
        (text("datcollate"), texts([Some("C.UTF-8")])),
        (text("datctype"), texts([Some("C.UTF-8")])),
        (text("daticulocale"), texts([None::<&str>])),
        (text("daticurules"), texts([None::<&str>])),
        (text("datcollversion"), texts([None::<&str>])),
        (text_list("datacl"), nulls(&text_list("datacl"), 1)),
    ];
    let roles = vec![
        (text("rolname"), texts([Some(OWNER)])),
        (boolean("rolsuper"), bools([true])),
        (boolean("rolinherit"), bools([true])),
        (boolean("rolcreaterole"), bools([false])),
        (boolean("rolcreatedb"), bools([false])),
        (boolean("rolcanlogin"), bools([true])),
        (boolean("rolreplication"), bools([false])),
        (int("rolconnlimit"), ints([-1])),
        (text("rolpassword"), texts([Some("********")])),
        (text("rolvaliduntil"), texts([None::<&str>])),
        (boolean("rolbypassrls"), bools([false])),
        (text_list("rolconfig"), nulls(&text_list("rolconfig"), 1)),
        (int("oid"), ints([OWNER_OID])),
    ];
    let users = vec![
        (text("usename"), texts([Some(OWNER)])),
        (int("usesysid"), ints([OWNER_OID])),
        (boolean("usecreatedb"), bools([false])),
        (boolean("usesuper"), bools([true])),
        (boolean("userepl"), bools([false])),
        (boolean("usebypassrls"), bools([false])),
        (text("passwd"), texts([Some("********")])),
        (text("valuntil"), texts([None::<&str>])),
        (text_list("useconfig"), nulls(&text_list("useconfig"), 1)),
    ];
    let list = |name: &str, element: DataType| {
        let field = Field::new(name, DataType::new_list(element, true), true);
        let empty = nulls(&field, 0);
        (field, empty)
    };
    let none = |field: Field| {
        let empty = nulls(&field, 0);
        (field, empty)
    };
    // No relation has indexes or constraints; the columns still have PostgreSQL's array
    // types, which SQLAlchemy and pgjdbc unnest.
    let indexes = vec![
        none(int("indexrelid")),
        none(int("indrelid")),
        none(smallint("indnatts")),
        none(smallint("indnkeyatts")),
        none(boolean("indisunique")),
        none(boolean("indnullsnotdistinct")),
        none(boolean("indisprimary")),
        none(boolean("indisexclusion")),
        none(boolean("indimmediate")),
        none(boolean("indisclustered")),
        none(boolean("indisvalid")),
        none(boolean("indcheckxmin")),
        none(boolean("indisready")),
        none(boolean("indislive")),
        none(boolean("indisreplident")),
        list("indkey", DataType::Int16),
        list("indcollation", DataType::Int32),
        list("indclass", DataType::Int32),
        list("indoption", DataType::Int16),
        none(text("indexprs")),
        none(text("indpred")),
    ];
    let constraints = vec![
        none(int("oid")),
        none(text("conname")),
        none(int("connamespace")),
        none(text("contype")),
        none(boolean("condeferrable")),
        none(boolean("condeferred")),
        none(boolean("convalidated")),
        none(int("conrelid")),
        none(int("contypid")),
        none(int("conindid")),
        none(int("conparentid")),
        none(int("confrelid")),
        none(text("confupdtype")),
        none(text("confdeltype")),
        none(text("confmatchtype")),
        none(boolean("conislocal")),
        none(int("coninhcount")),
        none(boolean("connoinherit")),
        list("conkey", DataType::Int16),
        list("confkey", DataType::Int16),
        list("conpfeqop", DataType::Int32),
        list("conppeqop", DataType::Int32),
        list("conffeqop", DataType::Int32),
        list("confdelsetcols", DataType::Int16),
        list("conexclop", DataType::Int32),
        none(text("conbin")),
    ];
    let mut tables = vec![
        ("pg_type", pg_type(upstream)?),
        ("pg_settings", pg_settings()?),
    ];
    let built: Vec<_> = [
        ("pg_database", database),
        ("pg_roles", roles),
        ("pg_user", users),
        ("pg_index", indexes),
        ("pg_constraint", constraints),
    ]
    .into_iter()
    .map(|(name, columns)| {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        Ok((name, Arc::new(table) as Arc<dyn TableProvider>))
    })
    .collect::<Result<_>>()?;
    tables.extend(built);
    Ok(tables)
}

/// `pg_settings`: the server's parameters at their defaults (pgjdbc reads `max_index_keys`
/// from it; a session's own SET shows in SHOW and `current_setting`).
fn pg_settings() -> Result<Arc<dyn TableProvider>> {
    let known: Vec<_> = crate::serve::settings::known().collect();
    type Parameter = (&'static str, &'static str, &'static str, bool);
    let column = |f: &dyn Fn(&Parameter) -> Option<&'static str>| -> ArrayRef {
        Arc::new(StringArray::from(known.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<(Field, ArrayRef)> = vec![
        (text("name"), column(&|p| Some(p.0))),
        (text("setting"), column(&|p| Some(p.1))),
        (text("unit"), column(&|_| None)),
        (text("category"), column(&|_| None)),
        (text("short_desc"), column(&|p| Some(p.2))),
        (text("extra_desc"), column(&|_| None)),
        (
            text("context"),
            column(&|p| Some(if p.3 { "internal" } else { "user" })),
        ),
        (text("vartype"), column(&|_| Some("string"))),
        (text("source"), column(&|_| Some("default"))),
        (text("min_val"), column(&|_| None)),
        (text("max_val"), column(&|_| None)),
        (text("enumvals"), column(&|_| None)),
        (text("boot_val"), column(&|p| Some(p.1))),
        (text("reset_val"), column(&|p| Some(p.1))),
        (text("sourcefile"), column(&|_| None)),
        (
            Field::new("sourceline", DataType::Int32, true),
            nulls(
                &Field::new("sourceline", DataType::Int32, true),
                known.len(),
            ),
        ),
        (
            Field::new("pending_restart", DataType::Boolean, true),
            Arc::new(BooleanArray::from(vec![false; known.len()])),
        ),
    ];
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}
