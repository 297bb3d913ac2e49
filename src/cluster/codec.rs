//! How Strata's plan nodes travel between the client, the scheduler and the executors. Ballista
//! ships physical plans as DataFusion protobuf; DataFusion's own nodes (Parquet scans, joins,
//! shuffles' inputs) encode themselves and the rest go through an extension codec. A codec set
//! on a scheduler or executor *replaces* Ballista's, which carries the shuffle nodes, so
//! [`StrataCodec`] wraps Ballista's and tags every blob with the codec that wrote it.
//!
//! Strata's own nodes: bronze scans of text formats (a [`TextSource`] with its reader options,
//! rows or rejected records, and each file's decode schema), the writing of a Delta table's
//! files ([`DeltaWriteExec`], whose `add` actions the client commits), the [`Fetch`] limit and the
//! functions Strata's planning rules add (the shared JSON reads). UDFs are otherwise looked up
//! by name in the executor's registry, which holds the same functions as the client's session.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::Schema;
use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{DataFusionError, Result, internal_datafusion_err};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ScalarUDF;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::from_proto::parse_protobuf_file_scan_config;
use datafusion_proto::physical_plan::to_proto::serialize_file_scan_config;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf;
use prost::Message;
use url::Url;

use crate::bronze::catalog::parse_format;
use crate::bronze::format::Reader;
use crate::bronze::scan::{DecodeSchema, ScanMode, TextSource};
use crate::lake::write::exec::{DeltaWriteExec, WriteTarget};
use crate::plan::{json_reads, leaf_limits::Fetch};

/// Which codec wrote a blob: its first byte.
const BALLISTA: u8 = 0;
const STRATA: u8 = 1;

/// Ballista's physical codec with Strata's nodes added.
#[derive(Debug, Default)]
pub struct StrataCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

/// A Strata node on the wire.
#[derive(Clone, PartialEq, Message)]
struct StrataNode {
    #[prost(oneof = "Node", tags = "1, 2, 3")]
    node: Option<Node>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Node {
    #[prost(message, tag = "1")]
    TextScan(Box<TextScan>),
    #[prost(message, tag = "2")]
    Fetch(FetchNode),
    #[prost(message, tag = "3")]
    DeltaWrite(DeltaWriteNode),
}

/// A bronze scan of a text format.
#[derive(Clone, PartialEq, Message)]
struct TextScan {
    /// Files, projection, limit, partition values (`_file`, `_ingested_at`): what every file
    /// scan has, in DataFusion's own encoding.
    #[prost(message, optional, tag = "1")]
    conf: Option<protobuf::FileScanExecConf>,
    #[prost(string, tag = "2")]
    format: String,
    #[prost(btree_map = "string, string", tag = "3")]
    options: BTreeMap<String, String>,
    #[prost(bool, tag = "4")]
    rejected: bool,
    /// Each file's decode schema, in the order of the files in `conf`'s groups.
    #[prost(message, repeated, tag = "5")]
    decode_schemas: Vec<protobuf::Schema>,
}

#[derive(Clone, PartialEq, Message)]
struct FetchNode {
    #[prost(uint64, optional, tag = "1")]
    limit: Option<u64>,
}

/// The writing of a Delta table's files ([`DeltaWriteExec`]).
#[derive(Clone, PartialEq, Message)]
struct DeltaWriteNode {
    #[prost(string, tag = "1")]
    table: String,
    #[prost(uint64, tag = "2")]
    target_file_size: u64,
    #[prost(int64, tag = "3")]
    stats_num_columns: i64,
    /// Present when the table names its statistics columns.
    #[prost(message, optional, tag = "4")]
    stats_columns: Option<ColumnNames>,
}

#[derive(Clone, PartialEq, Message)]
struct ColumnNames {
    #[prost(string, repeated, tag = "1")]
    names: Vec<String>,
}

impl DeltaWriteNode {
    fn of(target: &WriteTarget) -> Self {
        Self {
            table: target.table.to_string(),
            target_file_size: target.target_file_size,
            stats_num_columns: target.stats_num_columns,
            stats_columns: target
                .stats_columns
                .clone()
                .map(|names| ColumnNames { names }),
        }
    }

    /// Each task of a cluster writes its own partition's files: nothing is shared between them.
    fn exec(self, inputs: &[Arc<dyn ExecutionPlan>]) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = inputs else {
            return Err(internal_datafusion_err!("DeltaWriteExec takes one input"));
        };
        let table = Url::parse(&self.table)
            .map_err(|e| internal_datafusion_err!("a Delta write to {}: {e}", self.table))?;
        let target = WriteTarget {
            table,
            target_file_size: self.target_file_size,
            stats_num_columns: self.stats_num_columns,
            stats_columns: self.stats_columns.map(|c| c.names),
        };
        Ok(Arc::new(DeltaWriteExec::alone(Arc::clone(input), target)))
    }
}

fn decode_err(e: prost::DecodeError) -> DataFusionError {
    internal_datafusion_err!("decoding a Strata plan node: {e}")
}

impl StrataCodec {
    /// The functions this codec makes again by name in any process.
    pub fn own_functions(&self) -> Vec<String> {
        json_reads::functions()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    }

    fn encode_text_scan(
        &self,
        exec: &DataSourceExec,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Option<Node>> {
        let Some((conf, source)) = exec.downcast_to_file_source::<TextSource>() else {
            return Ok(None);
        };
        let decode_schemas = conf
            .file_groups
            .iter()
            .flat_map(FileGroup::iter)
            .map(|file| {
                let schema = file.extensions.get::<DecodeSchema>().ok_or_else(|| {
                    internal_datafusion_err!("text scan file without a decode schema")
                })?;
                Ok(protobuf::Schema::try_from(schema.0.as_ref())?)
            })
            .collect::<Result<Vec<_>>>()?;
        let reader = source.reader();
        Ok(Some(Node::TextScan(Box::new(TextScan {
            conf: Some(serialize_file_scan_config(conf, self, converter)?),
            format: reader.format.to_string(),
            options: reader.options.clone(),
            rejected: source.mode() == ScanMode::Rejected,
            decode_schemas,
        }))))
    }

    fn decode_text_scan(
        &self,
        scan: TextScan,
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let conf = scan
            .conf
            .ok_or_else(|| internal_datafusion_err!("text scan without its configuration"))?;
        let format = parse_format(&scan.format)?;
        let Reader::Text(reader) = Reader::new(format, &scan.options, &scan.format)? else {
            return Err(internal_datafusion_err!(
                "a text scan of {} files",
                scan.format
            ));
        };
        let mode = if scan.rejected {
            ScanMode::Rejected
        } else {
            ScanMode::Rows
        };
        let table_schema =
            datafusion_proto::physical_plan::from_proto::parse_table_schema_from_proto(&conf)?;
        let source = Arc::new(TextSource::new(reader, mode, table_schema));
        let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
        let config = parse_protobuf_file_scan_config(&conf, &decode_ctx, converter, source)?;
        let mut schemas = scan.decode_schemas.iter();
        let groups = config
            .file_groups
            .iter()
            .map(|group| {
                let files = group
                    .iter()
                    .map(|file| {
                        let schema = schemas.next().ok_or_else(|| {
                            internal_datafusion_err!("a text scan file without its decode schema")
                        })?;
                        let mut file = file.clone();
                        file.extensions
                            .insert(DecodeSchema(Arc::new(Schema::try_from(schema)?)));
                        Ok(file)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(FileGroup::new(files))
            })
            .collect::<Result<Vec<_>>>()?;
        let config = FileScanConfigBuilder::from(config)
            .with_file_groups(groups)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }

    fn encode_strata(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Option<Node>> {
        if let Some(write) = node.downcast_ref::<DeltaWriteExec>() {
            return Ok(Some(Node::DeltaWrite(DeltaWriteNode::of(write.target()))));
        }
        if let Some(fetch) = node.downcast_ref::<Fetch>() {
            return Ok(Some(Node::Fetch(FetchNode {
                limit: fetch.limit().map(|n| n as u64),
            })));
        }
        match node.downcast_ref::<DataSourceExec>() {
            Some(exec) => self.encode_text_scan(exec, converter),
            None => Ok(None),
        }
    }
}

impl PhysicalExtensionCodec for StrataCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match buf.split_first() {
            Some((&BALLISTA, rest)) => self.ballista.try_decode(rest, inputs, ctx, converter),
            Some((&STRATA, rest)) => {
                let node = StrataNode::decode(rest).map_err(decode_err)?;
                match node.node {
                    Some(Node::TextScan(scan)) => self.decode_text_scan(*scan, ctx, converter),
                    Some(Node::Fetch(fetch)) => {
                        let [input] = inputs else {
                            return Err(internal_datafusion_err!("Fetch takes one input"));
                        };
                        Ok(Arc::new(Fetch::new(
                            Arc::clone(input),
                            fetch.limit.map(|n| n as usize),
                        )))
                    }
                    Some(Node::DeltaWrite(write)) => write.exec(inputs),
                    None => Err(internal_datafusion_err!("an empty Strata plan node")),
                }
            }
            _ => Err(internal_datafusion_err!(
                "a plan node from an unknown codec"
            )),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(strata) = self.encode_strata(&node, converter)? {
            buf.push(STRATA);
            StrataNode { node: Some(strata) }
                .encode(buf)
                .map_err(|e| internal_datafusion_err!("encoding a Strata plan node: {e}"))?;
            return Ok(());
        }
        let mut blob = vec![BALLISTA];
        self.ballista.try_encode(node, &mut blob, converter)?;
        buf.extend(blob);
        Ok(())
    }

    /// Functions travel by name; the ones Strata's rules plan without registering them are
    /// made again here, the rest come from the registry (see [`super::executor`]).
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match json_reads::function(name) {
            Some(udf) => Ok(udf),
            None => self.ballista.try_decode_udf(name, buf),
        }
    }
}
