//! An HTTP request turned into the protobuf request of its RPC: the JSON body by the canonical
//! proto3 JSON mapping, then the path variables, then the query string. A request that cannot
//! be turned into one is refused with INVALID_ARGUMENT naming the field or the rule broken —
//! and that refusal, too, is answered by the RPC's own stack (see `super::gateway`), so it is
//! authenticated, limited and audited like any other call.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value,
};
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use super::routes::{BodyRule, PathValues, dotted, field_path};

/// The largest integer a JSON number holds exactly (2^53): larger 64-bit values must be
/// strings, as the proto3 JSON mapping writes them, or they would arrive rounded.
const EXACT_JSON_INTEGER: u64 = 1 << 53;

/// A refusal naming `field` (a request field path, `body`, a query parameter, a header).
pub fn refusal(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    let mut details = ErrorDetails::with_bad_request_violation(field, description.clone());
    details.set_error_info("INVALID_HTTP_REQUEST", "sinergi", []);
    Status::with_error_details(
        tonic::Code::InvalidArgument,
        format!("{field}: {description}"),
        details,
    )
}

/// The message a JSON body stands for, under the binding's body rule.
pub fn from_body(
    input: &MessageDescriptor,
    rule: &BodyRule,
    body: &[u8],
) -> Result<DynamicMessage, Status> {
    let mut message = DynamicMessage::new(input.clone());
    let target = match rule {
        BodyRule::None if body.is_empty() => return Ok(message),
        BodyRule::None => return Err(refusal("body", "this method takes no request body")),
        // No body at all: a request with no field set (`POST /v1/agencies/{id}:disable`).
        _ if body.iter().all(u8::is_ascii_whitespace) => return Ok(message),
        BodyRule::Whole => None,
        BodyRule::Field(field) => Some(field),
    };
    match target {
        None => parse_json(input, body, ""),
        Some(field) => {
            let Kind::Message(inner) = field.kind() else {
                return Err(refusal(field.name(), "the binding's body is not a message"));
            };
            message.set_field(
                field,
                Value::Message(parse_json(&inner, body, field.name())?),
            );
            Ok(message)
        }
    }
}

/// One message from JSON text; refusals name the JSON path under `at` (`body` when empty).
pub fn parse_json(
    descriptor: &MessageDescriptor,
    text: &[u8],
    at: &str,
) -> Result<DynamicMessage, Status> {
    parse_json_at(descriptor, text, || at.to_owned())
}

/// [`parse_json`] with the path made only when a refusal needs it: an upload parses a million
/// lines and names one only when it is wrong.
pub fn parse_json_at(
    descriptor: &MessageDescriptor,
    text: &[u8],
    at: impl FnOnce() -> String,
) -> Result<DynamicMessage, Status> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    // Straight from the text, without the intermediate JSON tree, when no number in it can be
    // too large for a double; anything that fails is parsed again below to word the refusal.
    if !may_hold_inexact_number(text) {
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        if let Ok(message) = DynamicMessage::deserialize_with_options(
            descriptor.clone(),
            &mut deserializer,
            &options,
        ) && deserializer.end().is_ok()
        {
            return Ok(message);
        }
    }
    let at = at();
    let named = if at.is_empty() { "body" } else { at.as_str() };
    let json: serde_json::Value = serde_json::from_slice(text)
        .map_err(|error| refusal(named, format!("not valid JSON: {error}")))?;
    if let Some(path) = inexact_integer(&json, &at) {
        return Err(refusal(
            path.trim_start_matches('.'),
            "an integer beyond 2^53 must be given as a JSON string",
        ));
    }
    DynamicMessage::deserialize_with_options(descriptor.clone(), json, &options)
        .map_err(|error| refusal(named, error.to_string()))
}

/// Whether JSON text may hold a number of magnitude 2^53 or more: one with sixteen digits in a
/// row or an exponent, outside strings. Fifteen digits stay below 10^15 < 2^53.
fn may_hold_inexact_number(text: &[u8]) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut digits = 0;
    let mut previous = 0u8;
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte.is_ascii_digit() {
            digits += 1;
            if digits >= 16 {
                return true;
            }
        } else {
            if matches!(byte, b'e' | b'E') && (previous.is_ascii_digit() || previous == b'.') {
                return true;
            }
            digits = 0;
            in_string = byte == b'"';
        }
        previous = byte;
    }
    false
}

/// The JSON path of the first integer literal that a double cannot hold exactly, if any.
fn inexact_integer(json: &serde_json::Value, path: &str) -> Option<String> {
    match json {
        serde_json::Value::Number(number) => {
            let beyond = number.as_u64().is_some_and(|n| n > EXACT_JSON_INTEGER)
                || number
                    .as_i64()
                    .is_some_and(|n| n.unsigned_abs() > EXACT_JSON_INTEGER)
                // Too large even for 64 bits: serde_json keeps it as a float.
                || (number.is_f64()
                    && number.as_f64().is_some_and(|n| n.abs() > EXACT_JSON_INTEGER as f64
                        && n.fract() == 0.0));
            beyond.then(|| path.to_owned())
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| inexact_integer(item, &format!("{path}[{index}]"))),
        serde_json::Value::Object(fields) => fields
            .iter()
            .find_map(|(name, value)| inexact_integer(value, &format!("{path}.{name}"))),
        _ => None,
    }
}

/// Writes the path variables into the message; a variable's field also set in the body must
/// agree with it.
pub fn apply_path(message: &mut DynamicMessage, values: PathValues) -> Result<(), Status> {
    for (fields, text) in values {
        let name = dotted(&fields);
        let (target, field) =
            slot(message, &fields).ok_or_else(|| refusal(&name, "no such request field"))?;
        let value = scalar(field, &text).map_err(|why| refusal(&name, why))?;
        if target.has_field(field) && target.get_field(field).as_ref() != &value {
            return Err(refusal(
                &name,
                "the body and the path name different values",
            ));
        }
        target.set_field(field, value);
    }
    Ok(())
}

/// Writes the query parameters into the message: a field path each (proto or JSON names), a
/// repeated field once per value. Fields the path or the body carry may not be repeated here.
pub fn apply_query(message: &mut DynamicMessage, query: Option<&str>) -> Result<(), Status> {
    let Some(query) = query else {
        return Ok(());
    };
    let input = message.descriptor();
    for (name, text) in form_urlencoded::parse(query.as_bytes()) {
        let fields = field_path(&input, &name)
            .filter(|fields| fields.last().is_some_and(|field| !field.is_map()))
            .ok_or_else(|| refusal(&name, "no such request field"))?;
        let (target, field) =
            slot(message, &fields).ok_or_else(|| refusal(&name, "no such request field"))?;
        let value = scalar(field, &text).map_err(|why| refusal(&name, why))?;
        if field.is_list() {
            if let Value::List(values) = target.get_field_mut(field) {
                values.push(value);
            }
        } else if target.has_field(field) {
            return Err(refusal(&name, "given more than once"));
        } else {
            target.set_field(field, value);
        }
    }
    Ok(())
}

/// Sets a top-level string field when the request left it empty (`If-Match` into `etag`,
/// `Last-Event-ID` into a cursor).
pub fn fill_if_unset(message: &mut DynamicMessage, name: &str, text: &str) -> Result<(), Status> {
    let Some(field) = message.descriptor().get_field_by_name(name) else {
        return Ok(());
    };
    if message.has_field(&field) {
        return Ok(());
    }
    let value = scalar(&field, text).map_err(|why| refusal(name, why))?;
    message.set_field(&field, value);
    Ok(())
}

/// The innermost message a field path ends in, created on the way, and its last field.
fn slot<'m, 'f>(
    message: &'m mut DynamicMessage,
    fields: &'f [FieldDescriptor],
) -> Option<(&'m mut DynamicMessage, &'f FieldDescriptor)> {
    let (last, parents) = fields.split_last()?;
    let mut current = message;
    for parent in parents {
        current = match current.get_field_mut(parent) {
            Value::Message(inner) => inner,
            _ => return None,
        };
    }
    Some((current, last))
}

/// A scalar value from its text, as the JSON mapping writes it (enums by name or number).
fn scalar(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let number = |what: &str| format!("`{text}` is not {what}");
    Ok(match field.kind() {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(number("true or false")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(text.parse().map_err(|_| number("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(text.parse().map_err(|_| number("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            text.parse()
                .map_err(|_| number("an unsigned 32-bit integer"))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            text.parse()
                .map_err(|_| number("an unsigned 64-bit integer"))?,
        ),
        Kind::Float => Value::F32(text.parse().map_err(|_| number("a number"))?),
        Kind::Double => Value::F64(text.parse().map_err(|_| number("a number"))?),
        Kind::Enum(kind) => match kind.get_value_by_name(text) {
            Some(value) => Value::EnumNumber(value.number()),
            None => match text.parse::<i32>().ok().and_then(|n| kind.get_value(n)) {
                Some(value) => Value::EnumNumber(value.number()),
                None => return Err(format!("`{text}` is not a value of {}", kind.name())),
            },
        },
        Kind::Bytes => {
            use base64::Engine;
            let engine = base64::engine::general_purpose::STANDARD;
            let url = base64::engine::general_purpose::URL_SAFE;
            Value::Bytes(
                engine
                    .decode(text)
                    .or_else(|_| url.decode(text))
                    .map_err(|_| number("base64"))?
                    .into(),
            )
        }
        // Well-known types have a text form (a timestamp in RFC 3339); other messages are
        // given field by field.
        Kind::Message(message) => {
            DynamicMessage::deserialize(message, serde_json::Value::String(text.to_owned()))
                .map(Value::Message)
                .map_err(|_| {
                    format!(
                        "`{text}` is not a {}",
                        field
                            .kind()
                            .as_message()
                            .map_or("message".into(), |m| m.name().to_owned())
                    )
                })?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    fn input(name: &str) -> MessageDescriptor {
        DescriptorPool::decode(crate::grpc::FILE_DESCRIPTOR_SET)
            .expect("descriptors")
            .get_message_by_name(name)
            .expect("the message")
    }

    fn violation(status: &Status) -> String {
        status
            .get_details_bad_request()
            .and_then(|bad| bad.field_violations.first().map(|v| v.field.clone()))
            .unwrap_or_default()
    }

    #[test]
    fn a_body_follows_the_json_mapping_and_refuses_what_it_does_not_know() {
        let upsert = input("sinergi.v1.UpsertEmployerRequest");
        let message = from_body(
            &upsert,
            &BodyRule::Whole,
            br#"{"employer": {"name": "PT A", "bpjsKesCode": "0123", "bpjs_tk_npp": ["N1"]}}"#,
        )
        .expect("camelCase and proto names both");
        assert!(format!("{message:?}").contains("PT A"));
        let unknown = from_body(&upsert, &BodyRule::Whole, br#"{"employer": {"colour": 1}}"#)
            .expect_err("unknown field");
        assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
        assert!(
            unknown.message().contains("colour"),
            "{}",
            unknown.message()
        );
        let wrong = from_body(&upsert, &BodyRule::Whole, br#"{"employer": "PT A"}"#)
            .expect_err("wrong type");
        assert_eq!(violation(&wrong), "body");
        let broken = from_body(&upsert, &BodyRule::Whole, b"{\"employer\":").expect_err("cut");
        assert!(broken.message().contains("not valid JSON"));
    }

    #[test]
    fn a_64_bit_integer_beyond_2_53_must_be_a_string() {
        let referral = input("sinergi.v1.CreateReferralRequest");
        let refused = from_body(
            &referral,
            &BodyRule::Whole,
            br#"{"amountClaimed": 9007199254740993}"#,
        )
        .expect_err("rounded number");
        assert_eq!(violation(&refused), "amountClaimed");
        from_body(
            &referral,
            &BodyRule::Whole,
            br#"{"amountClaimed": "9007199254740993"}"#,
        )
        .expect("as a string");
        from_body(
            &referral,
            &BodyRule::Whole,
            br#"{"amountClaimed": 900719925474099}"#,
        )
        .expect("exact number");
        let exponent = from_body(&referral, &BodyRule::Whole, br#"{"amountClaimed": 1e16}"#)
            .expect_err("an integer written with an exponent");
        assert_eq!(violation(&exponent), "amountClaimed");
        let escaped = from_body(
            &referral,
            &BodyRule::Whole,
            br#"{"note": "1e16 \"quoted\" \\", "amountClaimed": 9007199254740993}"#,
        )
        .expect_err("digits after a string ending in an escaped backslash");
        assert_eq!(violation(&escaped), "amountClaimed");
    }

    #[test]
    fn query_parameters_reach_nested_and_repeated_fields_and_unknown_ones_are_named() {
        let list = input("sinergi.v1.ListNonCompliantRequest");
        let mut message = DynamicMessage::new(list.clone());
        apply_query(
            &mut message,
            Some("region_prefix.code=33.75&categories=COMPLIANCE_CATEGORY_PWBD&categories=2&pageSize=5"),
        )
        .expect("applies");
        let text = format!("{message:?}");
        assert!(text.contains("33.75"), "{text}");
        let mut message = DynamicMessage::new(list.clone());
        let refused = apply_query(&mut message, Some("colour=red")).expect_err("unknown");
        assert_eq!(violation(&refused), "colour");
        let mut message = DynamicMessage::new(list);
        let refused = apply_query(&mut message, Some("page_size=many")).expect_err("not a number");
        assert_eq!(violation(&refused), "page_size");
    }

    #[test]
    fn a_get_carries_no_body() {
        let get = input("sinergi.v1.GetEmployerRequest");
        let refused = from_body(&get, &BodyRule::None, b"{}").expect_err("a body on a GET");
        assert_eq!(violation(&refused), "body");
    }
}
