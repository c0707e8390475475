"""Read named arrays from an untrusted .npz, checking each before reading it.

safetensors' rule: a bounded header, checked sizes, then the data. A .npz is a
zip of ``<key>.npy`` members, each a small header (magic, version, then a dict
of dtype, order and shape) followed by the raw array. ``np.load`` trusts that
header: a member that claims 2^36 floats makes it allocate 256 GiB, and it
inflates members it is never asked for. Here, for a member we ask for:

1. its .npy header is read, at most ``HEADER_LIMIT`` bytes (NumPy's own bound);
2. its dtype and shape are checked against what the caller expects (never an
   object dtype: that would mean pickle);
3. the zip directory's uncompressed size must equal header + shape × itemsize,
   so the data is exactly what the header says, before anything is inflated; and
   a deflated member may not claim more than deflate can expand its compressed
   bytes to (1032:1), so a small file cannot make us allocate for a big model
   that is not in it (a real bomb is still bounded: about 1,000 x the file);
4. the data is read into one array of that size, in bounded chunks.

Members nobody asks for are never opened. Every failure is a one-line
:class:`UserError` that names the file and the member.
"""
import io
import math
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy_format

from .errors import UserError

HEADER_LIMIT = 10_000           # bytes of a .npy header dict, as np.load's default (NumPy 1.24+)
CHUNK = 1 << 20                 # bytes read at a time
# Deflate's most: a 258-byte match in 2 bits. Anything above is a lying zip directory.
DEFLATE_MAX_RATIO, DEFLATE_SLACK = 1032, 1024
# What zipfile and numpy raise on a damaged member: a bad header or CRC (ValueError,
# BadZipFile), a cut stream (EOFError, zlib.error), encryption (RuntimeError), a
# compression method this Python lacks (NotImplementedError).
UNREADABLE = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, RuntimeError,
              NotImplementedError)


class Header:
    """What a member's .npy header says: dtype, shape, Fortran order, and where
    the data starts (``offset``) in the member."""

    def __init__(self, dtype, shape, fortran, offset):
        self.dtype, self.shape, self.fortran, self.offset = dtype, shape, fortran, offset

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize     # Python ints: no overflow


class SafeNpz:
    """An open .npz whose members are read only after their headers check out.

    Use as a context manager. ``keys`` are the member names without ``.npy``.
    """

    def __init__(self, path):
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except UNREADABLE as exc:
            raise UserError(f"{path}: not a readable .npz checkpoint ({_one_line(exc)})") from None
        self._members = {info.filename[:-4]: info for info in self._zip.infolist()
                         if info.filename.endswith(".npy")}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()
        return False

    @property
    def keys(self):
        return list(self._members)

    def error(self, key, what):
        return UserError(f"{self.path}: member {key!r}: {what}")

    def size(self, key):
        """The member's uncompressed size, from the zip directory (nothing is read)."""
        return self._members[key].file_size

    def header(self, key):
        """Parse ``key``'s .npy header (bounded); refuse an object dtype."""
        info = self._members[key]
        try:
            with self._zip.open(info) as f:
                version = npy_format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise self.error(key, f".npy format version {version[0]}.{version[1]}, "
                                     "expected 1.0 or 2.0")
                # The header's length comes first (2 bytes in 1.0, 4 in 2.0): bounded here,
                # before it is read, whatever NumPy's version checks.
                length = f.read(2 if version == (1, 0) else 4)
                size = int.from_bytes(length, "little")
                if size > HEADER_LIMIT:
                    raise self.error(key, f".npy header of {size:,} bytes, at most "
                                     f"{HEADER_LIMIT:,} expected")
                prefix = io.BytesIO(length + f.read(size))
                read = (npy_format.read_array_header_1_0 if version == (1, 0)
                        else npy_format.read_array_header_2_0)
                shape, fortran, dtype = read(prefix)
                offset = f.tell()
        except UNREADABLE as exc:
            raise self.error(key, f"not a readable .npy array ({_one_line(exc)})") from None
        if dtype.hasobject:
            raise UserError(f"{self.path}: holds pickled objects; refusing to load it "
                            f"(member {key!r}; checkpoints never execute code)")
        return Header(dtype, tuple(shape), fortran, offset)

    def check_size(self, key, header):
        """The zip directory's size of ``key`` must be its header plus the data it claims;
        stored (not compressed) data must be in the file."""
        info = self._members[key]
        size = info.file_size
        if size != header.offset + header.nbytes or (
                info.compress_type == zipfile.ZIP_STORED and info.compress_size != size):
            raise self.error(key, f"its header says {header.dtype.str} {header.shape} "
                             f"({header.nbytes:,} bytes of data) but the archive holds "
                             f"{size - header.offset:,}; the file is damaged")
        if info.compress_type == zipfile.ZIP_DEFLATED and \
                size > DEFLATE_MAX_RATIO * info.compress_size + DEFLATE_SLACK:
            raise self.error(key, f"claims {size:,} bytes inflated from {info.compress_size:,}, "
                             f"more than deflate can expand (at most {DEFLATE_MAX_RATIO}:1); "
                             "the file is damaged")

    def read(self, key, header):
        """The member's data, as ``header`` (from :meth:`header`) describes it."""
        self.check_size(key, header)
        count = math.prod(header.shape)
        if header.nbytes == 0:                          # nothing to read (e.g. shape (0,))
            return np.zeros(header.shape, header.dtype)
        try:
            flat = np.empty(count, header.dtype)
        except MemoryError:
            raise self.error(key, f"needs {header.nbytes:,} bytes, more than this machine "
                             "can allocate") from None
        buf = memoryview(flat.view(np.uint8))
        got = 0
        try:
            with self._zip.open(self._members[key]) as f:
                f.read(header.offset)                               # the header, again
                while got < len(buf):
                    n = f.readinto(buf[got:got + CHUNK])
                    if not n:
                        break
                    got += n
                extra = f.read(1)                                   # checks the CRC at the end
        except UNREADABLE as exc:
            raise self.error(key, f"damaged data ({_one_line(exc)})") from None
        if got < len(buf) or extra:
            raise self.error(key, f"holds {got:,} bytes of data, its header says {len(buf):,}")
        return flat.reshape(header.shape, order="F" if header.fortran else "C")


def _one_line(exc):
    return " ".join(str(exc).split())
