//! The bulk query's checks and its JSONL shape
//! (<https://shopify.dev/docs/api/usage/bulk-operations/queries>): a query is refused unless it has one
//! top-level field, at least one and at most five connections, nested at most two deep, none inside a
//! list field, and every nested connection's parent node selects `id`. The result has one line per
//! connection node with `edges`/`node` removed; a nested node carries `"__parentId"`, the `id` of the
//! node it belongs to; lists and objects stay inline.

use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType,
    SelectionSet, TypeKind, TypeSystemDefinition,
};

/// Shopify's refusal of `refunds { refundLineItems { … } }` and the like.
pub(crate) const CONNECTION_IN_LIST: &str =
    "Queries that contain a connection field within a list field are not currently supported.";

/// Field types of the schema, read from its SDL.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    types: HashMap<String, HashMap<String, FieldShape>>,
}

#[derive(Debug)]
struct FieldShape {
    type_name: String,
    list: bool,
}

impl Shape {
    pub(crate) fn from_sdl(sdl: &str) -> Self {
        let mut shape = Self::default();
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return shape;
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else {
                continue;
            };
            let definition = definition.node;
            let TypeKind::Object(object) = definition.kind else {
                continue;
            };
            let fields = object
                .fields
                .into_iter()
                .map(|field| {
                    let ty = &field.node.ty.node;
                    let list = matches!(ty.base, BaseType::List(_));
                    let mut base = &ty.base;
                    while let BaseType::List(inner) = base {
                        base = &inner.base;
                    }
                    let type_name = match base {
                        BaseType::Named(name) => name.to_string(),
                        BaseType::List(_) => String::new(),
                    };
                    (
                        field.node.name.node.to_string(),
                        FieldShape { type_name, list },
                    )
                })
                .collect();
            shape.types.insert(definition.name.node.to_string(), fields);
        }
        shape
    }

    fn field(&self, parent: &str, name: &str) -> Option<&FieldShape> {
        self.types.get(parent)?.get(name)
    }

    fn is_object(&self, type_name: &str) -> bool {
        self.types.contains_key(type_name)
    }

    fn is_connection(&self, type_name: &str) -> bool {
        type_name.ends_with("Connection") && self.is_object(type_name)
    }

    fn node_type(&self, connection: &str) -> Option<&str> {
        self.field(connection, "nodes")
            .map(|field| field.type_name.as_str())
    }
}

/// The one operation of a bulk query document.
fn operation(document: &ExecutableDocument) -> Option<&OperationDefinition> {
    match &document.operations {
        DocumentOperations::Single(operation) => Some(&operation.node),
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node)
        }
        DocumentOperations::Multiple(_) => None,
    }
}

struct Walk<'a> {
    shape: &'a Shape,
    document: &'a ExecutableDocument,
}

impl<'a> Walk<'a> {
    fn fields(&self, set: &'a SelectionSet) -> Vec<&'a Field> {
        crate::admin::cost::selection_fields(self.document, set)
    }

    fn selects_id(&self, set: &'a SelectionSet) -> bool {
        self.fields(set)
            .iter()
            .any(|field| field.name.node == "id" && field.alias.is_none())
    }

    /// The node selections of a connection field: `edges { node { … } }` and `nodes { … }`.
    fn node_sets(&self, field: &'a Field) -> Vec<&'a Field> {
        let mut sets = Vec::new();
        for sub in self.fields(&field.selection_set.node) {
            match sub.name.node.as_str() {
                "nodes" => sets.push(sub),
                "edges" => sets.extend(
                    self.fields(&sub.selection_set.node)
                        .into_iter()
                        .filter(|inner| inner.name.node == "node"),
                ),
                _ => {}
            }
        }
        sets
    }

    fn check(
        &self,
        set: &'a SelectionSet,
        parent: &str,
        in_list: bool,
        depth: usize,
        parent_has_id: bool,
        n_connections: &mut usize,
    ) -> Result<(), String> {
        for field in self.fields(set) {
            let name = field.name.node.as_str();
            if name.starts_with("__") {
                continue;
            }
            let Some(shape) = self.shape.field(parent, name) else {
                return Err(format!("Field '{name}' doesn't exist on type '{parent}'"));
            };
            if self.shape.is_connection(&shape.type_name) {
                if in_list {
                    return Err(CONNECTION_IN_LIST.to_owned());
                }
                if depth >= 1 && !parent_has_id {
                    return Err(format!(
                        "The parent 'node' field for a nested connection must select the 'id' field without an alias and must be of 'ID' return type. Connection fields without 'id': {name}."
                    ));
                }
                *n_connections += 1;
                if depth + 1 > 2 {
                    return Err(
                        "Bulk queries cannot contain connections with a nesting depth greater than 2."
                            .to_owned(),
                    );
                }
                let node_type = self.shape.node_type(&shape.type_name).unwrap_or_default();
                for node in self.node_sets(field) {
                    let has_id = self.selects_id(&node.selection_set.node);
                    self.check(
                        &node.selection_set.node,
                        node_type,
                        false,
                        depth + 1,
                        has_id,
                        n_connections,
                    )?;
                }
            } else if self.shape.is_object(&shape.type_name) {
                self.check(
                    &field.selection_set.node,
                    &shape.type_name,
                    in_list || shape.list,
                    depth,
                    parent_has_id,
                    n_connections,
                )?;
            }
        }
        Ok(())
    }
}

/// Parses and checks a bulk query as Shopify does before accepting it; the error is the user error's
/// message.
pub(crate) fn validate(shape: &Shape, query: &str) -> Result<ExecutableDocument, String> {
    let document = async_graphql::parser::parse_query(query)
        .map_err(|error| format!("Invalid bulk query: {error}"))?;
    let walk = Walk {
        shape,
        document: &document,
    };
    let Some(operation) = operation(&document) else {
        return Err("Bulk queries must contain exactly one operation.".to_owned());
    };
    if operation.ty != OperationType::Query {
        return Err(
            "Bulk queries must be queries; mutations run through bulkOperationRunMutation."
                .to_owned(),
        );
    }
    if !operation.variable_definitions.is_empty() {
        return Err("Bulk queries cannot use variables.".to_owned());
    }
    let top = walk.fields(&operation.selection_set.node);
    if top
        .iter()
        .any(|field| matches!(field.name.node.as_str(), "node" | "nodes"))
    {
        return Err("Bulk queries cannot contain a top level `node` or `nodes` field.".to_owned());
    }
    if top.len() != 1 {
        return Err("Bulk queries must contain exactly one top-level field.".to_owned());
    }
    let mut n_connections = 0;
    walk.check(
        &operation.selection_set.node,
        "QueryRoot",
        false,
        0,
        false,
        &mut n_connections,
    )?;
    if n_connections == 0 {
        return Err("Bulk queries must contain at least one connection.".to_owned());
    }
    if n_connections > 5 {
        return Err("Bulk queries cannot contain more than 5 connections.".to_owned());
    }
    Ok(document)
}

/// One JSONL line of a bulk result.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// The JSON object, without the newline.
    pub(crate) text: String,
    /// The `__parentId` it carries; `None` for a root object.
    pub(crate) parent: Option<String>,
}

/// Turns one executed page of a validated bulk query into lines, each parent before its children.
pub(crate) fn flatten(shape: &Shape, document: &ExecutableDocument, data: &Value) -> Vec<Line> {
    let walk = Walk { shape, document };
    let mut lines = Vec::new();
    let Some(operation) = operation(document) else {
        return lines;
    };
    for field in walk.fields(&operation.selection_set.node) {
        let Some(field_shape) = shape.field("QueryRoot", &field.name.node) else {
            continue;
        };
        let value = member(data, field);
        if shape.is_connection(&field_shape.type_name) {
            let node_type = shape.node_type(&field_shape.type_name).unwrap_or_default();
            for (node_field, node) in walk.nodes(field, value) {
                walk.emit(
                    &node_field.selection_set.node,
                    node_type,
                    node,
                    None,
                    &mut lines,
                );
            }
        } else if shape.is_object(&field_shape.type_name) {
            let owner = id_of(value);
            walk.inline(
                &field.selection_set.node,
                &field_shape.type_name,
                value,
                owner.as_deref(),
                &mut lines,
            );
        }
    }
    lines
}

fn member<'v>(value: &'v Value, field: &Field) -> &'v Value {
    let key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
    match value {
        Value::Object(map) => map.get(key).unwrap_or(&Value::Null),
        _ => &Value::Null,
    }
}

fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => match map.get("id") {
            Some(Value::String(id)) => Some(id.clone()),
            _ => None,
        },
        _ => None,
    }
}

impl<'a> Walk<'a> {
    fn nodes<'v>(&self, field: &'a Field, value: &'v Value) -> Vec<(&'a Field, &'v Value)> {
        let mut nodes = Vec::new();
        for sub in self.fields(&field.selection_set.node) {
            let Value::List(items) = member(value, sub) else {
                continue;
            };
            match sub.name.node.as_str() {
                "nodes" => nodes.extend(items.iter().map(|item| (sub, item))),
                "edges" => {
                    for edge in items {
                        for inner in self.fields(&sub.selection_set.node) {
                            if inner.name.node == "node" {
                                nodes.push((inner, member(edge, inner)));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        nodes
    }

    fn emit(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        node: &Value,
        parent: Option<&str>,
        lines: &mut Vec<Line>,
    ) {
        if !matches!(node, Value::Object(_)) {
            return;
        }
        let id = id_of(node);
        let position = lines.len();
        lines.push(Line {
            text: String::new(),
            parent: parent.map(str::to_owned),
        });
        let mut members = self.members(set, type_name, node, id.as_deref(), lines);
        if let Some(parent) = parent {
            members.push(("__parentId".to_owned(), Value::String(parent.to_owned())));
        }
        lines[position].text = object_text(&members);
    }

    /// The non-connection members of an object, in selection order; connections inside it are emitted
    /// as lines of `owner`.
    fn members(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        value: &Value,
        owner: Option<&str>,
        lines: &mut Vec<Line>,
    ) -> Vec<(String, Value)> {
        let mut members = Vec::new();
        for field in self.fields(set) {
            let key = field.alias.as_ref().unwrap_or(&field.name).node.to_string();
            let Value::Object(map) = value else {
                break;
            };
            let Some(member) = map.get(key.as_str()) else {
                continue;
            };
            if members.iter().any(|(existing, _)| *existing == key) {
                continue;
            }
            match self.shape.field(type_name, &field.name.node) {
                Some(shape) if self.shape.is_connection(&shape.type_name) => {
                    let node_type = self.shape.node_type(&shape.type_name).unwrap_or_default();
                    for (node_field, node) in self.nodes(field, member) {
                        self.emit(
                            &node_field.selection_set.node,
                            node_type,
                            node,
                            owner,
                            lines,
                        );
                    }
                }
                Some(shape)
                    if !shape.list
                        && self.shape.is_object(&shape.type_name)
                        && matches!(member, Value::Object(_)) =>
                {
                    let inner = self.inline(
                        &field.selection_set.node,
                        &shape.type_name,
                        member,
                        owner,
                        lines,
                    );
                    members.push((key, inner));
                }
                _ => members.push((key, member.clone())),
            }
        }
        members
    }

    fn inline(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        value: &Value,
        owner: Option<&str>,
        lines: &mut Vec<Line>,
    ) -> Value {
        let members = self.members(set, type_name, value, owner, lines);
        Value::Object(
            members
                .into_iter()
                .map(|(key, value)| (async_graphql::Name::new(key), value))
                .collect(),
        )
    }
}

/// `{"a":…,"b":…}` with members in the given order.
fn object_text(members: &[(String, Value)]) -> String {
    let mut text = String::from("{");
    for (index, (key, value)) in members.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(key).unwrap_or_default());
        text.push(':');
        text.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()));
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape::from_sdl(&crate::admin::schema::build().sdl())
    }

    #[track_caller]
    fn check(query: &str, expected: &str) {
        let got = match validate(&shape(), query) {
            Ok(_) => "ok".to_owned(),
            Err(message) => message,
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn orders_with_line_items_are_accepted() {
        check(
            "{ orders { edges { node { id lineItems { edges { node { id quantity } } } } } } }",
            "ok",
        );
        check(
            "{ orders(query: \"test:false\") { nodes { id refunds { id createdAt } } } }",
            "ok",
        );
    }

    #[test]
    fn a_connection_inside_a_list_is_refused() {
        check(
            "{ orders { edges { node { id refunds { refundLineItems { edges { node { quantity } } } } } } } }",
            CONNECTION_IN_LIST,
        );
    }

    #[test]
    fn a_query_without_a_connection_is_refused() {
        check(
            "{ shop { name } }",
            "Bulk queries must contain at least one connection.",
        );
    }

    #[test]
    fn a_query_that_does_not_parse_or_names_an_unknown_field_is_refused() {
        assert!(
            validate(&shape(), "{ orders { ")
                .unwrap_err()
                .starts_with("Invalid bulk query: ")
        );
        check(
            "{ orders { nodes { nope } } }",
            "Field 'nope' doesn't exist on type 'Order'",
        );
    }

    #[test]
    fn a_nested_connection_needs_its_parent_id() {
        check(
            "{ orders { nodes { name lineItems { nodes { id } } } } }",
            "The parent 'node' field for a nested connection must select the 'id' field without an alias and must be of 'ID' return type. Connection fields without 'id': lineItems.",
        );
    }

    #[test]
    fn top_level_node_fields_and_deep_nesting_are_refused() {
        check(
            "{ nodes(ids: []) { id } }",
            "Bulk queries cannot contain a top level `node` or `nodes` field.",
        );
        check(
            "{ locations { nodes { id inventoryLevels { nodes { id item { id inventoryLevels { nodes { id } } } } } } } }",
            "Bulk queries cannot contain connections with a nesting depth greater than 2.",
        );
    }
}
