"""How a delimited text file is written, guessed from its first megabyte: the encoding and the delimiter.

Encodings are tried in this order: a byte-order mark (UTF-8 with BOM: the mark is not part of the first
column's name; UTF-16 as Excel's "Unicode text" writes it), UTF-8, GB18030 (a superset of GBK and GB2312, as
Chinese Windows writes CSVs) where the decoded text is mostly Chinese, Windows-1252, then latin-1, which
decodes any bytes. The delimiter is the one of `,` tab `;` `|` that cuts the sample's lines into the same
number (more than one) of fields, the most fields winning; quoted fields are honoured. A `;`-separated file
whose numbers are written with a decimal comma (1,5) and none with a point is read so; thousands separators
are honoured where a number shows them beside its decimals (1.234,56 or 1,037.5). `data.encoding` and
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
    cut = len(lines) > 1 and not lines[-1].endswith(("\n", "\r"))
    complete = lines[:-1] if cut else lines  # the sample's last line may be cut short
    return "".join(complete[:SAMPLE_LINES])


DECIMAL_COMMA = re.compile(r"-?(?:\d+,(?:\d{1,2}|\d{4,})|0,\d+|\d{1,3}(?:\.\d{3})+,\d+)")  # 1,5  0,125  1.234,56
DECIMAL_POINT = re.compile(r"-?\d+\.\d+")
POINT_THOUSANDS = re.compile(r"-?\d{1,3}(?:\.\d{3})+")  # 1.234 beside decimal commas: a thousand and more
COMMA_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+\.\d+")  # 1,037.5


def _cells(text: str, sep: str) -> list[str]:
    rows = csv.reader(io.StringIO(_complete_lines(text)), delimiter=sep)
    return [c.strip().strip('"') for row in rows for c in row]


def decimal_of(text: str, sep: str) -> str:
    """',' where a `;`-separated sample writes its numbers with decimal commas only (European spreadsheets): 1,5
    or 1.234,56, never 1,000 (a thousand, or one with three decimals: left as text rather than guessed)."""
    if sep != ";":
        return "."
    cells = _cells(text, sep)
    comma = sum(1 for c in cells if DECIMAL_COMMA.fullmatch(c))
    point = sum(1 for c in cells if DECIMAL_POINT.fullmatch(c) and not POINT_THOUSANDS.fullmatch(c))
    return "," if comma and not point else "."


def thousands_of(text: str, sep: str, decimal: str) -> str | None:
    """The thousands separator the sample's numbers show unmistakably: '.' beside decimal commas (1.234,56),
    ',' beside decimal points (1,037.5, a quoted cell of a CSV); else None."""
    cells = _cells(text, sep)
    if decimal == ",":
        return "." if any(re.fullmatch(r"-?\d{1,3}(?:\.\d{3})+,\d+", c) for c in cells) else None
    if any(COMMA_THOUSANDS.fullmatch(c) for c in cells) and not any(DECIMAL_COMMA.fullmatch(c) for c in cells):
        return ","
    return None


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
