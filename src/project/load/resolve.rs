//! Resolution, once every node is known: the `ref`s and `source`s captured while parsing
//! become dependencies; an unknown name is an error with dbt's "did you mean" suggestion, a
//! test of something disabled is skipped with a warning.

use super::Loader;
use crate::project::{ProjectError, Resource};

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
            for key in &pending.sources {
                if self.sources.contains_key(key) {
                    if !sources.contains(key) {
                        sources.push(key.clone());
                    }
                } else if is_test && self.disabled_sources.contains(key) {
                    skip = Some(format!("source '{}.{}' is disabled", key.0, key.1));
                } else {
                    let dotted: Vec<String> = self
                        .sources
                        .keys()
                        .map(|(s, t)| format!("{s}.{t}"))
                        .collect();
                    let suggestion = closest(
                        &format!("{}.{}", key.0, key.1),
                        dotted.iter().map(String::as_str),
                    );
                    return Err(ProjectError::UnknownSource {
                        path,
                        node: pending.unique_id.clone(),
                        source_name: key.0.clone(),
                        table: key.1.clone(),
                        suggestion,
                    });
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
