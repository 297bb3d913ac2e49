//! dbt's `adapter` and `api` as packages use them: `adapter.dispatch` (a macro's
//! implementation for this adapter, searched by the project's `dispatch:` order and the
//! prefixes `strata__`, `postgres__` (Strata's SQL is PostgreSQL-flavoured), `default__`),
//! `adapter.quote`, the introspection calls (`get_columns_in_relation`, `get_relation`,
//! `load_relation`), which ask the frame's warehouse, and `api.Relation.create`.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

use super::context::{EPHEMERAL_PREFIX, JinjaRelation};
use super::frame::{Frame, FrameFailure, current};
use super::functions::{split_args, str_arg};
use super::macros::MacroFn;
use super::warehouse::{WarehouseColumn, WarehouseError};
use super::{GLOBAL_PROJECT, Shared};
use crate::sql::ident::{ident, quoted};

/// The adapter prefixes dispatch tries, most specific first.
const PREFIXES: [&str; 3] = ["strata", "postgres", "default"];

pub(super) fn add_globals(env: &mut Environment<'static>, shared: &Arc<Shared>) {
    env.add_global(
        "adapter",
        Value::from_object(Adapter {
            shared: Arc::clone(shared),
        }),
    );
    env.add_global("api", Value::from_object(Api));
    env.add_function("load_relation", |relation: Value| {
        load_relation(&*current()?, &relation)
    });
}

#[derive(Debug)]
struct Adapter {
    shared: Arc<Shared>,
}

impl Object for Adapter {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let frame = current()?;
        match method {
            "dispatch" => self.dispatch(&frame, args),
            "quote" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(quoted(&name)))
            }
            "type" => Ok(Value::from("strata")),
            "get_columns_in_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                let (schema, name) = relation_parts(&relation)?;
                match ask(&frame, |w| w.columns(schema.as_deref(), &name))? {
                    Some(columns) => Ok(Value::from(
                        columns.into_iter().map(column_value).collect::<Vec<_>>(),
                    )),
                    None => Ok(Value::from(Vec::<Value>::new())),
                }
            }
            "get_relation" => {
                let (_, schema, identifier) = relation_args(args, "adapter.get_relation")?;
                existing(&frame, schema, identifier)
            }
            "load_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                load_relation(&frame, &relation)
            }
            "already_exists" => {
                let (schema, name): (String, String) = from_args(args)?;
                let found = existing(&frame, Some(schema), name)?;
                Ok(Value::from(!found.is_none()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl Adapter {
    /// dbt's `adapter.dispatch(macro_name, macro_namespace=None)`.
    fn dispatch(&self, frame: &Frame, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args);
        let name = match positional.first() {
            Some(v) => str_arg(v, "adapter.dispatch", "the macro name")?,
            None => {
                return Err(Error::new(
                    ErrorKind::MissingArgument,
                    "adapter.dispatch() needs a macro name",
                ));
            }
        };
        let namespace = match (positional.get(1), &kwargs) {
            (Some(v), _) => v.as_str().map(str::to_string),
            (None, Some(k)) if k.has("macro_namespace") => {
                k.get::<Option<String>>("macro_namespace")?
            }
            _ => None,
        };
        if name.contains('.') {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "adapter.dispatch('{name}'): give the namespace as macro_namespace, not in the name"
                ),
            ));
        }
        let macros = &self.shared.macros;
        let search: Vec<Option<String>> = match &namespace {
            None => vec![None],
            Some(ns) => match self.shared.dispatch.get(ns) {
                Some(order) => order.iter().cloned().map(Some).collect(),
                None if macros.packages.contains_key(ns) || ns == GLOBAL_PROJECT => {
                    vec![Some(macros.root.clone()), Some(ns.clone())]
                }
                None => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "adapter.dispatch('{name}', '{ns}'): no package named '{ns}' is installed (run strata deps?)"
                        ),
                    ));
                }
            },
        };
        let here = frame.current_package(&macros.root);
        let mut searched = Vec::new();
        for package in &search {
            for prefix in PREFIXES {
                let candidate = format!("{prefix}__{name}");
                let found = match package {
                    None => macros.resolve(&candidate, &here),
                    Some(p) => macros.get(p, &candidate),
                };
                if let Some(target) = found {
                    return Ok(Value::from_object(MacroFn {
                        name: candidate,
                        target: target.clone(),
                    }));
                }
                searched.push(match package {
                    None => format!("'{candidate}'"),
                    Some(p) => format!("'{p}.{candidate}'"),
                });
            }
        }
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "In dispatch: No macro named '{name}' found within namespace: '{}'; searched for: {}",
                namespace.as_deref().unwrap_or("None"),
                searched.join(", ")
            ),
        ))
    }
}

/// The warehouse's answer to `ask`, or the error that fails (or defers) the render. While
/// parsing nothing is asked: the answer is empty, as dbt's is then.
pub(super) fn ask<T: Default>(
    frame: &Frame,
    ask: impl FnOnce(&dyn super::Warehouse) -> Result<T, WarehouseError>,
) -> Result<T, Error> {
    if frame.is_parse() {
        return Ok(T::default());
    }
    let Some(warehouse) = &frame.warehouse else {
        let message =
            "this needs the warehouse (a compile-time query), which is not available here"
                .to_string();
        return Err(frame.fail(FrameFailure::Unsupported(message.clone()), message));
    };
    ask(warehouse.as_ref()).map_err(|e| warehouse_error(frame, e))
}

/// The error a failed compile-time query fails the render with, naming the macro that ran it.
fn warehouse_error(frame: &Frame, e: WarehouseError) -> Error {
    match e {
        WarehouseError::NotBuiltYet(why) => frame.fail(FrameFailure::Deferred(why.clone()), why),
        WarehouseError::Failed(message) => {
            let message = match frame.current_macro() {
                Some(name) => format!("a compile-time query in macro {name} failed: {message}"),
                None => format!("a compile-time query failed: {message}"),
            };
            frame.fail(FrameFailure::Raised(message.clone()), message)
        }
    }
}

/// The schema and name of a relation value (a relation object or its text).
fn relation_parts(relation: &Value) -> Result<(Option<String>, String), Error> {
    if let Some(identifier) = relation
        .get_attr("identifier")
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_none())
    {
        let schema = relation
            .get_attr("schema")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        return Ok((schema, identifier.to_string()));
    }
    let text = relation.to_string();
    let parts: Vec<String> = text
        .split('.')
        .map(|p| p.trim().trim_matches('"').to_string())
        .collect();
    match parts.as_slice() {
        [name] => Ok((None, name.clone())),
        [.., schema, name] => Ok((Some(schema.clone()), name.clone())),
        [] => Err(Error::new(ErrorKind::InvalidOperation, "an empty relation")),
    }
}

/// The relation `schema.identifier` if it exists, else none.
fn existing(frame: &Frame, schema: Option<String>, identifier: String) -> Result<Value, Error> {
    let columns = ask(frame, |w| w.columns(schema.as_deref(), &identifier))?;
    Ok(match columns {
        Some(_) => relation_value(None, schema, identifier),
        None => Value::from(()),
    })
}

fn load_relation(frame: &Frame, relation: &Value) -> Result<Value, Error> {
    let (schema, name) = relation_parts(relation)?;
    let columns = ask(frame, |w| w.columns(schema.as_deref(), &name))?;
    Ok(match columns {
        Some(_) => relation.clone(),
        None => Value::from(()),
    })
}

/// A relation as `api.Relation.create` makes it: `schema.identifier`, each part quoted only
/// when it must be.
pub(super) fn relation_value(
    database: Option<String>,
    schema: Option<String>,
    identifier: String,
) -> Value {
    let rendered = [
        database.as_deref(),
        schema.as_deref(),
        Some(identifier.as_str()),
    ]
    .into_iter()
    .flatten()
    .map(ident)
    .collect::<Vec<_>>()
    .join(".");
    JinjaRelation {
        rendered,
        database,
        schema,
        identifier,
    }
    .value()
}

/// dbt's `Column`: `name`/`column`, `data_type`/`dtype`, `quoted`, and type questions.
#[derive(Debug)]
struct Column(WarehouseColumn);

fn column_value(column: WarehouseColumn) -> Value {
    Value::from_object(Column(column))
}

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.0.name.clone()),
            "data_type" | "dtype" => Value::from(self.0.data_type.clone()),
            "quoted" => Value::from(quoted(&self.0.name)),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let t = self.0.data_type.to_ascii_lowercase();
        let is = |prefixes: &[&str]| prefixes.iter().any(|p| t.starts_with(p));
        Ok(Value::from(match method {
            "is_string" => is(&["varchar", "text", "char", "string", "utf8"]),
            "is_integer" => is(&["int", "bigint", "smallint", "tinyint"]),
            "is_float" => is(&["double", "float", "real"]),
            "is_numeric" => is(&["decimal", "numeric"]),
            "is_number" => is(&[
                "int", "bigint", "smallint", "tinyint", "double", "float", "real", "decimal",
                "numeric",
            ]),
            // Strata's text has no length: every string column is as wide as another.
            "string_size" => return Ok(Value::from(u16::MAX)),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {} ({})>", self.0.name, self.0.data_type)
    }
}

/// `api`: `api.Relation.create(...)`.
#[derive(Debug)]
struct Api;

impl Object for Api {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(RelationApi)),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct RelationApi;

impl Object for RelationApi {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "create" => {}
            "add_ephemeral_prefix" => {
                let (name,): (String,) = from_args(args)?;
                return Ok(Value::from(format!("{EPHEMERAL_PREFIX}{name}")));
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        let (database, schema, identifier) = relation_args(args, "api.Relation.create")?;
        Ok(relation_value(database, schema, identifier))
    }
}

/// `(database, schema, identifier)`, by position or keyword, as `get_relation` and
/// `Relation.create` take them; `function` names the caller in the error.
fn relation_args(
    args: &[Value],
    function: &str,
) -> Result<(Option<String>, Option<String>, String), Error> {
    let (positional, kwargs) = split_args(args);
    let part = |i: usize, key: &str| -> Result<Option<String>, Error> {
        let value = match (positional.get(i), &kwargs) {
            (Some(v), _) => v.clone(),
            (None, Some(k)) if k.has(key) => k.get::<Value>(key)?,
            _ => return Ok(None),
        };
        Ok(value.as_str().map(str::to_string))
    };
    let identifier = part(2, "identifier")?.ok_or_else(|| {
        Error::new(
            ErrorKind::MissingArgument,
            format!("{function}() needs an identifier"),
        )
    })?;
    Ok((part(0, "database")?, part(1, "schema")?, identifier))
}
