"""Importers of public datasets, on tiny fixture files in each format (no network).

The last tests run on the real corpora when they are present beside the repository
(TAILOR_SHARED_DATA, default ../shared/data) and are skipped otherwise.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import pytest

from infra.importers import import_movielens, import_sentences
from infra.importers.__main__ import main as importers_main

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("TAILOR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


# --- MovieLens -------------------------------------------------------------------------------

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]


def _flags(*names: str) -> str:
    return "|".join("1" if genre in names else "0" for genre in GENRES)


@pytest.fixture
def ml100k(tmp_path) -> Path:
    folder = tmp_path / "ml-100k"
    toy_story_genres = _flags("Animation", "Children's", "Comedy")
    _write(folder / "u.genre", "".join(f"{name}|{index}\n" for index, name in enumerate(GENRES)) + "\n")
    _write(folder / "u.item",
           f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|"
           f"{toy_story_genres}\n"
           f"543|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/x|{_flags('Drama', 'Musical')}\n"
           f"267|unknown||||{_flags('unknown')}\n",
           encoding="latin-1")
    _write(folder / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    _write(folder / "u.data",
           "1\t1\t5\t874965758\n"
           "1\t543\t3\t876893171\n"
           "2\t1\t4\t888550871\n"
           "2\t543\tfive\t888550872\n"  # a rating that is not a number
           "2\t267\t1\n")  # a field missing
    _write(folder / "u1.base", "1\t1\t5\t874965758\n2\t1\t4\t888550871\n")
    return folder


def test_ml100k_ratings_become_rating_interactions(ml100k, tmp_path):
    outcome = import_movielens(ml100k, tmp_path / "out")
    assert outcome["format"] == "ml-100k"
    interactions = _read(outcome["files"]["interactions"])
    assert interactions.columns.tolist() == ["user_id", "item_id", "timestamp", "event_type", "value"]
    assert interactions.values.tolist() == [
        ["1", "1", "874965758", "rating", "5"],
        ["1", "543", "876893171", "rating", "3"],
        ["2", "1", "888550871", "rating", "4"],
    ]


def test_ml100k_items_decode_latin1_and_name_the_genres(ml100k, tmp_path):
    items = _read(import_movielens(ml100k, tmp_path / "out")["files"]["items"]).set_index("item_id")
    assert items.loc["543", "title"] == "Misérables, Les (1995)"
    assert items.loc["543", "categories"] == "Drama|Musical"
    assert items.loc["1", "categories"] == "Animation|Children's|Comedy"
    assert items.loc["1", "description"] == "Released 01-Jan-1995"
    assert items.loc["267", "description"] == ""
    assert items.columns[:3].tolist() == ["title", "description", "categories"]


def test_ml100k_users_keep_their_attributes(ml100k, tmp_path):
    users = _read(import_movielens(ml100k, tmp_path / "out")["files"]["users"])
    assert users.values.tolist() == [["1", "24", "M", "technician", "85711"], ["2", "53", "F", "other", "94043"]]


def test_bad_rating_rows_are_rejected_with_reasons_and_the_rest_kept(ml100k, tmp_path):
    outcome = import_movielens(ml100k, tmp_path / "out")
    assert outcome["counts"]["interactions"] == 3
    assert outcome["rejected"] == 2
    rejects = _read(outcome["rejects_file"])
    assert outcome["rejects_file"] == tmp_path / "out" / "rejects.csv"
    assert rejects["line"].tolist() == ["4", "5"]
    assert rejects["reason"][0] == "rating is not a number"
    assert "expected 4 fields" in rejects["reason"][1]
    assert (rejects["source"] == "u.data").all()


def test_a_split_file_replaces_the_full_ratings(ml100k, tmp_path):
    outcome = import_movielens(ml100k, tmp_path / "out", ratings_file="u1.base")
    assert outcome["counts"] == {"interactions": 2, "items": 3, "users": 2}
    assert outcome["rejected"] == 0
    assert outcome["rejects_file"] is None
    with pytest.raises(ValueError, match="not found"):
        import_movielens(ml100k, tmp_path / "out", ratings_file="u9.base")


def test_a_clean_rerun_removes_a_stale_rejects_file(ml100k, tmp_path):
    out = tmp_path / "out"
    assert import_movielens(ml100k, out)["rejects_file"].exists()
    import_movielens(ml100k, out, ratings_file="u1.base")
    assert not (out / "rejects.csv").exists()


@pytest.fixture
def ml_latest_small(tmp_path) -> Path:
    folder = tmp_path / "ml-latest-small"
    _write(folder / "ratings.csv",
           "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,3.5,964981247\n2,3,0.5,1445714835\n")
    _write(folder / "movies.csv",
           "movieId,title,genres\n"
           "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
           '11,"American President, The (1995)",Comedy|Drama|Romance\n'
           "3,Some Film Without Genres,(no genres listed)\n")
    return folder


def test_ml_latest_small(ml_latest_small, tmp_path):
    outcome = import_movielens(ml_latest_small, tmp_path / "out")
    assert outcome["format"] == "ml-latest-small"
    assert "users" not in outcome["files"]  # this release has no users file
    interactions = _read(outcome["files"]["interactions"])
    assert interactions["value"].tolist() == ["4.0", "3.5", "0.5"]
    assert interactions["timestamp"].tolist() == ["964982703", "964981247", "1445714835"]
    items = _read(outcome["files"]["items"]).set_index("item_id")
    assert items.loc["11", "title"] == "American President, The (1995)"
    assert items.loc["11", "categories"] == "Comedy|Drama|Romance"
    assert items.loc["11", "description"] == "Released 1995"
    assert items.loc["3", "categories"] == ""


@pytest.fixture
def ml1m(tmp_path) -> Path:
    folder = tmp_path / "download" / "ml-1m"  # as the zip unpacks: a folder inside a folder
    _write(folder / "ratings.dat", "1::1193::5::978300760\n1::3408::4::978300275\n2::1193::3::978298413\n")
    _write(folder / "movies.dat",
           "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
           "3408::Erin Brockovich (2000)::Drama\n"
           "2000::Amélie (2001)::Comedy|Romance\n", encoding="latin-1")
    _write(folder / "users.dat", "1::F::1::10::48067\n2::M::25::12::70072\n3::M::99::12::55117\n")
    return folder


def test_ml1m_decodes_codes_and_latin1(ml1m, tmp_path):
    outcome = import_movielens(ml1m.parent, tmp_path / "out")
    assert outcome["format"] == "ml-1m"
    assert _read(outcome["files"]["interactions"])["value"].tolist() == ["5", "4", "3"]
    items = _read(outcome["files"]["items"]).set_index("item_id")
    assert items.loc["2000", "title"] == "Amélie (2001)"
    assert items.loc["2000", "categories"] == "Comedy|Romance"
    assert items.loc["1193", "description"] == "Released 1975"
    users = _read(outcome["files"]["users"])
    assert users.values.tolist() == [["1", "Under 18", "F", "K-12 student", "48067"],
                                     ["2", "25-34", "M", "programmer", "70072"]]
    assert outcome["rejected"] == 1
    assert "unknown age code '99'" in str(outcome["rejects"][0])


def test_a_folder_that_is_not_movielens_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="does not look like MovieLens"):
        import_movielens(tmp_path, tmp_path / "out")


# --- labelled sentences --------------------------------------------------------------------

def test_mr_reads_cp1252_and_labels_by_file(tmp_path):
    folder = tmp_path / "rt-polaritydata"
    _write(folder / "rt-polarity.pos", "a gorgeous , witty film . \nit\u2019s a caf\u00e9 of delights \n",
           encoding="cp1252")
    _write(folder / "rt-polarity.neg", "a dull mess . \n", encoding="cp1252")
    outcome = import_sentences("mr", tmp_path, tmp_path / "out")  # the folder above also works
    reviews = _read(outcome["files"]["reviews"])
    assert reviews.columns.tolist() == ["review_id", "text", "label", "language"]
    assert reviews["text"].tolist() == ["a gorgeous , witty film .", "it\u2019s a caf\u00e9 of delights",
                                        "a dull mess ."]
    assert reviews["label"].tolist() == ["positive", "positive", "negative"]
    assert set(reviews["language"]) == {"en"}
    assert reviews["review_id"].is_unique


def test_mr_line_that_is_not_cp1252_is_rejected_not_fatal(tmp_path):
    folder = tmp_path / "mr"
    folder.mkdir()
    (folder / "rt-polarity.pos").write_bytes(b"fine line \nbad \x81 byte \n")  # 0x81 is undefined in cp1252
    (folder / "rt-polarity.neg").write_bytes(b"another fine line \n")
    outcome = import_sentences("rt-polarity", folder, tmp_path / "out")
    assert outcome["counts"]["reviews"] == 2
    assert outcome["rejected"] == 1
    assert "not valid cp1252" in str(outcome["rejects"][0])
    assert "line 2" in str(outcome["rejects"][0])


def test_mr_needs_both_files(tmp_path):
    _write(tmp_path / "rt-polarity.pos", "only positives\n")
    with pytest.raises(ValueError, match="rt-polarity.neg"):
        import_sentences("mr", tmp_path, tmp_path / "out")


def test_sst2_keeps_quotes_literally_and_strips_the_trailing_space(tmp_path):
    path = _write(tmp_path / "train.tsv",
                  "sentence\tlabel\n"
                  "hide new secretions from the parental units \t0\n"
                  '" the rock " is destined to be a star \t1\n'
                  "it 's a \" charming journey \t1\n"
                  "a label that is not binary \t2\n")
    outcome = import_sentences("sst2", path, tmp_path / "out")
    reviews = _read(outcome["files"]["reviews"])
    # with CSV quote processing the second row would swallow the lines after it
    assert reviews["text"].tolist() == ["hide new secretions from the parental units",
                                        '" the rock " is destined to be a star',
                                        'it \'s a " charming journey']
    assert reviews["label"].tolist() == ["negative", "positive", "positive"]
    assert reviews["review_id"].tolist() == ["sst2-train-2", "sst2-train-3", "sst2-train-4"]
    assert outcome["rejected"] == 1
    assert "label must be 0 or 1" in str(outcome["rejects"][0])
    # the output is proper CSV: the quotes survive a round trip
    with outcome["files"]["reviews"].open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle))[2][1] == '" the rock " is destined to be a star'


def test_sst2_without_a_sentence_column_is_refused(tmp_path):
    path = _write(tmp_path / "odd.tsv", "text\tlabel\nsomething \t1\n")
    with pytest.raises(ValueError, match="no 'sentence' column"):
        import_sentences("sst2", path, tmp_path / "out")


def test_chnsenticorp_rejects_the_empty_review_and_keeps_the_rest(tmp_path):
    path = _write(tmp_path / "ChnSentiCorp_htl_all.csv",
                  "label,review\n"
                  '1,"距离川沙公路较近,但是公交指示不对,如果是""蔡陆线""的话,会非常麻烦."\n'
                  "1,商务大床房，房间很大，床有2M宽，整体感觉经济实惠不错!\n"
                  "0,\n"
                  "0,房间差，12点后无热水，早餐品种少，房价贵。\n")
    outcome = import_sentences("chnsenticorp", path, tmp_path / "out")
    reviews = _read(outcome["files"]["reviews"])
    assert reviews["text"].tolist() == ['距离川沙公路较近,但是公交指示不对,如果是"蔡陆线"的话,会非常麻烦.',
                                        "商务大床房，房间很大，床有2M宽，整体感觉经济实惠不错!",
                                        "房间差，12点后无热水，早餐品种少，房价贵。"]
    assert reviews["label"].tolist() == ["positive", "positive", "negative"]
    assert set(reviews["language"]) == {"zh"}
    rejects = _read(tmp_path / "out" / "rejects.csv")
    assert rejects[["line", "reason"]].values.tolist() == [["4", "data row 3: empty review text"]]


def test_unknown_corpus_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus"):
        import_sentences("imdb", tmp_path, tmp_path / "out")


# --- command line ------------------------------------------------------------------------

def test_command_line_prints_counts_and_reject_reasons(tmp_path, capsys):
    path = _write(tmp_path / "c.csv", "label,review\n1,很好\n0,\n")
    assert importers_main(["chnsenticorp", str(path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "reviews 1" in printed
    assert "rejected 1 row(s)" in printed
    assert "data row 2: empty review text" in printed
    assert "rejects.csv" in printed


def test_command_line_reports_a_bad_path_without_a_traceback(tmp_path, capsys):
    assert importers_main(["movielens", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "does not look like MovieLens" in capsys.readouterr().err


def test_command_line_passes_the_ratings_file(ml100k, tmp_path, capsys):
    assert importers_main(["movielens", str(ml100k), "--out", str(tmp_path / "out"),
                           "--ratings-file", "u1.base"]) == 0
    assert "interactions 2" in capsys.readouterr().out


# --- the real corpora, when present --------------------------------------------------------

def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not present (set TAILOR_SHARED_DATA)")
    return path


def test_real_ml100k_counts(tmp_path):
    outcome = import_movielens(_shared("ml-100k"), tmp_path)
    assert outcome["counts"] == {"interactions": 100_000, "items": 1_682, "users": 943}
    assert outcome["rejected"] == 0
    items = _read(outcome["files"]["items"]).set_index("item_id")
    assert items.loc["543", "title"] == "Misérables, Les (1995)"
    split = import_movielens(_shared("ml-100k"), tmp_path / "u1", ratings_file="u1.base")
    assert split["counts"]["interactions"] == 80_000


def test_real_chnsenticorp_counts(tmp_path):
    outcome = import_sentences("chnsenticorp", _shared("chnsenticorp/ChnSentiCorp_htl_all.csv"), tmp_path)
    assert outcome["counts"]["reviews"] == 7_765
    assert outcome["rejected"] == 1
    assert "data row 6375: empty review text" in str(outcome["rejects"][0])


def test_real_sst2_counts(tmp_path):
    outcome = import_sentences("sst2", _shared("sst2/train.tsv"), tmp_path)
    assert outcome["counts"]["reviews"] == 67_349
    assert outcome["rejected"] == 0
    assert not _read(outcome["files"]["reviews"])["text"].str.endswith(" ").any()


def test_real_mr_counts(tmp_path):
    outcome = import_sentences("mr", _shared("rt-polarity"), tmp_path)
    assert outcome["counts"]["reviews"] == 10_662
    assert outcome["rejected"] == 0
    assert _read(outcome["files"]["reviews"])["label"].value_counts().to_dict() == {"positive": 5_331,
                                                                                     "negative": 5_331}
