"""Importers that turn public datasets into Tailor's CSV files.

    python -m infra.importers movielens PATH --out DIR [--ratings-file u1.base]
    python -m infra.importers mr PATH --out DIR
    python -m infra.importers sst2 PATH/train.tsv --out DIR
    python -m infra.importers chnsenticorp PATH.csv --out DIR

Both functions return {"format", "out_dir", "files", "counts", "rejected", "rejects",
"rejects_file"}; rejected rows are written to rejects.csv beside the output.
"""

from infra.importers.movielens import import_movielens
from infra.importers.sentences import import_sentences

__all__ = ["import_movielens", "import_sentences"]
