//! Query cost as Shopify calculates it for the GraphQL Admin API
//! (<https://shopify.dev/docs/api/usage/limits#cost-calculation>, "GraphQL Admin API rate limits"):
//! scalars and enums cost 0, objects 1, connections 2 plus `first` (or `last`) times the cost of one
//! item, mutations 10. The requested cost is computed from the query before it runs; the actual cost
//! from the data it returned (a connection that returns fewer items costs less, a null object nothing).

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationType, Selection,
    SelectionSet, TypeKind, TypeSystemDefinition,
};
use serde_json::Value;

/// Cost of each mutation field.
pub const MUTATION_COST: u64 = 10;
/// The most a single query may request.
pub const MAX_QUERY_COST: u64 = 1000;

/// Field types of the schema's object types, read once from its SDL.
#[derive(Debug, Default)]
pub struct CostModel {
    objects: HashMap<String, HashMap<String, String>>,
    query_type: String,
}

/// Why a cost could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    /// `operationName` names no operation, or several operations and no name.
    #[error("{0}")]
    Operation(String),
}

/// What kind of operation was costed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationKind {
    /// Whether it is a mutation.
    pub mutation: bool,
}

impl CostModel {
    /// Reads field types from `sdl`.
    pub fn from_sdl(sdl: &str) -> Self {
        let mut model = Self {
            query_type: "QueryRoot".to_owned(),
            ..Self::default()
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return model;
        };
        for definition in document.definitions {
            if let TypeSystemDefinition::Type(definition) = definition {
                let definition = definition.node;
                let fields = match definition.kind {
                    TypeKind::Object(object) => object.fields,
                    TypeKind::Interface(interface) => interface.fields,
                    _ => continue,
                };
                let fields = fields
                    .into_iter()
                    .map(|field| {
                        (
                            field.node.name.node.to_string(),
                            named_type(&field.node.ty.node.base),
                        )
                    })
                    .collect();
                model
                    .objects
                    .insert(definition.name.node.to_string(), fields);
            }
        }
        model
    }

    fn field_type(&self, parent: &str, field: &str) -> Option<&str> {
        self.objects.get(parent)?.get(field).map(String::as_str)
    }

    fn is_object(&self, type_name: &str) -> bool {
        self.objects.contains_key(type_name)
    }

    /// The requested cost of the operation `operation_name` in `document`.
    ///
    /// # Errors
    /// [`CostError::Operation`] when the operation cannot be chosen.
    pub fn requested(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Value,
    ) -> Result<(u64, OperationKind), CostError> {
        let operation = select_operation(document, operation_name)?;
        let walk = Walk {
            model: self,
            document,
            variables,
        };
        if operation.ty == OperationType::Mutation {
            let n_fields = walk.fields(&operation.selection_set.node).len() as u64;
            return Ok((n_fields * MUTATION_COST, OperationKind { mutation: true }));
        }
        let cost = walk.requested_set(&operation.selection_set.node, &self.query_type);
        Ok((cost, OperationKind { mutation: false }))
    }

    /// The actual cost of the operation given the `data` it returned.
    pub fn actual(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Value,
        data: &Value,
    ) -> u64 {
        let Ok(operation) = select_operation(document, operation_name) else {
            return 0;
        };
        let walk = Walk {
            model: self,
            document,
            variables,
        };
        if operation.ty == OperationType::Mutation {
            return walk.fields(&operation.selection_set.node).len() as u64 * MUTATION_COST;
        }
        walk.actual_set(&operation.selection_set.node, &self.query_type, data)
    }
}

fn named_type(base: &BaseType) -> String {
    match base {
        BaseType::Named(name) => name.to_string(),
        BaseType::List(inner) => named_type(&inner.base),
    }
}

fn select_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<&'a async_graphql::parser::types::OperationDefinition, CostError> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Ok(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(candidate, _)| candidate.as_str() == name)
            .map(|(_, operation)| &operation.node)
            .ok_or_else(|| CostError::Operation(format!("Unknown operation named \"{name}\"."))),
        (DocumentOperations::Multiple(operations), None) => {
            let mut all = operations.values();
            match (all.next(), all.next()) {
                (Some(operation), None) => Ok(&operation.node),
                _ => Err(CostError::Operation(
                    "An operation name is required when the document holds several operations"
                        .into(),
                )),
            }
        }
    }
}

/// The fields of a selection set with fragments spread in (our types are concrete, so type
/// conditions never exclude anything).
pub(crate) fn selection_fields<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
) -> Vec<&'a Field> {
    let mut fields = Vec::new();
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => fields.push(&field.node),
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    fields.extend(selection_fields(
                        document,
                        &fragment.node.selection_set.node,
                    ));
                }
            }
            Selection::InlineFragment(inline) => {
                fields.extend(selection_fields(document, &inline.node.selection_set.node));
            }
        }
    }
    fields
}

struct Walk<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    variables: &'a Value,
}

impl<'a> Walk<'a> {
    fn fields(&self, set: &'a SelectionSet) -> Vec<&'a Field> {
        selection_fields(self.document, set)
    }

    fn page_size(&self, field: &Field) -> u64 {
        let value = field
            .arguments
            .iter()
            .find(|(name, _)| name.node == "first")
            .or_else(|| field.arguments.iter().find(|(name, _)| name.node == "last"))
            .map(|(_, value)| value.node.clone());
        let resolved = value.and_then(|value| {
            value
                .into_const_with(|name| {
                    let bound = self
                        .variables
                        .get(name.as_str())
                        .cloned()
                        .unwrap_or(Value::Null);
                    async_graphql::Value::from_json(bound).map_err(|_| ())
                })
                .ok()
        });
        match resolved {
            Some(async_graphql::Value::Number(number)) => number.as_u64().unwrap_or(0),
            _ => 0,
        }
    }

    fn is_connection(&self, type_name: &str) -> bool {
        type_name.ends_with("Connection") && self.model.is_object(type_name)
    }

    fn requested_set(&self, set: &'a SelectionSet, parent: &str) -> u64 {
        self.fields(set)
            .into_iter()
            .map(|field| {
                let Some(type_name) = self.model.field_type(parent, &field.name.node) else {
                    return 0;
                };
                if self.is_connection(type_name) {
                    2 + self.page_size(field)
                        * self.requested_item(&field.selection_set.node, type_name)
                } else if self.model.is_object(type_name) {
                    1 + self.requested_set(&field.selection_set.node, type_name)
                } else {
                    0
                }
            })
            .sum()
    }

    /// Cost of one item of a connection: its node object, reached through `edges { node }` or `nodes`.
    fn requested_item(&self, set: &'a SelectionSet, connection: &str) -> u64 {
        let mut item = 0;
        for field in self.fields(set) {
            let Some(type_name) = self.model.field_type(connection, &field.name.node) else {
                continue;
            };
            let cost = match field.name.node.as_str() {
                "nodes" => 1 + self.requested_set(&field.selection_set.node, type_name),
                "edges" => self
                    .fields(&field.selection_set.node)
                    .into_iter()
                    .filter(|edge_field| edge_field.name.node == "node")
                    .map(|node| {
                        let node_type =
                            self.model.field_type(type_name, "node").unwrap_or_default();
                        1 + self.requested_set(&node.selection_set.node, node_type)
                    })
                    .sum(),
                _ => 0,
            };
            item = item.max(cost);
        }
        item
    }

    fn actual_set(&self, set: &'a SelectionSet, parent: &str, data: &Value) -> u64 {
        self.fields(set)
            .into_iter()
            .map(|field| {
                let Some(type_name) = self.model.field_type(parent, &field.name.node) else {
                    return 0;
                };
                let key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                let value = data.get(key).unwrap_or(&Value::Null);
                if value.is_null() || !self.model.is_object(type_name) {
                    0
                } else if self.is_connection(type_name) {
                    2 + self.actual_items(&field.selection_set.node, type_name, value)
                } else if let Value::Array(items) = value {
                    items
                        .iter()
                        .map(|item| 1 + self.actual_set(&field.selection_set.node, type_name, item))
                        .max()
                        .unwrap_or(0)
                } else {
                    1 + self.actual_set(&field.selection_set.node, type_name, value)
                }
            })
            .sum()
    }

    fn actual_items(&self, set: &'a SelectionSet, connection: &str, value: &Value) -> u64 {
        let mut total = 0;
        for field in self.fields(set) {
            let Some(type_name) = self.model.field_type(connection, &field.name.node) else {
                continue;
            };
            let key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
            let Some(Value::Array(items)) = value.get(key) else {
                continue;
            };
            let cost: u64 = match field.name.node.as_str() {
                "nodes" => items
                    .iter()
                    .filter(|node| !node.is_null())
                    .map(|node| 1 + self.actual_set(&field.selection_set.node, type_name, node))
                    .sum(),
                "edges" => {
                    let node_type = self.model.field_type(type_name, "node").unwrap_or_default();
                    items
                        .iter()
                        .map(|edge| {
                            self.fields(&field.selection_set.node)
                                .into_iter()
                                .filter(|edge_field| edge_field.name.node == "node")
                                .map(|node_field| {
                                    let node_key = node_field
                                        .alias
                                        .as_ref()
                                        .unwrap_or(&node_field.name)
                                        .node
                                        .as_str();
                                    match edge.get(node_key) {
                                        Some(node) if !node.is_null() => {
                                            1 + self.actual_set(
                                                &node_field.selection_set.node,
                                                node_type,
                                                node,
                                            )
                                        }
                                        _ => 0,
                                    }
                                })
                                .sum::<u64>()
                        })
                        .sum()
                }
                _ => 0,
            };
            total = total.max(cost);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(query: &str, expected: u64) {
        let model = CostModel::from_sdl(&crate::admin::schema::build().sdl());
        let document = async_graphql::parser::parse_query(query).unwrap();
        let (cost, _) = model
            .requested(&document, None, &serde_json::json!({"n": 5}))
            .unwrap();
        assert_eq!(cost, expected, "{query}");
    }

    #[test]
    fn scalars_on_the_shop_object_cost_one() {
        check("{ shop { name ianaTimezone } }", 1);
    }

    #[test]
    fn a_nested_object_adds_one() {
        check("{ shop { name plan { displayName } } }", 2);
    }

    #[test]
    fn a_connection_costs_two_plus_first_times_its_node() {
        check("{ orders(first: 10) { edges { node { id name } } } }", 12);
    }

    #[test]
    fn nodes_and_page_info_cost_the_same_as_edges() {
        check(
            "{ orders(first: 10) { nodes { id } pageInfo { hasNextPage } } }",
            12,
        );
    }

    #[test]
    fn nested_connections_multiply() {
        check(
            "{ products(first: 10) { edges { node { title variants(first: 5) { edges { node { sku } } } } } } }",
            2 + 10 * (1 + 2 + 5),
        );
    }

    #[test]
    fn page_size_can_come_from_a_variable() {
        check(
            "query($n: Int) { locations(first: $n) { nodes { name } } }",
            2 + 5,
        );
    }

    #[test]
    fn fragments_are_counted_where_they_are_spread() {
        check(
            "{ orders(first: 2) { nodes { ...O } } } fragment O on Order { id totalPriceSet { shopMoney { amount } } }",
            2 + 2 * 3,
        );
    }

    #[test]
    fn each_mutation_field_costs_ten() {
        check(
            "mutation { webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: {uri: \"https://x\"}) { userErrors { message } } }",
            10,
        );
    }
}
