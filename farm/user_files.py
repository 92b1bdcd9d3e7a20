"""Files the user names (video, source and reference images, spec file, API storage paths):
checked to be regular files before anything opens them.

Opening a FIFO blocks until someone writes to it, and reading a device can block or
never end, so every such file goes through check_regular_file first (a stat, which never
blocks), and readers open it through open_regular_file, which checks again on the open
file: what was checked is what is read. Symbolic links to regular files are followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from farm.errors import InputError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a plain file")


def check_regular_file(path: str | os.PathLike[str], what: str, hint: str = "check the path") -> os.stat_result:
    """The stat of `path` if it is a regular file (symlinks followed); InputError naming it otherwise.

    `what` says which file it is in the message ("source image", "spec file", ...); `hint`
    is what to do when the path is missing or cannot be looked at.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise no_such_file(what, p, hint) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror or exc}", hint=hint) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} {p} is not a regular file (it is {_kind(st.st_mode)})",
                         hint="give a file; pipes, devices and folders are not read") from None
    return st


def no_such_file(what: str, path: str | os.PathLike[str], hint: str = "check the path") -> InputError:
    """The refusal of a file that is not there (also of one an API client may not read:
    farm.api.reading answers it exactly so)."""
    return InputError(f"cannot read {what} {path}: no such file", hint=hint)


def open_regular_file(path: str | os.PathLike[str], what: str, hint: str = "check the path") -> BinaryIO:
    """`path` opened for reading, once check_regular_file has passed, checked again on the open file.

    The open never blocks (O_NONBLOCK, which a regular file ignores), so a file swapped
    for a FIFO after the check is refused too, not waited on.
    """
    before = check_regular_file(path, what, hint)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}",
                         hint="check the file's permissions") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise InputError(f"{what} {path} changed while it was opened (it is now {_kind(st.st_mode)})",
                         hint="give a regular file that nothing replaces") from None
    return os.fdopen(fd, "rb")


def read_regular_file(path: str | os.PathLike[str], what: str, max_bytes: int, limit_name: str = "",
                      hint: str = "check the path") -> bytes:
    """The whole content of a regular file of at most `max_bytes` bytes (checked before reading)."""
    with open_regular_file(path, what, hint) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise InputError(f"{what} {path} is {size} bytes, over the limit of {max_bytes} bytes"
                             + (f" ({limit_name})" if limit_name else ""),
                             hint="use a smaller file" + (f" or raise {limit_name}" if limit_name else ""))
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError(f"{what} {path} grew past the limit of {max_bytes} bytes while it was read")
    return data


def read_image_file(path: str | os.PathLike[str], what: str, max_bytes: int, max_side: int,
                    given_as: str = "") -> bytes:
    """The bytes of a face photo, refused (InputError, exit 2) unless it is a regular file of at
    most `max_bytes` whose header (read, not decoded) is an image of at most `max_side` pixels
    a side. Every message names the file and says what to do; `given_as` ("--source", "source
    in the spec file") says where the path came from, so the hint can point there."""
    from farm.faces.image_header import ACCEPTED_FORMATS, image_size

    p = Path(path)
    data = read_regular_file(p, what, max_bytes, "FARM_MAX_IMAGE_BYTES",
                             hint=f"check the path{f' given as {given_as}' if given_as else ''}, or give another {what}")
    size = image_size(data)
    if size is None:
        empty = "an empty file" if not data else f"not a {ACCEPTED_FORMATS} image"
        raise InputError(f"{what} {p} is not a readable image ({empty})",
                         hint=f"give a {ACCEPTED_FORMATS} photo of the face{f' as {given_as}' if given_as else ''}")
    width, height = size
    if not (0 < width <= max_side and 0 < height <= max_side):
        raise InputError(f"{what} {p} is {width}x{height} pixels, over the limit of {max_side} pixels "
                         "a side (FARM_MAX_IMAGE_SIDE); it was not decoded",
                         hint="scale the photo down (a face needs a few hundred pixels) or raise FARM_MAX_IMAGE_SIDE")
    return data
