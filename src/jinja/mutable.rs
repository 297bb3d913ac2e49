//! Lists and dicts that change in place, as Jinja2's (Python's) do: dbt code builds them with
//! `{% set cols = [] %}` and fills them in a loop with `{% do cols.append(c) %}` or
//! `{% do d.update({...}) %}`. minijinja's own lists and dicts are immutable, so a literal
//! list or dict assigned by `{% set %}` is made a mutable one ([`mutable_literals`] rewrites
//! the template text, keeping every line where it was).

use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, ValueKind, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

use super::blocks::{Tag, next_tag};

/// The global a rewritten literal is passed through.
const MUTABLE_FN: &str = "__strata_mutable";

pub(super) fn add_globals(env: &mut Environment<'static>) {
    env.add_function(MUTABLE_FN, mutable);
}

/// A literal list or dict made mutable; any other value as it is. A value put into a mutable
/// list or dict goes through this too, so `{% do d.update({k: []}) %}` then
/// `{% do d[k].append(x) %}` works as in Jinja2.
fn mutable(value: Value) -> Result<Value, Error> {
    let literal_list = value.downcast_object_ref::<Vec<Value>>().is_some();
    let literal_map = value
        .downcast_object_ref::<std::collections::BTreeMap<Value, Value>>()
        .is_some();
    Ok(match value.kind() {
        ValueKind::Seq if literal_list => {
            Value::from_object(List(Mutex::new(value.try_iter()?.collect())))
        }
        ValueKind::Map if literal_map => {
            let mut pairs = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                pairs.push((key, mutable(item)?));
            }
            Value::from_object(Dict(Mutex::new(pairs)))
        }
        _ => value,
    })
}

/// Rewrites `{% set x = [...] %}` and `{% set x = {...} %}` (the whole right-hand side one
/// literal) so the value is mutable.
pub(crate) fn mutable_literals(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(tag) = next_tag(src, from) {
        from = tag.end.max(tag.start + 2);
        if tag.keyword != "set" {
            continue;
        }
        if let Some((start, end)) = literal_rhs(src, &tag) {
            out.push_str(&src[copied..start]);
            out.push_str(MUTABLE_FN);
            out.push('(');
            out.push_str(&src[start..end]);
            out.push(')');
            copied = end;
        }
    }
    out.push_str(&src[copied..]);
    out
}

/// The byte range of the right-hand side of a `{% set name = <literal> %}` tag when it is one
/// list or dict literal.
fn literal_rhs(src: &str, tag: &Tag<'_>) -> Option<(usize, usize)> {
    let body_end = src[..tag.end].rfind("%}")?;
    let body_end = if src[..body_end].ends_with('-') || src[..body_end].ends_with('+') {
        body_end - 1
    } else {
        body_end
    };
    let after_name = tag.name_at + tag.name.len();
    let rest = &src[after_name..body_end];
    let eq = rest.find('=')?;
    if !rest[..eq].trim().is_empty() || rest[eq + 1..].starts_with('=') {
        return None;
    }
    let rhs_at = after_name + eq + 1;
    let rhs = &src[rhs_at..body_end];
    let start = rhs_at + (rhs.len() - rhs.trim_start().len());
    let end = rhs_at + rhs.trim_end().len();
    let open = src[start..].chars().next()?;
    let close = match open {
        '[' => ']',
        '{' => '}',
        _ => return None,
    };
    // The bracket opening the literal must close at its very end.
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in src[start..end].char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '[' || c == '{' || c == '(' => depth += 1,
            None if c == ']' || c == '}' || c == ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (start + i + c.len_utf8() == end && c == close).then_some((start, end));
                }
            }
            None => {}
        }
    }
    None
}

/// A list `append`, `extend`, `insert`, `pop`, `remove`, `reverse` and `sort` change.
#[derive(Debug)]
struct List(Mutex<Vec<Value>>);

impl List {
    fn items(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for List {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        let i = key.as_i64()?;
        let i = if i < 0 { items.len() as i64 + i } else { i };
        items.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items().clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.items().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut items = self.items();
        match method {
            "append" => {
                let (item,): (Value,) = from_args(args)?;
                items.push(mutable(item)?);
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                for item in more.try_iter()? {
                    items.push(mutable(item)?);
                }
            }
            "insert" => {
                let (at, item): (i64, Value) = from_args(args)?;
                let item = mutable(item)?;
                let len = items.len() as i64;
                let at = if at < 0 {
                    (len + at).max(0)
                } else {
                    at.min(len)
                };
                items.insert(at as usize, item);
            }
            "pop" => {
                let (at,): (Option<i64>,) = from_args(args)?;
                let len = items.len() as i64;
                let at = at.map_or(len - 1, |i| if i < 0 { len + i } else { i });
                if !(0..len).contains(&at) {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop index out of range",
                    ));
                }
                return Ok(items.remove(at as usize));
            }
            "remove" => {
                let (item,): (Value,) = from_args(args)?;
                let Some(at) = items.iter().position(|v| v == &item) else {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "list.remove(x): x not in list",
                    ));
                };
                items.remove(at);
            }
            "reverse" => items.reverse(),
            "sort" => items.sort(),
            "clear" => items.clear(),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// A dict `update`, `pop`, `setdefault` and `clear` change, keeping insertion order.
#[derive(Debug)]
struct Dict(Mutex<Vec<(Value, Value)>>);

impl Dict {
    fn pairs(&self) -> std::sync::MutexGuard<'_, Vec<(Value, Value)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn set(pairs: &mut Vec<(Value, Value)>, key: Value, value: Value) -> Result<(), Error> {
    let value = mutable(value)?;
    match pairs.iter_mut().find(|(k, _)| k == &key) {
        Some(pair) => pair.1 = value,
        None => pairs.push((key, value)),
    }
    Ok(())
}

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.pairs()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.pairs().iter().map(|(k, _)| k.clone()).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.pairs().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut pairs = self.pairs();
        match method {
            "update" => {
                let (positional, kwargs) = super::functions::split_args(args);
                for other in positional {
                    for key in other.try_iter()? {
                        let value = other.get_item(&key)?;
                        set(&mut pairs, key, value)?;
                    }
                }
                if let Some(kwargs) = kwargs {
                    for key in kwargs.args() {
                        let value: Value = kwargs.get(key)?;
                        set(&mut pairs, Value::from(key), value)?;
                    }
                }
                Ok(Value::from(()))
            }
            "pop" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                match pairs.iter().position(|(k, _)| k == &key) {
                    Some(at) => Ok(pairs.remove(at).1),
                    None => default.ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, format!("KeyError: {key}"))
                    }),
                }
            }
            "setdefault" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                if let Some((_, v)) = pairs.iter().find(|(k, _)| k == &key) {
                    return Ok(v.clone());
                }
                let value = mutable(default.unwrap_or(Value::from(())))?;
                pairs.push((key, value.clone()));
                Ok(value)
            }
            "clear" => {
                pairs.clear();
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_sets_are_wrapped() {
        assert_eq!(
            mutable_literals("{% set xs = [] %}{%- set d = {'a': [1]} -%}"),
            "{% set xs = __strata_mutable([]) %}{%- set d = __strata_mutable({'a': [1]}) -%}"
        );
        for kept in [
            "{% set xs = [] if x else [1] %}",
            "{% set xs = [1] + ys %}",
            "{% set xs %}[]{% endset %}",
            "{% set a, b = [1, 2] %}",
            "{% set s = '[' %}",
        ] {
            assert_eq!(mutable_literals(kept), kept);
        }
    }
}
