//! The one mapping from Arrow types to PostgreSQL types: the wire type the result encoder
//! announces, and the catalog's view of it (`pg_attribute.atttypid`/`atttypmod`,
//! `format_type`, `information_schema.columns.data_type`).

use arrow::datatypes::{DataType, Field};
use arrow_pg::datatypes::into_pg_type;
use pgwire::api::Type;

use crate::session::PG_TYPE_KEY;

/// Arrow's extension-type key (a field's metadata), which marks JSON and UUID columns.
const EXTENSION_NAME: &str = "ARROW:extension:name";

/// The PostgreSQL type a value of `data_type` is sent as.
pub fn pg_type(data_type: &DataType) -> Type {
    match data_type {
        // Wider than any PostgreSQL integer type, like UInt64.
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal256(..) => {
            Type::NUMERIC
        }
        DataType::Dictionary(_, value) => pg_type(value),
        DataType::RunEndEncoded(_, values) => pg_type(values.data_type()),
        // Anything else arrow-pg cannot name (maps, unions) is shown as its text form.
        _ => into_pg_type(data_type).unwrap_or(Type::TEXT),
    }
}

/// The PostgreSQL type a session's type planner marked a string field with
/// ([`PG_TYPE_KEY`]): `json`, `jsonb`, `uuid`, which Arrow lacks, `varchar`, which Arrow
/// does not tell from `text`, and `oid[]` (a list of Int32 marked `oid`).
pub fn marked_type(field: &Field) -> Option<Type> {
    if let DataType::List(element) = field.data_type() {
        return (marked_type(element)? == Type::OID).then_some(Type::OID_ARRAY);
    }
    match field.metadata().get(PG_TYPE_KEY)?.as_str() {
        "oid" => Some(Type::OID),
        "json" => Some(Type::JSON),
        "jsonb" => Some(Type::JSONB),
        "uuid" => Some(Type::UUID),
        "varchar" => Some(Type::VARCHAR),
        _ => None,
    }
}

/// [`pg_type`] refined by the field's marked type or Arrow extension type (JSON, UUID).
pub fn pg_field_type(field: &Field) -> Type {
    if let Some(ty) = marked_type(field) {
        return ty;
    }
    match field.metadata().get(EXTENSION_NAME).map(String::as_str) {
        Some("arrow.json") => Type::JSON,
        Some("arrow.uuid") => Type::UUID,
        _ => pg_type(field.data_type()),
    }
}

/// PostgreSQL's type modifier for a column of `data_type` (`atttypmod`): precision and scale
/// of numerics, -1 when the type has none.
pub fn type_modifier(data_type: &DataType) -> i32 {
    match data_type {
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => ((i32::from(*p) << 16) | (i32::from(*s) & 0xffff)) + 4,
        DataType::Dictionary(_, value) => type_modifier(value),
        _ => -1,
    }
}

/// Catalog facts about a PostgreSQL type, by oid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeInfo {
    /// `format_type` without a modifier, and `information_schema` `data_type` of scalars.
    pub sql_name: &'static str,
    /// `pg_type.typlen`.
    pub len: i16,
    /// `pg_type.typcategory`.
    pub category: char,
}

/// Facts about the types [`pg_type`] produces (and the common ones clients ask about).
pub fn type_info(oid: u32) -> Option<TypeInfo> {
    let (sql_name, len, category) = match oid {
        16 => ("boolean", 1, 'B'),
        17 => ("bytea", -1, 'U'),
        18 => ("\"char\"", 1, 'S'),
        19 => ("name", 64, 'S'),
        20 => ("bigint", 8, 'N'),
        21 => ("smallint", 2, 'N'),
        23 => ("integer", 4, 'N'),
        25 => ("text", -1, 'S'),
        26 => ("oid", 4, 'N'),
        114 => ("json", -1, 'U'),
        700 => ("real", 4, 'N'),
        701 => ("double precision", 8, 'N'),
        705 => ("unknown", -2, 'X'),
        1042 => ("character", -1, 'S'),
        1043 => ("character varying", -1, 'S'),
        1082 => ("date", 4, 'D'),
        1083 => ("time without time zone", 8, 'D'),
        1114 => ("timestamp without time zone", 8, 'D'),
        1184 => ("timestamp with time zone", 8, 'D'),
        1186 => ("interval", 16, 'T'),
        1266 => ("time with time zone", 12, 'D'),
        1700 => ("numeric", -1, 'N'),
        2249 => ("record", -1, 'P'),
        2950 => ("uuid", 16, 'U'),
        3802 => ("jsonb", -1, 'U'),
        _ => return None,
    };
    Some(TypeInfo {
        sql_name,
        len,
        category,
    })
}

/// PostgreSQL's `format_type(oid, typmod)`: the SQL spelling of a type, with its modifier.
pub fn format_type(oid: u32, typmod: i32) -> Option<String> {
    let ty = Type::from_oid(oid)?;
    if let Some(element) = element(&ty) {
        return format_type(element.oid(), typmod).map(|e| format!("{e}[]"));
    }
    let Some(info) = type_info(oid) else {
        return Some(ty.name().to_string());
    };
    let modifier = match (oid, typmod) {
        (_, m) if m < 0 => None,
        (1700, m) => Some(format!("({},{})", (m - 4) >> 16, (m - 4) & 0xffff)),
        (1042 | 1043, m) => Some(format!("({})", m - 4)),
        _ => None,
    };
    Some(match modifier {
        Some(m) => format!("{}{m}", info.sql_name),
        None => info.sql_name.to_string(),
    })
}

/// A column's type as psql's `\d` shows it: `format_type` of its PostgreSQL type and
/// modifier (`bigint`, `numeric(12,2)`, `timestamp without time zone`, `text[]`).
pub fn column_type_name(field: &Field) -> String {
    let ty = pg_field_type(field);
    format_type(ty.oid(), type_modifier(field.data_type())).unwrap_or_else(|| ty.name().to_string())
}

/// `information_schema.columns.data_type`: the SQL name, `ARRAY` for arrays.
pub fn information_schema_name(ty: &Type) -> String {
    if element(ty).is_some() {
        return "ARRAY".to_string();
    }
    type_info(ty.oid())
        .map(|i| i.sql_name.to_string())
        .unwrap_or_else(|| "USER-DEFINED".to_string())
}

/// The element type of an array type among those [`type_info`] knows (PostgreSQL names an
/// array type after its element, prefixed with `_`).
pub fn element(ty: &Type) -> Option<Type> {
    let name = ty.name().strip_prefix('_')?;
    [
        Type::BOOL,
        Type::BYTEA,
        Type::CHAR,
        Type::NAME,
        Type::INT8,
        Type::INT2,
        Type::INT4,
        Type::TEXT,
        Type::OID,
        Type::JSON,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::BPCHAR,
        Type::VARCHAR,
        Type::DATE,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::INTERVAL,
        Type::TIMETZ,
        Type::NUMERIC,
        Type::RECORD,
        Type::UUID,
        Type::JSONB,
    ]
    .into_iter()
    .find(|t| t.name() == name)
}

/// A type name as PostgreSQL's `to_regtype` and casts read it: the `pg_type.typname` it
/// refers to, and whether it names that type's array type (`[]`). Takes SQL spellings
/// (`integer`, `character varying(10)`, `timestamp(3) with time zone`), an optional
/// `pg_catalog.` qualifier and quoted names (`"char"`, which is not `char`); `None` when it
/// is not a type name or names another schema (the lake defines no types).
pub fn parse_type_name(name: &str) -> Option<(String, bool)> {
    let mut rest = name.trim();
    let mut array = false;
    while let Some(inner) = rest.strip_suffix(']') {
        rest = inner[..inner.rfind('[')?].trim_end();
        array = true;
    }
    // Words (quoted ones exactly, others lowercased) and the dots between them; modifiers
    // in parentheses do not change the type.
    let mut words: Vec<(String, bool)> = Vec::new();
    let mut dots = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut word = String::new();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            word.push('"');
                        }
                        '"' => break,
                        c => word.push(c),
                    }
                }
                words.push((word, true));
            }
            '(' => {
                let mut depth = 1;
                while depth > 0 {
                    match chars.next()? {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
            }
            '.' => dots.push(words.len()),
            c if c.is_whitespace() => {}
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = c.to_lowercase().to_string();
                while let Some(&c) = chars.peek() {
                    if !(c.is_alphanumeric() || c == '_' || c == '$') {
                        break;
                    }
                    word.extend(c.to_lowercase());
                    chars.next();
                }
                words.push((word, false));
            }
            _ => return None,
        }
    }
    match dots[..] {
        [] => {}
        [1] if words.first()?.0 == "pg_catalog" => {
            words.remove(0);
        }
        _ => return None,
    }
    let typname = match &words[..] {
        [(word, true)] => word.clone(),
        [(first, false), ..] if words.iter().all(|(_, quoted)| !quoted) => {
            let spelled: Vec<&str> = words.iter().map(|(w, _)| w.as_str()).collect();
            let base = match spelled[..] {
                ["int" | "integer"] => "int4",
                ["smallint"] => "int2",
                ["bigint"] => "int8",
                ["real"] => "float4",
                ["float"] | ["double", "precision"] => "float8",
                ["boolean"] => "bool",
                ["decimal" | "dec"] => "numeric",
                ["char" | "character"] => "bpchar",
                ["char" | "character", "varying"] => "varchar",
                ["bit", "varying"] => "varbit",
                ["timestamp"] | ["timestamp", "without", "time", "zone"] => "timestamp",
                ["timestamp", "with", "time", "zone"] => "timestamptz",
                ["time"] | ["time", "without", "time", "zone"] => "time",
                ["time", "with", "time", "zone"] => "timetz",
                // `interval year to month`: the fields are a modifier.
                ["interval", ..] => "interval",
                [_] => first.as_str(),
                _ => return None,
            };
            base.to_string()
        }
        _ => return None,
    };
    Some((typname, array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::TimeUnit;

    #[test]
    fn decimals_keep_precision_and_scale() {
        let t = DataType::Decimal128(12, 2);
        assert_eq!(pg_type(&t), Type::NUMERIC);
        assert_eq!(
            format_type(Type::NUMERIC.oid(), type_modifier(&t)).unwrap(),
            "numeric(12,2)"
        );
    }

    #[test]
    fn names_follow_postgres() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(
            format_type(pg_type(&ts).oid(), -1).unwrap(),
            "timestamp without time zone"
        );
        let list = DataType::new_list(DataType::Int64, true);
        assert_eq!(pg_type(&list).name(), "_int8");
        assert_eq!(format_type(pg_type(&list).oid(), -1).unwrap(), "bigint[]");
        assert_eq!(information_schema_name(&pg_type(&list)), "ARRAY");
        assert_eq!(
            information_schema_name(&pg_type(&DataType::Utf8View)),
            "text"
        );
    }

    #[test]
    fn type_names_parse_like_postgres() {
        let parsed =
            |n: &str| parse_type_name(n).map(|(t, a)| format!("{t}{}", if a { "[]" } else { "" }));
        assert_eq!(parsed("integer").as_deref(), Some("int4"));
        assert_eq!(parsed(" INT4 ").as_deref(), Some("int4"));
        assert_eq!(parsed("pg_catalog.int8").as_deref(), Some("int8"));
        assert_eq!(parsed("character varying(10)").as_deref(), Some("varchar"));
        assert_eq!(parsed("numeric(12, 2)[]").as_deref(), Some("numeric[]"));
        assert_eq!(
            parsed("timestamp(3) with time zone").as_deref(),
            Some("timestamptz")
        );
        assert_eq!(parsed("double precision").as_deref(), Some("float8"));
        assert_eq!(parsed("char").as_deref(), Some("bpchar"));
        assert_eq!(parsed("\"char\"").as_deref(), Some("char"));
        assert_eq!(parsed("text[][]").as_deref(), Some("text[]"));
        assert_eq!(parsed("hstore").as_deref(), Some("hstore"));
        assert_eq!(parsed("public.hstore"), None);
        assert_eq!(parsed("no such type"), None);
        assert_eq!(parsed("int; drop"), None);
    }
}
