//! The plain data types of the knowledge graph, named as the reference server names them.

/// A node of the graph: a unique name, a type, and observations in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub name: String,
    pub entity_type: String,
    pub observations: Vec<String>,
}

/// A directed, typed edge between two entity names. Its endpoints need not exist (as in the
/// reference server, a relation may dangle).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    pub from: String,
    pub to: String,
    pub relation_type: String,
}

/// Entities and relations, each in insertion order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    pub entities: Vec<Entity>,
    pub relations: Vec<Relation>,
}

/// One item of `add_observations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationAddition {
    pub entity_name: String,
    pub contents: Vec<String>,
}

/// What `add_observations` added to one entity (only the contents it did not have yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedObservations {
    pub entity_name: String,
    pub added_observations: Vec<String>,
}

/// One item of `delete_observations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationDeletion {
    pub entity_name: String,
    pub observations: Vec<String>,
}

/// Row counts of one DB, for the manager API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    pub entities: u64,
    pub relations: u64,
    pub observations: u64,
}

/// One page of a DB's entities matching a query (search semantics; empty query = all), with the
/// relations touching that page's entities. `total` counts every matching entity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphPage {
    pub entities: Vec<Entity>,
    pub relations: Vec<Relation>,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}
