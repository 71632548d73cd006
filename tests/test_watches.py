"""Personal watches (`/watch`, `/unwatch`) and the buttons' clicks: a person hears about the
models they follow, in their direct messages, through the same outbox, once. On the in-memory
unit of work and on SQLite alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from rankbot.bot.alerts import admits
from rankbot.bot.buttons import Button, Menu, alert_controls, control_id, parse_id
from rankbot.bot.changes import PriceChanged, RankMoved
from rankbot.bot.channels import ChannelRef, Watch, person_ref
from rankbot.bot.clicks import UNKNOWN, Click, click
from rankbot.bot.commands import Reply, answer
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.home import home
from rankbot.bot.status import delivery_lines
from rankbot.bot.watches import MAX_WATCHES, watch_command
from tests.conftest import expected_price_moves
from tests.fakes.memory import MemoryWork
from tests.test_admin import ADMINS, run
from tests.test_polling import NEW, OLD, T0, alerts, poll_catalog, subscribe

pytestmark = pytest.mark.anyio
ALICE = person_ref("slack", "T1", "UALICE")
CHANNEL = ChannelRef("discord", "G-A", "100")  # alice administers G-A (tests/test_admin.py)


async def watch(work: Any, text: str, person: ChannelRef = ALICE, command: str = "watch",
                at: Any = T0) -> Reply:
    return await watch_command(command, text, person=person, work=work, now=at)


def held(work: Any, ref: ChannelRef) -> list[bool]:
    """Whether each message queued for `ref` waits out quiet hours."""
    if isinstance(work, MemoryWork):
        return [m.held for m in work.outbox.to(ref)]
    subscription = work.channels.subscription(ref)
    rows = work.db.execute("SELECT held FROM outbox WHERE subscription = ? ORDER BY id",
                           [subscription.id]).fetchall()
    return [bool(h) for (h,) in rows]


def said(reply: Reply) -> str:
    return "\n".join([reply.card.title, *reply.card.lines])


def moved_models() -> list[str]:
    """Models whose default-heard prices moved between OLD and NEW, from the raw JSON."""
    moves, _, _ = expected_price_moves(OLD, NEW)
    return sorted({model for model, *_ in moves})


async def test_a_person_hears_only_their_models_once_in_their_own_messages(work: Any) -> None:
    subscribe(work, ChannelRef("slack", "T1", "CGENERAL"))
    await poll_catalog(work, OLD, T0)
    followed = moved_models()[0]
    reply = await watch(work, followed)
    assert not reply.public and f"`{followed}`" in said(reply)
    assert reply.buttons == (Button("Stop watching", "unwatch", followed),)
    await poll_catalog(work, NEW, T0 + timedelta(hours=1))
    ((_, records),) = alerts(work, ALICE)
    assert records and {r["model"] for r in records} == {followed}
    moves, _, _ = expected_price_moves(OLD, NEW, pct=0, fields=lambda f: True)
    assert {(r["model"], r["field"]) for r in records if r["kind"] == "price_changed"} == {
        (model, field) for model, field, _, _ in moves if model == followed}
    await poll_catalog(work, NEW, T0 + timedelta(hours=2))  # the same catalog: nothing more
    assert len(alerts(work, ALICE)) == 1
    channel = alerts(work, ChannelRef("slack", "T1", "CGENERAL"))
    assert len({r["model"] for _, rs in channel for r in rs}) > 1  # channels hear everything


async def test_watching_is_listed_limited_and_undone(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    models = sorted(m for m in work.snapshots.live_models() if ":" not in m)[:MAX_WATCHES + 1]
    for model in models[:MAX_WATCHES]:
        assert "Watching" in said(await watch(work, model))
    assert "already" in said(await watch(work, models[0]))
    refused = await watch(work, models[MAX_WATCHES])
    assert f"{MAX_WATCHES} models already" in said(refused)
    listed = await watch(work, "")
    assert listed.card.title == f"You watch {MAX_WATCHES} of {MAX_WATCHES} models"
    assert [b.value for b in listed.buttons] == models[:MAX_WATCHES]
    assert "Stopped watching" in said(await watch(work, models[0], command="unwatch"))
    assert f"You watch {MAX_WATCHES - 1} of" in said(await watch(work, ""))
    assert "do not watch" in said(await watch(work, "nothing-like-this", command="unwatch"))
    await watch(work, "all", command="unwatch")
    assert "You watch no models" in said(await watch(work, ""))
    mine = work.channels.subscription(ALICE)
    assert not mine.active and not mine.rules.watch and not mine.alerts


async def test_a_watch_covers_the_model_by_id_and_by_permaslug_and_nothing_else(
        work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    model = next(m for m in work.snapshots.live_models().values()
                 if m.canonical_slug != m.id and ":" not in m.id)
    await watch(work, model.id)
    rules = work.channels.subscription(ALICE).rules
    assert admits(rules, model.id, PriceChanged.kind)
    assert admits(rules, model.canonical_slug, RankMoved.kind)  # rankings name it so
    assert not admits(rules, "someone/else", PriceChanged.kind)
    assert not admits(rules, None, "open_weight_share_changed")  # about no one model


async def test_quiet_hours_hold_a_persons_message_and_digests_and_admins_skip_people(
        work: Any) -> None:
    await poll_catalog(work, OLD, T0)
    await watch(work, moved_models()[0])
    reply = await watch(work, "quiet 01:00-05:00 UTC")
    assert "Quiet hours 01:00-05:00 (UTC)" in said(reply)
    assert "must be" in said(await watch(work, "quiet 25:00-26:00"))
    await poll_catalog(work, NEW, T0 + timedelta(minutes=30))  # 02:30 UTC: quiet
    assert held(work, ALICE) == [True]
    assert queue_due_digests(work, T0 + timedelta(days=8)) == 0  # a person gets no digest
    await run(work, CHANNEL, "alice", "subscribe alerts")
    status = await run(work, CHANNEL, "alice", "status")
    assert status.card.lines[0] == "1 channel(s) subscribed in this workspace."


async def test_a_watch_command_from_the_console_is_refused_plainly(work: Any) -> None:
    reply = answer("watch", "qwen", work.snapshots, T0)
    assert not reply.public and "personal" in said(reply)


# -- buttons and clicks ---------------------------------------------------------------------

def test_alert_controls_offer_buttons_for_one_model_and_menus_for_several() -> None:
    one = alert_controls([{"kind": "price_changed", "model": "openai/gpt-4o"}])
    assert [(c.label, c.action) for c in one] == [
        ("Details", "details"), ("Mute here", "mute"), ("Watch", "watch")]
    several = alert_controls([{"model": "a/b"}, {"model": "c/d"}, {"model": "a/b"},
                              {"kind": "open_weight_share_changed", "model": None},
                              {"model": "x/" + "y" * 100}])  # too long for an id: left out
    assert all(isinstance(c, Menu) and c.options == ("a/b", "c/d") for c in several)
    person = alert_controls([{"model": "a/b"}], person=True)
    assert [c.action for c in person] == ["details", "unwatch"]
    assert alert_controls([{"kind": "open_weight_share_changed", "model": None}]) == ()
    assert parse_id(control_id("mute", "a/b")) == ("mute", "a/b")
    assert parse_id(control_id("watch"), "c/d") == ("watch", "c/d")
    for forged in ("rankbot:delete:a/b", "other:mute:a/b", "rankbot:mute:", "rankbot:mute:a b"):
        assert parse_id(forged) is None


def clicked(action: str, model: str, user: str = "alice") -> Click:
    return Click(control_id(action, model), None, CHANNEL, user, CHANNEL.workspace)


async def test_mute_is_for_admins_audited_and_undone(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    await run(work, CHANNEL, "alice", "subscribe alerts")
    model = next(m for m in work.snapshots.live_models().values()
                 if m.canonical_slug != m.id and ":" not in m.id)
    refused = await click(clicked("mute", model.id, "mallory"), authorizer=ADMINS, work=work,
                          now=T0)
    assert not refused.public and "Only workspace admins" in said(refused)
    assert work.channels.subscription(CHANNEL).rules.ignore == ()
    muted = await click(clicked("mute", model.id), authorizer=ADMINS, work=work, now=T0)
    assert not muted.public and muted.buttons == (Button("Undo", "unmute", model.id),)
    rules = work.channels.subscription(CHANNEL).rules
    assert not admits(rules, model.id, PriceChanged.kind)
    assert not admits(rules, model.canonical_slug, RankMoved.kind)
    assert admits(rules, "someone/else", PriceChanged.kind)
    (entry,) = [e for e in work.channels.audit_log(CHANNEL) if e["setting"] == "ignore"]
    assert (entry["who"], entry["action"], entry["old"]) == ("alice", "set", "none")
    undone = await click(clicked("unmute", model.id), authorizer=ADMINS, work=work, now=T0)
    assert "heard here again" in said(undone)
    assert work.channels.subscription(CHANNEL).rules.ignore == ()


async def test_details_and_watch_clicks_answer_the_clicker_alone(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    model = sorted(work.snapshots.live_models())[0]
    details = await click(clicked("details", model), authorizer=ADMINS, work=work, now=T0)
    assert not details.public and details.card.title
    watched = await click(clicked("watch", model, "mallory"), authorizer=ADMINS, work=work,
                          now=T0)
    assert f"`{model}`" in said(watched)
    assert work.channels.subscription(person_ref("discord", "G-A", "mallory")).rules.watch
    forged = Click("rankbot:drop_tables:x", None, CHANNEL, "alice", "G-A")
    assert said(await click(forged, authorizer=ADMINS, work=work, now=T0)).endswith(UNKNOWN)


async def test_home_shows_watches_freshness_top_10_and_managed_channels(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    model = sorted(work.snapshots.live_models())[0]
    await watch(work, model)
    await run(work, CHANNEL, "alice", "subscribe alerts")
    await run(work, CHANNEL, "alice", "set top_n 5")
    mine = work.channels.subscription(ALICE)
    watches = work.channels.watches(mine)
    sections = home(work.snapshots, mine, watches,
                    work.channels.subscriptions_in("discord", "G-A"), T0)
    titles = [s.title for s in sections]
    assert titles[:2] == ["Your watches", "Data"] and titles[-1] == "Channels you manage"
    assert sections[0].lines[0].button == Button("Stop watching", "unwatch", model)
    assert "`top_n` = 5" in sections[-1].lines[0].text
    assert len(home(work.snapshots, None, [], None, T0)) == 3  # not an admin: no channels


async def test_the_operators_status_counts_people_apart_from_channels(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    subscribe(work, CHANNEL)
    await watch(work, sorted(work.snapshots.live_models())[0])
    lines = delivery_lines(work.channels.subscriptions(), {}, [])
    assert lines[0] == "Channels   1 subscribed, 0 paused; 1 people watching models"


async def test_a_model_id_with_capitals_is_watched_listed_and_unwatched_as_itself(
        work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    live = dict(work.snapshots.live_models())
    base = next(m for m in live.values() if m.canonical_slug != m.id and ":" not in m.id)
    capital = replace(base, id="Evil/Model-X", canonical_slug="evil/model-x-2026")
    live[capital.id] = capital
    work.snapshots.live_models = lambda: live  # the catalog as served: an id in capitals
    await watch(work, "Evil/Model-X")
    await watch(work, base.id)
    listed = await watch(work, "")
    assert listed.card.title == f"You watch 2 of {MAX_WATCHES} models"
    assert [b.value for b in listed.buttons] == ["Evil/Model-X", base.id]
    assert "no longer in the catalog" not in said(listed)
    await watch(work, "evil/model-x", command="unwatch")
    assert [b.value for b in (await watch(work, "")).buttons] == [base.id]


# -- what a review found: each watch one model, clicks exact, mutes undone to what they added --

def without(work: Any, model_id: str) -> None:
    """The catalog less one model, as after it left."""
    live = {k: v for k, v in work.snapshots.live_models().items() if k != model_id}
    work.snapshots.live_models = lambda: live


def slugged(work: Any) -> Any:
    return next(m for m in sorted(work.snapshots.live_models().values(), key=lambda m: m.id)
                if m.canonical_slug != m.id and ":" not in m.id)


async def test_a_model_gone_from_the_catalog_is_still_one_watch_and_unwatched_whole(
        work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    models = [m for m in sorted(work.snapshots.live_models().values(), key=lambda m: m.id)
              if m.canonical_slug != m.id and ":" not in m.id][:12]
    for model in models[:11]:
        await watch(work, model.id)
    live = {k: v for k, v in work.snapshots.live_models().items()
            if k not in {m.id for m in models[:10]}}
    work.snapshots.live_models = lambda: live
    assert (await watch(work, "")).card.title == f"You watch 11 of {MAX_WATCHES} models"
    assert "Watching" in said(await watch(work, models[11].id))  # 12 of 20
    for model in models[:11]:
        assert "Stopped watching" in said(await watch(work, model.id, command="unwatch"))
        assert not admits(work.channels.subscription(ALICE).rules, model.canonical_slug,
                          RankMoved.kind)  # its rankings name went with it
    await watch(work, models[11].id, command="unwatch")
    assert not work.channels.subscription(ALICE).alerts  # watching nothing: hearing nothing


async def test_a_click_acts_on_the_model_it_names_never_a_search_match(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    await run(work, CHANNEL, "alice", "subscribe alerts")
    live = work.snapshots.live_models()
    gone = next(m for m in sorted(live) if ":" not in m
                and any(o != m and o.startswith(m) for o in live))  # `x` beside `x-mini`
    without(work, gone)
    await click(clicked("watch", gone, "bob"), authorizer=ADMINS, work=work, now=T0)
    bob = work.channels.subscription(person_ref("discord", "G-A", "bob"))
    assert work.channels.watches(bob) == [Watch(gone, gone)]
    base = next(m for m in sorted(live.values(), key=lambda m: m.id) if ":" not in m.id
                and m.canonical_slug != m.id and f"{m.id}:free" not in live)
    variant = f"{base.canonical_slug}:free"  # ranked, and no longer in the catalog
    await click(clicked("watch", variant, "bob"), authorizer=ADMINS, work=work, now=T0)
    assert admits(work.channels.subscription(bob.ref).rules, variant, RankMoved.kind)
    await click(clicked("mute", variant), authorizer=ADMINS, work=work, now=T0)
    rules = work.channels.subscription(CHANNEL).rules
    assert not admits(rules, variant, RankMoved.kind)
    assert admits(rules, base.canonical_slug, RankMoved.kind)  # not the base model


async def test_undo_takes_out_only_what_its_mute_added(work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    await run(work, CHANNEL, "alice", "subscribe alerts")
    model = slugged(work)
    await run(work, CHANNEL, "alice", f"set ignore {model.id}")
    muted = await click(clicked("mute", model.id), authorizer=ADMINS, work=work, now=T0)
    assert "left out here already" in said(muted) and muted.buttons == ()  # no Undo to take
    assert work.channels.subscription(CHANNEL).rules.ignore == (model.id,)  # the admin's own
    author = model.id.split("/")[0]
    await run(work, CHANNEL, "alice", f"set ignore {author}")  # a glob mutes it as well
    await run(work, CHANNEL, "alice", "set ignore none")
    await click(clicked("mute", model.id), authorizer=ADMINS, work=work, now=T0)
    await run(work, CHANNEL, "alice", f"set ignore {author},{model.id.lower()}")
    undone = await click(clicked("unmute", model.id), authorizer=ADMINS, work=work, now=T0)
    assert "still left out here" in said(undone)


async def test_what_was_queued_about_an_unwatched_model_is_not_sent(work: Any) -> None:
    await poll_catalog(work, OLD, T0)
    first, other = moved_models()[:2]
    await watch(work, first)
    await watch(work, "quiet 01:00-05:00 UTC")
    await poll_catalog(work, NEW, T0 + timedelta(minutes=30))  # quiet: held
    mine = work.channels.subscription(ALICE)
    assert len(work.outbox.pending_changes(mine)) == 1
    await watch(work, "all", command="unwatch")
    await watch(work, other)
    assert work.outbox.pending_changes(work.channels.subscription(ALICE)) == {}


async def test_a_forged_button_naming_an_author_alone_watches_and_mutes_nothing(
        work: Any) -> None:
    await poll_catalog(work, NEW, T0)
    await run(work, CHANNEL, "alice", "subscribe alerts")
    for action in ("watch", "mute"):
        reply = await click(clicked(action, "openai", "alice"), authorizer=ADMINS, work=work,
                            now=T0)
        assert said(reply).endswith(UNKNOWN)
    assert work.channels.subscription(person_ref("discord", "G-A", "alice")) is None
    assert work.channels.subscription(CHANNEL).rules.ignore == ()


async def test_unwatching_one_model_cancels_what_was_held_about_it_alone(work: Any) -> None:
    await poll_catalog(work, OLD, T0)
    moved = moved_models()
    first = moved[0]
    unmoved = next(m for m in sorted(work.snapshots.live_models()) if m not in moved)
    await watch(work, first)
    await watch(work, unmoved)
    await watch(work, "quiet 01:00-05:00 UTC")
    await poll_catalog(work, NEW, T0 + timedelta(minutes=30))  # quiet: held, about `first`
    mine = work.channels.subscription(ALICE)
    assert len(work.outbox.pending_changes(mine)) == 1
    await watch(work, first, command="unwatch")
    assert work.outbox.pending_changes(work.channels.subscription(ALICE)) == {}
    assert [w.model for w in work.channels.watches(mine)] == [unmoved]
