//! Descriptions of relations and columns from the dbt project's properties files, shown as
//! PostgreSQL comments (`obj_description`, `col_description`, `pg_description`).

use std::collections::HashMap;

use crate::bronze::catalog::table_name;
use crate::config::Config;
use crate::project::{self, ColumnDoc, ProjectError};

/// What the project says about one relation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelationDoc {
    pub description: Option<String>,
    /// Column descriptions by column name.
    pub columns: HashMap<String, String>,
}

/// Descriptions by `(schema, relation)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Descriptions {
    relations: HashMap<(String, String), RelationDoc>,
}

impl Descriptions {
    /// Reads the dbt project in `config.project_dir`; a directory without one describes
    /// nothing.
    pub fn load(config: &Config) -> Result<Self, ProjectError> {
        if !config.project_dir.join("dbt_project.yml").exists() {
            return Ok(Self::default());
        }
        let project = project::load(&config.project_dir, None)?;
        let mut descriptions = Self::default();
        for node in project.nodes.values() {
            descriptions.insert(
                &node.config.schema,
                node.relation_name(),
                &node.description,
                &node.columns,
            );
        }
        for source in project.sources.values() {
            let description = if source.description.is_empty() {
                &source.source_description
            } else {
                &source.description
            };
            // A source is read where it is declared and, once landed, from bronze.
            descriptions.insert(
                &source.schema,
                &source.identifier,
                description,
                &source.columns,
            );
            descriptions.insert(
                crate::warehouse::catalog::BRONZE,
                &table_name(&source.source_name, &source.identifier),
                description,
                &source.columns,
            );
        }
        Ok(descriptions)
    }

    fn insert(&mut self, schema: &str, relation: &str, description: &str, columns: &[ColumnDoc]) {
        let doc = RelationDoc {
            description: Some(description.to_string()).filter(|d| !d.is_empty()),
            columns: columns
                .iter()
                .filter(|c| !c.description.is_empty())
                .map(|c| (c.name.clone(), c.description.clone()))
                .collect(),
        };
        if doc != RelationDoc::default() {
            self.relations
                .insert((schema.to_string(), relation.to_string()), doc);
        }
    }

    pub fn relation(&self, schema: &str, relation: &str) -> Option<&RelationDoc> {
        self.relations
            .get(&(schema.to_string(), relation.to_string()))
    }
}
