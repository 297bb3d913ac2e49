//! Docs blocks and macros, read before any node: `{% docs %}` blocks from the docs paths, the
//! global project's macros (built-in generic tests, cross-database macros) and each package's
//! macro files (a name defined twice in a package is an error), and the project's one Jinja
//! environment holding them and every model and test template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Environment;

use crate::jinja::blocks::{docs_blocks, preprocess_macros};
use crate::jinja::error::{column_of, describe};
use crate::jinja::{
    BUILTIN_MACROS, GLOBAL_PROJECT, MACRO_PREFIX, MacroRef, Shared, mutable_literals, new_env,
};
use crate::project::ProjectError;
use crate::project::files::SourceFile;

/// The `{% docs %}` blocks of `doc_files` by name.
pub(super) fn read_docs(
    doc_files: &[SourceFile],
) -> Result<BTreeMap<String, String>, ProjectError> {
    let mut docs = BTreeMap::new();
    let mut doc_origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    for md in doc_files {
        let blocks =
            docs_blocks(&md.text).map_err(|(line, message)| ProjectError::JinjaSyntax {
                path: md.rel.clone(),
                line,
                column: 1,
                message,
            })?;
        for block in blocks {
            if let Some(first) = doc_origin.get(&block.name) {
                return Err(ProjectError::Duplicate {
                    kind: "docs block",
                    name: block.name,
                    first: first.clone(),
                    second: md.rel.clone(),
                });
            }
            doc_origin.insert(block.name.clone(), md.rel.clone());
            docs.insert(block.name, block.text);
        }
    }
    Ok(docs)
}

/// A package's macros, as read from its macro files.
pub(super) struct Macros<'f> {
    /// Callable macros by name.
    pub callable: BTreeMap<String, MacroRef>,
    /// Macros by name, with their file.
    pub origin: BTreeMap<String, PathBuf>,
    /// Each macro file, rewritten for minijinja.
    pub sources: Vec<(&'f SourceFile, String)>,
}

/// The macros of `package`'s macro files; a name defined twice is an error.
pub(super) fn read_macros<'f>(
    package: &str,
    macro_files: &'f [SourceFile],
) -> Result<Macros<'f>, ProjectError> {
    let mut macros = BTreeMap::new();
    let mut macro_origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut macro_sources = Vec::new();
    for mf in macro_files {
        let (source, decls) = preprocess_macros(&mf.text);
        for decl in decls {
            if let Some(first) = macro_origin.get(&decl.name) {
                return Err(ProjectError::Duplicate {
                    kind: "macro",
                    name: decl.name,
                    first: first.clone(),
                    second: mf.rel.clone(),
                });
            }
            macro_origin.insert(decl.name.clone(), mf.rel.clone());
            macros.insert(
                decl.name.clone(),
                MacroRef {
                    package: package.to_string(),
                    template: mf.template_name(),
                    mangled: format!("{MACRO_PREFIX}{}", decl.name),
                },
            );
        }
        macro_sources.push((mf, source));
    }
    Ok(Macros {
        callable: macros,
        origin: macro_origin,
        sources: macro_sources,
    })
}

/// Strata's global project (`dbt`): its macros, and each file's template name and source
/// rewritten for minijinja.
pub(super) fn builtin_macros() -> (BTreeMap<String, MacroRef>, Vec<(String, String)>) {
    let mut macros = BTreeMap::new();
    let mut sources = Vec::new();
    for (template, text) in BUILTIN_MACROS {
        let (source, decls) = preprocess_macros(text);
        for decl in decls {
            macros.insert(
                decl.name.clone(),
                MacroRef {
                    package: GLOBAL_PROJECT.to_string(),
                    template: template.to_string(),
                    mangled: format!("{MACRO_PREFIX}{}", decl.name),
                },
            );
        }
        sources.push((template.to_string(), source));
    }
    (macros, sources)
}

/// The environment every render of the project uses: the built-in macros and the macro
/// files, then `templates` (the model and singular test files). Lists and dicts that `{% set %}`
/// assigns as literals are made mutable in every template.
pub(super) fn build_env<'f>(
    shared: Arc<Shared>,
    builtin_sources: Vec<(String, String)>,
    macro_sources: Vec<(&SourceFile, String)>,
    templates: impl Iterator<Item = &'f SourceFile>,
) -> Result<Environment<'static>, ProjectError> {
    let mut env = new_env(shared);
    for (name, source) in builtin_sources {
        add_template(&mut env, &name, mutable_literals(&source), Path::new(&name))?;
    }
    for (mf, source) in macro_sources {
        add_template(
            &mut env,
            &mf.template_name(),
            mutable_literals(&source),
            &mf.rel,
        )?;
    }
    for f in templates {
        add_template(
            &mut env,
            &f.template_name(),
            mutable_literals(&f.text),
            &f.rel,
        )?;
    }
    Ok(env)
}

fn add_template(
    env: &mut Environment<'static>,
    name: &str,
    source: String,
    rel: &Path,
) -> Result<(), ProjectError> {
    env.add_template_owned(name.to_string(), source.clone())
        .map_err(|err| ProjectError::JinjaSyntax {
            path: rel.to_path_buf(),
            line: err.line().unwrap_or(1),
            column: err.range().map_or(1, |r| column_of(&source, r.start)),
            message: err.detail().map_or_else(|| describe(&err), str::to_string),
        })
}
