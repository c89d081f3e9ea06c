"""Where a bundle's data came from, recorded at training and signed by the user's own sw2, so that `sw2 report`
and `sw2 test` work from the bundle alone — while a bundle from anyone else still cannot make sw2 read a file.

provenance.json, written into the bundle at training:

    {"version": 1, "name": "rows", "task": "classify", "target": "y",
     "bundle": {"spec.yaml": "c3…", "preprocess.json": "0d…"},
     "files": {"data.path": {"named": "rows.csv", "path": "/home/me/rows.csv", "size": 4821, "sha256": "9f…"}},
     "test_rows": {"n": 24, "sha256": "51…", "ids": ["3", "17", …]},
     "mac": "…"}

`bundle`: the sha256 of the bundle's own spec.yaml and preprocess.json (written before the record), so a record
is good in the bundle it was written for alone: moved into another bundle of the same name, task and target,
it is refused. These two files say which data is read and how (the spec's paths and split, the encoder); the
model's weights are not bound, so that `sw2 compress`'s variants (new weights, the same spec.yaml and
preprocess.json) keep the record and an ensemble writes its own.

`files`: each file the spec names outside training itself (data.path, data.test_path, data.exclude, an examples
test's path), with the spec's own words for it (`named`), its resolved absolute path, its size and sha256 (a
folder: its file count and a sha256 over its files' names and sizes; their content is checked by the data
fingerprint `sw2 report` compares). `test_rows`: the test split's row ids (listed up to 10,000), so a split
read back differently is caught rather than reported on.

The signature: `mac` is HMAC-SHA256 over the record's canonical JSON (sorted keys, without "mac"), keyed by
32 random bytes that sw2 creates on first use at cache_dir()/provenance.key ($SW2_CACHE or ~/.cache/sw2;
the file 0600, never replaced once there). Only this user's sw2 can sign, so a record from another machine,
an edited one or an unsigned one fails, and the bundle's paths outside itself are refused as before. A
genuine record lends its paths only to the spec that names them as it does (`named`, name, task, target), in
the bundle it was written for (`bundle`); a crafted one (a link, nested past Python's limits) fails as an edited
one does, in one line.
A key readable by others is not trusted; a cleared cache forgets the key, and older bundles then ask for
--spec as a bundle from elsewhere does. What this proves is that the user's sw2 read these files for this
spec — not who trained the weights. The record holds the user's absolute paths: sharing a bundle shares them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from sw2 import log
from sw2.data.examples import Examples
from sw2.errors import UserError
from sw2.files import cache_dir
from sw2.spec import Spec

RECORD = "provenance.json"
LISTED_IDS = 10_000  # test row ids listed in the record up to this many (their digest always)
REFUSED = "does not lie inside the bundle, and a bundle cannot make sw2 read files outside itself"
ASK = "give your spec file with --spec, or the data with --data"
BOUND = ("spec.yaml", "preprocess.json")  # the bundle's own files a record is bound to (`bundle`)


def key_file() -> Path:
    return cache_dir() / "provenance.key"


def write(folder: Path, spec: Spec, root: Path, test: Any) -> None:
    """provenance.json into the bundle being written (`folder`): the files `spec` names (from `root`) and the
    rows of `test`, signed. Without a usable key the bundle records nothing (a warning says what follows)."""
    try:
        key, problem = _key(create=True)
    except OSError as err:
        key, problem = None, f"sw2 could not create its key {key_file()} ({err})"
    if key is None:
        log.warning(f"{problem}: the bundle does not record its data; sw2 report and sw2 test will need --spec")
        return
    record: dict[str, Any] = {"version": 1, "name": spec.name, "task": spec.task, "target": spec.target}
    named = [(field, name) for field, name in spec.named_paths() if not field.startswith("train.")]
    try:
        record["bundle"] = _bound(folder)
        record["files"] = {f: {"named": name, **_print(root / name)} for f, name in named if (root / name).exists()}
    except OSError as err:  # a file that vanished or cannot be read now: the bundle is still written
        log.warning(f"the bundle does not record its data ({err}); sw2 report and sw2 test will need --spec")
        return
    if isinstance(test, Examples):
        ids = [str(i) for i in test.ids]
        listed = {"ids": ids} if len(ids) <= LISTED_IDS else {}
        record["test_rows"] = {"n": len(ids), "sha256": _digest(ids), **listed}
    record["mac"] = _mac(key, record)
    (folder / RECORD).write_text(json.dumps(record), encoding="utf-8")


def recorded_paths(bundle: Path, spec: Spec, fields: list[tuple[str, str]]) -> dict[str, Path]:
    """The files the bundle's record gives for `fields` ((field, the spec's name) outside the bundle), once the
    record is shown to be this user's sw2's and each file is as it was at training; else a one-line UserError
    saying why and what to pass instead."""
    record, why = _authentic(bundle, spec)
    found = {}
    for field, name in fields:
        entry = record["files"].get(field) if record else None
        if record is not None and (entry is None or entry["named"] != name):
            entry, why = None, f"its {RECORD} does not record {field} as {name}"
        if entry is None:
            raise UserError(f"{bundle}: its spec's {field} ({name}) {REFUSED} unless your sw2 recorded it at training; "
                            f"here {why}; {ASK}")  # fmt: skip
        path = Path(entry["path"])
        if not path.exists():
            raise UserError(
                f"{bundle}: its {field} was {path} at training, and nothing is there now; give your spec file naming "
                f"its new place with --spec SPEC (the same test split), or a file with --data FILE (scored whole)"
            )
        now = _print(path)
        if any(now.get(k) != entry.get(k) for k in ("size", "files", "sha256")):  # the path may be a new link
            raise UserError(
                f"{bundle}: its {field} {path} changed since training ({_what_changed(entry, now)}); give --spec SPEC "
                f"to use it as it is now (its test split may then hold rows the model trained on), or --data FILE "
                f"to score a file whole"
            )
        found[field] = path
    return found


def with_paths(spec: Spec, found: dict[str, Path]) -> Spec:
    """`spec` with the recorded absolute paths in place of its own (fields as `Spec.named_paths` names them)."""
    data = {f.removeprefix("data."): str(p) for f, p in found.items() if f.startswith("data.")}
    tests = list(spec.tests)
    for field, path in found.items():
        if field.startswith("tests."):
            i = int(field.split(".")[1])
            tests[i] = tests[i].model_copy(update={"path": str(path)})
    return spec.model_copy(update={"data": spec.data.model_copy(update=data), "tests": tests})


def check_rows(bundle: Path, spec: Spec, test: Any) -> None:
    """Refuse a test split read back from the recorded files that is not the one recorded at training."""
    record, _ = _authentic(bundle, spec)
    rows = (record or {}).get("test_rows")
    if not isinstance(rows, dict) or not isinstance(test, Examples):
        return
    ids = [str(i) for i in test.ids]
    if _digest(ids) != rows.get("sha256"):
        raise UserError(
            f"{bundle}: the test split read back ({len(ids)} rows) is not the one recorded at training ({rows.get('n')}"
            f" rows): the split rule changed since; give your spec file with --spec to use today's split"
        )


def _authentic(bundle: Path, spec: Spec) -> tuple[dict[str, Any] | None, str]:
    """The bundle's record if this user's sw2 signed it for this spec, else None and why not."""
    file = bundle / RECORD
    if file.is_symlink():  # sw2 reads a bundle's own files only, as Bundle refuses links out of it
        return None, f"its {RECORD} is a link, not a file as sw2 writes it"
    if not file.is_file():
        return None, f"the bundle holds no {RECORD} (trained by an older sw2, or not by sw2)"
    try:
        if file.stat().st_size > 4 << 20:  # a name, a path and a hash per file, ids up to LISTED_IDS
            raise ValueError("too large")
        record = json.loads(file.read_text(encoding="utf-8"))
        mac = record.pop("mac")
        _check_shape(record)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # RecursionError: nesting
        return None, f"its {RECORD} is not as sw2 writes it"
    key, problem = _key(create=False)
    if key is None:
        return None, problem
    if not (isinstance(mac, str) and mac.isascii() and hmac.compare_digest(mac.encode(), _mac(key, record).encode())):
        return None, f"its {RECORD} is not signed by your sw2's key (written elsewhere, or edited)"
    if [record.get(k) for k in ("name", "task", "target")] != [spec.name, spec.task, spec.target]:
        return None, f"its {RECORD} was written for another spec (its name, task or target differ)"
    try:
        own = _bound(bundle)
    except OSError as err:
        return None, f"its {', '.join(BOUND)} cannot be read ({err})"
    if record["bundle"] != own:
        return None, f"its {RECORD} was written for another bundle (its {' or '.join(BOUND)} differ)"
    return record, ""


def _check_shape(record: Any) -> None:
    """TypeError/KeyError unless `record` is shaped as `write` writes it."""
    files = record["files"]
    if not isinstance(record["bundle"], dict):
        raise TypeError("bundle")
    if not isinstance(files, dict) or not all(
        isinstance(e, dict) and isinstance(e["path"], str) and isinstance(e["named"], str) for e in files.values()
    ):
        raise TypeError("files")


def _key(create: bool) -> tuple[bytes | None, str]:
    """The user's signing key (created first if `create`), or None and why it cannot be used."""
    path = key_file()
    if not path.exists() and create:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".provenance.key.", suffix=".tmp")  # created 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # whole or not at all, and never over a key another process made first
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    if not path.is_file():
        return None, f"your sw2 has no key at {path} to check a record with (a cleared cache?)"
    st = path.stat()
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
        return None, f"your sw2's key {path} is not private to you (mode {st.st_mode & 0o777:o}: chmod 600 it)"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip()), ""
    except (OSError, ValueError):
        return None, f"your sw2's key {path} is not as sw2 writes it (delete it: sw2 makes a new one)"


def _mac(key: bytes, record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode("ascii"), hashlib.sha256).hexdigest()


def _bound(folder: Path) -> dict[str, str]:
    """The sha256 of each of the bundle's files a record is bound to (BOUND)."""
    return {name: _sha256(folder / name) for name in BOUND}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def _print(path: Path) -> dict[str, Any]:
    """A file's resolved path, size and sha256; a folder's, its file count and a sha256 over names and sizes."""
    path = path.resolve()
    digest = hashlib.sha256()
    if path.is_dir():
        found = sorted((str(p.relative_to(path)), p.stat().st_size) for p in path.rglob("*") if p.is_file())
        for name, size in found:
            digest.update(f"{name}\t{size}\n".encode())
        return {"path": str(path), "size": sum(s for _, s in found), "files": len(found), "sha256": digest.hexdigest()}
    return {"path": str(path), "size": path.stat().st_size, "sha256": _sha256(path)}


def _what_changed(then: dict[str, Any], now: dict[str, Any]) -> str:
    if then.get("size") != now["size"]:
        return f"{then.get('size')} bytes then, {now['size']} now"
    if "files" in now and then.get("files") != now["files"]:
        return f"{then.get('files')} files then, {now['files']} now"
    return f"same size, but its sha256 was {str(then.get('sha256'))[:12]}… and is {now['sha256'][:12]}… now"
