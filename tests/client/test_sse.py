"""The SSE decoder and the omnitwin stream contract."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable

import pytest

from omnitwin.client._sse import SSEDecoder, aiter_envelopes, iter_envelopes
from omnitwin.errors import StreamError


def decode(chunks: Iterable[bytes]) -> list[str]:
    decoder = SSEDecoder()
    data = [e.data for chunk in chunks for e in decoder.feed(chunk)]
    return data + [e.data for e in decoder.close()]


def split_every(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def envelope(type_: str, seq: int, body: object = None) -> bytes:
    data = {"type": type_, "seq": seq, "session": "sess_1", "ts": "", "body": body}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


BOM_BODY = b"\xef\xbb\xbfdata: first\n\ndata: second\n\n"


@pytest.mark.parametrize(
    "chunks",
    [
        [BOM_BODY],
        [b"\xef\xbb", b"\xbfdata: first\n\ndata: second\n\n"],
        [b"\xef", b"\xbb", b"\xbf", BOM_BODY[3:]],
    ],
    ids=["whole", "split-after-2", "byte-by-byte-bom"],
)
def test_leading_bom_stripped(chunks: list[bytes]) -> None:
    assert decode(chunks) == ["first", "second"]


def test_only_one_bom_stripped() -> None:
    assert decode([b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n"]) == []
    assert decode([b"\xef\xbb\xbfdata: \xef\xbb\xbfx\n\n"]) == ["\ufeffx"]


def test_later_bom_kept() -> None:
    body = "data: a\n\ndata: \ufeffb\n\n".encode()
    assert decode([body]) == ["a", "\ufeffb"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"])
def test_line_endings_any_split(newline: bytes, size: int) -> None:
    body = b"data: one" + newline + newline + b"data: two" + newline + newline
    assert decode(split_every(body, size)) == ["one", "two"]


def test_crlf_split_across_chunks() -> None:
    chunks = [b"data: a\r", b"\n\r", b"\ndata: b\r\n", b"\r", b"\n"]
    assert decode(chunks) == ["a", "b"]


def test_cr_then_data_is_new_line() -> None:
    assert decode([b"data: a\r", b"data: b\r\r"]) == ["a\nb"]


def test_comments_ignored() -> None:
    body = b": keep-alive\n\n:another\ndata: x\n: inside\n\n"
    assert decode([body]) == ["x"]


def test_multiline_data_joined() -> None:
    body = b"data: line one\ndata:line two\ndata\ndata:  indented\n\n"
    assert decode([body]) == ["line one\nline two\n\n indented"]


def test_event_fields() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"event: status\nid: 7\nretry: 500\ndata: x\n\n")
    assert events[0].event == "status"
    assert events[0].id == "7"
    assert events[0].retry == 500


def test_unterminated_event_dropped() -> None:
    assert decode([b"data: complete\n\ndata: partial"]) == ["complete"]


def test_multibyte_split() -> None:
    body = "data: caf\u00e9 \u2603\n\n".encode()
    assert decode(split_every(body, 1)) == ["caf\u00e9 \u2603"]


TRUNCATED_BODY = b'data: {"delta":"a"}\n\ndata: {"delta":"b"}\n\n'


def test_decoder_keeps_events_before_eof() -> None:
    assert decode([TRUNCATED_BODY]) == ['{"delta":"a"}', '{"delta":"b"}']


def test_eof_without_done_raises() -> None:
    body = envelope("data_chunk", 1, "a") + envelope("data_chunk", 2, "b")
    received = []
    with pytest.raises(StreamError) as caught:
        for item in iter_envelopes([body]):
            received.append(item)
    assert [e["body"] for e in received] == ["a", "b"]
    assert "[DONE]" in caught.value.message
    assert caught.value.code == "incomplete_stream"


def test_done_after_final_result_completes() -> None:
    body = envelope("data_chunk", 1, "a") + envelope("final_result", 2, {"n": 1})
    events = list(iter_envelopes([body, b"data: [DONE]\n\n"]))
    assert [e["type"] for e in events] == ["data_chunk", "final_result"]


def test_done_without_terminal_raises() -> None:
    body = envelope("data_chunk", 1, "a") + b"data: [DONE]\n\n"
    with pytest.raises(StreamError):
        list(iter_envelopes([body]))


def test_error_event_ends_stream() -> None:
    body = envelope("error", 1, {"code": "not_found"}) + b"data: [DONE]\n\n"
    assert [e["type"] for e in iter_envelopes(split_every(body, 7))] == ["error"]


def test_non_json_event_raises() -> None:
    with pytest.raises(StreamError):
        list(iter_envelopes([b"data: not json\n\ndata: [DONE]\n\n"]))


def test_async_reader_matches_sync() -> None:
    body = envelope("agent_status", 1, "x") + envelope("final_result", 2, 3)

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in split_every(body + b"data: [DONE]\n\n", 4):
            yield chunk

    async def collect() -> list[str]:
        return [e["type"] async for e in aiter_envelopes(chunks())]

    assert asyncio.run(collect()) == ["agent_status", "final_result"]


def test_async_reader_raises_without_done() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield envelope("final_result", 1, 1)

    async def collect() -> None:
        async for _ in aiter_envelopes(chunks()):
            pass

    with pytest.raises(StreamError):
        asyncio.run(collect())
