"""Command line for the importers: python -m infra.importers <corpus> PATH --out DIR."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from infra.importers.movielens import import_movielens
from infra.importers.sentences import import_sentences

REJECTS_SHOWN = 20  # the rest are in rejects.csv


def _report(outcome: dict, seconds: float) -> None:
    counts = ", ".join(f"{name} {count:,}" for name, count in outcome["counts"].items())
    print(f"{outcome['format']}: wrote {counts} row(s) to {outcome['out_dir']} in {seconds:.1f} s")
    for name, path in outcome["files"].items():
        print(f"  {path}  {outcome['counts'][name]:,} rows")
    print(f"rejected {outcome['rejected']:,} row(s)")
    for reject in outcome["rejects"][:REJECTS_SHOWN]:
        print(f"  rejected {reject}")
    if outcome["rejected"] > REJECTS_SHOWN:
        print(f"  ... and {outcome['rejected'] - REJECTS_SHOWN:,} more")
    if outcome["rejects_file"] is not None:
        print(f"  reasons for every rejected row: {outcome['rejects_file']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.importers",
                                     description="Turn public datasets into Tailor's CSV files.")
    corpora = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--out", required=True, type=Path, help="directory for the CSV files")

    movielens = corpora.add_parser("movielens", parents=[output],
                                   help="MovieLens ml-100k, ml-1m or ml-latest-small folder")
    movielens.add_argument("path", type=Path, help="the MovieLens folder")
    movielens.add_argument("--ratings-file", help="a split file to use instead of all ratings, e.g. u1.base")
    sentence_help = {
        "mr": "Movie Review polarity (folder with rt-polarity.pos/.neg)",
        "sst2": "SST-2 TSV file (sentence<TAB>label)",
        "chnsenticorp": "ChnSentiCorp CSV file (label,review)",
    }
    for kind, text in sentence_help.items():
        corpus = corpora.add_parser(kind, parents=[output], help=text,
                                    aliases=["rt-polarity"] if kind == "mr" else [])
        corpus.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        if args.corpus == "movielens":
            outcome = import_movielens(args.path, args.out, ratings_file=args.ratings_file)
        else:
            outcome = import_sentences(args.corpus, args.path, args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _report(outcome, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
