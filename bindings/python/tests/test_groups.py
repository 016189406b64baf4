"""Groups with Sender Keys through the Python bindings: creation, key delivery,
reading both ways, refused duplicates and tampering, removal, a late sender key,
withheld members, additions, rotation and snapshots."""

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000
KEY = bytes(range(32))


class Net:
    """Devices by name, each with a pairwise session with every other one, and the
    app's delivery of group key messages (a simulated server)."""

    def __init__(self, *names, sessions=True):
        self.d = {}
        for n in names:
            self.add(n)
        if sessions:
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    self.connect(a, b)

    def add(self, name):
        dev = g.Device(name, NOW)
        dev.generate_one_time_prekeys(8)
        dev.generate_pq_prekeys(8, NOW)
        self.d[name] = dev
        return dev

    def connect(self, a, b):
        """A pairwise session both ways between `a` and `b` (identities pinned)."""
        da, db = self.d[a], self.d[b]
        da.initiate(b, db.next_bundle())
        assert db.decrypt(a, da.encrypt(b, b"hi")).plaintext == b"hi"
        assert da.decrypt(b, db.encrypt(a, b"hi")).plaintext == b"hi"

    def member(self, name, admin=False):
        return g.GroupMemberRecord(name=name, identity_key=self.d[name].identity_key(), admin=admin)

    def deliver(self, sender, outgoing):
        """Delivers `sender`'s pairwise key messages; returns what each peer received."""
        got = {}
        for o in outgoing:
            got[o.peer] = self.d[o.peer].group_receive(sender, o.message)
        return got

    def group(self, creator, others):
        """`creator` makes a group with `others`; everyone joins and gets every key."""
        ch = self.d[creator].group_create([self.member(n) for n in others], NOW)
        assert ch.withheld == []
        joined = {n: self.d[n].group_join(ch.welcome, NOW) for n in others}
        self.deliver(creator, ch.outgoing)
        for n, j in joined.items():
            assert j.withheld == []
            self.deliver(n, j.outgoing)
        return ch.group_id


def test_three_members_read_each_other_both_ways():
    net = Net("ana", "ben", "cai")
    ch = net.d["ana"].group_create([net.member("ben"), net.member("cai")], NOW)
    gid = ch.group_id
    assert len(gid) == 32 and ch.epoch == 0 and ch.commit is None and ch.welcome
    assert sorted(ch.added) == ["ben", "cai"] and ch.removed == [] and ch.replaced == []
    assert sorted(o.peer for o in ch.outgoing) == ["ben", "cai"]
    # A key that arrives before the welcome is refused and can be retried.
    to_ben = next(o for o in ch.outgoing if o.peer == "ben")
    with pytest.raises(g.GoChatError.UnknownGroup):
        net.d["ben"].group_receive("ana", to_ben.message)
    joined = {n: net.d[n].group_join(ch.welcome, NOW) for n in ("ben", "cai")}
    got = net.deliver("ana", ch.outgoing)
    assert got["ben"].group_id == gid and got["ben"].sender == "ana" and got["ben"].fresh
    assert got["ben"].identity_event == g.IdentityEvent.SAME()
    for n, j in joined.items():
        assert j.group_id == gid and sorted(o.peer for o in j.outgoing) == sorted({"ana", "ben", "cai"} - {n})
        net.deliver(n, j.outgoing)
    for sender in ("ana", "ben", "cai"):
        text = b"hello from " + sender.encode()
        sent = net.d[sender].group_encrypt(gid, text, NOW)
        assert not sent.rotated and sent.outgoing == []
        for reader in {"ana", "ben", "cai"} - {sender}:
            p = net.d[reader].group_decrypt(sender, sent.message)
            assert p.plaintext == text and p.sender == sender
            assert p.sender_identity == net.d[sender].identity_key()
            assert p.iteration == 0
    infos = [net.d[n].group_info(gid) for n in ("ana", "ben", "cai")]
    assert [m.name for m in infos[0].members] == ["ana", "ben", "cai"]
    assert [m.admin for m in infos[0].members] == [True, False, False]
    assert infos[0].members[1].identity_key == net.d["ben"].identity_key()
    assert all(i.epoch == 0 and i.active and i.own_key_id is not None for i in infos)
    assert len({i.membership_hash for i in infos}) == 1
    assert net.d["ben"].group_ids() == [gid]


def test_duplicate_is_refused_with_the_typed_error_and_changes_nothing():
    net = Net("ana", "ben", "cai")
    gid = net.group("ana", ["ben", "cai"])
    m = net.d["ana"].group_encrypt(gid, b"once", NOW).message
    assert net.d["ben"].group_decrypt("ana", m).plaintext == b"once"
    before = net.d["ben"].state_len()
    with pytest.raises(g.GoChatError.Duplicate) as ei:
        net.d["ben"].group_decrypt("ana", m)
    assert ei.value.retry_may_help is False
    assert net.d["ben"].state_len() == before


def test_tampered_message_is_refused_and_state_unchanged():
    net = Net("ana", "ben", "cai")
    gid = net.group("ana", ["ben", "cai"])
    m = net.d["ana"].group_encrypt(gid, b"original", NOW).message
    ben = net.d["ben"]
    before = ben.state_len()
    for i in (len(m) // 2, len(m) - 70, len(m) - 1):
        bad = bytearray(m)
        bad[i] ^= 0x01
        with pytest.raises(g.GoChatError.BadSignature):
            ben.group_decrypt("ana", bytes(bad))
        assert ben.state_len() == before
    with pytest.raises(g.GoChatError):
        ben.group_decrypt("ana", m[:-1])
    # The server names the wrong sender: Cai holds no key with that id.
    with pytest.raises(g.GoChatError.MissingSenderKey):
        ben.group_decrypt("cai", m)
    with pytest.raises(g.GoChatError.NotMember):
        ben.group_decrypt("nobody", m)
    assert ben.state_len() == before
    assert ben.group_decrypt("ana", m).plaintext == b"original"


def test_removed_member_cannot_read_new_messages():
    net = Net("ana", "ben", "cai")
    gid = net.group("ana", ["ben", "cai"])
    for s in ("ana", "ben"):
        assert net.d["cai"].group_decrypt(s, net.d[s].group_encrypt(gid, b"warm up", NOW).message)
    # Cai keeps a copy of everything it holds before the removal reaches it.
    cai_copy = g.Device.from_snapshot(KEY, net.d["cai"].export(KEY))
    rm = net.d["ana"].group_remove(gid, ["cai"], NOW)
    assert rm.epoch == 1 and rm.commit and rm.welcome is None and rm.removed == ["cai"]
    assert [o.peer for o in rm.outgoing] == ["ben"], "no key goes to the removed device"
    ben_change = net.d["ben"].group_process_commit(rm.commit, NOW)
    assert ben_change.removed == ["cai"] and [o.peer for o in ben_change.outgoing] == ["ana"]
    cai_change = net.d["cai"].group_process_commit(rm.commit, NOW)
    assert cai_change.outgoing == []
    assert not net.d["cai"].group_info(gid).active
    with pytest.raises(g.GoChatError.Duplicate):  # a replayed commit
        net.d["ben"].group_process_commit(rm.commit, NOW)
    net.deliver("ana", rm.outgoing)
    net.deliver("ben", ben_change.outgoing)
    for s, r in (("ana", "ben"), ("ben", "ana")):
        m = net.d[s].group_encrypt(gid, b"after the removal", NOW).message
        assert net.d[r].group_decrypt(s, m).plaintext == b"after the removal"
        with pytest.raises(g.GoChatError.NotMember):
            net.d["cai"].group_decrypt(s, m)
        with pytest.raises((g.GoChatError.MissingSenderKey, g.GoChatError.EpochAhead)):
            cai_copy.group_decrypt(s, m)
    with pytest.raises(g.GoChatError.NotMember):
        net.d["cai"].group_encrypt(gid, b"still here?", NOW)
    assert [m.name for m in net.d["ben"].group_info(gid).members] == ["ana", "ben"]
    assert net.d["cai"].group_forget(gid) is True
    assert net.d["cai"].group_forget(gid) is False
    assert net.d["cai"].group_ids() == []


def test_missing_sender_key_then_retry_after_the_key_arrives():
    net = Net("ana", "ben", "cai")
    ch = net.d["ana"].group_create([net.member("ben"), net.member("cai")], NOW)
    early = net.d["ana"].group_encrypt(ch.group_id, b"early", NOW).message
    ben = net.d["ben"]
    ben.group_join(ch.welcome, NOW)
    before = ben.state_len()
    with pytest.raises(g.GoChatError.MissingSenderKey) as ei:
        ben.group_decrypt("ana", early)
    assert ei.value.detail
    assert ben.state_len() == before
    got = net.deliver("ana", [o for o in ch.outgoing if o.peer == "ben"])
    assert got["ben"].fresh
    assert ben.group_decrypt("ana", early).plaintext == b"early"
    # The same key delivered again is a pairwise replay.
    with pytest.raises(g.GoChatError.Duplicate):
        net.deliver("ana", [o for o in ch.outgoing if o.peer == "ben"])


def test_withheld_member_gets_the_key_once_acted_on():
    net = Net("ana", "ben", "dan", sessions=False)
    net.connect("ana", "ben")
    ch = net.d["ana"].group_create([net.member("ben"), net.member("dan")], NOW)
    assert [o.peer for o in ch.outgoing] == ["ben"]
    assert [(w.peer, w.reason) for w in ch.withheld] == [("dan", g.WithheldReason.NO_SESSION)]
    net.connect("ana", "dan")
    net.connect("ben", "dan")
    net.d["dan"].group_join(ch.welcome, NOW)
    resent = net.d["ana"].group_resend_key(ch.group_id, "dan")
    assert [o.peer for o in resent.outgoing] == ["dan"] and resent.withheld == []
    net.deliver("ana", resent.outgoing)
    m = net.d["ana"].group_encrypt(ch.group_id, b"for dan too", NOW).message
    assert net.d["dan"].group_decrypt("ana", m).plaintext == b"for dan too"
    with pytest.raises(g.GoChatError.NotMember):
        net.d["ana"].group_resend_key(ch.group_id, "eve")


def test_added_member_reads_only_new_messages_and_admin_rule():
    net = Net("ana", "ben", "cai", "dan")
    gid = net.group("ana", ["ben", "cai"])
    old = net.d["ben"].group_encrypt(gid, b"before dan", NOW).message
    with pytest.raises(g.GoChatError.NotAdmin):
        net.d["ben"].group_add(gid, [net.member("dan")], NOW)
    add = net.d["ana"].group_add(gid, [net.member("dan")], NOW)
    assert add.epoch == 1 and add.commit and add.welcome and add.added == ["dan"]
    # The members send their keys to the new one only: it must join before they arrive.
    applied = {n: net.d[n].group_process_commit(add.commit, NOW) for n in ("ben", "cai")}
    assert all([o.peer for o in c.outgoing] == ["dan"] for c in applied.values())
    j = net.d["dan"].group_join(add.welcome, NOW)
    net.deliver("ana", add.outgoing)
    for n, c in applied.items():
        net.deliver(n, c.outgoing)
    net.deliver("dan", j.outgoing)
    with pytest.raises(g.GoChatError):
        net.d["dan"].group_decrypt("ben", old)
    for s in ("ana", "ben", "cai"):
        m = net.d[s].group_encrypt(gid, b"welcome dan", NOW).message
        assert net.d["dan"].group_decrypt(s, m).plaintext == b"welcome dan"
    m = net.d["dan"].group_encrypt(gid, b"thanks", NOW).message
    assert net.d["cai"].group_decrypt("dan", m).plaintext == b"thanks"
    assert net.d["cai"].group_info(gid).epoch == 1


def test_rotation_policy_and_snapshot_restore_rotate_the_sender_key():
    net = Net("ana", "ben")
    gid = net.group("ana", ["ben"])
    ana = net.d["ana"]
    ana.group_set_rotation_policy(gid, 2, 0)
    info = ana.group_info(gid)
    assert (info.rotation_max_messages, info.rotation_max_age_secs) == (2, 0)
    first_key = info.own_key_id
    sends = [ana.group_encrypt(gid, b"m%d" % i, NOW) for i in range(3)]
    assert [s.rotated for s in sends] == [False, False, True]
    assert [o.peer for o in sends[2].outgoing] == ["ben"]
    net.deliver("ana", sends[2].outgoing)
    assert ana.group_info(gid).own_key_id != first_key
    for i, s in enumerate(sends):
        assert net.d["ben"].group_decrypt("ana", s.message).plaintext == b"m%d" % i
    # A restored device never re-uses a chain position: its next send rotates.
    restored = g.Device.from_snapshot(KEY, ana.export(KEY))
    assert restored.group_ids() == [gid]
    s = restored.group_encrypt(gid, b"after restore", NOW)
    assert s.rotated
    net.deliver("ana", s.outgoing)
    assert net.d["ben"].group_decrypt("ana", s.message).plaintext == b"after restore"


def test_byte_arguments_are_checked():
    net = Net("ana", "ben")
    ana = net.d["ana"]
    with pytest.raises(g.GoChatError.Malformed):
        ana.group_info(b"\x00" * 31)
    with pytest.raises(g.GoChatError.Malformed):
        ana.group_encrypt(b"", b"x", NOW)
    with pytest.raises(g.GoChatError.UnknownGroup):
        ana.group_info(bytes(32))
    with pytest.raises(g.GoChatError.UnknownGroup):
        ana.group_set_rotation_policy(bytes(32), 1, 1)
    assert ana.group_forget(b"short") is False
    bad = g.GroupMemberRecord(name="ben", identity_key=b"\x01" * 10, admin=False)
    with pytest.raises(g.GoChatError):
        ana.group_create([bad], NOW)
    assert ana.group_ids() == []


def test_group_limits():
    lim = g.limits()
    assert lim.max_group_members == 1000
    assert lim.max_groups >= 1 and lim.max_group_skipped_keys >= lim.group_max_skipped_keys
    assert lim.max_group_message_bytes > lim.max_plaintext_bytes
    assert lim.max_sender_generations >= 1 and lim.group_max_forward_jump > 0
