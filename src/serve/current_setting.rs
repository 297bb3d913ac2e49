//! `current_setting(name [, missing_ok])`: a session parameter as SHOW reports it (Grafana's
//! query editor reads `search_path` with it), and `set_config(name, value, is_local)`, a SET
//! as a function (asyncpg turns `jit` off with it before its type lookups). The connection's
//! parameters live with the server, not in DataFusion's session, so each connection
//! registers its own functions; a change by `set_config` reaches the planner from the
//! connection's next statement.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::connection::Connection;

/// Registers `current_setting` and `set_config` in `ctx`, over the parameters of `conn`.
pub fn register(ctx: &SessionContext, conn: Arc<Connection>) {
    for kind in [Kind::CurrentSetting, Kind::SetConfig] {
        ctx.register_udf(ScalarUDF::new_from_impl(Parameters {
            conn: Arc::clone(&conn),
            signature: kind.signature(),
            kind,
        }));
    }
}

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    CurrentSetting,
    /// `set_config(name, value, is_local)`: sets the parameter for the session and returns
    /// its new value as SHOW reports it. Transactions change nothing here, so `is_local`
    /// (until the transaction ends) is the session too.
    SetConfig,
}

impl Kind {
    fn signature(self) -> Signature {
        match self {
            Kind::CurrentSetting => Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                ],
                Volatility::Stable,
            ),
            Kind::SetConfig => Signature::exact(
                vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
                Volatility::Volatile,
            ),
        }
    }
}

/// A function over one connection's parameters.
struct Parameters {
    conn: Arc<Connection>,
    kind: Kind,
    signature: Signature,
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for Parameters {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.conn, &other.conn) && self.kind == other.kind
    }
}

impl Eq for Parameters {}

impl std::hash::Hash for Parameters {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.conn).hash(state);
        self.kind.hash(state);
    }
}

impl ScalarUDFImpl for Parameters {
    fn name(&self) -> &str {
        match self.kind {
            Kind::CurrentSetting => "current_setting",
            Kind::SetConfig => "set_config",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match self.kind {
            Kind::CurrentSetting => self.current_setting(args),
            Kind::SetConfig => self.set_config(args),
        }
    }
}

impl Parameters {
    fn current_setting(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let names = arrays[0].as_string::<i32>();
        let missing_ok = arrays.get(1).map(|a| a.as_boolean());
        let settings = self.conn.settings.lock();
        let mut values = StringBuilder::new();
        for row in 0..names.len() {
            if names.is_null(row) {
                values.append_null();
                continue;
            }
            let name = names.value(row);
            match settings.as_ref().map(|s| s.show(name)) {
                Some(Ok((_, value))) => values.append_value(value),
                _ if missing_ok.is_some_and(|m| m.is_valid(row) && m.value(row)) => {
                    values.append_null()
                }
                _ => return exec_err!("unrecognized configuration parameter \"{name}\""),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(values.finish()) as ArrayRef))
    }

    fn set_config(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let names = arrays[0].as_string::<i32>();
        let new_values = arrays[1].as_string::<i32>();
        let mut settings = self.conn.settings.lock();
        let Some(settings) = settings.as_mut() else {
            return exec_err!("set_config before the session started");
        };
        let mut values = StringBuilder::new();
        for row in 0..names.len() {
            if names.is_null(row) {
                return exec_err!("SET requires parameter name");
            }
            let name = names.value(row);
            let value = new_values.is_valid(row).then(|| new_values.value(row));
            if let Err(e) = settings.set(name, value) {
                return exec_err!("{e}");
            }
            match settings.show(name) {
                Ok((_, shown)) => values.append_value(shown),
                Err(e) => return exec_err!("{e}"),
            }
        }
        self.conn.settings_changed();
        Ok(ColumnarValue::Array(Arc::new(values.finish()) as ArrayRef))
    }
}
