//! Resolution, once every node is known: the `ref`s and `source`s captured while parsing
//! become dependencies; an unknown name is an error with dbt's "did you mean" suggestion, a
//! test of something disabled is skipped with a warning.

use super::Loader;
use crate::project::{ProjectError, Resource, SourceKey};

/// The closest of `candidates` to `name`, if close enough to be a likely typo.
pub(super) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

/// Refs and sources captured while parsing a node, resolved once every node is known.
pub(super) struct Pending {
    pub unique_id: String,
    pub refs: Vec<(Option<String>, String)>,
    pub sources: Vec<(String, String)>,
}

impl Loader {
    /// The node `ref([package,] name)` names from a node of package `own`: the named
    /// package's, else the root project's, the node's own package's, or the only other one.
    fn ref_target(&self, package: Option<&str>, name: &str, own: &str) -> Option<String> {
        let get = |p: &str| {
            self.by_name
                .get(&(p.to_string(), name.to_string()))
                .cloned()
        };
        match package {
            Some(p) => get(p),
            None => get(&self.root_name).or_else(|| get(own)).or_else(|| {
                let mut any = self.by_name.iter().filter(|((_, n), _)| n == name);
                match (any.next(), any.next()) {
                    (Some((_, id)), None) => Some(id.clone()),
                    _ => None,
                }
            }),
        }
    }

    /// The source table `source(source, table)` names in code of package `own`, searched as
    /// dbt does: the root project, the node's own package, then any package.
    fn source_target(&self, source: &str, table: &str, own: &str) -> SourceMatch {
        let key = |p: &str| (p.to_string(), source.to_string(), table.to_string());
        for package in [self.root_name.as_str(), own] {
            if self.sources.contains_key(&key(package)) {
                return SourceMatch::One(key(package));
            }
        }
        let mut found: Vec<SourceKey> = self
            .sources
            .keys()
            .filter(|(_, s, t)| s == source && t == table)
            .cloned()
            .collect();
        match found.len() {
            0 => SourceMatch::None,
            1 => SourceMatch::One(found.remove(0)),
            _ => SourceMatch::Several(found.into_iter().map(|(p, _, _)| p).collect()),
        }
    }

    /// Resolves captured `ref`s and `source`s into dependencies.
    pub(super) fn resolve(&mut self) -> Result<(), ProjectError> {
        for pending in std::mem::take(&mut self.pending) {
            let node = &self.nodes[&pending.unique_id];
            let is_test = node.resource == Resource::Test;
            let path = node.path.clone();
            let mut depends_on = node.depends_on.clone();
            let mut sources = node.sources.clone();
            let mut skip = None;
            let own = node.package.clone();
            for (package, name) in &pending.refs {
                if let Some(package) = package
                    && package != &self.root_name
                    && !self.shared.macros.packages.contains_key(package)
                {
                    return Err(ProjectError::UnknownPackage {
                        path,
                        node: pending.unique_id.clone(),
                        package: package.clone(),
                        project: self.root_name.clone(),
                    });
                }
                match self.ref_target(package.as_deref(), name, &own) {
                    Some(id) => {
                        if !depends_on.contains(&id) {
                            depends_on.push(id);
                        }
                    }
                    None if self.disabled.contains_key(name) => {
                        if is_test {
                            skip = Some(format!("'{name}' is disabled"));
                            break;
                        }
                        return Err(ProjectError::DisabledRef {
                            path,
                            node: pending.unique_id.clone(),
                            name: name.clone(),
                        });
                    }
                    None => {
                        return Err(ProjectError::UnknownRef {
                            path,
                            node: pending.unique_id.clone(),
                            name: name.clone(),
                            suggestion: closest(name, self.by_name.keys().map(|(_, n)| n.as_str())),
                        });
                    }
                }
            }
            for (source, table) in &pending.sources {
                match self.source_target(source, table, &own) {
                    SourceMatch::One(key) => {
                        if !sources.contains(&key) {
                            sources.push(key);
                        }
                    }
                    SourceMatch::Several(packages) => {
                        return Err(ProjectError::Invalid {
                            path,
                            message: format!(
                                "{}: source('{source}', '{table}') is declared by the packages {}; \
                                 declare it in the root project to choose",
                                pending.unique_id,
                                packages.join(", ")
                            ),
                        });
                    }
                    SourceMatch::None
                        if is_test
                            && self
                                .disabled_sources
                                .iter()
                                .any(|(_, s, t)| s == source && t == table) =>
                    {
                        skip = Some(format!("source '{source}.{table}' is disabled"));
                    }
                    SourceMatch::None => {
                        let dotted: Vec<String> = self
                            .sources
                            .keys()
                            .map(|(_, s, t)| format!("{s}.{t}"))
                            .collect();
                        let suggestion = closest(
                            &format!("{source}.{table}"),
                            dotted.iter().map(String::as_str),
                        );
                        return Err(ProjectError::UnknownSource {
                            path,
                            node: pending.unique_id.clone(),
                            source_name: source.clone(),
                            table: table.clone(),
                            suggestion,
                        });
                    }
                }
            }
            if let Some(reason) = skip {
                self.warnings.push(format!(
                    "{}: {} is disabled because {reason}",
                    path.display(),
                    pending.unique_id
                ));
                self.nodes.remove(&pending.unique_id);
                continue;
            }
            let node = self
                .nodes
                .get_mut(&pending.unique_id)
                .expect("pending node");
            node.depends_on = depends_on;
            node.sources = sources;
        }
        Ok(())
    }
}

/// What a `source()` call names.
enum SourceMatch {
    One(SourceKey),
    None,
    /// Declared only by packages other than the caller's, by several of them.
    Several(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = ["stg_orders", "stg_customers", "orders"];
        assert_eq!(
            closest("stg_ordres", names.into_iter()).as_deref(),
            Some("stg_orders")
        );
        assert_eq!(
            closest("order", names.into_iter()).as_deref(),
            Some("orders")
        );
        assert_eq!(closest("payments", names.into_iter()), None);
    }
}
