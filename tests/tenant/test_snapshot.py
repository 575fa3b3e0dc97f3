"""Snapshot, look-ups and $batch against the sandbox tenant over real HTTP."""

from __future__ import annotations

import asyncio
import math

import pytest

from batch._gc import paused_gc as gc_paused
from batch.config import Target
from batch.models import User
from batch.tenant import Tenant
from batch.tenant.snapshot import (
    LOOKUP_ONLY_MAX_KEYS,
    PAGE_WITHOUT_COUNT_MIN_KEYS,
    choose_strategy,
    normalise_keys,
)

from .conftest import Sandbox


@pytest.fixture(scope="module")
def everyone(sandbox: Sandbox) -> list[User]:
    with sandbox.tenant() as t:
        return t.graph.list_users()


def test_paging_follows_next_link(sandbox: Sandbox, everyone: list[User]) -> None:
    assert len(everyone) == sandbox.summary.users
    assert len({u.id for u in everyone}) == len(everyone)
    with sandbox.tenant() as t:
        with gc_paused():
            small = [u for page in t.graph.iter_user_pages(page_size=200) for u in page]
        assert t.requests == math.ceil(sandbox.summary.users / 200)
    assert [u.id for u in small] == [u.id for u in everyone]
    sample = everyone[0]
    assert sample.id == sample.id.lower() and sample.upn
    assert all(s == s.lower() for u in everyone for s in u.assigned)


def _keys(everyone: list[User]) -> list[str]:
    members = [u for u in everyone if not u.is_guest]
    guests = [u for u in everyone if u.is_guest]
    grouped = [u for u in members if any(s.assigned_by_group for s in u.states)]
    keys = [u.upn for u in members[:30]]
    keys += [u.id.upper() for u in members[30:45]]  # object ids, any case
    keys += [u.upn.upper() for u in members[45:50]]  # UPNs in another case
    keys += [u.upn for u in guests[:5]]  # guest UPNs with #EXT#
    keys += [u.mail for u in guests[5:25] if u.mail]  # mails that are not UPNs
    keys += [u.upn for u in grouped[:10]]
    keys += ["nobody@nowhere.example", "00000000-0000-0000-0000-000000000000", "not a key", "o'hara@x.example"]
    keys += [" " + keys[0] + " ", ""]  # duplicates and blanks
    return keys


def test_snapshot_strategies_agree(sandbox: Sandbox, everyone: list[User]) -> None:
    keys = _keys(everyone)
    with sandbox.tenant() as t:
        paged = t.snapshot(keys, strategy="page")
    with sandbox.tenant() as t:
        looked = t.snapshot(keys, strategy="lookup")
    assert paged.complete_directory and not looked.complete_directory
    assert len(paged.users) == sandbox.summary.users
    for k in keys:
        a, b = paged.find_user(k), looked.find_user(k)
        assert a == b, k
    found = {looked.find_user(k).id for k in keys if looked.find_user(k)}  # type: ignore[union-attr]
    assert set(looked.users) == found  # look-ups bring only the named users
    assert looked.find_user("nobody@nowhere.example") is None
    assert looked.find_user("00000000-0000-0000-0000-000000000000") is None
    assert paged.skus == looked.skus and paged.skus
    assert paged.tenant_id == looked.tenant_id == sandbox.summary.tenant_id
    # every licensing group a named user inherits from has a name
    inherited = {s.assigned_by_group for u in looked.users.values() for s in u.states if s.assigned_by_group}
    assert inherited and inherited <= set(looked.groups)
    assert all(g.display_name and g.display_name != g.id for g in looked.groups.values())
    assert looked.groups.items() <= paged.groups.items()


def test_guest_upn_and_mail_lookups(sandbox: Sandbox, everyone: list[User]) -> None:
    guest = next(u for u in everyone if "#EXT#" in u.upn)
    with sandbox.tenant() as t:
        snap = t.snapshot([guest.upn, guest.mail or ""], strategy="lookup")
    assert snap.find_user(guest.upn) == guest
    assert snap.find_user(guest.mail or "") == guest


def test_lookup_request_count(sandbox: Sandbox, everyone: list[User]) -> None:
    keys = [u.upn for u in everyone if not u.is_guest][:100]
    with sandbox.tenant() as t:
        snap = t.snapshot(keys, strategy="lookup")
        total = t.requests
    assert not snap.complete_directory
    # 1 subscribedSkus + 5 look-up batches (20 keys each, in flight together) + 1 batch of group names
    assert snap.requests == total
    assert snap.requests == 1 + 5 + math.ceil(len(snap.groups) / 20)
    assert len(snap.users) == 100


def test_auto_strategy_pages_for_many_keys(sandbox: Sandbox, everyone: list[User]) -> None:
    keys = [u.upn for u in everyone] + [f"left{i}@contoso.example" for i in range(PAGE_WITHOUT_COUNT_MIN_KEYS)]
    with sandbox.tenant() as t:
        served = t.graph.user_count() is not None
    with sandbox.tenant() as t:
        snap = t.snapshot(keys)
    assert snap.complete_directory and len(snap.users) == len(everyone)
    # skus, $count, two pages (the first one the probe when $count is not served), group names
    assert snap.requests == 1 + 1 + 2 + math.ceil(len(snap.groups) / 20)
    assert served or snap.requests == 5  # the probe page was not wasted


def test_auto_strategy_middle_sized_sheet(sandbox: Sandbox, everyone: list[User]) -> None:
    keys = [u.upn for u in everyone[:400]]  # 20 look-up batches vs 2 pages
    with sandbox.tenant() as t:
        served = t.graph.user_count() is not None
    with sandbox.tenant() as t:
        snap = t.snapshot(keys)
    # with a directory count the rule pages (2 pages < 20 batches); without one, 400 keys are looked up
    assert snap.complete_directory is served
    assert all(snap.find_user(k) for k in keys)


def test_auto_strategy_small_directory_is_one_page(tmp_path_factory: pytest.TempPathFactory) -> None:
    from .conftest import start_sandbox

    server, summary = start_sandbox(tmp_path_factory.mktemp("small") / "small.db", 300, 3)
    try:
        target = Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)
        with Tenant(target) as t:
            upns = [u.upn for u in t.graph.list_users()]
        with Tenant(target) as t:
            snap = t.snapshot(upns[:50])
        assert snap.complete_directory and len(snap.users) == summary.users
        assert snap.requests <= 1 + 1 + 1 + 1  # skus, $count, one page, group names
    finally:
        server.stop()


def test_few_keys_never_count_or_page(sandbox: Sandbox, everyone: list[User]) -> None:
    with sandbox.tenant() as t:
        snap = t.snapshot([everyone[3].upn])
    assert not snap.complete_directory and len(snap.users) == 1
    assert snap.requests <= 3  # skus, one look-up batch, maybe one group batch


def test_choose_strategy_rule() -> None:
    assert choose_strategy(0, None) == "lookup"
    assert choose_strategy(LOOKUP_ONLY_MAX_KEYS, 10) == "lookup"
    assert choose_strategy(100, 100_000) == "lookup"  # 5 batches vs 101 pages
    assert choose_strategy(2_020, 100_000) == "page"  # 101 batches vs 101 pages
    assert choose_strategy(2_000, 100_000) == "lookup"
    assert choose_strategy(21, 500) == "page"  # one page vs two batches
    assert choose_strategy(PAGE_WITHOUT_COUNT_MIN_KEYS - 1, None) == "lookup"
    assert choose_strategy(PAGE_WITHOUT_COUNT_MIN_KEYS, None) == "page"
    assert normalise_keys([" A@x ", "a@X", "", "  ", "b"]) == ["A@x", "b"]


def test_read_users_current_state(sandbox: Sandbox, everyone: list[User]) -> None:
    ids = [u.id for u in everyone[:45]] + ["00000000-0000-0000-0000-000000000000"]
    with sandbox.tenant() as t:
        got = t.read_users(ids)
        assert t.requests == 3  # 46 ids, 20 per batch
    assert set(got) == {u.id for u in everyone[:45]}
    assert got[everyone[0].id] == everyone[0]


def test_tenant_id_and_info(sandbox: Sandbox) -> None:
    with sandbox.tenant() as t:
        assert t.tenant_id == sandbox.summary.tenant_id
        info = t.tenant_info()
    assert info["id"] == sandbox.summary.tenant_id and info["name"]


def test_post_batch_against_the_sandbox(sandbox: Sandbox, everyone: list[User]) -> None:
    members = [u for u in everyone if not u.is_guest]
    a, b = members[100], members[101]
    items = [
        {"id": "get-a", "method": "GET", "url": f"/users/{a.id}?$select=id,usageLocation"},
        {"id": "set-b", "method": "PATCH", "url": f"/users/{b.id}", "body": {"usageLocation": "DE"}},
        {"id": "get-b", "method": "GET", "url": f"/users/{b.id}?$select=id,usageLocation", "dependsOn": ["set-b"]},
        {"id": "missing", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
        {"id": "bad", "method": "POST", "url": f"/users/{a.id}/assignLicense", "body": {"addLicenses": []}},
    ]

    async def go() -> None:
        async with sandbox.tenant() as t:
            reply = await t.post_batch(items)
        assert set(reply) == {i["id"] for i in items} and not reply.missing
        assert reply["get-a"].status == 200 and reply["get-a"].body["id"] == a.id
        assert reply["set-b"].status == 204
        assert reply["get-b"].body["usageLocation"] == "DE"
        assert reply["missing"].status == 404 and reply["missing"].error_code
        assert reply["bad"].status == 400  # removeLicenses is missing
        assert reply.request_id

    asyncio.run(go())


def test_typed_read_through_msgraph_sdk(sandbox: Sandbox, everyone: list[User]) -> None:
    guest = next(u for u in everyone if "#EXT#" in u.upn)
    member = next(u for u in everyone if any(s.assigned_by_group for s in u.states))
    with sandbox.tenant() as t:
        assert t.get_user_typed(guest.upn) == guest
        assert t.get_user_typed(member.id) == member
        assert t.get_user_typed("nobody@nowhere.example") is None


def test_tenant_requires_a_graph_url() -> None:
    from batch.config import Target
    from batch.errors import ConfigError

    with pytest.raises(ConfigError):
        Tenant(Target(name="sandbox", graph_url="", powerplatform_url="", embedded_sandbox=True))


def test_snapshot_survives_faults(tmp_path_factory: pytest.TempPathFactory) -> None:
    """503/504 (envelope and item), dropped connections: reads retry and the snapshot is the same."""
    from .conftest import start_sandbox

    db = tmp_path_factory.mktemp("faults") / "f.db"
    clean, _ = start_sandbox(db, 1200, 11)
    try:
        target = Target(name="sandbox", graph_url=clean.graph_url, powerplatform_url=clean.powerplatform_url)
        with Tenant(target) as t:
            everyone = t.graph.list_users()
            expected_page = t.snapshot([], strategy="page")
        keys = [u.upn for u in everyone[::7]] + [u.mail or u.upn for u in everyone if u.is_guest]
        with Tenant(target) as t:
            expected_lookup = t.snapshot(keys, strategy="lookup")
    finally:
        clean.stop()
    faulty, _ = start_sandbox(
        db, 1200, 11, fault_seed=5, fault_503_rate=0.15, fault_504_rate=0.05, fault_drop_rate=0.05
    )
    try:
        target = Target(name="sandbox", graph_url=faulty.graph_url, powerplatform_url=faulty.powerplatform_url)
        waits: list[float] = []
        with Tenant(target, sleep=waits.append) as t:
            paged = t.snapshot([], strategy="page")
            looked = t.snapshot(keys, strategy="lookup")
            retries = t.http.stats.retries
    finally:
        faulty.stop()
    assert paged.users == expected_page.users and paged.groups == expected_page.groups
    assert looked.users == expected_lookup.users and looked.groups == expected_lookup.groups
    assert retries > 0 and waits  # the faults happened and were retried
