//! In-process tests of the memory handler: an rmcp client and the handler over a duplex pipe.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use msm_memory::StoreRegistry;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ErrorCode, Extensions, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotificationParam,
    ServerNotification, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RunningService, ServiceError};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{GraphChanges, MemoryService, RESOURCE_URI, TOOL_ORDER, project_path};

struct Fixture {
    client: RunningService<RoleClient, ()>,
    _dir: tempfile::TempDir,
}

async fn connect() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(StoreRegistry::new(
        dir.path().join("home"),
        dir.path().join("state").join("memory-dbs.json"),
    ));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let service = MemoryService::new(registry);
    tokio::spawn(async move {
        let running = service.serve(server_io).await.expect("server starts");
        let _ = running.waiting().await;
    });
    let client = ().serve(client_io).await.expect("client connects");
    Fixture { client, _dir: dir }
}

async fn call(fixture: &Fixture, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    fixture
        .client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .expect("tools/call answers with a result")
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("text content").text
}

#[tokio::test]
async fn tools_are_the_reference_nine_in_its_order_with_schemas() {
    let fixture = connect().await;
    let tools = fixture.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOL_ORDER);
    for tool in &tools {
        assert!(tool.title.is_some(), "{} has a title", tool.name);
        assert!(
            tool.output_schema.is_some(),
            "{} has an output schema",
            tool.name
        );
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
    }
    let create = &tools[0];
    assert_eq!(
        create.input_schema["properties"]["entities"]["items"]["required"],
        json!(["name", "entityType", "observations"])
    );
    assert_eq!(
        create.annotations.as_ref().unwrap().read_only_hint,
        Some(false)
    );
}

#[tokio::test]
async fn results_are_the_reference_text_and_structured_content() {
    let fixture = connect().await;
    let created = call(
        &fixture,
        "create_entities",
        json!({"entities": [{"name": "Straße", "entityType": "Ort", "observations": ["ÄÖÜ", "100%_sure"]}]}),
    )
    .await;
    assert_eq!(created.is_error, None);
    let expected_entities =
        json!([{"name": "Straße", "entityType": "Ort", "observations": ["ÄÖÜ", "100%_sure"]}]);
    assert_eq!(
        text(&created),
        serde_json::to_string_pretty(&expected_entities).unwrap()
    );
    assert_eq!(
        created.structured_content,
        Some(json!({"entities": expected_entities}))
    );

    let again = call(
        &fixture,
        "create_entities",
        json!({"entities": [{"name": "Straße", "entityType": "x", "observations": []}]}),
    )
    .await;
    assert_eq!(text(&again), "[]");

    let relations = call(
        &fixture,
        "create_relations",
        json!({"relations": [{"from": "Straße", "to": "Nowhere", "relationType": "leads to"}]}),
    )
    .await;
    assert_eq!(
        relations.structured_content,
        Some(
            json!({"relations": [{"from": "Straße", "to": "Nowhere", "relationType": "leads to"}]})
        )
    );

    let search = call(&fixture, "search_nodes", json!({"query": "äöü"})).await;
    assert_eq!(
        search.structured_content,
        Some(json!({
            "entities": expected_entities,
            "relations": [{"from": "Straße", "to": "Nowhere", "relationType": "leads to"}]
        }))
    );
    let nothing = call(&fixture, "search_nodes", json!({"query": "0_%"})).await;
    assert_eq!(
        text(&nothing),
        "{\n  \"entities\": [],\n  \"relations\": []\n}"
    );

    let added = call(
        &fixture,
        "add_observations",
        json!({"observations": [{"entityName": "Straße", "contents": ["ÄÖÜ", "new"]}]}),
    )
    .await;
    assert_eq!(
        added.structured_content,
        Some(json!({"results": [{"entityName": "Straße", "addedObservations": ["new"]}]}))
    );

    let deleted = call(
        &fixture,
        "delete_entities",
        json!({"entityNames": ["Straße"]}),
    )
    .await;
    assert_eq!(text(&deleted), "Entities deleted successfully");
    assert_eq!(
        deleted.structured_content,
        Some(json!({"success": true, "message": "Entities deleted successfully"}))
    );
    let graph = call(&fixture, "read_graph", json!({})).await;
    assert_eq!(
        graph.structured_content,
        Some(json!({"entities": [], "relations": []}))
    );
}

#[tokio::test]
async fn errors_are_is_error_results_with_the_reference_wording() {
    let fixture = connect().await;
    let cases = [
        (
            "add_observations",
            json!({"observations": [{"entityName": "Nope", "contents": ["a"]}]}),
            "Entity with name Nope not found",
        ),
        (
            "no_such_tool",
            json!({}),
            "MCP error -32602: Tool no_such_tool not found",
        ),
        (
            "create_entities",
            json!({}),
            "MCP error -32602: Input validation error: Invalid arguments for tool create_entities: ",
        ),
        (
            "search_nodes",
            json!({"query": 5}),
            "MCP error -32602: Input validation error: Invalid arguments for tool search_nodes: ",
        ),
    ];
    for (tool, arguments, expected_prefix) in cases {
        let result = call(&fixture, tool, arguments).await;
        assert_eq!(result.is_error, Some(true), "{tool}");
        assert!(
            text(&result).starts_with(expected_prefix),
            "{tool}: {:?}",
            text(&result)
        );
    }
}

#[test]
fn the_project_comes_from_the_http_request_parts_header() {
    let mut extensions = Extensions::new();
    assert_eq!(project_path(&extensions), None);
    let (parts, ()) = http::Request::builder()
        .header("Mcp-Project-Path", "/some/project")
        .body(())
        .unwrap()
        .into_parts();
    extensions.insert(parts);
    assert_eq!(project_path(&extensions).as_deref(), Some("/some/project"));
}

fn registry_in(dir: &Path) -> Arc<StoreRegistry> {
    Arc::new(StoreRegistry::new(
        dir.join("home"),
        dir.join("state").join("memory-dbs.json"),
    ))
}

/// A client that records the URIs of the `notifications/resources/updated` it receives.
#[derive(Clone)]
struct UpdateRecorder(mpsc::UnboundedSender<String>);

impl ClientHandler for UpdateRecorder {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

/// A session of `service` with a recording client.
struct Session {
    client: RunningService<RoleClient, UpdateRecorder>,
    updates: mpsc::UnboundedReceiver<String>,
    server: tokio::task::JoinHandle<()>,
}

async fn session(service: MemoryService) -> Session {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(async move {
        let running = service.serve(server_io).await.expect("server starts");
        let _ = running.waiting().await;
    });
    let (sender, updates) = mpsc::unbounded_channel();
    let client = UpdateRecorder(sender)
        .serve(client_io)
        .await
        .expect("client connects");
    Session {
        client,
        updates,
        server,
    }
}

impl Session {
    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .expect("tools/call answers with a result")
    }

    #[expect(deprecated, reason = "resources/subscribe is what legacy sessions use")]
    async fn subscribe(&self) {
        self.client
            .subscribe(SubscribeRequestParams::new(RESOURCE_URI))
            .await
            .expect("subscribe succeeds");
    }

    #[expect(
        deprecated,
        reason = "resources/unsubscribe is what legacy sessions use"
    )]
    async fn unsubscribe(&self) {
        self.client
            .unsubscribe(UnsubscribeRequestParams::new(RESOURCE_URI))
            .await
            .expect("unsubscribe succeeds");
    }

    /// The next update notification, failing after a while.
    async fn next_update(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(5), self.updates.recv())
            .await
            .expect("an update notification arrives")
            .expect("the client is alive")
    }

    /// Asserts no update notification arrives for a moment.
    async fn assert_no_update(&mut self, what: &str) {
        let waited = tokio::time::timeout(Duration::from_millis(200), self.updates.recv()).await;
        assert!(waited.is_err(), "{what}: unexpected {waited:?}");
    }
}

#[tokio::test]
async fn the_knowledge_graph_resource_is_listed_and_read_like_the_reference() {
    let fixture = connect().await;
    let info = fixture.client.peer_info().expect("initialized");
    let resources_capability = info.capabilities.resources.as_ref().expect("resources");
    assert_eq!(resources_capability.subscribe, Some(true));
    assert!(info.capabilities.tools.is_some());

    let resources = fixture.client.list_all_resources().await.unwrap();
    assert_eq!(
        serde_json::to_value(&resources).unwrap(),
        json!([{
            "uri": "memory://knowledge-graph",
            "name": "knowledge-graph",
            "title": "Knowledge Graph",
            "description": "The full knowledge graph with all entities and relations",
            "mimeType": "application/json",
        }])
    );

    call(
        &fixture,
        "create_entities",
        json!({"entities": [{"name": "Straße", "entityType": "Ort", "observations": ["ÄÖÜ"]}]}),
    )
    .await;
    call(
        &fixture,
        "create_relations",
        json!({"relations": [{"from": "Straße", "to": "Nowhere", "relationType": "leads to"}]}),
    )
    .await;
    let read = fixture
        .client
        .read_resource(ReadResourceRequestParams::new(RESOURCE_URI))
        .await
        .unwrap();
    let graph_tool = call(&fixture, "read_graph", json!({})).await;
    assert_eq!(read.contents.len(), 1);
    let ResourceContents::TextResourceContents {
        uri,
        mime_type,
        text: read_text,
        ..
    } = &read.contents[0]
    else {
        panic!("text contents expected: {read:?}")
    };
    assert_eq!(uri, RESOURCE_URI);
    assert_eq!(mime_type.as_deref(), Some("application/json"));
    assert_eq!(read_text, text(&graph_tool));
    assert!(read_text.starts_with("{\n  \"entities\": [\n    {\n      \"name\": \"Straße\""));

    let error = fixture
        .client
        .read_resource(ReadResourceRequestParams::new("memory://nope"))
        .await
        .expect_err("an unknown resource is an error");
    let ServiceError::McpError(error) = error else {
        panic!("a JSON-RPC error expected: {error:?}")
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(
        error.message,
        "MCP error -32602: Resource memory://nope not found"
    );
}

#[tokio::test]
async fn successful_writes_notify_every_subscribed_session_on_the_same_db_only() {
    let dir = tempfile::tempdir().unwrap();
    let shared = registry_in(&dir.path().join("one"));
    let other = registry_in(&dir.path().join("two"));
    let changes = GraphChanges::new();
    let mut writer = session(MemoryService::with_changes(shared.clone(), changes.clone())).await;
    let mut same_db = session(MemoryService::with_changes(shared.clone(), changes.clone())).await;
    let mut other_db = session(MemoryService::with_changes(other, changes.clone())).await;
    let mut not_subscribed = session(MemoryService::with_changes(shared, changes)).await;
    for subscriber in [&writer, &same_db, &other_db] {
        subscriber.subscribe().await;
    }

    let entity = json!({"entities": [{"name": "A", "entityType": "t", "observations": []}]});
    writer.call("create_entities", entity).await;
    assert_eq!(writer.next_update().await, RESOURCE_URI);
    assert_eq!(same_db.next_update().await, RESOURCE_URI);
    other_db.assert_no_update("another DB").await;
    not_subscribed.assert_no_update("not subscribed").await;

    // Reads and failed writes change nothing.
    writer.call("read_graph", json!({})).await;
    let failed = writer
        .call(
            "add_observations",
            json!({"observations": [{"entityName": "Missing", "contents": ["x"]}]}),
        )
        .await;
    assert_eq!(failed.is_error, Some(true));
    same_db.assert_no_update("a read and a failed write").await;

    // Every mutating tool notifies; after unsubscribing, nothing more arrives.
    same_db.unsubscribe().await;
    let writes = [
        (
            "create_entities",
            json!({"entities": [{"name": "B", "entityType": "t", "observations": []}]}),
        ),
        (
            "create_relations",
            json!({"relations": [{"from": "A", "to": "B", "relationType": "r"}]}),
        ),
        (
            "add_observations",
            json!({"observations": [{"entityName": "A", "contents": ["o"]}]}),
        ),
        (
            "delete_observations",
            json!({"deletions": [{"entityName": "A", "observations": ["o"]}]}),
        ),
        (
            "delete_relations",
            json!({"relations": [{"from": "A", "to": "B", "relationType": "r"}]}),
        ),
        ("delete_entities", json!({"entityNames": ["B"]})),
    ];
    for (tool, arguments) in writes {
        let result = writer.call(tool, arguments).await;
        assert_eq!(result.is_error, None, "{tool}");
        assert_eq!(writer.next_update().await, RESOURCE_URI, "{tool}");
    }
    same_db.assert_no_update("unsubscribed").await;
}

#[tokio::test]
async fn a_subscription_ends_with_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let service = MemoryService::new(registry_in(dir.path()));
    let subscription = Arc::downgrade(&service.subscription);
    let subscriber = session(service).await;
    subscriber.subscribe().await;
    assert!(
        subscription
            .upgrade()
            .expect("the session is alive")
            .is_active()
    );

    let server = subscriber.server;
    subscriber.client.cancel().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server session ends")
        .unwrap();
    assert!(
        subscription.upgrade().is_none(),
        "the handler and its forwarding task are gone"
    );
}

#[tokio::test]
async fn a_2026_listen_stream_gets_the_updates_of_its_db_only() {
    let dir = tempfile::tempdir().unwrap();
    let shared = registry_in(&dir.path().join("one"));
    let other = registry_in(&dir.path().join("two"));
    let changes = GraphChanges::new();
    let writer = session(MemoryService::with_changes(shared.clone(), changes.clone())).await;
    let stranger = session(MemoryService::with_changes(other, changes.clone())).await;

    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let listened = MemoryService::with_changes(shared, changes);
    tokio::spawn(async move {
        let running = listened.serve(server_io).await.expect("server starts");
        let _ = running.waiting().await;
    });
    let listener = ()
        .serve_with_lifecycle(
            client_io,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("a 2026-07-28 client connects");
    let requested = SubscriptionFilter::builder()
        .resource_subscription(RESOURCE_URI)
        .resource_subscription("memory://nope")
        .tools_list_changed()
        .build();
    let mut subscription = listener
        .listen(requested)
        .await
        .expect("listen is acknowledged");
    assert_eq!(
        subscription.acknowledged(),
        &SubscriptionFilter::builder()
            .resource_subscription(RESOURCE_URI)
            .build()
    );

    let elsewhere = json!({"entities": [{"name": "X", "entityType": "t", "observations": []}]});
    stranger.call("create_entities", elsewhere).await;
    let quiet = tokio::time::timeout(Duration::from_millis(200), subscription.next()).await;
    assert!(
        quiet.is_err(),
        "another DB's write was forwarded: {quiet:?}"
    );

    let here = json!({"entities": [{"name": "A", "entityType": "t", "observations": []}]});
    writer.call("create_entities", here).await;
    let notification = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("an update arrives")
        .expect("the stream is alive")
        .expect("a notification");
    let ServerNotification::ResourceUpdatedNotification(update) = notification else {
        panic!("a resource update expected: {notification:?}")
    };
    assert_eq!(update.params.uri, RESOURCE_URI);

    let read = listener
        .read_resource(ReadResourceRequestParams::new(RESOURCE_URI))
        .await
        .unwrap();
    assert_eq!(read.ttl_ms, Some(0), "2026-07-28 results carry cache hints");
    listener.cancel().await.unwrap();
}
