"""Output folders published whole or not at all.

A run stages every file in a hidden sibling of the output folder, fsyncs
them, then swaps the whole folder in; the earlier folder is deleted only
after the swap. Layout, in the parent of ``DIR`` (all siblings hidden):

``DIR/``
    the published folder: the files of exactly one run and its
    ``manifest.json`` (every other file with its size and sha256).
``.DIR.trimtab-lock``
    held with ``fcntl.flock`` while a run stages and publishes (removed
    when the run ends); a second run into ``DIR`` fails at once with
    :class:`OutputBusyError`.
``.DIR.trimtab-stage-PID-RANDOM``
    the staging folder of a run in progress; after the swap it holds the
    earlier folder until that is deleted.
``.DIR.trimtab-old-PID-RANDOM``
    the earlier folder moved aside (only where the atomic exchange is missing).

On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``: a reader sees the
old complete folder or the new complete one, never a mix and never nothing.
Elsewhere (or on a file system without it) the swap is two renames, and
``DIR`` is absent between them. A killed run leaves only hidden siblings;
the next run into ``DIR`` removes those whose process is dead (and puts an
earlier folder moved aside back if ``DIR`` is missing), under the lock.

An existing ``DIR`` is replaced only when trimtab wrote it: empty, or a
``manifest.json`` by trimtab whose ``files`` list names every entry. A regular
file, a symbolic link or a folder holding anything else is refused
(:class:`OutputError`, an :class:`~optimizer.errors.InputError`: exit 2).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.allocation import to_jsonable
from optimizer.errors import InputError

MANIFEST = "manifest.json"
#: Files trimtab writes into an output folder, by any command or version.
KNOWN_OUTPUTS = frozenset(
    {
        "targets.csv",
        "targets.json",
        "orders.csv",
        "orders.json",
        "frontier.csv",
        "frontier_failed.json",
        "montecarlo.csv",
        "backtest.csv",
        "backtest_values.csv",
        "report.json",
        "report.html",
        MANIFEST,
    }
)
CHECKSUMS_NOTE = (
    "checksums: size in bytes and sha256 of every file of the folder but manifest.json, "
    "which cannot hash itself"
)


def json_text(value: Any) -> str:
    """Pretty, sorted-free JSON text of ``value`` with a trailing newline."""
    return json.dumps(to_jsonable(value), indent=2, default=str) + "\n"


class OutputError(InputError):
    """An output folder that cannot be written or must not be replaced (exit 2).

    ``path`` is the folder or file at fault; the message starts with it.
    """

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


class OutputBusyError(OutputError):
    """Another run holds the output folder's lock."""


def _siblings_pattern(name: str) -> re.Pattern:
    return re.compile(rf"^\.{re.escape(name)}\.trimtab-(stage|old)-(\d+)-[0-9a-f]+$")


def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of an output folder: ``.NAME.trimtab-lock`` beside it."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.trimtab-lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse a directory fsync
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not available."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---------------------------------------------------------------------------------- the lock

_held: dict[str, tuple[int, int, int]] = {}  # lock path -> (fd, depth, thread id)
_held_guard = threading.Lock()


def _busy(folder: Path) -> OutputBusyError:
    return OutputBusyError(
        folder,
        f"another trimtab run holds this output folder (lock {lock_path(folder).name}); "
        "it fails at once instead of waiting: try again when that run has finished",
    )


def _acquire(folder: Path) -> None:
    """Take the folder's lock (re-entrant in one thread); fail at once if another run holds it."""
    path = lock_path(folder)
    key = str(path)
    with _held_guard:
        if key in _held:
            fd, depth, owner = _held[key]
            if owner != threading.get_ident():
                raise _busy(folder)
            _held[key] = (fd, depth + 1, owner)
            return
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OutputError(path.parent, f"cannot write here: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(folder) from None
            try:  # the holder before us may have removed the file: lock the current one
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[key] = (fd, 1, threading.get_ident())


def _release(folder: Path) -> None:
    key = str(lock_path(folder))
    with _held_guard:
        fd, depth, owner = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1, owner)
            return
        del _held[key]
        try:
            os.unlink(key)  # while still holding it: a waiter then retries on a fresh file
        except OSError:
            pass
        os.close(fd)


class claim:  # noqa: N801 - used as a context manager, like open()
    """Hold an output folder's lock for a whole command, refusing bad paths before any work.

    ``with claim(out, inputs=[scenario_file]):`` checks ``out`` (see
    :func:`check_out`) and takes its lock; an :class:`OutputSet` of the same
    folder inside the block reuses it. A second run fails at once.
    """

    def __init__(self, folder: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()):
        self.folder = Path(os.path.abspath(folder))
        self.inputs = tuple(inputs)

    def __enter__(self) -> claim:
        check_out(self.folder, self.inputs)
        _make_parent(self.folder)
        check_replaceable(self.folder)
        _acquire(self.folder)
        return self

    def __exit__(self, *exc) -> None:
        _release(self.folder)


# ------------------------------------------------------------------------------ the checks


def check_out(folder: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Refuse an output folder that is, or is inside, or holds one of ``inputs``.

    Cheap and side-effect free: call it before any work.
    """
    out = Path(os.path.abspath(folder))
    real_out = Path(os.path.realpath(out))
    for given in inputs:
        src = Path(os.path.realpath(given))
        if real_out == src or src in real_out.parents:
            raise OutputError(
                folder, f"the output folder is the input file {given}: choose another --out"
            )
        if real_out in src.parents:
            raise OutputError(
                folder,
                f"the output folder holds the input file {given} and would be replaced "
                "whole: choose another --out",
            )
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(folder, f"{parent} is a file, not a folder")
        if parent.exists():
            break


def _make_parent(out: Path, shown: str | os.PathLike | None = None) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            out if shown is None else shown, f"cannot create its parent folder: {exc.strerror}"
        ) from None


def _manifest_files(folder: Path) -> list[str] | None:
    """The ``files`` of a manifest trimtab wrote in ``folder``, or None."""
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        return None
    if doc.get("generator") != "trimtab" and "scenario_sha256" not in doc:
        return None
    return [f for f in doc["files"] if isinstance(f, str)]


def check_replaceable(folder: str | os.PathLike) -> None:
    """Refuse to replace anything trimtab did not write (see the module docs)."""
    out = Path(folder)
    if not os.path.lexists(out):
        return
    if out.is_symlink():
        raise OutputError(out, "is a symbolic link; refusing to replace it: give a real folder")
    if not out.is_dir():
        raise OutputError(out, "is a file, not an output folder; refusing to replace it")
    try:
        entries = sorted(os.listdir(out))
    except OSError as exc:
        raise OutputError(out, f"cannot read the folder: {exc.strerror}") from None
    if not entries:
        return
    listed = _manifest_files(out)
    if listed is None:
        raise OutputError(
            out,
            "is not a trimtab output folder (no manifest.json written by trimtab); "
            "refusing to replace it: choose another --out or remove it yourself",
        )
    allowed = set(listed) | KNOWN_OUTPUTS
    strange = []
    for e in entries:
        p = out / e
        legacy_tmp = e.startswith(".") and e.endswith(".tmp") and e[1:-4] in allowed
        if (e in allowed or legacy_tmp) and p.is_file() and not p.is_symlink():
            continue
        strange.append(e + ("/" if p.is_dir() else ""))
    if strange:
        raise OutputError(
            out,
            "holds entries trimtab did not write ("
            + ", ".join(strange[:5])
            + (", ..." if len(strange) > 5 else "")
            + "); refusing to replace the folder: move them or choose another --out",
        )


def clean_stale(folder: str | os.PathLike) -> list[str]:
    """Remove the hidden staging folders of dead runs into ``folder`` (call under its lock).

    An earlier folder a dead run moved aside goes back to ``folder`` if that is
    missing. Returns the names handled.
    """
    out = Path(folder)
    pattern = _siblings_pattern(out.name)
    done = []
    try:
        names = sorted(os.listdir(out.parent))
    except OSError:
        return done
    for name in names:
        m = pattern.match(name)
        if not m or int(m.group(2)) == os.getpid() or _alive(int(m.group(2))):
            continue
        path = out.parent / name
        if m.group(1) == "old" and not os.path.lexists(out):
            os.rename(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)
        done.append(name)
    return done


# ------------------------------------------------------------------------------ the set


class OutputSet:
    """Files of one run, staged and then published together as the whole folder.

    ``write_json("manifest.json", dict)`` (or :meth:`write_manifest`) adds the
    size and sha256 of every file staged before it; it must come last. A set
    without one gets a minimal manifest at exit. ``inputs`` are files the
    folder must not be or hold (the scenario file).

    Examples
    --------
    >>> with OutputSet("out") as out:        # doctest: +SKIP
    ...     out.write_text("targets.json", "{}")
    """

    def __init__(
        self, folder: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = ()
    ) -> None:
        self.folder = Path(folder)
        self.inputs = tuple(inputs)
        self._abs = Path(os.path.abspath(folder))
        self._stage: Path | None = None
        self._locked = False
        self.files: list[str] = []
        self.checksums: dict[str, dict[str, Any]] = {}
        self._scratch: list[Path] = []

    def __enter__(self) -> OutputSet:
        check_out(self.folder, self.inputs)
        _make_parent(self._abs, self.folder)
        _acquire(self._abs)
        self._locked = True
        try:
            clean_stale(self._abs)
            check_replaceable(self._abs)
            stage = self._abs.parent / (
                f".{self._abs.name}.trimtab-stage-{os.getpid()}-{secrets.token_hex(4)}"
            )
            try:
                stage.mkdir()
            except OSError as exc:
                raise OutputError(
                    self.folder, f"cannot stage the outputs: {exc.strerror}"
                ) from None
            self._stage = stage
        except BaseException:
            self._unlock()
            raise
        return self

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            _release(self._abs)

    def write_bytes(self, name: str, data: bytes) -> None:
        """Stage one file, fsynced, and record its size and sha256."""
        self._plain(name, "write_bytes")
        try:
            with open(self._stage / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OutputError(self.folder, f"cannot stage {name}: {exc.strerror}") from None
        if name not in self.files:
            self.files.append(name)
        if name != MANIFEST:
            self.checksums[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def write_stream(self, name: str, write: Callable[[Path], None]) -> None:
        """Stage one file too big to hold as bytes: ``write(path)`` writes it in place.

        Its size and sha256 are then read back (in blocks) and it is fsynced,
        as :meth:`write_bytes` does for bytes.
        """
        self._plain(name, "write_stream")
        path = self._stage / name
        try:
            write(path)
            digest, size = hashlib.sha256(), 0
            with open(path, "rb+") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
                os.fsync(f.fileno())
        except OSError as exc:
            raise OutputError(self.folder, f"cannot stage {name}: {exc.strerror}") from None
        if name not in self.files:
            self.files.append(name)
        self.checksums[name] = {"bytes": size, "sha256": digest.hexdigest()}

    def scratch(self, name: str) -> Path:
        """A working folder inside the stage, for files that are not outputs (created).

        It is deleted before the folder is published, and with the stage when
        the run fails, so nothing in it is ever published.
        """
        self._plain(name, "scratch")
        path = self._stage / f".scratch-{name}"
        path.mkdir(exist_ok=True)
        self._scratch.append(path)
        return path

    def _plain(self, name: str, what: str) -> None:
        """Refuse a call outside the with-block, after the manifest, or a name with a path."""
        if self._stage is None:
            raise RuntimeError(f"OutputSet.{what} outside its with-block ({name})")
        if MANIFEST in self.files:
            raise RuntimeError(f"OutputSet: {name} written after manifest.json")
        if not name or "/" in name or os.sep in name or name.startswith(".") or name in ("..",):
            raise ValueError(f"OutputSet: not a plain file name: {name!r}")

    def write_text(self, name: str, text: str) -> None:
        """Stage one file (UTF-8)."""
        if self._stage is None:
            raise RuntimeError(f"OutputSet.write_text outside its with-block ({name})")
        self.write_bytes(name, text.encode("utf-8"))

    def write_manifest(self, value: dict[str, Any]) -> None:
        """Stage manifest.json: ``value`` plus the checksums of every file staged so far."""
        doc = dict(value)
        doc.setdefault("generator", "trimtab")
        doc["files"] = [*self.files, MANIFEST] if MANIFEST not in self.files else self.files
        doc["checksums"] = {n: dict(c) for n, c in self.checksums.items()}
        doc["checksums_note"] = CHECKSUMS_NOTE
        self.write_text(MANIFEST, json_text(doc))

    def write_json(self, name: str, value: Any) -> None:
        if name == MANIFEST and isinstance(value, dict):
            self.write_manifest(value)
        else:
            self.write_text(name, json_text(value))

    def write_csv(self, name: str, frame: pd.DataFrame | pd.Series) -> None:
        self.write_text(name, frame.to_csv())

    def _publish(self, stage: Path) -> None:
        out = self._abs
        if MANIFEST not in self.files:
            self.write_manifest({})
        for path in self._scratch:
            if os.path.lexists(path):
                shutil.rmtree(path)
        _fsync_dir(stage)
        check_replaceable(out)  # again, just before the swap
        if not os.path.lexists(out):
            os.rename(stage, out)
        elif _exchange(stage, out):
            pass  # the stage now holds the earlier folder, deleted by the caller
        else:
            aside = out.parent / f".{out.name}.trimtab-old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out, aside)
            try:
                os.rename(stage, out)
            except BaseException:
                os.rename(aside, out)
                raise
            shutil.rmtree(aside, ignore_errors=True)
        _fsync_dir(out.parent)

    def __exit__(self, exc_type, exc, tb) -> None:
        stage, self._stage = self._stage, None
        try:
            if exc_type is None and stage is not None:
                self._stage = stage
                try:
                    self._publish(stage)
                except OSError as err:
                    raise OutputError(
                        self.folder, f"cannot publish the outputs: {err.strerror or err}"
                    ) from None
                finally:
                    self._stage = None
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
            self._unlock()
