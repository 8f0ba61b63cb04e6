"""Baselines of protocols T1/A1/R1 (``../shared/protocols.md``), run beside Tailor on the same split.

Top-K baselines take a binary user × item matrix (``scipy.sparse.csr_matrix``) of training
interactions and return a dense ``(n_users, n_items)`` score matrix; seen items are removed by
the caller (``tailor.recommend.evaluation.top_k_unseen``). Rating baselines wrap scikit-surprise.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds


def popularity(train: sp.csr_matrix) -> np.ndarray:
    """Every user gets the items ranked by training interaction count."""
    counts = np.asarray(train.sum(axis=0)).ravel()
    return np.broadcast_to(counts, train.shape).copy()


def ease(train: sp.csr_matrix, lam: float = 300.0) -> np.ndarray:
    """EASE (Steck, WWW 2019): closed-form item-item weights B with a zero diagonal; scores X B."""
    x = train.astype(np.float64)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += lam
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)
    weights[np.diag_indices_from(weights)] = 0.0
    return np.asarray(x @ weights)


def pure_svd(train: sp.csr_matrix, factors: int = 50) -> np.ndarray:
    """PureSVD (Cremonesi et al., RecSys 2010): scores X V V^T from the top singular vectors."""
    _, _, vt = svds(train.astype(np.float64), k=factors, random_state=0)
    return np.asarray(train @ vt.T @ vt)


def als(train: sp.csr_matrix, factors: int = 64, regularization: float = 0.05, alpha: float = 20.0,
        iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) from the ``implicit`` library (CPU)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit asks for this: its own threads do the work
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha,
                                        iterations=iterations, random_state=seed)
        model.fit(train.astype(np.float32), show_progress=False)
    return np.asarray(model.user_factors) @ np.asarray(model.item_factors).T


def most_active_users(train: sp.csr_matrix) -> np.ndarray:
    """A1 rule: every item's audience is the users with the most training interactions."""
    activity = np.asarray(train.sum(axis=1)).ravel()
    return np.broadcast_to(activity[:, None], train.shape).copy()


def random_users(train: sp.csr_matrix, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(train.shape)


def surprise_rmse(algorithm: str, train_rows: np.ndarray, test_rows: np.ndarray) -> dict | None:
    """RMSE/MAE of scikit-surprise ``SVD`` or ``SVDpp`` (defaults, random_state=0) on one fold.

    Rows are ``(user, item, rating)``. Returns ``None`` when scikit-surprise is not installed.
    """
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader, SVDpp
    except ImportError:
        return None
    frame = pd.DataFrame(train_rows, columns=["user", "item", "rating"])
    trainset = Dataset.load_from_df(frame, Reader(rating_scale=(1, 5))).build_full_trainset()
    model = {"SVD": SVD, "SVDpp": SVDpp}[algorithm](random_state=0)
    model.fit(trainset)
    predicted = np.array([model.predict(u, i).est for u, i, _ in test_rows])
    actual = test_rows[:, 2].astype(np.float64)
    return {"rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
            "mae": float(np.mean(np.abs(predicted - actual)))}
