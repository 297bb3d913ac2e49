//! Parsing `--select` / `--exclude` arguments: space-separated selectors (a union), each a
//! comma-joined intersection of criteria `[@][N+][method:]value[+N]`, and the patterns each
//! method matches with. What the parsed selectors pick is `select`'s set algebra.

use globset::{GlobBuilder, GlobMatcher};

use super::{NodeKind, TestType};

/// Methods a selector may name, for error messages.
const SUPPORTED_METHODS: &str = "fqn, path, file, tag, config.materialized, config.tags, \
                                 resource_type, source, package, test_type, state";

/// The values `state:` selects by.
pub const STATE_VALUES: [&str; 6] = [
    "new",
    "modified",
    "modified.body",
    "modified.configs",
    "modified.relation",
    "old",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("unknown selection method `{method}` in `{selector}` (supported: {SUPPORTED_METHODS})")]
    UnknownMethod { selector: String, method: String },
    #[error("invalid selector `{selector}`: {reason}")]
    Invalid { selector: String, reason: String },
}

fn invalid(selector: &str, reason: impl Into<String>) -> SelectError {
    SelectError::Invalid {
        selector: selector.to_string(),
        reason: reason.into(),
    }
}

/// One space-separated element of `--select`: criteria to intersect.
#[derive(Debug)]
pub(super) struct Intersection {
    pub(super) raw: String,
    pub(super) criteria: Vec<Criterion>,
}

/// One criterion: `[@][N+][method:]value[+N]`.
#[derive(Debug)]
pub(super) struct Criterion {
    /// `@`: the matches, their descendants, and all ancestors of those.
    pub(super) childrens_parents: bool,
    /// `N+` prefix: ancestors up to `N` edges away (`None`: all).
    pub(super) parents: Option<Option<usize>>,
    /// `+N` suffix: descendants up to `N` edges away (`None`: all).
    pub(super) children: Option<Option<usize>>,
    pub(super) method: Method,
}

#[derive(Debug)]
pub(super) enum Method {
    /// dbt's `fqn`, the default: a name, or a dotted path through the FQN (`silver.stg_orders`).
    Fqn(FqnSelector),
    /// A file or folder relative to the project root; globs allowed.
    Path(PathPattern),
    /// A file name, with or without its extension.
    File(Pattern),
    Tag(Pattern),
    Materialized(String),
    /// `config.tags:x`: exact tag membership (no glob, like dbt's config method).
    ConfigTag(String),
    /// `None`: a resource type dbt knows but Strata has no nodes of (snapshot, exposure...).
    ResourceType(Option<NodeKind>),
    /// `test_type:` (and `resource_type:unit_test`, the unit tests).
    TestType(TestType),
    Source {
        package: Option<Pattern>,
        source: Pattern,
        table: Option<Pattern>,
    },
    Package(Pattern),
    /// `state:new`, `state:modified[.body|.configs|.relation]`, `state:old`: how the node
    /// compares with a saved manifest (`--state`).
    State(String),
}

/// A glob (fnmatch-style: `*`, `?`, `[...]`) or, with no wildcard, an exact string.
#[derive(Debug)]
pub(super) enum Pattern {
    Exact(String),
    Glob(GlobMatcher),
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '[', ']'])
}

impl Pattern {
    /// `*` matches any characters, `/` included, as in Python's `fnmatch`.
    fn fnmatch(selector: &str, value: &str) -> Result<Self, SelectError> {
        if has_wildcard(value) {
            Ok(Pattern::Glob(compile_glob(selector, value, false)?))
        } else {
            Ok(Pattern::Exact(value.to_string()))
        }
    }

    pub(super) fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Exact(e) => e == s,
            Pattern::Glob(g) => g.is_match(s),
        }
    }
}

/// A glob; with `literal_separator`, `*` and `?` do not match `/` (but `**` crosses folders).
fn compile_glob(
    selector: &str,
    glob: &str,
    literal_separator: bool,
) -> Result<GlobMatcher, SelectError> {
    GlobBuilder::new(glob)
        .literal_separator(literal_separator)
        .backslash_escape(false)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| invalid(selector, format!("bad pattern `{glob}`: {}", e.kind())))
}

/// `path:` values: a file or folder; a node matches when its file or one of the folders
/// containing it matches (dbt globs the file system, then checks `original_file_path` and
/// its parents). Here `*` does not cross `/`, `**` does.
#[derive(Debug)]
pub(super) enum PathPattern {
    /// The project root itself (`path:.`): everything.
    All,
    /// Component-wise prefix.
    Prefix(Vec<String>),
    Glob(GlobMatcher),
}

impl PathPattern {
    fn new(selector: &str, value: &str) -> Result<Self, SelectError> {
        let value = value.replace('\\', "/");
        let parts: Vec<&str> = value
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.is_empty() {
            Ok(PathPattern::All)
        } else if has_wildcard(&value) {
            Ok(PathPattern::Glob(compile_glob(
                selector,
                &parts.join("/"),
                true,
            )?))
        } else {
            Ok(PathPattern::Prefix(
                parts.iter().map(|p| p.to_string()).collect(),
            ))
        }
    }

    pub(super) fn is_match(&self, path: &[String]) -> bool {
        match self {
            PathPattern::All => true,
            PathPattern::Prefix(prefix) => path.starts_with(prefix),
            PathPattern::Glob(glob) => {
                let mut joined = String::new();
                path.iter().any(|part| {
                    if !joined.is_empty() {
                        joined.push('/');
                    }
                    joined.push_str(part);
                    glob.is_match(&joined)
                })
            }
        }
    }
}

/// dbt's FQN selector (its `is_selected_node`): the FQN's leaf, or a dot-separated prefix
/// of the (dot-flattened) FQN, where the first part holding a wildcard globs the remainder.
#[derive(Debug)]
pub(super) struct FqnSelector {
    pub(super) raw: String,
    pub(super) parts: Vec<String>,
    /// The index of the first part with a wildcard, and the glob for the parts from there.
    pub(super) slurp: Option<(usize, Pattern)>,
}

impl FqnSelector {
    fn new(selector: &str, value: &str) -> Result<Self, SelectError> {
        let parts: Vec<String> = value.split('.').map(str::to_string).collect();
        let slurp = match parts.iter().position(|p| has_wildcard(p)) {
            Some(i) => Some((i, Pattern::fnmatch(selector, &parts[i..].join("."))?)),
            None => None,
        };
        Ok(FqnSelector {
            raw: value.to_string(),
            parts,
            slurp,
        })
    }

    pub(super) fn matches(&self, fqn: &[String]) -> bool {
        if fqn.last().is_some_and(|leaf| *leaf == self.raw) {
            return true;
        }
        let flat: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
        if flat.len() < self.parts.len() {
            return false;
        }
        for (i, part) in self.parts.iter().enumerate() {
            if let Some((at, pattern)) = &self.slurp
                && *at == i
            {
                return pattern.is_match(&flat[i..].join("."));
            }
            if flat[i] != part {
                return false;
            }
        }
        true
    }

    /// Beyond dbt: a dotless glob (`stg_*`) also matches the names of nodes in any folder
    /// (dbt matches it against the whole FQN, so only at a resource folder's top level).
    pub(super) fn matches_name(&self, name: &str) -> bool {
        match (&self.slurp, self.parts.len()) {
            (Some((_, pattern)), 1) => pattern.is_match(name),
            _ => false,
        }
    }
}

impl Criterion {
    fn parse(raw: &str) -> Result<Self, SelectError> {
        let mut rest = raw;
        let childrens_parents = match rest.strip_prefix('@') {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let parents = match rest[digits..].strip_prefix('+') {
            Some(r) => {
                let depth = parse_depth(raw, &rest[..digits])?;
                rest = r;
                Some(depth)
            }
            None => None,
        };
        let without_digits = rest.trim_end_matches(|c: char| c.is_ascii_digit());
        let children = match without_digits.strip_suffix('+') {
            Some(r) => {
                let depth = parse_depth(raw, &rest[without_digits.len()..])?;
                rest = r;
                Some(depth)
            }
            None => None,
        };
        if childrens_parents && children.is_some() {
            return Err(invalid(
                raw,
                "the `@` prefix and a `+` suffix cannot be combined",
            ));
        }
        let (method, value) = match rest.split_once(':') {
            Some((m, v))
                if !m.is_empty()
                    && m.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '.') =>
            {
                (Some(m), v)
            }
            _ => (None, rest),
        };
        if value.is_empty() {
            return Err(invalid(raw, "no value to select by"));
        }
        Ok(Criterion {
            childrens_parents,
            parents,
            children,
            method: Method::parse(raw, method, value)?,
        })
    }
}

fn parse_depth(raw: &str, digits: &str) -> Result<Option<usize>, SelectError> {
    if digits.is_empty() {
        return Ok(None);
    }
    digits
        .parse()
        .map(Some)
        .map_err(|_| invalid(raw, format!("depth `{digits}` is too large")))
}

impl Method {
    fn parse(raw: &str, method: Option<&str>, value: &str) -> Result<Self, SelectError> {
        let Some(method) = method else {
            // dbt's default method: a path if it has a separator, a file name if it has a
            // model/seed extension, else an FQN.
            return if value.contains(['/', '\\']) {
                Ok(Method::Path(PathPattern::new(raw, value)?))
            } else if [".sql", ".py", ".csv"]
                .iter()
                .any(|ext| value.to_ascii_lowercase().ends_with(ext))
            {
                Ok(Method::File(Pattern::fnmatch(raw, value)?))
            } else {
                Ok(Method::Fqn(FqnSelector::new(raw, value)?))
            };
        };
        Ok(match method {
            "fqn" => Method::Fqn(FqnSelector::new(raw, value)?),
            "path" => Method::Path(PathPattern::new(raw, value)?),
            "file" => Method::File(Pattern::fnmatch(raw, value)?),
            "tag" => Method::Tag(Pattern::fnmatch(raw, value)?),
            "config.materialized" => Method::Materialized(value.to_string()),
            "config.tags" => Method::ConfigTag(value.to_string()),
            "resource_type" => Method::ResourceType(match value {
                "model" => Some(NodeKind::Model),
                "seed" => Some(NodeKind::Seed),
                "test" => Some(NodeKind::Test),
                "source" => Some(NodeKind::Source),
                "snapshot" => Some(NodeKind::Snapshot),
                "unit_test" => return Ok(Method::TestType(TestType::Unit)),
                "analysis" | "operation" | "exposure" | "metric" | "semantic_model"
                | "saved_query" | "function" => None,
                _ => {
                    return Err(invalid(
                        raw,
                        format!(
                            "unknown resource type `{value}` (expected model, seed, snapshot, test or source)"
                        ),
                    ));
                }
            }),
            "test_type" => Method::TestType(match value {
                "generic" | "schema" => TestType::Generic,
                "singular" | "data" => TestType::Singular,
                "unit" => TestType::Unit,
                _ => {
                    return Err(invalid(
                        raw,
                        format!("unknown test type `{value}` (expected generic, singular or unit)"),
                    ));
                }
            }),
            "source" => {
                let parts: Vec<&str> = value.split('.').collect();
                let (package, source, table) = match parts.as_slice() {
                    [source] => (None, *source, None),
                    [source, table] => (None, *source, Some(*table)),
                    [package, source, table] => (Some(*package), *source, Some(*table)),
                    _ => {
                        return Err(invalid(
                            raw,
                            "sources are selected as `source`, `source.table` or `package.source.table`",
                        ));
                    }
                };
                Method::Source {
                    package: package.map(|p| Pattern::fnmatch(raw, p)).transpose()?,
                    source: Pattern::fnmatch(raw, source)?,
                    table: table.map(|t| Pattern::fnmatch(raw, t)).transpose()?,
                }
            }
            "package" => Method::Package(Pattern::fnmatch(raw, value)?),
            "state" if STATE_VALUES.contains(&value) => Method::State(value.to_string()),
            "state" => {
                return Err(invalid(
                    raw,
                    format!(
                        "unknown state `{value}` (expected {})",
                        STATE_VALUES.join(", ")
                    ),
                ));
            }
            other => {
                return Err(SelectError::UnknownMethod {
                    selector: raw.to_string(),
                    method: other.to_string(),
                });
            }
        })
    }
}

/// Splits the arguments into space-separated selectors and parses each.
pub(super) fn parse_union<S: AsRef<str>>(args: &[S]) -> Result<Vec<Intersection>, SelectError> {
    let mut union = Vec::new();
    for raw in args.iter().flat_map(|a| a.as_ref().split_whitespace()) {
        let criteria = raw
            .split(',')
            .filter(|part| !part.is_empty())
            .map(Criterion::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if !criteria.is_empty() {
            union.push(Intersection {
                raw: raw.to_string(),
                criteria,
            });
        }
    }
    Ok(union)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_and_depths() {
        let c = Criterion::parse("2+tag:nightly+3").unwrap();
        assert_eq!(c.parents, Some(Some(2)));
        assert_eq!(c.children, Some(Some(3)));
        assert!(!c.childrens_parents);
        assert!(matches!(c.method, Method::Tag(Pattern::Exact(ref t)) if t == "nightly"));

        let c = Criterion::parse("+stg_orders").unwrap();
        assert_eq!((c.parents, c.children), (Some(None), None));
        let c = Criterion::parse("stg_orders+").unwrap();
        assert_eq!((c.parents, c.children), (None, Some(None)));
        let c = Criterion::parse("@stg_orders").unwrap();
        assert!(c.childrens_parents);
        // Digits that are not a depth stay in the name.
        let c = Criterion::parse("2022_orders").unwrap();
        assert!(matches!(c.method, Method::Fqn(ref f) if f.raw == "2022_orders"));
        assert_eq!((c.parents, c.children), (None, None));
        let c = Criterion::parse("orders_2").unwrap();
        assert!(matches!(c.method, Method::Fqn(ref f) if f.raw == "orders_2"));
        let c = Criterion::parse("config.materialized:incremental").unwrap();
        assert!(matches!(c.method, Method::Materialized(ref v) if v == "incremental"));
    }

    #[test]
    fn default_method_depends_on_the_value() {
        let method = |raw| Criterion::parse(raw).unwrap().method;
        assert!(matches!(method("models/silver"), Method::Path(_)));
        assert!(matches!(method("stg_orders.sql"), Method::File(_)));
        assert!(matches!(method("country_codes.CSV"), Method::File(_)));
        assert!(matches!(method("silver.stg_orders"), Method::Fqn(_)));
        assert!(matches!(method("*"), Method::Fqn(_)));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        let err = |raw: &str| Criterion::parse(raw).unwrap_err();
        assert_eq!(
            err("foo:bar"),
            SelectError::UnknownMethod {
                selector: "foo:bar".into(),
                method: "foo".into()
            }
        );
        assert!(
            err("foo:bar")
                .to_string()
                .contains("unknown selection method `foo`")
        );
        assert!(
            matches!(err("config.schema:gold"), SelectError::UnknownMethod { method, .. } if method == "config.schema")
        );
        assert!(matches!(err("state:changed"), SelectError::Invalid { .. }));
        for raw in [
            "+",
            "@",
            "tag:",
            "2+",
            "@stg_orders+",
            "resource_type:view",
            "test_type:fuzzy",
            "source:a.b.c.d",
            "99999999999999999999999+x",
            "path:models/[",
        ] {
            assert!(matches!(err(raw), SelectError::Invalid { .. }), "{raw}");
        }
        assert_eq!(
            err("@x+").to_string(),
            "invalid selector `@x+`: the `@` prefix and a `+` suffix cannot be combined"
        );
    }
}
