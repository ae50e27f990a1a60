"""``trimtab report RUN_DIR``: draw report.html again from a run folder.

Everything the page draws is in the folder: report.json (with its ``charts``)
and, for a backtest, backtest_values.csv. :func:`rerender` republishes the
folder whole with the new report.html and a manifest whose checksums match it
(:class:`scenarios.export.OutputSet`), or writes the page elsewhere
(``out=``) and leaves the folder as it is.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path

import pandas as pd

from optimizer.errors import InputError
from scenarios.export import MANIFEST, OutputSet
from scenarios.report.html import render_report

REPORT_JSON, REPORT_HTML, VALUES = "report.json", "report.html", "backtest_values.csv"
HINT = "give the output folder of a trimtab run (trimtab run SCENARIO --out DIR)"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file: {HINT}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def render_folder(run_dir: str | os.PathLike) -> str:
    """report.html's text from a run folder's report.json (and backtest_values.csv).

    Raises
    ------
    InputError
        ``run_dir`` is not a folder, or its report.json is missing, not JSON
        or not a trimtab report (naming the file and the fix).
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder: {HINT}")
    path = folder / REPORT_JSON
    try:
        report = json.loads(_read(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc}): run the scenario again to write it"
        ) from None
    if not isinstance(report, dict) or "scenario" not in report:
        raise InputError(f'{path}: not a trimtab report (no "scenario" key): {HINT}')
    values = None
    if "backtest" in report:
        values_path = folder / VALUES
        try:
            values = pd.read_csv(io.BytesIO(_read(values_path)), index_col=0, parse_dates=True)
        except (ValueError, pd.errors.ParserError) as exc:
            raise InputError(
                f"{values_path}: cannot read the value paths ({exc}): run the backtest again"
            ) from None
    return render_report(report, values=values)


def rerender(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Draw report.html again; return the path written.

    Without ``out`` the run folder is republished whole (every file as it
    was, report.html new, the manifest's ``files`` and ``checksums`` updated);
    with ``out`` the page goes to that file (written to a temporary name
    beside it, then renamed) and the folder is not touched.
    """
    text = render_folder(run_dir)
    folder = Path(run_dir)
    if out is not None:
        target = Path(out)
        if target.is_dir():
            raise InputError(f"{target}: is a folder: give a file name such as report.html")
        tmp = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            raise InputError(f"{target}: cannot write the report: {exc.strerror or exc}") from None
        finally:
            if tmp.exists():
                tmp.unlink()
        return target
    try:
        doc = json.loads(_read(folder / MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{folder / MANIFEST}: not valid JSON: {HINT}") from None
    names = [n for n in doc.get("files", []) if n not in (MANIFEST, REPORT_HTML)]
    blobs = {n: _read(folder / n) for n in names}
    with OutputSet(folder) as pub:
        for name, blob in blobs.items():
            pub.write_bytes(name, blob)
        pub.write_text(REPORT_HTML, text)
        kept = {k: v for k, v in doc.items() if k not in ("files", "checksums", "checksums_note")}
        pub.write_manifest(kept)
    return folder / REPORT_HTML
