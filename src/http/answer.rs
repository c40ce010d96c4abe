//! The gRPC answer of the stack, read as messages and a final status, and rendered as HTTP:
//! JSON by the canonical mapping, errors as `google.rpc.Status` JSON with the HTTP status of
//! Google's code mapping.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use http_body::Body;
use http_body_util::BodyExt;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions, Value};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The frame prefix of a gRPC message: compression flag, then a big-endian length.
const PREFIX_LEN: usize = 5;

/// A gRPC response being read message by message.
pub struct Answer<B> {
    body: std::pin::Pin<Box<B>>,
    buffer: BytesMut,
    /// Set once the final status is known.
    ended: Option<Result<(), Status>>,
}

impl<B> Answer<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<super::BoxError>,
{
    pub fn new(response: http::Response<B>) -> Self {
        let (parts, body) = response.into_parts();
        // A trailers-only answer carries its status in the headers.
        let ended = Status::from_header_map(&parts.headers).map(into_result);
        Self {
            body: Box::pin(body),
            buffer: BytesMut::new(),
            ended,
        }
    }

    /// The next message's bytes; `Ok(None)` once the call ended well.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Status> {
        loop {
            if let Some(message) = self.take_message()? {
                return Ok(Some(message));
            }
            if let Some(ended) = &self.ended {
                return ended.clone().map(|()| None);
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buffer.extend_from_slice(&data),
                    Err(frame) => {
                        let status = frame
                            .trailers_ref()
                            .and_then(Status::from_header_map)
                            .unwrap_or_else(|| Status::internal("the answer ended without status"));
                        self.ended = Some(into_result(status));
                    }
                },
                Some(Err(error)) => self.ended = Some(Err(Status::from_error(error.into()))),
                None => {
                    self.ended = Some(Err(Status::internal("the answer ended without status")));
                }
            }
        }
    }

    fn take_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < PREFIX_LEN {
            return Ok(None);
        }
        if self.buffer[0] != 0 {
            return Err(Status::internal("the answer is compressed"));
        }
        let length = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if self.buffer.len() < PREFIX_LEN + length {
            return Ok(None);
        }
        self.buffer.advance(PREFIX_LEN);
        Ok(Some(self.buffer.split_to(length).freeze()))
    }
}

fn into_result(status: Status) -> Result<(), Status> {
    if status.code() == Code::Ok {
        Ok(())
    } else {
        Err(status)
    }
}

/// Renders messages and statuses as JSON.
#[derive(Clone)]
pub struct Renderer {
    status: MessageDescriptor,
}

impl Renderer {
    /// `pool` must hold `google.rpc.Status` and the error details, so that a status renders
    /// with its details by type.
    pub fn new(pool: &DescriptorPool) -> Option<Self> {
        let status = pool.get_message_by_name("google.rpc.Status")?;
        Some(Self { status })
    }

    /// A message of `descriptor` as JSON: lowerCamelCase names, 64-bit integers as strings,
    /// enums by name, and every field present, defaults included, so that a client written
    /// against the document finds each field it expects.
    pub fn message(&self, descriptor: &MessageDescriptor, bytes: Bytes) -> Result<Vec<u8>, Status> {
        let message = DynamicMessage::decode(descriptor.clone(), bytes)
            .map_err(|_| Status::internal("the answer does not decode"))?;
        json(&message)
    }

    /// `google.rpc.Status` as JSON: code, message and the details, each by its type.
    pub fn status(&self, status: &Status) -> Vec<u8> {
        let mut message = DynamicMessage::decode(self.status.clone(), status.details())
            .unwrap_or_else(|_| DynamicMessage::new(self.status.clone()));
        message.set_field_by_name("code", Value::I32(status.code() as i32));
        message.set_field_by_name("message", Value::String(status.message().to_owned()));
        json(&message).unwrap_or_else(|_| {
            // Details of a type this server does not know: the status without them.
            let mut bare = DynamicMessage::new(self.status.clone());
            bare.set_field_by_name("code", Value::I32(status.code() as i32));
            bare.set_field_by_name("message", Value::String(status.message().to_owned()));
            json(&bare).unwrap_or_default()
        })
    }

    /// An error answer: the status as JSON under the HTTP status its code maps to, unless the
    /// caller's request itself decided a more precise one.
    pub fn error(&self, status: &Status, http: Option<StatusCode>) -> http::Response<Bytes> {
        let code = http.unwrap_or_else(|| http_status(status.code()));
        let mut response = json_response(code, self.status(status).into());
        let headers = response.headers_mut();
        match status.code() {
            Code::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Code::ResourceExhausted | Code::Unavailable
                if matches!(
                    code,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) =>
            {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after(status)));
            }
            _ => {}
        }
        response
    }
}

/// Whole seconds until a retry may succeed, as `Retry-After` gives them: the status's
/// `RetryInfo` rounded up (a client told 0 would retry at once), one second without one.
fn retry_after(status: &Status) -> u64 {
    status
        .get_details_retry_info()
        .and_then(|retry| retry.retry_delay)
        .map_or(1, |delay| {
            (delay.as_secs() + u64::from(delay.subsec_nanos() > 0)).max(1)
        })
}

fn json(message: &DynamicMessage) -> Result<Vec<u8>, Status> {
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|_| Status::internal("the answer does not render as JSON"))?;
    Ok(out)
}

pub fn json_response(code: StatusCode, body: Bytes) -> http::Response<Bytes> {
    let mut response = http::Response::new(body);
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Google's mapping of gRPC codes to HTTP statuses (`google/rpc/code.proto`).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499, "client closed request", as Google's mapping names it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `etag` of an answer: a top-level field, or one of a top-level message (the resource a
/// Get or an Upsert returns).
pub fn etag_of(descriptor: &MessageDescriptor, bytes: &Bytes) -> Option<String> {
    let message = DynamicMessage::decode(descriptor.clone(), bytes.clone()).ok()?;
    let direct = |message: &DynamicMessage| match message.get_field_by_name("etag").as_deref() {
        Some(Value::String(etag)) if !etag.is_empty() => Some(etag.clone()),
        _ => None,
    };
    direct(&message).or_else(|| {
        message.fields().find_map(|(_, value)| match value {
            Value::Message(inner) => direct(inner),
            _ => None,
        })
    })
}

/// The resume point a streamed message carries: the `cursor` of its top-level message field.
pub fn cursor_of(message: &DynamicMessage) -> Option<u64> {
    message.fields().find_map(|(_, value)| match value {
        Value::Message(inner) => match inner.get_field_by_name("cursor").as_deref() {
            Some(Value::U64(cursor)) => Some(*cursor),
            _ => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_http_statuses_google_documents() {
        for (code, http) in [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
        ] {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }
}
