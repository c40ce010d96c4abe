//! The OpenAPI 3.1 document of the HTTP/JSON door, generated from the same descriptors and
//! bindings the transcoder follows: paths from the bindings, schemas from the messages (in their
//! JSON mapping), descriptions from the contract's comments. Served at `/openapi.json` and
//! committed as `docs/openapi.json`, which a test keeps equal to this output.

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};
use serde_json::{Map, Value as Json, json};

use super::routes::{Binding, Bindings, BodyRule, dotted};

/// Message nesting followed when flattening a request into query parameters.
const QUERY_DEPTH: usize = 3;

/// The document as pretty-printed JSON, ending in a newline.
pub fn document(pool: &DescriptorPool, bindings: &Bindings) -> Vec<u8> {
    let mut schemas = Schemas::default();
    let status = pool
        .get_message_by_name("google.rpc.Status")
        .map(|status| schemas.reference(&status));
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut operation_ids: BTreeMap<String, usize> = BTreeMap::new();
    for binding in bindings.iter() {
        let base = format!(
            "{}_{}",
            binding.method.parent_service().name(),
            binding.method.name()
        );
        let seen = operation_ids.entry(base.clone()).or_default();
        *seen += 1;
        let operation_id = if *seen == 1 {
            base
        } else {
            format!("{base}_{seen}")
        };
        let operation = operation(binding, operation_id, status.clone(), &mut schemas);
        paths
            .entry(binding.template.text.clone())
            .or_default()
            .insert(binding.verb.as_str().to_ascii_lowercase(), operation);
    }
    let document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sinergi",
            "version": "v1",
            "description": "Employer social-security compliance data exchanged between the \
                agencies of the cooperation agreements (Disnaker, BPJS Kesehatan, BPJS \
                Ketenagakerjaan, Kejaksaan). Every operation is also a gRPC method of \
                `sinergi.v1`, with the same rules, scopes and audit. Request and response \
                bodies follow the proto3 JSON mapping: lowerCamelCase names, 64-bit integers \
                as strings, enums by name, timestamps in RFC 3339. Errors are \
                `google.rpc.Status`.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from POST /v1/token (AuthService.IssueToken).",
                },
            },
            "schemas": schemas.finish(),
        },
    });
    let mut text = serde_json::to_vec_pretty(&document).unwrap_or_default();
    text.push(b'\n');
    text
}

fn operation(
    binding: &Binding,
    operation_id: String,
    status: Option<Json>,
    schemas: &mut Schemas,
) -> Json {
    let method = &binding.method;
    let input = method.input();
    let output = method.output();
    let description = method_comment(method);
    let summary = description
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    let path_fields: Vec<String> = binding.template.variables().map(dotted).collect();
    let mut parameters: Vec<Json> = binding
        .template
        .variables()
        .map(|fields| {
            let field = &fields[fields.len() - 1];
            json!({
                "name": dotted(fields),
                "in": "path",
                "required": true,
                "description": field_comment(field),
                "schema": schemas.field_type(field),
            })
        })
        .collect();
    let query_from = match binding.body {
        BodyRule::None => Some(input.clone()),
        // Client streams take the fields other than the streamed one from the query.
        BodyRule::Field(_) if method.is_client_streaming() => Some(input.clone()),
        _ => None,
    };
    if let Some(message) = query_from {
        let streamed = match &binding.body {
            BodyRule::Field(field) => Some(field.name().to_owned()),
            _ => None,
        };
        query_parameters(&message, "", QUERY_DEPTH, &mut |name, field| {
            if path_fields.iter().any(|path| path == name)
                || streamed.as_deref() == Some(name)
                || (method.is_client_streaming() && field.name() == "end_of_batch")
            {
                return;
            }
            parameters.push(json!({
                "name": name,
                "in": "query",
                "description": field_comment(field),
                "schema": schemas.field_type(field),
                "explode": true,
            }));
        });
    }
    parameters.push(header_parameter(
        "X-Purpose",
        "Why the data is read (recorded in the audit log; some reads require it).",
    ));
    parameters.push(header_parameter(
        "X-Request-Id",
        "The caller's id of this request, recorded in the audit log.",
    ));
    if input.get_field_by_name("etag").is_some() {
        parameters.push(header_parameter(
            "If-Match",
            "The resource's ETag: the write is made only if it is still current (412 if not).",
        ));
    }
    if method.is_server_streaming() {
        parameters.push(header_parameter(
            "Last-Event-ID",
            "The cursor of the last event received: the stream resumes right after it.",
        ));
    }
    let mut operation = json!({
        "operationId": operation_id,
        "tags": [method.parent_service().name()],
        "summary": summary,
        "description": description,
        "parameters": parameters,
    });
    let fields = operation.as_object_mut();
    if let Some(fields) = fields {
        if let Some(body) = request_body(binding, schemas) {
            fields.insert("requestBody".into(), body);
        }
        let reference = schemas.reference(&output);
        let content = if method.is_server_streaming() {
            json!({
                "text/event-stream": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": reference},
            })
        } else {
            json!({"application/json": {"schema": reference}})
        };
        let described = if method.is_server_streaming() {
            "A stream: as Server-Sent Events (`Accept: text/event-stream`), each event's data \
             one message as JSON, its name the message's set field and its id the cursor; \
             otherwise NDJSON, one message a line. A refusal comes as an error status; a \
             stream that has nothing to send within a second is answered 200 at once, and a \
             failure after the 200 ends the stream with an `error` event, or a line \
             `{\"error\": <google.rpc.Status>}`."
        } else {
            "The answer."
        };
        let mut responses = json!({
            "200": {"description": described, "content": content},
        });
        if let (Some(status), Some(responses)) = (status, responses.as_object_mut()) {
            responses.insert(
                "default".into(),
                json!({
                    "description": "An error: google.rpc.Status with its details, under the \
                        HTTP status of Google's code mapping.",
                    "content": {"application/json": {"schema": status}},
                }),
            );
        }
        fields.insert("responses".into(), responses);
        if crate::auth::layer::is_public(&binding.grpc_path) {
            fields.insert("security".into(), json!([]));
        }
    }
    operation
}

fn request_body(binding: &Binding, schemas: &mut Schemas) -> Option<Json> {
    let method = &binding.method;
    let schema = match &binding.body {
        BodyRule::None => return None,
        BodyRule::Whole => schemas.reference(&method.input()),
        BodyRule::Field(field) => schemas.field_type(field),
    };
    let content = if method.is_client_streaming() {
        json!({"application/x-ndjson": {"schema": schema}})
    } else {
        json!({"application/json": {"schema": schema}})
    };
    let description = if method.is_client_streaming() {
        "NDJSON: one item a line, streamed as it is read."
    } else {
        "The request as JSON."
    };
    Some(json!({
        "description": description,
        "required": method.is_client_streaming(),
        "content": content,
    }))
}

fn header_parameter(name: &str, description: &str) -> Json {
    json!({"name": name, "in": "header", "description": description, "schema": {"type": "string"}})
}

/// Every field a query string can set: scalars, enums and well-known types, by dotted name.
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &str,
    depth: usize,
    found: &mut dyn FnMut(&str, &FieldDescriptor),
) {
    for field in message.fields() {
        let name = format!("{prefix}{}", field.name());
        match field.kind() {
            Kind::Message(inner) if !well_known(&inner) => {
                if depth > 0 && !field.is_list() && !field.is_map() {
                    query_parameters(&inner, &format!("{name}."), depth - 1, found);
                }
            }
            _ if field.is_map() => {}
            _ => found(&name, &field),
        }
    }
}

fn well_known(message: &MessageDescriptor) -> bool {
    message.package_name() == "google.protobuf"
}

/// Schemas of the messages and enums the operations use, added as they are referred to.
#[derive(Default)]
struct Schemas {
    done: BTreeMap<String, Json>,
    pending: Vec<Pending>,
}

enum Pending {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

impl Schemas {
    fn reference(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = well_known_schema(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            self.done.insert(name.clone(), Json::Null);
            self.pending.push(Pending::Message(message.clone()));
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn enum_reference(&mut self, kind: &EnumDescriptor) -> Json {
        let name = kind.full_name().to_owned();
        if !self.done.contains_key(&name) {
            self.done.insert(name.clone(), Json::Null);
            self.pending.push(Pending::Enum(kind.clone()));
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// A field's schema (a repeated one's as a query parameter: an array of its values).
    fn field_type(&mut self, field: &FieldDescriptor) -> Json {
        let single = match field.kind() {
            Kind::Message(message) => self.reference(&message),
            Kind::Enum(kind) => self.enum_reference(&kind),
            kind => scalar_schema(&kind),
        };
        if field.is_map() {
            let value = field
                .kind()
                .as_message()
                .map(|entry| entry.map_entry_value_field())
                .map(|value| self.field_type(&value))
                .unwrap_or_else(|| json!({}));
            json!({"type": "object", "additionalProperties": value})
        } else if field.is_list() {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn finish(mut self) -> BTreeMap<String, Json> {
        while let Some(pending) = self.pending.pop() {
            let (name, schema) = match pending {
                Pending::Message(message) => {
                    let mut properties = Map::new();
                    for field in message.fields() {
                        let mut schema = nullable(self.field_type(&field));
                        let comment = field_comment(&field);
                        if !comment.is_empty() {
                            schema = describe(schema, &comment);
                        }
                        properties.insert(field.json_name().to_owned(), schema);
                    }
                    let mut schema = json!({
                        "type": "object",
                        "properties": properties,
                        "additionalProperties": false,
                    });
                    let comment = message_comment(&message);
                    if !comment.is_empty() {
                        schema = describe(schema, &comment);
                    }
                    (message.full_name().to_owned(), schema)
                }
                Pending::Enum(kind) => {
                    let names: Vec<String> =
                        kind.values().map(|value| value.name().to_owned()).collect();
                    let listed: Vec<String> = kind
                        .values()
                        .map(|value| {
                            let comment = comment_at(
                                kind.parent_file().file_descriptor_proto(),
                                value.path(),
                            );
                            format!("* `{}`: {}", value.name(), comment.replace('\n', " "))
                        })
                        .collect();
                    let description = format!(
                        "{}\n\n{}",
                        comment_at(kind.parent_file().file_descriptor_proto(), kind.path()),
                        listed.join("\n")
                    );
                    (
                        kind.full_name().to_owned(),
                        json!({"type": "string", "enum": names, "description": description.trim()}),
                    )
                }
            };
            self.done.insert(name, schema);
        }
        self.done
    }
}

/// `schema` or `null`: the proto3 JSON mapping reads a field given as `null` as a field left
/// out, so a client may send either.
fn nullable(schema: Json) -> Json {
    match schema {
        Json::Object(mut fields)
            if fields.get("type").is_some_and(Json::is_string) && !fields.contains_key("enum") =>
        {
            let single = fields.remove("type").unwrap_or_default();
            fields.insert("type".into(), json!([single, "null"]));
            Json::Object(fields)
        }
        other => json!({"anyOf": [other, {"type": "null"}]}),
    }
}

/// A schema with a description; a `$ref` is wrapped, as 3.1 reads siblings of `$ref` too but
/// older tools do not.
fn describe(schema: Json, description: &str) -> Json {
    match schema {
        Json::Object(mut fields) if !fields.contains_key("$ref") => {
            fields.insert("description".into(), description.into());
            Json::Object(fields)
        }
        reference => json!({"allOf": [reference], "description": description}),
    }
}

fn scalar_schema(kind: &Kind) -> Json {
    match kind {
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "format": "int32", "minimum": 0})
        }
        // The JSON mapping writes 64-bit integers as strings (JSON numbers lose precision past
        // 2^53); numbers up to 2^53 are accepted too.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"})
        }
        Kind::Float | Kind::Double => json!({"type": "number"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::Message(_) | Kind::Enum(_) => json!({}),
    }
}

fn well_known_schema(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
        }
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.Empty" => json!({"type": "object", "additionalProperties": false}),
        _ => return None,
    })
}

fn method_comment(method: &MethodDescriptor) -> String {
    comment_at(method.parent_file().file_descriptor_proto(), method.path())
}

fn message_comment(message: &MessageDescriptor) -> String {
    comment_at(
        message.parent_file().file_descriptor_proto(),
        message.path(),
    )
}

fn field_comment(field: &FieldDescriptor) -> String {
    comment_at(field.parent_file().file_descriptor_proto(), field.path())
}

/// The leading comment of the element at `path`, its lines' one leading space removed.
fn comment_at(file: &prost_types::FileDescriptorProto, path: &[i32]) -> String {
    let Some(info) = &file.source_code_info else {
        return String::new();
    };
    info.location
        .iter()
        .find(|location| location.path == path)
        .and_then(|location| location.leading_comments.as_deref())
        .map(|comment| {
            comment
                .lines()
                .map(|line| line.strip_prefix(' ').unwrap_or(line))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}
