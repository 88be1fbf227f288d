"""The live KB store on both databases: the seed is revision 1, every change a revision with the data before
and after, the state at any revision rebuilt, one item or the whole KB rolled back, and pending edits
decided by someone other than their author."""

from __future__ import annotations

import pytest

from bot.live_kb import ensure_seeded, load_live, seed_items
from knowledge.loader import DEFAULT_KB_PATH
from storage import kb as kbdb
from storage.db import SessionFactory, transaction


def _entry(sessions: SessionFactory, entry_id: str) -> dict[str, object]:
    with transaction(sessions) as s:
        data = kbdb.get_item(s, kind=kbdb.ENTRY, item_id=entry_id)
    assert data is not None
    return data


def test_the_seed_is_revision_one_and_only_once(sessions: SessionFactory) -> None:
    entries, contacts = seed_items(DEFAULT_KB_PATH)
    assert ensure_seeded(sessions, DEFAULT_KB_PATH) == 1
    assert ensure_seeded(sessions, DEFAULT_KB_PATH) is None
    with transaction(sessions) as s:
        assert kbdb.latest_revision(s) == 1
        snap = kbdb.snapshot(s)
        (revision,) = kbdb.revisions(s)
    assert revision.change == kbdb.Change.SEED and revision.staff_name == "system"
    # the files' order is kept (the FAQ menu takes the first entry of each topic)
    assert [i.item_id for i in snap.entries] == [e.item_id for e in entries]
    assert [i.item_id for i in snap.contacts] == [c.item_id for c in contacts]
    loaded = load_live(sessions, DEFAULT_KB_PATH)
    assert loaded.revision == 1 and loaded.kb is not None
    assert not [p for p in loaded.problems if p.level == "error"]
    assert list(loaded.kb.entries) == [e.item_id for e in entries]


def test_edits_are_revisions_and_an_entry_or_the_whole_kb_rolls_back(sessions: SessionFactory) -> None:
    ensure_seeded(sessions, DEFAULT_KB_PATH)
    entries, _ = seed_items(DEFAULT_KB_PATH)
    first, second = entries[0], entries[1]
    original = dict(first.data)
    changed = {**original, "answer": {**original["answer"], "ja": "新しい回答です。"}}
    with transaction(sessions) as s:
        r2 = kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, first.item_id, changed)], staff_name="sato", comment="改定")
        assert r2 is not None and r2.id == 2
        # nothing changed: no revision
        assert kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, first.item_id, changed)], staff_name="sato") is None
        other = {**second.data, "answer": {**second.data["answer"], "ja": "別の回答。"}}
        r3 = kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, second.item_id, other)], staff_name="boss")
        assert r3 is not None and r3.id == 3
        (version,) = kbdb.versions(s, revision_id=2)
        assert kbdb.loads(version.before) == original and kbdb.loads(version.after) == changed
        assert kbdb.state_at(s, revision_id=1, kind=kbdb.ENTRY, item_id=first.item_id) == {
            (kbdb.ENTRY, first.item_id): original
        }
    assert _entry(sessions, first.item_id) == changed

    with transaction(sessions) as s:  # one entry back to the seed: the other edit stays
        back = kbdb.rollback(s, to_revision=1, staff_name="boss", kind=kbdb.ENTRY, item_id=first.item_id)
        assert back is not None and back.change == kbdb.Change.ROLLBACK
    assert _entry(sessions, first.item_id) == original
    assert _entry(sessions, second.item_id) == other

    with transaction(sessions) as s:  # the whole KB back to revision 2
        whole = kbdb.rollback(s, to_revision=2, staff_name="boss")
        assert whole is not None
        assert {(v.kind, v.item_id) for v in kbdb.versions(s, revision_id=whole.id or 0)} == {
            (kbdb.ENTRY, first.item_id),
            (kbdb.ENTRY, second.item_id),
        }
        assert kbdb.rollback(s, to_revision=2, staff_name="boss") is None  # already there
    assert _entry(sessions, first.item_id) == changed
    assert _entry(sessions, second.item_id) == second.data


def test_a_new_entry_and_its_deletion_roll_back_too(sessions: SessionFactory) -> None:
    ensure_seeded(sessions, DEFAULT_KB_PATH)
    entries, _ = seed_items(DEFAULT_KB_PATH)
    new = {**entries[0].data, "id": "brand-new"}
    with transaction(sessions) as s:
        kbdb.save(s, items=[kbdb.Item(kbdb.ENTRY, "brand-new", new)], staff_name="sato")
        kbdb.save(s, items=[], deleted=[(kbdb.ENTRY, "brand-new")], staff_name="sato")
        assert kbdb.get_item(s, kind=kbdb.ENTRY, item_id="brand-new") is None
        kbdb.rollback(s, to_revision=2, staff_name="boss")
        assert kbdb.get_item(s, kind=kbdb.ENTRY, item_id="brand-new") == new
        kbdb.rollback(s, to_revision=1, staff_name="boss", kind=kbdb.ENTRY, item_id="brand-new")
        assert kbdb.get_item(s, kind=kbdb.ENTRY, item_id="brand-new") is None
        snap = kbdb.snapshot(s)
    assert "brand-new" not in [i.item_id for i in snap.entries]


def test_a_pending_edit_needs_another_persons_approval(sessions: SessionFactory) -> None:
    ensure_seeded(sessions, DEFAULT_KB_PATH)
    entries, _ = seed_items(DEFAULT_KB_PATH)
    item = kbdb.Item(kbdb.ENTRY, entries[0].item_id, {**entries[0].data, "related": []})
    with transaction(sessions) as s:
        assert not kbdb.approval_required(s)
        kbdb.set_approval_required(s, required=True, staff_name="boss")
        assert kbdb.approval_required(s)
        proposal = kbdb.propose(s, item=item, staff_name="sato", comment="関連を外す")
        assert kbdb.latest_revision(s) == 1  # nothing live yet
        with pytest.raises(kbdb.KbStoreError):
            kbdb.decide(s, proposal=proposal, approve=True, staff_name="sato")
        revision = kbdb.decide(s, proposal=proposal, approve=True, staff_name="boss")
        assert revision is not None and revision.change == kbdb.Change.APPROVE
        assert proposal.status == kbdb.PendingStatus.APPROVED and proposal.revision_id == revision.id
        assert kbdb.pending(s) == []
        with pytest.raises(kbdb.KbStoreError):
            kbdb.decide(s, proposal=proposal, approve=False, staff_name="boss2")
