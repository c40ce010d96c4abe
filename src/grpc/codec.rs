//! The codec of every service this server implements: prost's encoding, and prost's decoding
//! except in what a failure means. Bytes that are not a valid protobuf request message are the
//! caller's mistake: INVALID_ARGUMENT with a short generic message (recorded in the audit log
//! as `invalid`), where prost's own codec answers INTERNAL with the decoder's internals.
//! Requests whose gRPC framing is broken are answered the same way, by
//! `crate::server::middleware::RequestFramingLayer`, before any message reaches this codec.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// What a caller whose request does not decode is told.
pub const UNDECODABLE_REQUEST: &str = "the request is not a valid protobuf message";

#[derive(Debug, Clone)]
pub struct RequestCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(PhantomData)
    }
}

#[derive(Debug, Clone)]
pub struct RequestDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| {
            tracing::debug!(%error, "undecodable request message");
            Status::invalid_argument(UNDECODABLE_REQUEST)
        })
    }
}
