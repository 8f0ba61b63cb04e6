"""MovieLens (GroupLens) folders -> Tailor's interactions.csv, items.csv and users.csv.

Three layouts are recognised from the files present:

- ml-100k: ``u.data`` (user<TAB>item<TAB>rating<TAB>unix ts), ``u.item`` (latin-1, ``|``,
  24 fields: id, title, release date, video date, IMDb URL, 19 genre flags named by
  ``u.genre``), ``u.user`` (id|age|gender|occupation|zip). Split files such as
  ``u1.base`` have the format of ``u.data``.
- ml-1m: ``ratings.dat``, ``movies.dat`` (latin-1), ``users.dat``, all ``::``-separated;
  users' age and occupation are codes, turned into their names.
- ml-latest-small (and the other ml-latest / ml-25m CSV releases): ``ratings.csv``,
  ``movies.csv`` with ``|``-separated genres; no users file.

Every rating becomes an interaction with event_type ``rating``, the rating as value and
the Unix timestamp unchanged. Ids are kept as MovieLens writes them so that results can
be compared with the canonical splits. Rows that cannot be read go to rejects.csv.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from infra.importers._common import Reject, decoded_lines, result

# ml-100k's u.genre, used when the folder lacks that file
ML_100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                  "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                  "Romance", "Sci-Fi", "Thriller", "War", "Western")
# ml-1m README, "USERS FILE DESCRIPTION"
ML_1M_AGE_BANDS = {"1": "Under 18", "18": "18-24", "25": "25-34", "35": "35-44",
                   "45": "45-49", "50": "50-55", "56": "56+"}
ML_1M_OCCUPATIONS = ("other", "academic/educator", "artist", "clerical/admin", "college/grad student",
                     "customer service", "doctor/health care", "executive/managerial", "farmer",
                     "homemaker", "K-12 student", "lawyer", "programmer", "retired", "sales/marketing",
                     "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
                     "unemployed", "writer")
NO_GENRES = "(no genres listed)"  # ml-latest's marker for a film without genres

INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "event_type", "value"]
USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip"]


@dataclass(frozen=True)
class Layout:
    name: str
    ratings: str
    items: str
    users: str | None


LAYOUTS = (
    Layout("ml-100k", "u.data", "u.item", "u.user"),
    Layout("ml-1m", "ratings.dat", "movies.dat", "users.dat"),
    Layout("ml-latest-small", "ratings.csv", "movies.csv", None),
)


def detect_layout(path: str | Path) -> tuple[Layout, Path]:
    """Find which MovieLens layout a folder holds (or the one folder inside it, as the zips unpack)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; give the folder that holds the MovieLens files")
    candidates = [folder] + sorted(child for child in folder.iterdir() if child.is_dir())
    for candidate in candidates:
        for layout in LAYOUTS:
            if (candidate / layout.ratings).is_file() or (candidate / layout.items).is_file():
                return layout, candidate
    raise ValueError(f"{folder} does not look like MovieLens: expected u.data or u.item (ml-100k), "
                     f"ratings.dat or movies.dat (ml-1m), ratings.csv or movies.csv (ml-latest-small)")


# --- ratings -----------------------------------------------------------------------------

def _split_rows(path: Path, separator: str, encoding: str, width: int, rejects: list[Reject],
                header: str | None = None) -> tuple[list[int], list[list[str]]]:
    """Split each line on separator; lines without exactly `width` fields are rejected."""
    numbers, rows = [], []
    for number, text in decoded_lines(path, encoding, rejects):
        if not text.strip() or (header is not None and number == 1 and text.startswith(header)):
            continue
        fields = text.split(separator)
        if len(fields) != width:
            rejects.append(Reject(path.name, number, f"expected {width} fields separated by {separator!r}, "
                                                     f"found {len(fields)}", text[:200]))
            continue
        numbers.append(number)
        rows.append([field.strip() for field in fields])
    return numbers, rows


def _read_ratings(path: Path, layout: Layout, rejects: list[Reject]) -> pd.DataFrame:
    if layout.name == "ml-100k":
        numbers, rows = _split_rows(path, "\t", "latin-1", 4, rejects)
    elif layout.name == "ml-1m":
        numbers, rows = _split_rows(path, "::", "latin-1", 4, rejects)
    else:
        # ratings.csv holds only numbers, so no field is ever quoted and a plain split is exact
        numbers, rows = _split_rows(path, ",", "utf-8", 4, rejects, header="userId,")
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"], dtype=str)
    rating = pd.to_numeric(frame["rating"], errors="coerce")
    timestamp = pd.to_numeric(frame["timestamp"], errors="coerce")
    problems = {
        "missing user id": frame["user_id"] == "",
        "missing item id": frame["item_id"] == "",
        "rating is not a number": rating.isna(),
        "timestamp is not whole Unix seconds": timestamp.isna() | (timestamp < 0) | (timestamp % 1 != 0),
    }
    bad = pd.Series(False, index=frame.index)
    for reason, mask in problems.items():
        for row in frame.index[mask & ~bad]:
            rejects.append(Reject(path.name, numbers[row], reason, "\t".join(rows[row])))
        bad |= mask
    good = frame[~bad]
    return pd.DataFrame({
        "user_id": good["user_id"],
        "item_id": good["item_id"],
        "timestamp": timestamp[~bad].astype("int64"),
        "event_type": "rating",
        "value": good["rating"],
    }, columns=INTERACTION_COLUMNS).reset_index(drop=True)


# --- items -------------------------------------------------------------------------------

def _release_year(title: str) -> str:
    match = re.search(r"\((\d{4})\)\s*$", title)
    return f"Released {match.group(1)}" if match else ""


def _ml100k_genres(folder: Path, rejects: list[Reject]) -> tuple[str, ...]:
    path = folder / "u.genre"
    if not path.is_file():
        return ML_100K_GENRES
    indexed = []
    for number, text in decoded_lines(path, "latin-1", rejects):
        if not text.strip():
            continue
        name, _, index = text.rpartition("|")
        if not name or not index.strip().isdigit():
            raise ValueError(f"{path} line {number}: expected 'genre|index', found {text!r}")
        indexed.append((int(index), name))
    return tuple(name for _, name in sorted(indexed))


def _read_items_100k(folder: Path, rejects: list[Reject]) -> pd.DataFrame:
    genres = _ml100k_genres(folder, rejects)
    path = folder / "u.item"
    numbers, rows = _split_rows(path, "|", "latin-1", 5 + len(genres), rejects)
    records = []
    for number, fields in zip(numbers, rows):
        item_id, title, released, _video_released, imdb_url = fields[:5]
        flags = fields[5:]
        if not item_id:
            rejects.append(Reject(path.name, number, "missing item id", "|".join(fields)))
            continue
        if any(flag not in ("0", "1") for flag in flags):
            rejects.append(Reject(path.name, number, "genre flags must be 0 or 1", "|".join(fields)))
            continue
        records.append({
            "item_id": item_id,
            "title": title,
            "description": f"Released {released}" if released else "",
            "categories": "|".join(genre for genre, flag in zip(genres, flags) if flag == "1"),
            "release_date": released,
            "imdb_url": imdb_url,
        })
    return pd.DataFrame(records, columns=["item_id", "title", "description", "categories",
                                          "release_date", "imdb_url"])


def _read_items_1m(folder: Path, rejects: list[Reject]) -> pd.DataFrame:
    path = folder / "movies.dat"
    numbers, rows = _split_rows(path, "::", "latin-1", 3, rejects)
    return _items_from_title_and_genres(path, numbers, rows, rejects)


def _read_items_latest(folder: Path, rejects: list[Reject]) -> pd.DataFrame:
    path = folder / "movies.csv"
    numbers, rows = [], []
    for number, text in decoded_lines(path, "utf-8", rejects):
        if not text.strip() or (number == 1 and text.startswith("movieId,")):
            continue
        fields = next(csv.reader([text]))  # titles with commas are quoted
        if len(fields) != 3:
            rejects.append(Reject(path.name, number, f"expected 3 CSV fields, found {len(fields)}", text[:200]))
            continue
        numbers.append(number)
        rows.append(fields)
    return _items_from_title_and_genres(path, numbers, rows, rejects)


def _items_from_title_and_genres(path: Path, numbers: list[int], rows: list[list[str]],
                                 rejects: list[Reject]) -> pd.DataFrame:
    records = []
    for number, (item_id, title, genres) in zip(numbers, rows):
        if not item_id.strip():
            rejects.append(Reject(path.name, number, "missing item id", "::".join((item_id, title, genres))))
            continue
        records.append({
            "item_id": item_id.strip(),
            "title": title.strip(),
            "description": _release_year(title),
            "categories": "" if genres.strip() == NO_GENRES else genres.strip(),
        })
    return pd.DataFrame(records, columns=["item_id", "title", "description", "categories"])


# --- users -------------------------------------------------------------------------------

def _read_users_100k(folder: Path, rejects: list[Reject]) -> pd.DataFrame:
    path = folder / "u.user"
    numbers, rows = _split_rows(path, "|", "latin-1", 5, rejects)
    records = []
    for number, (user_id, age, gender, occupation, zip_code) in zip(numbers, rows):
        if not user_id:
            rejects.append(Reject(path.name, number, "missing user id", "|".join((user_id, age, gender))))
            continue
        records.append((user_id, age, gender, occupation, zip_code))
    return pd.DataFrame(records, columns=USER_COLUMNS)


def _read_users_1m(folder: Path, rejects: list[Reject]) -> pd.DataFrame:
    path = folder / "users.dat"
    numbers, rows = _split_rows(path, "::", "latin-1", 5, rejects)
    records = []
    for number, (user_id, gender, age, occupation, zip_code) in zip(numbers, rows):
        raw = "::".join((user_id, gender, age, occupation, zip_code))
        if not user_id:
            rejects.append(Reject(path.name, number, "missing user id", raw))
        elif age not in ML_1M_AGE_BANDS:
            rejects.append(Reject(path.name, number, f"unknown age code {age!r}", raw))
        elif not occupation.isdigit() or int(occupation) >= len(ML_1M_OCCUPATIONS):
            rejects.append(Reject(path.name, number, f"unknown occupation code {occupation!r}", raw))
        else:
            records.append((user_id, ML_1M_AGE_BANDS[age], gender, ML_1M_OCCUPATIONS[int(occupation)], zip_code))
    return pd.DataFrame(records, columns=USER_COLUMNS)


# --- entry point -------------------------------------------------------------------------

def _resolve_ratings_file(folder: Path, layout: Layout, ratings_file: str | Path | None) -> Path:
    if ratings_file is None:
        path = folder / layout.ratings
    else:
        given = Path(ratings_file)
        path = given if given.is_absolute() or given.is_file() else folder / given
    if not path.is_file():
        raise ValueError(f"ratings file {path} not found")
    return path


def import_movielens(path: str | Path, out_dir: str | Path, ratings_file: str | Path | None = None) -> dict:
    """Convert a MovieLens folder into Tailor's CSV files in out_dir.

    ratings_file: a split file (e.g. ``u1.base``) to use instead of all ratings; a bare
    name is looked up in the MovieLens folder.
    Returns {"format", "out_dir", "files", "counts", "rejected", "rejects", "rejects_file"}.
    """
    layout, folder = detect_layout(path)
    ratings_path = _resolve_ratings_file(folder, layout, ratings_file)
    rejects: list[Reject] = []
    tables = {"interactions": _read_ratings(ratings_path, layout, rejects)}
    readers = {
        "ml-100k": (_read_items_100k, _read_users_100k),
        "ml-1m": (_read_items_1m, _read_users_1m),
        "ml-latest-small": (_read_items_latest, None),
    }
    read_items, read_users = readers[layout.name]
    # a folder may lack the catalog or the users: import what is there
    if (folder / layout.items).is_file():
        tables["items"] = read_items(folder, rejects)
    if layout.users is not None and (folder / layout.users).is_file():
        tables["users"] = read_users(folder, rejects)
    return result(layout.name, Path(out_dir), tables, rejects)
