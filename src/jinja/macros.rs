//! Project macros as environment globals, callable by bare name from any template or macro,
//! and `return()`, which hands a native value back from a macro to its caller.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind, State};

use super::frame::current;
use super::{MacroRef, Shared};

const RETURN_MARKER: &str = "return() unwound the macro";
const MAX_MACRO_DEPTH: usize = 200;

/// Adds every project macro to `env` as a global of its bare name.
pub(super) fn add_globals(env: &mut Environment<'static>, shared: &Shared) {
    for (name, target) in &shared.macros {
        env.add_global(
            name.clone(),
            Value::from_object(MacroFn {
                name: name.clone(),
                target: target.clone(),
            }),
        );
    }
}

/// A project macro, callable by its bare name from anywhere.
#[derive(Debug)]
struct MacroFn {
    name: String,
    target: MacroRef,
}

impl Object for MacroFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        call_macro(state.env(), &self.target, args)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.name)
    }
}

/// Calls a project macro in the current frame; its value is its output, or what it passed
/// to `return()`.
pub(crate) fn call_macro(
    env: &Environment<'_>,
    target: &MacroRef,
    args: &[Value],
) -> Result<Value, Error> {
    let frame = current()?;
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
    let result = state.call_macro(&target.mangled, args);
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
