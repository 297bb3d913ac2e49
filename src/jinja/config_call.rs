//! `config` in templates, and how dbt layers configs: a model's `{{ config(...) }}` is the
//! last of its config layers, so the merge rule ([`merge_config`]) lives here beside it and
//! the project loader stacks its folder and properties layers with the same rule.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::{Map as JsonMap, Value as Json};

use super::frame::current;
use super::functions::{key_and_default, split_args, to_json};

/// `+materialized` → `materialized`, `pre-hook` → `pre_hook`.
pub(crate) fn normalize_key(key: &str) -> String {
    key.trim_start_matches('+').replace('-', "_")
}

/// Layers `from` over `into` as dbt does: `tags` accumulate, `meta` merges key by key,
/// hooks append, everything else is replaced.
pub(crate) fn merge_config(into: &mut JsonMap<String, Json>, from: &JsonMap<String, Json>) {
    for (key, value) in from {
        match key.as_str() {
            "tags" | "pre_hook" | "post_hook" => {
                let mut list = loose_list(into.get(key.as_str()));
                for item in loose_list(Some(value)) {
                    if key != "tags" || !list.contains(&item) {
                        list.push(item);
                    }
                }
                into.insert(key.clone(), Json::Array(list));
            }
            "meta" => match (into.get_mut("meta"), value) {
                (Some(Json::Object(existing)), Json::Object(new)) => {
                    for (k, v) in new {
                        existing.insert(k.clone(), v.clone());
                    }
                }
                _ => {
                    into.insert(key.clone(), value.clone());
                }
            },
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// A value that may be one item or a list of them.
pub(crate) fn loose_list(value: Option<&Json>) -> Vec<Json> {
    match value {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    }
}

/// `config`: callable (records the config at parse time) with `get`/`require`.
#[derive(Debug)]
pub(super) struct ConfigObj;

impl Object for ConfigObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let frame = current()?;
        if frame.is_parse() {
            let (positional, kwargs) = split_args(args);
            let mut map = JsonMap::new();
            for arg in positional {
                match to_json(arg)? {
                    Json::Object(obj) => map.extend(obj),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            "config() takes keyword arguments or a dict",
                        ));
                    }
                }
            }
            if let Some(kwargs) = kwargs {
                for key in kwargs.args() {
                    let value: Value = kwargs.get(key)?;
                    map.insert(key.to_string(), to_json(&value)?);
                }
            }
            let map = map
                .into_iter()
                .map(|(k, v)| (normalize_key(&k), v))
                .collect();
            merge_config(&mut frame.captured_config.borrow_mut(), &map);
        }
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let frame = current()?;
        let (key, default) = key_and_default(
            args,
            "config.get",
            "the key",
            format!("config.{method}() needs a key"),
        )?;
        let found = frame.config_view().get(&normalize_key(&key)).cloned();
        match method {
            "get" => Ok(match found {
                Some(v) if !v.is_null() => Value::from_serialize(&v),
                _ => default.unwrap_or(Value::from(())),
            }),
            "require" => match found {
                Some(v) if !v.is_null() => Ok(Value::from_serialize(&v)),
                _ => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("required config '{key}' was not set"),
                )),
            },
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Json) -> JsonMap<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merging_accumulates_tags_and_meta() {
        let mut into = map(json!({"tags": ["a"], "meta": {"x": 1}, "schema": "s"}));
        merge_config(
            &mut into,
            &map(json!({"tags": "b", "meta": {"y": 2}, "schema": "t"})),
        );
        assert_eq!(
            Json::Object(into),
            json!({"tags": ["a", "b"], "meta": {"x": 1, "y": 2}, "schema": "t"})
        );
    }
}
