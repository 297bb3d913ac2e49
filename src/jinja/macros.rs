//! Macros as environment globals: each name callable bare from any template or macro
//! (resolved in the calling package, the root project, then `dbt`), each package a namespace
//! (`dbt_utils.star(...)`), and `return()`, which hands a native value back from a macro to
//! its caller.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind, State};

use super::frame::current;
use super::{MacroRef, Shared};

const RETURN_MARKER: &str = "return() unwound the macro";
const MAX_MACRO_DEPTH: usize = 200;

/// Adds every macro to `env` as a global of its bare name, and every package as a namespace
/// global of its name.
pub(super) fn add_globals(env: &mut Environment<'static>, shared: &Arc<Shared>) {
    for name in shared.macros.names() {
        env.add_global(
            name.to_string(),
            Value::from_object(BareMacro {
                name: name.to_string(),
                shared: Arc::clone(shared),
            }),
        );
    }
    for package in shared.macros.packages.keys() {
        env.add_global(
            package.clone(),
            Value::from_object(PackageNamespace {
                package: package.clone(),
                shared: Arc::clone(shared),
            }),
        );
    }
}

/// A macro called by its bare name, resolved where it is called.
#[derive(Debug)]
struct BareMacro {
    name: String,
    shared: Arc<Shared>,
}

impl Object for BareMacro {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let package = current()?.current_package(&self.shared.macros.root);
        match self.shared.macros.resolve(&self.name, &package) {
            Some(target) => call_macro(state.env(), target, args),
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "macro '{0}' is not defined in package '{package}', the root project or dbt; \
                     call it with its package: {1}",
                    self.name,
                    self.shared
                        .macros
                        .defining(&self.name)
                        .iter()
                        .map(|p| format!("{p}.{}(...)", self.name))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.name)
    }
}

/// One macro of one package (`dbt_utils.star`, or what `adapter.dispatch` found).
#[derive(Debug)]
pub(super) struct MacroFn {
    pub name: String,
    pub target: MacroRef,
}

impl Object for MacroFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        call_macro(state.env(), &self.target, args)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}.{}>", self.target.package, self.name)
    }
}

/// A package's macros as attributes: `dbt_utils.star(...)`, `dbt.dateadd(...)`.
#[derive(Debug)]
struct PackageNamespace {
    package: String,
    shared: Arc<Shared>,
}

impl Object for PackageNamespace {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let target = self.shared.macros.get(&self.package, name)?;
        Some(Value::from_object(MacroFn {
            name: name.to_string(),
            target: target.clone(),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<package {}>", self.package)
    }
}

/// Calls a project macro in the current frame; its value is its output, or what it passed
/// to `return()` (or the frame's override of it: a unit test's `overrides.macros`).
pub(crate) fn call_macro(
    env: &Environment<'_>,
    target: &MacroRef,
    args: &[Value],
) -> Result<Value, Error> {
    let frame = current()?;
    let name = target
        .mangled
        .strip_prefix(super::MACRO_PREFIX)
        .unwrap_or(&target.mangled);
    if let Some(value) = frame.macro_override(&target.package, name) {
        return Ok(value);
    }
    if frame.depth.get() >= MAX_MACRO_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("macros nested deeper than {MAX_MACRO_DEPTH} calls (unbounded recursion?)"),
        ));
    }
    let template = env.get_template(&target.template)?;
    // Evaluating the file defines its macros (its own output is discarded).
    let captured = template.render_captured_to(frame.ctx.clone(), std::io::sink())?;
    let state = captured.state();
    frame.depth.set(frame.depth.get() + 1);
    frame.returns.borrow_mut().push(None);
    frame
        .macro_stack
        .borrow_mut()
        .push((target.package.clone(), name.to_string()));
    let result = state.call_macro(&target.mangled, args);
    frame.macro_stack.borrow_mut().pop();
    let returned = frame.returns.borrow_mut().pop().flatten();
    frame.depth.set(frame.depth.get() - 1);
    match returned {
        Some(value) => Ok(value),
        None => result.map(Value::from),
    }
}

pub(super) fn return_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let value = args.first().cloned().unwrap_or(Value::from(()));
    let mut returns = frame.returns.borrow_mut();
    match returns.last_mut() {
        Some(slot) => {
            *slot = Some(value);
            Err(Error::new(ErrorKind::InvalidOperation, RETURN_MARKER))
        }
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            "return() can only be used inside a macro",
        )),
    }
}
