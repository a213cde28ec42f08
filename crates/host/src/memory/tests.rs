//! In-process tests of the memory handler: an rmcp client and the handler over a duplex pipe.

use std::sync::Arc;

use msm_memory::StoreRegistry;
use rmcp::model::{CallToolRequestParams, CallToolResult, Extensions};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use super::{MemoryService, TOOL_ORDER, project_path};

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
