"""``Graph.pages``: a listing read ahead on a thread, over real HTTP (a scripted server on 127.0.0.1).

Graph sends ``@odata.nextLink`` before a page's ``value``; the reader takes it from the head of the body and asks
for the next page before this one is parsed. A service that sends it after the value is followed too."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from batch._gil import SHORT_SWITCH_INTERVAL
from batch.errors import ServiceError
from batch.tenant.graph import _head_link

from .stub import Seen, Stub, graph_error
from .test_http import make_tenant


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub().start()
    yield s
    s.stop()


def page(stub: Stub, n: int, last: int, *, link_first: bool = True, count: int | None = None) -> Any:
    """Page ``n`` of a listing of ``last`` pages, its members in Graph's order (or the link last)."""
    body: dict[str, Any] = {"@odata.context": f"{stub.url}/$metadata#users(id)"}
    if count is not None:
        body["@odata.count"] = count
    link = {"@odata.nextLink": f"{stub.url}/users?$skiptoken=p{n + 1}"} if n < last else {}
    value = {"value": [{"id": f"u{n}-{i}"} for i in range(3)]}
    body.update({**link, **value} if link_first else {**value, **link})
    return (200, {}, orjson.dumps(body))


def listing(stub: Stub, last: int, **kw: Any) -> None:
    def answer(s: Seen) -> Any:
        n = int(s.raw_path.rsplit("$skiptoken=p", 1)[1]) if "$skiptoken" in s.raw_path else 1
        return page(stub, n, last, **kw)

    stub.on("GET", "/v1.0/users", answer)


def ids(bodies: Iterator[dict[str, Any]]) -> list[str]:
    return [u["id"] for b in bodies for u in b["value"]]


def test_head_link_reads_graphs_order_only() -> None:
    assert _head_link(b'{"@odata.context":"c","@odata.nextLink":"https://g/users?$skiptoken=a%27b","value":[]}') == (
        "https://g/users?$skiptoken=a%27b")
    assert _head_link(b'{ "@odata.context" : "c" , "@odata.count" : 7 , "@odata.nextLink" : "n\\u00e9" }') == "n\u00e9"
    assert _head_link(b'{"@odata.nextLink":"n","value":[]}') == "n"
    assert _head_link(b'{"@odata.context":"c","value":[],"@odata.nextLink":"n"}') is None  # after the value
    assert _head_link(b'{"value":[{"@odata.nextLink":"not this one"}]}') is None
    assert _head_link(b'{"@odata.context":"c","value":[]}') is None


@pytest.mark.parametrize("link_first", [True, False], ids=["link-before-value", "link-after-value"])
def test_every_page_in_order(stub: Stub, link_first: bool) -> None:
    listing(stub, 5, link_first=link_first, count=15)
    with make_tenant(stub) as t:
        got = ids(t.graph.pages("/users?$top=3"))
    assert got == [f"u{n}-{i}" for n in range(1, 6) for i in range(3)]
    assert [s.raw_path.rsplit("=", 1)[1] for s in stub.seen] == ["3", "p2", "p3", "p4", "p5"]


def test_a_looping_next_link_is_refused(stub: Stub) -> None:
    stub.on("GET", "/v1.0/users", lambda s: (200, {}, orjson.dumps(
        {"@odata.nextLink": f"{stub.url}/users?$skiptoken=same", "value": [{"id": "u"}]})))
    with make_tenant(stub) as t, pytest.raises(ServiceError, match="The users listing returned the same next page"):
        list(t.graph.pages("/users", what="users listing"))
    assert len(stub.seen) == 2


def test_an_error_on_a_later_page_comes_after_the_pages_before_it(stub: Stub) -> None:
    def answer(s: Seen) -> Any:
        n = int(s.raw_path.rsplit("$skiptoken=p", 1)[1]) if "$skiptoken" in s.raw_path else 1
        return graph_error(400, "Request_BadRequest", "bad skiptoken") if n == 3 else page(stub, n, 9)

    stub.on("GET", "/v1.0/users", answer)
    got: list[str] = []
    with make_tenant(stub) as t, pytest.raises(ServiceError, match="bad skiptoken"):
        for body in t.graph.pages("/users"):
            got.extend(u["id"] for u in body["value"])
    assert got == [f"u{n}-{i}" for n in (1, 2) for i in range(3)]


def test_a_caller_that_stops_early_stops_the_reader(stub: Stub) -> None:
    """The reader is at most two pages ahead, and ends with the listing the caller left."""
    listing(stub, 50)
    with make_tenant(stub) as t:
        bodies = t.graph.pages("/users")
        first = next(bodies)
        time.sleep(0.3)  # time to read ahead as far as it may
        assert len(stub.seen) <= 4  # this page, two waiting, one in the reader's hands
        bodies.close()
        assert first["value"][0]["id"] == "u1-0"
    assert not [th for th in threading.enumerate() if th.name == "graph-pages"]
    seen = len(stub.seen)
    time.sleep(0.2)
    assert len(stub.seen) == seen


def test_the_switch_interval_is_short_while_paging_and_restored_after(stub: Stub) -> None:
    import sys

    before = sys.getswitchinterval()
    listing(stub, 2)
    with make_tenant(stub) as t:
        bodies = t.graph.pages("/users")
        next(bodies)
        assert sys.getswitchinterval() == min(before, SHORT_SWITCH_INTERVAL)
        inner = t.graph.pages("/users")  # nested listings share the setting
        list(inner)
        assert sys.getswitchinterval() == min(before, SHORT_SWITCH_INTERVAL)
        list(bodies)
    assert sys.getswitchinterval() == before


def test_a_caller_that_stops_is_not_held_up_by_a_slow_read_ahead(stub: Stub) -> None:
    """The caller takes page 1 and stops while the reader waits on page 2 (a server 20 s slow, or a retry sleeping
    out a Retry-After): the listing closes at once, not when that read ends."""
    release = threading.Event()

    def answer(s: Seen) -> Any:
        if "$skiptoken" in s.raw_path:
            release.wait(20)
            return page(stub, 2, 2)
        return page(stub, 1, 2)

    stub.on("GET", "/v1.0/users", answer)
    with make_tenant(stub) as t:
        bodies = t.graph.pages("/users")
        next(bodies)
        while len(stub.seen) < 2:  # the reader has asked for page 2
            time.sleep(0.01)
        started = time.monotonic()
        bodies.close()
        took = time.monotonic() - started
        release.set()
    assert took < 10  # not the 20 s the read would take
