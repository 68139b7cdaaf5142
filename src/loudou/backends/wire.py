"""Arrow tables on the wire between a RemoteStore and the server that holds its database."""

from __future__ import annotations

import pyarrow as pa

ARROW = "application/vnd.apache.arrow.stream"


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()
