//! The JSON schemas of the nine memory tools, the same as the reference server's (what its
//! zod schemas turn into on `tools/list`), so that clients see one tool set whichever serves.

use std::sync::Arc;

use rmcp::model::JsonObject;
use serde_json::{Value, json};

const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn top_level(properties: Value, required: &[&str]) -> Arc<JsonObject> {
    let mut value = object(properties, required);
    value["$schema"] = json!(DRAFT_07);
    match value {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!("object() builds an object"),
    }
}

fn strings(description: Option<&str>) -> Value {
    let mut v = json!({"type": "array", "items": {"type": "string"}});
    if let Some(d) = description {
        v["description"] = json!(d);
    }
    v
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn entity() -> Value {
    object(
        json!({
            "name": string("The name of the entity"),
            "entityType": string("The type of the entity"),
            "observations": strings(Some("An array of observation contents associated with the entity")),
        }),
        &["name", "entityType", "observations"],
    )
}

fn relation() -> Value {
    object(
        json!({
            "from": string("The name of the entity where the relation starts"),
            "to": string("The name of the entity where the relation ends"),
            "relationType": string("The type of the relation"),
        }),
        &["from", "to", "relationType"],
    )
}

fn array_of(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

pub(crate) fn create_entities_input() -> Arc<JsonObject> {
    top_level(json!({"entities": array_of(entity())}), &["entities"])
}

pub(crate) fn entities_output() -> Arc<JsonObject> {
    create_entities_input()
}

pub(crate) fn create_relations_input() -> Arc<JsonObject> {
    top_level(json!({"relations": array_of(relation())}), &["relations"])
}

pub(crate) fn relations_output() -> Arc<JsonObject> {
    create_relations_input()
}

pub(crate) fn add_observations_input() -> Arc<JsonObject> {
    let item = object(
        json!({
            "entityName": string("The name of the entity to add the observations to"),
            "contents": strings(Some("An array of observation contents to add")),
        }),
        &["entityName", "contents"],
    );
    top_level(json!({"observations": array_of(item)}), &["observations"])
}

pub(crate) fn add_observations_output() -> Arc<JsonObject> {
    let item = object(
        json!({
            "entityName": {"type": "string"},
            "addedObservations": strings(None),
        }),
        &["entityName", "addedObservations"],
    );
    top_level(json!({"results": array_of(item)}), &["results"])
}

pub(crate) fn delete_entities_input() -> Arc<JsonObject> {
    top_level(
        json!({"entityNames": strings(Some("An array of entity names to delete"))}),
        &["entityNames"],
    )
}

pub(crate) fn delete_observations_input() -> Arc<JsonObject> {
    let item = object(
        json!({
            "entityName": string("The name of the entity containing the observations"),
            "observations": strings(Some("An array of observations to delete")),
        }),
        &["entityName", "observations"],
    );
    top_level(json!({"deletions": array_of(item)}), &["deletions"])
}

pub(crate) fn delete_relations_input() -> Arc<JsonObject> {
    let mut relations = array_of(relation());
    relations["description"] = json!("An array of relations to delete");
    top_level(json!({"relations": relations}), &["relations"])
}

pub(crate) fn success_output() -> Arc<JsonObject> {
    top_level(
        json!({"success": {"type": "boolean"}, "message": {"type": "string"}}),
        &["success", "message"],
    )
}

pub(crate) fn read_graph_input() -> Arc<JsonObject> {
    match json!({"$schema": DRAFT_07, "type": "object", "properties": {}}) {
        Value::Object(map) => Arc::new(map),
        _ => unreachable!(),
    }
}

pub(crate) fn graph_output() -> Arc<JsonObject> {
    top_level(
        json!({"entities": array_of(entity()), "relations": array_of(relation())}),
        &["entities", "relations"],
    )
}

pub(crate) fn search_nodes_input() -> Arc<JsonObject> {
    top_level(
        json!({"query": string("The search query to match against entity names, types, and observation content")}),
        &["query"],
    )
}

pub(crate) fn open_nodes_input() -> Arc<JsonObject> {
    top_level(
        json!({"names": strings(Some("An array of entity names to retrieve"))}),
        &["names"],
    )
}
