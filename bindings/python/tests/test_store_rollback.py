"""The rollback anchor through the Python bindings: a store file put back from a backup
is refused against the generation the app recorded (docs/store.md, "Rollback")."""

import os
import shutil
import tempfile

import pytest

import gochat_e2ee_ffi as g

NOW = 1_700_000_000
KEY = g.StoreUnlock.PLATFORM_KEY(bytes([7]) * 32)


def test_an_older_copy_of_the_store_is_refused_against_the_recorded_generation():
    with tempfile.TemporaryDirectory() as d:
        path, backup = os.path.join(d, "alice.sqlite"), os.path.join(d, "backup.sqlite")
        alice = g.Device.create_stored(path, KEY, "alice", NOW, None)
        bob = g.Device("bob", NOW)
        alice.initiate("bob", bob.next_bundle())
        old = alice.store_generation()
        del alice
        shutil.copyfile(path, backup)

        alice = g.Device.open_stored(path, KEY, old)
        for text in (b"one", b"two"):
            assert bob.decrypt("alice", alice.encrypt("bob", text)).plaintext == text
        anchor = alice.store_generation()
        assert anchor == old + 2
        del alice

        shutil.copyfile(backup, path)
        with pytest.raises(g.GoChatError.StoreRolledBack):
            g.Device.open_stored(path, KEY, anchor)
        assert g.Device.open_stored(path, KEY).store_generation() == old
        with pytest.raises(g.GoChatError.NotSupported):
            bob.store_generation()
