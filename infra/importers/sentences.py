"""Labelled-sentence corpora -> Tailor's reviews.csv (review_id, text, label, language).

- ``mr``: Movie Review polarity v1.0 (Pang & Lee 2005): ``rt-polarity.pos`` and
  ``rt-polarity.neg``, one sentence a line, **cp1252** encoded.
- ``sst2``: GLUE SST-2 TSV with a ``sentence<TAB>label`` header. Quotes are ordinary
  characters there (csv.QUOTE_NONE), and sentences end with a space that is stripped.
  The unlabelled ``test.tsv`` (``index<TAB>sentence``) imports with an empty label.
- ``chnsenticorp``: ChnSentiCorp hotel reviews CSV (``label,review``, UTF-8), Chinese.

Labels 1/0 become positive/negative. Rows that cannot be used (an empty text, an
unknown label, a line that does not decode) are listed in rejects.csv with the reason;
the good rows are still written.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from infra.importers._common import Reject, decoded_lines, result

KINDS = ("mr", "sst2", "chnsenticorp")
ALIASES = {"rt-polarity": "mr", "sst-2": "sst2"}
LABELS = {"1": "positive", "0": "negative"}
REVIEW_COLUMNS = ["review_id", "text", "label", "language"]


def _mr_files(path: Path) -> dict[str, Path]:
    """The .pos and .neg files, given their folder (or the folder above it), or either file."""
    if path.is_file():
        folder = path.parent
    elif path.is_dir():
        folder = path if (path / "rt-polarity.pos").exists() else path / "rt-polaritydata"
    else:
        raise ValueError(f"{path} does not exist")
    files = {"positive": folder / "rt-polarity.pos", "negative": folder / "rt-polarity.neg"}
    missing = [str(file) for file in files.values() if not file.is_file()]
    if missing:
        raise ValueError(f"MR needs rt-polarity.pos and rt-polarity.neg; missing: {', '.join(missing)}")
    return files


def _read_mr(path: Path, rejects: list[Reject]) -> list[dict]:
    records = []
    for label, file in _mr_files(path).items():
        short = "pos" if label == "positive" else "neg"
        for number, text in decoded_lines(file, "cp1252", rejects):
            if text.strip():  # a blank line holds no sentence, so there is nothing to keep
                records.append({"review_id": f"mr-{short}-{number}", "text": text.strip(),
                                "label": label, "language": "en"})
    return records


def _read_sst2(path: Path, rejects: list[Reject]) -> list[dict]:
    if not path.is_file():
        raise ValueError(f"{path} is not a file; give the .tsv file (e.g. train.tsv)")
    numbered = list(decoded_lines(path, "utf-8", rejects))
    if not numbered or numbered[0][0] != 1:
        raise ValueError(f"{path}: the first line must be a header such as 'sentence<TAB>label'")
    numbers = [number for number, _ in numbered]
    # QUOTE_NONE: SST-2 is not CSV-quoted, a '"' inside a sentence is just a character
    rows = csv.reader((text for _, text in numbered), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [name.strip() for name in next(rows)]
    if "sentence" not in header:
        raise ValueError(f"{path}: header {header} has no 'sentence' column")
    text_at, label_at = header.index("sentence"), header.index("label") if "label" in header else None
    index_at = header.index("index") if "index" in header else None
    records = []
    for number, fields in zip(numbers[1:], rows):
        if not any(field.strip() for field in fields):
            continue  # a blank line holds no sentence
        raw = "\t".join(fields)
        if len(fields) != len(header):
            rejects.append(Reject(path.name, number, f"expected {len(header)} tab-separated fields, "
                                                     f"found {len(fields)}", raw[:200]))
            continue
        text = fields[text_at].strip()
        label = LABELS.get(fields[label_at].strip()) if label_at is not None else ""
        if label is None:
            rejects.append(Reject(path.name, number, f"label must be 0 or 1, found {fields[label_at]!r}", raw[:200]))
        elif not text:
            rejects.append(Reject(path.name, number, "empty sentence", raw[:200]))
        else:
            suffix = fields[index_at].strip() if index_at is not None else number
            records.append({"review_id": f"sst2-{path.stem}-{suffix}", "text": text,
                            "label": label, "language": "en"})
    return records


def _read_chnsenticorp(path: Path, rejects: list[Reject]) -> list[dict]:
    if not path.is_file():
        raise ValueError(f"{path} is not a file; give the CSV file")
    data = path.read_bytes()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # CSV fields may span lines, so a bad byte cannot be confined to one row: stop with where it is
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path} is not UTF-8 (line {line}, byte {error.start}): {error.reason}") from None
    reader = csv.reader(io.StringIO(content, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    if "label" not in header or "review" not in header:
        raise ValueError(f"{path}: expected a 'label,review' header, found {header}")
    label_at, text_at = header.index("label"), header.index("review")
    records = []
    for row_number, fields in enumerate(reader, start=1):
        raw, line = ",".join(fields)[:200], reader.line_num
        if len(fields) != len(header):
            rejects.append(Reject(path.name, line, f"data row {row_number}: expected {len(header)} fields, "
                                                   f"found {len(fields)}", raw))
            continue
        label, text = LABELS.get(fields[label_at].strip()), fields[text_at].strip()
        if label is None:
            rejects.append(Reject(path.name, line, f"data row {row_number}: label must be 0 or 1, "
                                                   f"found {fields[label_at]!r}", raw))
        elif not text:
            rejects.append(Reject(path.name, line, f"data row {row_number}: empty review text", raw))
        else:
            records.append({"review_id": f"chnsenticorp-{row_number}", "text": text,
                            "label": label, "language": "zh"})
    return records


READERS = {"mr": _read_mr, "sst2": _read_sst2, "chnsenticorp": _read_chnsenticorp}


def import_sentences(kind: str, path: str | Path, out_dir: str | Path) -> dict:
    """Convert a labelled-sentence corpus (kind: mr, sst2 or chnsenticorp) into reviews.csv.

    Returns {"format", "out_dir", "files", "counts", "rejected", "rejects", "rejects_file"}.
    """
    kind = ALIASES.get(kind.lower(), kind.lower())
    if kind not in READERS:
        raise ValueError(f"unknown corpus {kind!r}; expected one of {', '.join(KINDS)}")
    rejects: list[Reject] = []
    records = READERS[kind](Path(path), rejects)
    reviews = pd.DataFrame(records, columns=REVIEW_COLUMNS)
    return result(kind, Path(out_dir), {"reviews": reviews}, rejects)
