//! The memory MCP handler: the nine tools of the reference `@modelcontextprotocol/server-memory`
//! (same names, input schemas, result shapes and error behaviour) over the per-project SQLite
//! stores of [`msm_memory::StoreRegistry`].
//!
//! Like the reference it also serves the resource `memory://knowledge-graph` (the whole graph
//! as indented JSON, `resources/list` and `resources/read`) with `resources/subscribe`: after a
//! successful mutating tool call every subscribed session on the same DB (not only the writer,
//! as the daemon is shared) gets `notifications/resources/updated` (see [`resource`]).
//! Stateless 2026-07-28 requests list and read it too, and get the same updates on a
//! `subscriptions/listen` stream (that revision's replacement of `resources/subscribe`).
//!
//! It does not know how it is reached: the project comes from the `Mcp-Project-Path` header of
//! the `http::request::Parts` that rmcp's HTTP transport puts into the request's extensions,
//! and is simply absent (home DB) in-process.

mod resource;
mod schemas;

use std::path::PathBuf;
use std::sync::Arc;

use msm_memory::{
    AddedObservations, Entity, Graph, MemoryStore, ObservationAddition, ObservationDeletion,
    Relation, StoreError, StoreRegistry,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    Extensions, Implementation, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ResourceContents, ResultType, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use resource::GraphChanges;
use resource::{
    RESOURCE_URI, Subscription, accepted_filter, knowledge_graph_resource, listen_for_changes,
};

/// The tools in the reference server's order (rmcp's router lists them by name).
const TOOL_ORDER: [&str; 9] = [
    "create_entities",
    "create_relations",
    "add_observations",
    "delete_entities",
    "delete_observations",
    "delete_relations",
    "read_graph",
    "search_nodes",
    "open_nodes",
];

/// The prefix rmcp gives an argument that does not deserialize.
const RMCP_ARGUMENT_ERROR: &str = "failed to deserialize parameters: ";

/// The memory target's MCP handler. Cheap to clone: one per session (or stateless request),
/// all sharing one registry of stores and one channel of graph changes; the clones of one
/// instance share its session's resource subscription.
#[derive(Clone)]
pub struct MemoryService {
    registry: Arc<StoreRegistry>,
    changes: GraphChanges,
    subscription: Arc<Subscription>,
    tool_router: Arc<ToolRouter<MemoryService>>,
}

/// The nine tools' routes and schemas, built once: rmcp makes a handler for every stateless
/// request, and building the schemas each time cost more than a small search.
static TOOL_ROUTER: std::sync::LazyLock<Arc<ToolRouter<MemoryService>>> =
    std::sync::LazyLock::new(|| Arc::new(MemoryService::tool_router()));

impl std::fmt::Debug for MemoryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryService").finish_non_exhaustive()
    }
}

// Arguments and results as the reference server names them on the wire.

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEntity {
    name: String,
    entity_type: String,
    observations: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRelation {
    from: String,
    to: String,
    relation_type: String,
}

#[derive(Debug, Serialize)]
struct WireGraph {
    entities: Vec<WireEntity>,
    relations: Vec<WireRelation>,
}

#[derive(Debug, Deserialize)]
struct CreateEntitiesArgs {
    entities: Vec<WireEntity>,
}

#[derive(Debug, Deserialize)]
struct RelationsArgs {
    relations: Vec<WireRelation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAddition {
    entity_name: String,
    contents: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct AddObservationsArgs {
    observations: Vec<WireAddition>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireAdded {
    entity_name: String,
    added_observations: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteEntitiesArgs {
    entity_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDeletion {
    entity_name: String,
    observations: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct DeleteObservationsArgs {
    deletions: Vec<WireDeletion>,
}

#[derive(Debug, Deserialize)]
struct SearchNodesArgs {
    query: String,
}

#[derive(Debug, Deserialize)]
struct OpenNodesArgs {
    names: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct NoArgs {}

impl From<WireEntity> for Entity {
    fn from(e: WireEntity) -> Entity {
        Entity {
            name: e.name,
            entity_type: e.entity_type,
            observations: e.observations,
        }
    }
}

impl From<Entity> for WireEntity {
    fn from(e: Entity) -> WireEntity {
        WireEntity {
            name: e.name,
            entity_type: e.entity_type,
            observations: e.observations,
        }
    }
}

impl From<WireRelation> for Relation {
    fn from(r: WireRelation) -> Relation {
        Relation {
            from: r.from,
            to: r.to,
            relation_type: r.relation_type,
        }
    }
}

impl From<Relation> for WireRelation {
    fn from(r: Relation) -> WireRelation {
        WireRelation {
            from: r.from,
            to: r.to,
            relation_type: r.relation_type,
        }
    }
}

impl From<Graph> for WireGraph {
    fn from(g: Graph) -> WireGraph {
        WireGraph {
            entities: g.entities.into_iter().map(Into::into).collect(),
            relations: g.relations.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<AddedObservations> for WireAdded {
    fn from(a: AddedObservations) -> WireAdded {
        WireAdded {
            entity_name: a.entity_name,
            added_observations: a.added_observations,
        }
    }
}

/// The `Mcp-Project-Path` header of the HTTP request behind this call, if any.
fn project_path(extensions: &Extensions) -> Option<String> {
    let parts = extensions.get::<http::request::Parts>()?;
    let value = parts.headers.get(msm_core::headers::PROJECT_PATH)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// A successful result as the reference prints it: the JSON of `text_value` indented by two
/// spaces (`JSON.stringify(x, null, 2)`) and `structured` as structuredContent.
fn json_result(
    text_value: &impl Serialize,
    structured: Value,
) -> Result<CallToolResult, ErrorData> {
    let text = serde_json::to_string_pretty(text_value)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    // The reference leaves `isError` out of a success.
    result.is_error = None;
    Ok(result)
}

fn message_result(message: &str) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(message)]);
    result.structured_content = Some(json!({"success": true, "message": message}));
    result.is_error = None;
    result
}

/// A failed tool call as the reference reports it: an `isError` result whose text is the
/// error's message.
fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A store outcome as the tool's result: a store error is a tool error (`isError`), as the
/// reference reports it.
fn tool_outcome<T>(
    outcome: Result<T, StoreError>,
    answer: impl FnOnce(T) -> Result<CallToolResult, ErrorData>,
) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(value) => answer(value),
        Err(e) => Ok(tool_error(e.to_string())),
    }
}

fn graph_result(graph: Graph) -> Result<CallToolResult, ErrorData> {
    let wire = WireGraph::from(graph);
    let structured =
        serde_json::to_value(&wire).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    json_result(&wire, structured)
}

fn to_value(v: &impl Serialize) -> Result<Value, ErrorData> {
    serde_json::to_value(v).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

#[tool_router]
impl MemoryService {
    /// A handler over `registry`'s stores whose graph changes reach only its own session's
    /// subscription (in-process use and tests).
    pub fn new(registry: Arc<StoreRegistry>) -> MemoryService {
        MemoryService::with_changes(registry, GraphChanges::new())
    }

    /// A handler over `registry`'s stores (the host keeps one registry for every session) that
    /// announces its writes on, and forwards to its subscribed client, the `changes` shared by
    /// every session of the host.
    pub fn with_changes(registry: Arc<StoreRegistry>, changes: GraphChanges) -> MemoryService {
        MemoryService {
            registry,
            changes,
            subscription: Arc::default(),
            tool_router: TOOL_ROUTER.clone(),
        }
    }

    /// Runs `op` on the session's store (off the async threads), then, when it succeeded and
    /// `mutates`, announces the DB changed. The outer error is a failed task, the inner one
    /// the store's.
    async fn run_store<T: Send + 'static>(
        &self,
        extensions: &Extensions,
        mutates: bool,
        op: impl Fn(&MemoryStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Result<T, StoreError>, ErrorData> {
        let registry = self.registry.clone();
        let project = project_path(extensions);
        let outcome = tokio::task::spawn_blocking(move || registry.run(project.as_deref(), op))
            .await
            .map_err(|e| {
                ErrorData::internal_error(format!("memory store task failed: {e}"), None)
            })?;
        Ok(outcome.map(|(value, db)| {
            if mutates {
                self.changes.announce(&db);
            }
            value
        }))
    }

    /// [`Self::run_store`] for a tool that only reads.
    async fn run_tool<T: Send + 'static>(
        &self,
        extensions: &Extensions,
        op: impl Fn(&MemoryStore) -> Result<T, StoreError> + Send + 'static,
        answer: impl FnOnce(T) -> Result<CallToolResult, ErrorData>,
    ) -> Result<CallToolResult, ErrorData> {
        tool_outcome(self.run_store(extensions, false, op).await?, answer)
    }

    /// [`Self::run_store`] for a tool that writes: its success notifies the subscribers.
    async fn run_write_tool<T: Send + 'static>(
        &self,
        extensions: &Extensions,
        op: impl Fn(&MemoryStore) -> Result<T, StoreError> + Send + 'static,
        answer: impl FnOnce(T) -> Result<CallToolResult, ErrorData>,
    ) -> Result<CallToolResult, ErrorData> {
        tool_outcome(self.run_store(extensions, true, op).await?, answer)
    }

    #[tool(
        name = "create_entities",
        title = "Create Entities",
        description = "Create multiple new entities in the knowledge graph",
        input_schema = schemas::create_entities_input(),
        output_schema = schemas::entities_output(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn create_entities(
        &self,
        Parameters(args): Parameters<CreateEntitiesArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let entities: Vec<Entity> = args.entities.into_iter().map(Into::into).collect();
        self.run_write_tool(
            &extensions,
            move |s| s.create_entities(&entities),
            |created| {
                let wire: Vec<WireEntity> = created.into_iter().map(Into::into).collect();
                json_result(&wire, json!({"entities": to_value(&wire)?}))
            },
        )
        .await
    }

    #[tool(
        name = "create_relations",
        title = "Create Relations",
        description = "Create multiple new relations between entities in the knowledge graph. Relations should be in active voice",
        input_schema = schemas::create_relations_input(),
        output_schema = schemas::relations_output(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn create_relations(
        &self,
        Parameters(args): Parameters<RelationsArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let relations: Vec<Relation> = args.relations.into_iter().map(Into::into).collect();
        self.run_write_tool(
            &extensions,
            move |s| s.create_relations(&relations),
            |created| {
                let wire: Vec<WireRelation> = created.into_iter().map(Into::into).collect();
                json_result(&wire, json!({"relations": to_value(&wire)?}))
            },
        )
        .await
    }

    #[tool(
        name = "add_observations",
        title = "Add Observations",
        description = "Add new observations to existing entities in the knowledge graph",
        input_schema = schemas::add_observations_input(),
        output_schema = schemas::add_observations_output(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn add_observations(
        &self,
        Parameters(args): Parameters<AddObservationsArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let additions: Vec<ObservationAddition> = args
            .observations
            .into_iter()
            .map(|a| ObservationAddition {
                entity_name: a.entity_name,
                contents: a.contents,
            })
            .collect();
        self.run_write_tool(
            &extensions,
            move |s| s.add_observations(&additions),
            |added| {
                let wire: Vec<WireAdded> = added.into_iter().map(Into::into).collect();
                json_result(&wire, json!({"results": to_value(&wire)?}))
            },
        )
        .await
    }

    #[tool(
        name = "delete_entities",
        title = "Delete Entities",
        description = "Delete multiple entities and their associated relations from the knowledge graph",
        input_schema = schemas::delete_entities_input(),
        output_schema = schemas::success_output(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn delete_entities(
        &self,
        Parameters(args): Parameters<DeleteEntitiesArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let names = args.entity_names;
        self.run_write_tool(
            &extensions,
            move |s| s.delete_entities(&names),
            |()| Ok(message_result("Entities deleted successfully")),
        )
        .await
    }

    #[tool(
        name = "delete_observations",
        title = "Delete Observations",
        description = "Delete specific observations from entities in the knowledge graph",
        input_schema = schemas::delete_observations_input(),
        output_schema = schemas::success_output(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn delete_observations(
        &self,
        Parameters(args): Parameters<DeleteObservationsArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let deletions: Vec<ObservationDeletion> = args
            .deletions
            .into_iter()
            .map(|d| ObservationDeletion {
                entity_name: d.entity_name,
                observations: d.observations,
            })
            .collect();
        self.run_write_tool(
            &extensions,
            move |s| s.delete_observations(&deletions),
            |()| Ok(message_result("Observations deleted successfully")),
        )
        .await
    }

    #[tool(
        name = "delete_relations",
        title = "Delete Relations",
        description = "Delete multiple relations from the knowledge graph",
        input_schema = schemas::delete_relations_input(),
        output_schema = schemas::success_output(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn delete_relations(
        &self,
        Parameters(args): Parameters<RelationsArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let relations: Vec<Relation> = args.relations.into_iter().map(Into::into).collect();
        self.run_write_tool(
            &extensions,
            move |s| s.delete_relations(&relations),
            |()| Ok(message_result("Relations deleted successfully")),
        )
        .await
    }

    #[tool(
        name = "read_graph",
        title = "Read Graph",
        description = "Read the entire knowledge graph",
        input_schema = schemas::read_graph_input(),
        output_schema = schemas::graph_output(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn read_graph(
        &self,
        Parameters(_args): Parameters<NoArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        self.run_tool(&extensions, |s| s.read_graph(), graph_result)
            .await
    }

    #[tool(
        name = "search_nodes",
        title = "Search Nodes",
        description = "Search for nodes in the knowledge graph based on a query",
        input_schema = schemas::search_nodes_input(),
        output_schema = schemas::graph_output(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn search_nodes(
        &self,
        Parameters(args): Parameters<SearchNodesArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let query = args.query;
        self.run_tool(&extensions, move |s| s.search_nodes(&query), graph_result)
            .await
    }

    #[tool(
        name = "open_nodes",
        title = "Open Nodes",
        description = "Open specific nodes in the knowledge graph by their names",
        input_schema = schemas::open_nodes_input(),
        output_schema = schemas::graph_output(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn open_nodes(
        &self,
        Parameters(args): Parameters<OpenNodesArgs>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let names = args.names;
        self.run_tool(&extensions, move |s| s.open_nodes(&names), graph_result)
            .await
    }
}

impl MemoryService {
    /// The path of the session's DB (opening it, off the async threads).
    async fn db_path(&self, extensions: &Extensions) -> Result<PathBuf, ErrorData> {
        self.run_store(extensions, false, |store| Ok(store.path().to_owned()))
            .await?
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    /// The tools in the reference server's order.
    fn tools_in_order(&self) -> Vec<Tool> {
        let mut tools = self.tool_router.list_all();
        tools.sort_by_key(|t| {
            TOOL_ORDER
                .iter()
                .position(|n| *n == t.name)
                .unwrap_or(usize::MAX)
        });
        tools
    }
}

impl ServerHandler for MemoryService {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("memory-server", msm_core::VERSION))
        .with_instructions(
            "A knowledge graph memory (entities, relations, observations), one per project.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let cache_hints = is_2026_or_later(&context);
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools: self.tools_in_order(),
            meta: None,
            next_cursor: None,
            ttl_ms: cache_hints.then_some(0),
            cache_scope: cache_hints.then_some(CacheScope::Public),
        })
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut result = ListResourcesResult::with_all_items(vec![knowledge_graph_resource()]);
        if is_2026_or_later(&context) {
            result = result.with_ttl_ms(0).with_cache_scope(CacheScope::Public);
        }
        Ok(result)
    }

    /// Reads the session's project graph, as the reference does: `JSON.stringify(graph, null,
    /// 2)`; an unknown URI is the reference's invalid-params error.
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != RESOURCE_URI {
            return Err(unknown_resource(&request.uri));
        }
        let graph = self
            .run_store(&context.extensions, false, |s| s.read_graph())
            .await?
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let text = serde_json::to_string_pretty(&WireGraph::from(graph))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let contents = ResourceContents::TextResourceContents {
            uri: request.uri,
            mime_type: Some("application/json".to_owned()),
            text,
            meta: None,
        };
        let mut result = ReadResourceResult::new(vec![contents]);
        if is_2026_or_later(&context) {
            // The graph is the project's: no one else's cache may serve it.
            result = result.with_ttl_ms(0).with_cache_scope(CacheScope::Private);
        }
        Ok(result.into())
    }

    /// Subscribes this session to its DB's changes. Like the reference, any URI is accepted;
    /// only `memory://knowledge-graph` ever changes.
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri != RESOURCE_URI {
            return Ok(());
        }
        let db = self.db_path(&context.extensions).await?;
        self.subscription
            .start(db, &self.changes, context.peer.clone());
        Ok(())
    }

    /// A 2026-07-28 client may listen to the resource's updates.
    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(accepted_filter())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let changes = self.changes.watch();
        let db = self.db_path(&context.request_context().extensions).await?;
        listen_for_changes(context, changes, db).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri == RESOURCE_URI {
            self.subscription.stop();
        }
        Ok(())
    }

    /// Calls a tool; like the reference server, an unknown tool or bad arguments give an
    /// `isError` result (with the reference's `MCP error -32602: ...` wording), not a protocol
    /// error.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        if self.tool_router.get(&name).is_none() {
            return Ok(tool_error(format!("MCP error -32602: Tool {name} not found")).into());
        }
        let response = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await?;
        Ok(match response {
            CallToolResponse::Complete(result) if result.is_error == Some(true) => {
                rewrite_argument_error(&name, result).into()
            }
            other => other,
        })
    }
}

/// Whether the request's session (or stateless request) speaks 2026-07-28 or later, which
/// wants cache hints on list and read results.
fn is_2026_or_later(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

/// The TS SDK's answer to `resources/read` of an unknown URI (its message carries the code).
fn unknown_resource(uri: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_PARAMS,
        format!("MCP error -32602: Resource {uri} not found"),
        None,
    )
}

/// rmcp's "failed to deserialize parameters: ..." becomes the reference's wording.
fn rewrite_argument_error(tool: &str, result: CallToolResult) -> CallToolResult {
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone());
    match text
        .as_deref()
        .and_then(|t| t.strip_prefix(RMCP_ARGUMENT_ERROR))
    {
        Some(detail) => tool_error(format!(
            "MCP error -32602: Input validation error: Invalid arguments for tool {tool}: {detail}"
        )),
        None => result,
    }
}

#[cfg(test)]
mod tests;
