"""How a delimited text file is written, guessed from its first megabyte: the encoding and the delimiter.

Encodings are tried in this order: a byte-order mark (UTF-8 with BOM: the mark is not part of the first
column's name; UTF-16 as Excel's "Unicode text" writes it), UTF-8, GB18030 (a superset of GBK and GB2312, as
Chinese Windows writes CSVs) where the decoded text is mostly Chinese, Windows-1252, then latin-1, which
decodes any bytes. The delimiter is the one of `,` tab `;` `|` that cuts the sample's lines into the same
number (more than one) of fields, the most fields winning; quoted fields are honoured. A `;`-separated file
whose numbers are written with a decimal comma (1,5) and none with a point is read so. `data.encoding` and
`data.sep` override either guess.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

SAMPLE_BYTES = 1 << 20  # the sniffer reads this much of a file, never the whole of it
DELIMITERS = (",", "\t", ";", "|")
SAMPLE_LINES = 50
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def sample(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SAMPLE_BYTES)


def decodes(data: bytes, encoding: str) -> str | None:
    """`data` decoded, or None where it is not `encoding`; a sample may end inside a character."""
    try:
        return codecs.getincrementaldecoder(encoding)().decode(data, final=False)
    except UnicodeDecodeError:
        return None


def _mostly_chinese(text: str) -> bool:
    """Whether the non-ASCII characters of `text` are mostly CJK ideographs and CJK punctuation: latin-1
    bytes often decode as GB18030 too, into rare ideographs mixed with symbols."""
    wide = [c for c in text if ord(c) > 127]
    cjk = sum(1 for c in wide if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef")
    return bool(wide) and cjk >= 0.9 * len(wide)


def encoding_of(data: bytes) -> str | None:
    """The encoding of a file that starts with `data`, or None for binary data (NUL bytes without a BOM)."""
    for bom, name in BOMS:
        if data.startswith(bom):
            return name
    if b"\x00" in data:
        return None
    if decodes(data, "utf-8") is not None:
        return "utf-8"
    text = decodes(data, "gb18030")
    if text is not None and _mostly_chinese(text):
        return "gb18030"
    return "cp1252" if decodes(data, "cp1252") is not None else "latin-1"


def _complete_lines(text: str) -> str:
    lines = text.splitlines(keepends=True)
    complete = lines[:-1] if len(lines) > 1 else lines  # the sample's last line may be cut short
    return "".join(complete[:SAMPLE_LINES])


def decimal_of(text: str, sep: str) -> str:
    """',' where a `;`-separated sample writes its numbers with decimal commas only (European spreadsheets)."""
    if sep != ";":
        return "."
    cells = [c.strip().strip('"') for row in csv.reader(io.StringIO(_complete_lines(text)), delimiter=sep) for c in row]
    comma = sum(1 for c in cells if re.fullmatch(r"-?\d+,\d+", c))
    point = sum(1 for c in cells if re.fullmatch(r"-?\d+\.\d+", c))
    return "," if comma and not point else "."


def sep_of(text: str, default: str = ",") -> str:
    """The delimiter that cuts the first lines of `text` into the same number (> 1) of fields, the most
    fields first; `default` where none does."""
    head = _complete_lines(text)
    best, most = default, 1
    for sep in DELIMITERS:
        try:
            counts = {len(row) for row in csv.reader(io.StringIO(head), delimiter=sep) if row}
        except csv.Error:
            continue
        if len(counts) == 1 and (n := counts.pop()) > most:
            best, most = sep, n
    return best
