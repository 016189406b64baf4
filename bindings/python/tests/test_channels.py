"""Official broadcast channels through the Python bindings: public posts, replays,
wrong signers, forwarded copies, restricted channels with pairwise key fan-out and
removal by rotation, and signing-key rotation."""

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000
TEXT = g.ContentType.TEXT
PUBLIC = g.ChannelKind.PUBLIC
RESTRICTED = g.ChannelKind.RESTRICTED


def connect(a, b):
    """A pairwise session both ways between devices `a` and `b` (identities pinned)."""
    b.generate_one_time_prekeys(1)
    b.generate_pq_prekeys(1, NOW)
    a.initiate(b.user_id(), b.next_bundle())
    assert b.decrypt(a.user_id(), a.encrypt(b.user_id(), b"hi")).plaintext == b"hi"
    assert a.decrypt(b.user_id(), b.encrypt(a.user_id(), b"hi")).plaintext == b"hi"


def announcement(received):
    assert received.is_announcement()
    return received.announcement


def public_channel():
    agency = g.Device("agency", NOW)
    cid = agency.channel_create(PUBLIC)
    key = agency.channel_public_key(cid)
    citizen = g.Device("citizen", NOW)
    citizen.channel_subscribe(cid, key, PUBLIC)
    return agency, cid, key, citizen


def test_public_announce_and_receive():
    agency, cid, key, citizen = public_channel()
    assert len(cid) == 32 and len(key) == 32
    post = agency.channel_announce(cid, TEXT, b"office closed on Monday", NOW)
    a = announcement(citizen.channel_receive(post, NOW))
    assert a.body == b"office closed on Monday" and a.content_type == TEXT
    assert a.channel_id == cid and a.signer == key and a.seq == 1 and a.timestamp == NOW
    second = agency.channel_announce(cid, g.ContentType.JSON, b'{"k":1}', NOW + 1)
    third = agency.channel_announce(cid, g.ContentType.ATTACHMENT_POINTER, b"ptr", NOW + 2)
    assert announcement(citizen.channel_receive(second, NOW + 2)).content_type == g.ContentType.JSON
    assert announcement(citizen.channel_receive(third, NOW + 2)).seq == 3


def test_replay_is_refused_as_stale_and_changes_nothing():
    agency, cid, _, citizen = public_channel()
    post = agency.channel_announce(cid, TEXT, b"once", NOW)
    announcement(citizen.channel_receive(post, NOW))
    before = citizen.state_len()
    with pytest.raises(g.GoChatError.StaleSequence) as ei:
        citizen.channel_receive(post, NOW)
    assert ei.value.retry_may_help is False
    assert citizen.state_len() == before
    late = agency.channel_announce(cid, TEXT, b"from the future", NOW + 3600)
    with pytest.raises(g.GoChatError.FromFuture):
        citizen.channel_receive(late, NOW)
    assert citizen.state_len() == before
    # Strictly monotonic: a withheld post delivered after a later one is a rollback.
    withheld = agency.channel_announce(cid, TEXT, b"withheld", NOW)
    newer = agency.channel_announce(cid, TEXT, b"newer", NOW)
    assert announcement(citizen.channel_receive(newer, NOW)).seq == 4
    with pytest.raises(g.GoChatError.StaleSequence):
        citizen.channel_receive(withheld, NOW)


def test_wrong_signer_and_tampering_are_refused():
    agency, cid, key, _ = public_channel()
    impostor = g.Device("impostor", NOW)
    fake_key = impostor.channel_public_key(impostor.channel_create(PUBLIC))
    # Subscribed with another key than the agency's: the agency's posts are refused.
    fooled = g.Device("fooled", NOW)
    fooled.channel_subscribe(cid, fake_key, PUBLIC)
    post = agency.channel_announce(cid, TEXT, b"real", NOW)
    with pytest.raises(g.GoChatError.WrongSigner):
        fooled.channel_receive(post, NOW)
    citizen = g.Device("citizen", NOW)
    citizen.channel_subscribe(cid, key, PUBLIC)
    before = citizen.state_len()
    bad = bytearray(post)
    bad[40] ^= 0x01
    with pytest.raises(g.GoChatError.BadSignature):
        citizen.channel_receive(bytes(bad), NOW)
    with pytest.raises(g.GoChatError.UnknownGroup):  # a post of a channel not subscribed to
        citizen.channel_receive(impostor.channel_announce(impostor.channel_create(PUBLIC), TEXT, b"x", NOW), NOW)
    assert citizen.state_len() == before
    assert announcement(citizen.channel_receive(post, NOW)).body == b"real"


def test_verify_announcement_on_a_forwarded_copy():
    agency, cid, key, _ = public_channel()
    post = agency.channel_announce(cid, TEXT, b"forward me", NOW)
    a = g.verify_announcement(post, key)
    assert a.body == b"forward me" and a.channel_id == cid and a.signer == key
    assert g.verify_announcement(post, key) == a  # stateless: no replay check
    other = g.Device("other", NOW)
    with pytest.raises(g.GoChatError.WrongSigner):
        g.verify_announcement(post, other.channel_public_key(other.channel_create(PUBLIC)))
    bad = bytearray(post)
    bad[-1] ^= 0x01
    with pytest.raises(g.GoChatError.BadSignature):
        g.verify_announcement(bytes(bad), key)
    with pytest.raises(g.GoChatError.InvalidKey):
        g.verify_announcement(post, key[:31])


def test_restricted_channel_key_fan_out_and_removal_by_rotation():
    agency = g.Device("agency", NOW)
    subs = {n: g.Device(n, NOW) for n in ("s1", "s2")}
    for s in subs.values():
        connect(agency, s)
    cid = agency.channel_create(RESTRICTED)
    key = agency.channel_public_key(cid)
    for s in subs.values():
        s.channel_subscribe(cid, key, RESTRICTED)
    early = agency.channel_announce(cid, TEXT, b"for key holders", NOW)
    with pytest.raises(g.GoChatError.MissingSenderKey):  # the key has not arrived yet
        subs["s1"].channel_receive(early, NOW)
    fan = agency.channel_send_key(cid, ["s1", "s2", "nobody"])
    assert sorted(o.peer for o in fan.outgoing) == ["s1", "s2"]
    assert [(w.peer, w.reason) for w in fan.withheld] == [("nobody", g.WithheldReason.NO_SESSION)]
    key_ids = set()
    for o in fan.outgoing:
        got = subs[o.peer].receive_control("agency", o.message)
        assert got.is_channel_key()
        r = got.received
        assert r.channel_id == cid and r.sender == "agency" and r.identity_event == g.IdentityEvent.SAME()
        key_ids.add(r.key_id)
    assert len(key_ids) == 1
    for s in subs.values():
        # Sent before the key was shared: the shared key starts after it, never readable.
        with pytest.raises(g.GoChatError.MessageLost):
            s.channel_receive(early, NOW)
    post = agency.channel_announce(cid, TEXT, b"for key holders", NOW)
    for s in subs.values():
        assert announcement(s.channel_receive(post, NOW)).body == b"for key holders"
    # s2 is removed: a new content key, sent to s1 only.
    rekey = agency.channel_rotate_content_key(cid, ["s1"])
    assert rekey.key_id not in key_ids
    assert [o.peer for o in rekey.outgoing] == ["s1"] and rekey.withheld == []
    assert subs["s1"].receive_control("agency", rekey.outgoing[0].message).received.key_id == rekey.key_id
    post = agency.channel_announce(cid, TEXT, b"after s2 left", NOW)
    assert announcement(subs["s1"].channel_receive(post, NOW)).body == b"after s2 left"
    before = subs["s2"].state_len()
    with pytest.raises(g.GoChatError.MissingSenderKey):
        subs["s2"].channel_receive(post, NOW)
    assert subs["s2"].state_len() == before
    # A restricted post cannot be read as a public one.
    with pytest.raises(g.GoChatError):
        g.verify_announcement(post, key)


def test_a_restored_restricted_publisher_rotates_its_content_key_before_posting():
    agency = g.Device("agency", NOW)
    s1 = g.Device("s1", NOW)
    connect(agency, s1)
    cid = agency.channel_create(RESTRICTED)
    s1.channel_subscribe(cid, agency.channel_public_key(cid), RESTRICTED)
    fan = agency.channel_send_key(cid, ["s1"])
    assert s1.receive_control("agency", fan.outgoing[0].message).is_channel_key()
    first = announcement(s1.channel_receive(agency.channel_announce(cid, TEXT, b"one", NOW), NOW))
    key = bytes(range(32))
    restored = g.Device.from_snapshot(key, agency.export(key))
    # The snapshot may be older than what was posted: its content chain position may have
    # been used, so neither posting nor sending the key is allowed until it is replaced.
    before = restored.state_len()
    with pytest.raises(g.GoChatError.ChainExhausted):
        restored.channel_announce(cid, TEXT, b"two", NOW)
    with pytest.raises(g.GoChatError.ChainExhausted):
        restored.channel_send_key(cid, ["s1"])
    assert restored.state_len() == before
    rekey = restored.channel_rotate_content_key(cid, ["s1"])
    assert [o.peer for o in rekey.outgoing] == ["s1"] and rekey.withheld == []
    assert s1.receive_control("agency", rekey.outgoing[0].message).received.key_id == rekey.key_id
    a = announcement(s1.channel_receive(restored.channel_announce(cid, TEXT, b"two", NOW), NOW))
    # Its sequence number skips past everything the old copy may have issued.
    assert a.body == b"two" and a.seq > first.seq + 1

def test_signing_key_rotation():
    agency, cid, old_key, citizen = public_channel()
    late = g.Device("late", NOW)
    late.channel_subscribe(cid, old_key, PUBLIC)
    announcement(citizen.channel_receive(agency.channel_announce(cid, TEXT, b"before", NOW), NOW))
    rotation = agency.channel_rotate_signing_key(cid, NOW)
    new_key = agency.channel_public_key(cid)
    assert new_key != old_key
    r = citizen.channel_receive(rotation, NOW)
    assert r.is_key_rotated() and r.old == old_key and r.new == new_key and r.seq == 2
    with pytest.raises(g.GoChatError.WrongSigner):  # a replayed rotation: the old key is gone
        citizen.channel_receive(rotation, NOW)
    post = agency.channel_announce(cid, TEXT, b"after", NOW)
    assert announcement(citizen.channel_receive(post, NOW)).signer == new_key
    assert g.verify_announcement(post, new_key).body == b"after"
    with pytest.raises(g.GoChatError.WrongSigner):
        g.verify_announcement(post, old_key)
    # A subscriber that missed the rotation refuses the new key's post until it has it.
    with pytest.raises(g.GoChatError.WrongSigner):
        late.channel_receive(post, NOW)
    assert late.channel_receive(rotation, NOW).is_key_rotated()
    assert announcement(late.channel_receive(post, NOW)).body == b"after"


def test_byte_arguments_forget_and_limits():
    agency, cid, key, citizen = public_channel()
    with pytest.raises(g.GoChatError.Malformed):
        agency.channel_public_key(cid[:31])
    with pytest.raises(g.GoChatError.UnknownGroup):
        agency.channel_public_key(bytes(32))
    with pytest.raises(g.GoChatError.InvalidKey):
        g.Device("x", NOW).channel_subscribe(cid, key + b"\x00", PUBLIC)
    with pytest.raises(g.GoChatError.Malformed):
        agency.channel_announce(b"", TEXT, b"x", NOW)
    assert citizen.channel_forget(cid) is True
    assert citizen.channel_forget(cid) is False
    assert citizen.channel_forget(b"short") is False
    with pytest.raises(g.GoChatError):
        citizen.channel_receive(agency.channel_announce(cid, TEXT, b"gone", NOW), NOW)
    lim = g.limits()
    assert lim.max_announcement_future_secs == 300
    assert lim.max_announcement_body_bytes == 65_536 and lim.max_channels >= 1
