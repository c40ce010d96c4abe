#!/usr/bin/env python3
"""Makes one gRPC call with grpcio on its default settings (default metadata limits
included), as an agency's Python client would, and prints the outcome as JSON.

Reads a JSON object on standard input: `target` (host:port), `method` (/package.Service/Method),
`streaming` (whether the request is a stream), `token`, and `messages`, the request message(s)
already encoded, in hex. Prints `code` (the status code's name), `message`, and
`status_details` (the grpc-status-details-bin trailer, base64; empty when absent).
"""

import base64
import json
import sys

import grpc

call = json.load(sys.stdin)
messages = [bytes.fromhex(message) for message in call["messages"]]
metadata = [("authorization", "Bearer " + call["token"])]
with grpc.insecure_channel(call["target"]) as channel:
    try:
        if call["streaming"]:
            channel.stream_unary(call["method"])(iter(messages), metadata=metadata, timeout=60)
        else:
            channel.unary_unary(call["method"])(messages[0], metadata=metadata, timeout=60)
        outcome = {"code": "OK", "message": "", "status_details": ""}
    except grpc.RpcError as error:
        details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
        outcome = {
            "code": error.code().name,
            "message": error.details() or "",
            "status_details": base64.b64encode(details).decode(),
        }
print(json.dumps(outcome))
