"""The fast path for the hot calls from Python (docs/python.md, "Fast path").

`FastDevice.of(device)` is a `Device` whose `encrypt`, `decrypt`, `group_encrypt` and
`group_decrypt` cross into Rust with one ctypes call each
(`crates/gochat-e2ee-ffi/src/cabi.rs`) instead of the generated code's five (handle
clone, one buffer allocation per argument, the call, the result's free). Every other
method is the generated one.

It cannot drift from the generated API: the Rust side calls the very methods uniffi
exports and writes results and errors with uniffi's serializers; this module reads them
with the generated converters, and `tests/test_fast.py` checks the same results and
errors on both paths.
"""

import ctypes

import gochat_e2ee_ffi as _g

_lib = _g._UniffiLib


class _Bytes(ctypes.Structure):
    """uniffi's `ForeignBytes` (i32 length, pointer), pointing straight into a `bytes`."""

    _fields_ = [("len", ctypes.c_int32), ("data", ctypes.c_char_p)]


_OUT = ctypes.POINTER(_g._UniffiRustBuffer)
_U64 = ctypes.c_uint64
for _name, _args in (
    ("encrypt", [_U64, _Bytes, _Bytes, _OUT]),
    ("decrypt", [_U64, _Bytes, _Bytes, _OUT]),
    ("group_encrypt", [_U64, _Bytes, _Bytes, _U64, _OUT]),
    ("group_decrypt", [_U64, _Bytes, _Bytes, _OUT]),
):
    _fn = getattr(_lib, "gochat_e2ee_fast_" + _name)
    _fn.argtypes = _args
    _fn.restype = ctypes.c_int8
_lib.gochat_e2ee_fast_free.argtypes = [_g._UniffiRustBuffer]
_lib.gochat_e2ee_fast_free.restype = None


def _b(data):
    data = bytes(data)
    return _Bytes(len(data), data), data


def _result(code, out, converter):
    # Copy the buffer out, then release it (the library wipes it: it may hold a plaintext).
    try:
        data = ctypes.string_at(out.data, out.len)
    finally:
        _lib.gochat_e2ee_fast_free(out)
    if code == 2:
        raise _g.InternalError(data.decode("utf-8", "replace"))
    if code == 0 and converter is None:
        return data
    stream = _g._UniffiRustBufferStream(data, len(data))
    value = (_g._UniffiFfiConverterTypeGoChatError if code == 1 else converter).read(stream)
    if stream.remaining() != 0:
        raise _g.InternalError("junk after a GoChat fast-path response")
    if code == 1:
        raise value
    return value


class FastDevice(_g.Device):
    """A `Device` whose per-message calls take the one-crossing fast path."""

    @classmethod
    def of(cls, device):
        """A fast view of `device`: the same Rust device (one more reference to it)."""
        fast = cls.__new__(cls)
        fast._handle = device._uniffi_clone_handle()
        return fast

    def encrypt(self, peer, plaintext):
        (p, _pk), (m, _mk) = _b(peer.encode("utf-8")), _b(plaintext)
        out = _g._UniffiRustBuffer()
        code = _lib.gochat_e2ee_fast_encrypt(self._handle, p, m, ctypes.byref(out))
        return _result(code, out, None)

    def decrypt(self, peer, message):
        (p, _pk), (m, _mk) = _b(peer.encode("utf-8")), _b(message)
        out = _g._UniffiRustBuffer()
        code = _lib.gochat_e2ee_fast_decrypt(self._handle, p, m, ctypes.byref(out))
        return _result(code, out, _g._UniffiFfiConverterTypeDecryptResult)

    def group_encrypt(self, group_id, plaintext, now):
        (g, _gk), (m, _mk) = _b(group_id), _b(plaintext)
        out = _g._UniffiRustBuffer()
        code = _lib.gochat_e2ee_fast_group_encrypt(self._handle, g, m, now, ctypes.byref(out))
        return _result(code, out, _g._UniffiFfiConverterTypeGroupSentRecord)

    def group_decrypt(self, sender, message):
        (s, _sk), (m, _mk) = _b(sender.encode("utf-8")), _b(message)
        out = _g._UniffiRustBuffer()
        code = _lib.gochat_e2ee_fast_group_decrypt(self._handle, s, m, ctypes.byref(out))
        return _result(code, out, _g._UniffiFfiConverterTypeGroupPlaintextRecord)
