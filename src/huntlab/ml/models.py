"""URL classifiers: linear models on hashed n-grams, boosted trees on lexical features, blends.

Every model owns its FeatureSpec, so the artifact scores exactly as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from huntlab.errors import InputError, MissingDependency
from huntlab.ml.features import FeatureSpec, UrlFeatures

KINDS = ("ngram_linear", "lexical_gbt", "blend", "balanced_lr", "balanced_blend")
DEFAULT_KINDS = list(KINDS)
# balanced_blend: this share of the boosted trees' probabilities, the rest balanced_lr's
# (0.3 was best of 0.2/0.3/0.5 on validation macro F1 of a 60k-URL sample's grouped split).
BALANCED_GBT_WEIGHT = 0.3
TASKS = ("multiclass", "binary")
BENIGN = "benign"


def require_sklearn() -> None:
    """Fail with the install hint when scikit-learn (the ml extra) is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("scikit-learn", "ml") from exc


def task_labels(labels: list[str] | np.ndarray, task: str) -> np.ndarray:
    """Class labels for a task: the four classes, or malicious/benign."""
    y = np.asarray(labels, dtype=object)
    if task == "binary":
        return np.where(y == BENIGN, BENIGN, "malicious").astype(object)
    if task != "multiclass":
        raise InputError(f"unknown task {task!r}", f"Use one of: {', '.join(TASKS)}")
    return y


def _openmp_threads(params: dict[str, Any]) -> Any:
    """Cap OpenMP threads: on a busy 2-core machine two spinning threads ran 10x slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(params.get("threads", 1)), user_api="openmp")


class ModelInfo:
    """What every registered URL model shares: the malicious score and its registry record.

    Needs `kind`, `task`, `seed`, `classes_`, `spec` and `params` on the model.
    """

    kind: str
    task: str
    seed: int
    classes_: list[str]
    spec: FeatureSpec
    params: dict[str, Any]

    def malicious_score(self, proba: np.ndarray) -> np.ndarray:
        """P(not benign): the score for malicious-vs-benign metrics and thresholds."""
        return 1.0 - proba[:, self.classes_.index(BENIGN)]

    def describe(self) -> dict[str, Any]:
        """Parameters as recorded in the registry."""
        return {
            "kind": self.kind,
            "task": self.task,
            "seed": self.seed,
            "classes": self.classes_,
            "features": self.spec.describe(),
            **self.params,
        }


@dataclass
class UrlClassifier(ModelInfo):
    """A fitted or unfitted URL model: feature spec, estimator(s) and the classes it predicts."""

    kind: str = "blend"
    task: str = "multiclass"
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    seed: int = 7
    params: dict[str, Any] = field(default_factory=dict)
    classes_: list[str] = field(default_factory=list)
    _linear: Any = None
    _scaler: Any = None
    _gbt: Any = None
    _balanced: Any = None  # balanced_lr's estimator (None in artifacts saved before it existed)
    _bal_scaler: Any = None
    # Per-class log-probability offsets tuned on validation for macro F1 (None: plain argmax).
    class_bias_: Any = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown model kind {self.kind!r}", f"Use one of: {', '.join(KINDS)}")
        task_labels([], self.task)

    # -- features ---------------------------------------------------------------------------
    def features(self, urls: pa.Array | pa.ChunkedArray | list[str]) -> UrlFeatures:
        """The model's own features of these URLs."""
        return self.spec.compute(urls)

    def _hashed(self, feats: UrlFeatures) -> Any:
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer

        host_free = feats.tokens is not None and feats.path_query is not None
        chars = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=self.spec.ngram_range,
            n_features=self.spec.n_hash,
            alternate_sign=False,
            lowercase=False,
        ).transform(feats.path_query if host_free else feats.text)
        if host_free:
            words = HashingVectorizer(
                tokenizer=str.split,
                token_pattern=None,
                n_features=self.spec.n_hash >> 2,
                alternate_sign=False,
                lowercase=False,
            ).transform(feats.tokens)
        else:  # urlfeat-1 models: words of the whole URL, host included
            words = HashingVectorizer(
                token_pattern=r"[a-z0-9]{2,}",
                n_features=self.spec.n_hash >> 2,
                alternate_sign=False,
                lowercase=False,
            ).transform(feats.text)
        lex = sparse.csr_matrix(self._scaler.transform(feats.lexical))
        return sparse.hstack([chars, words, lex], format="csr")

    # -- fit / predict ----------------------------------------------------------------------
    def fit(self, urls: pa.Array | list[str], labels: list[str] | np.ndarray) -> UrlClassifier:
        """Featurize and fit."""
        return self.fit_features(self.features(urls), labels)

    def fit_features(self, feats: UrlFeatures, labels: list[str] | np.ndarray) -> UrlClassifier:
        """Fit on precomputed features (so several candidates share one featurization)."""
        require_sklearn()
        y = task_labels(labels, self.task)
        self.classes_ = sorted(set(y.tolist()))
        if len(self.classes_) < 2:
            raise InputError(
                "training data holds a single class", "Load labeled URLs of 2+ classes"
            )
        if self.kind in ("ngram_linear", "blend"):
            self._fit_linear(feats, y)
        if self.kind in ("lexical_gbt", "blend", "balanced_blend"):
            self._fit_gbt(feats, y)
        if self.kind in ("balanced_lr", "balanced_blend"):
            self._fit_balanced(feats, y)
        return self

    def _fit_linear(self, feats: UrlFeatures, y: np.ndarray) -> None:
        from sklearn.preprocessing import StandardScaler

        self._scaler = StandardScaler().fit(feats.lexical)
        p = self.params
        sgd = self._logistic_sgd(p.get("alpha", 5e-5), p.get("linear_epochs", 8))
        self._linear = sgd.fit(self._hashed(feats), y)

    def _logistic_sgd(self, alpha: float, epochs: int) -> Any:
        """A class-balanced logistic SGD with a fixed number of epochs (both linear kinds)."""
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="log_loss",
            alpha=float(alpha),
            max_iter=int(epochs),
            tol=None,
            class_weight="balanced",
            random_state=self.seed,
        )

    def _balanced_matrix(self, feats: UrlFeatures) -> Any:
        """Binary, unnormalized hashed char n-grams of the canonical URL (host included), words
        (position-tagged, or of the whole URL for urlfeat-1) and lexical features scaled by std.

        Near the pyspark.ml model's recipe (spark_train.py; n-gram range and hash size are the
        FeatureSpec's). On a 60k sample's grouped validation the same text as l2-normalized rows
        (ngram_linear's, alpha 5e-5, 8 epochs) underfit: macro F1 0.73 against 0.89.
        """
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer

        common = {"n_features": self.spec.n_hash, "alternate_sign": False, "lowercase": False}
        common |= {"binary": True, "norm": None}
        chars = HashingVectorizer(
            analyzer="char_wb", ngram_range=self.spec.ngram_range, **common
        ).transform(feats.text)
        common["n_features"] = self.spec.n_hash >> 2
        if feats.tokens is not None:
            words = HashingVectorizer(tokenizer=str.split, token_pattern=None, **common)
            wmat = words.transform(feats.tokens)
        else:
            wmat = HashingVectorizer(token_pattern=r"[a-z0-9]{2,}", **common).transform(feats.text)
        lex = sparse.csr_matrix(self._bal_scaler.transform(feats.lexical))
        return sparse.hstack([chars, wmat, lex], format="csr")

    def _fit_balanced(self, feats: UrlFeatures, y: np.ndarray) -> None:
        """Class-balanced one-vs-rest logistic SGD (multinomial lbfgs: 20x slower, no gain)."""
        from sklearn.preprocessing import StandardScaler

        self._bal_scaler = StandardScaler(with_mean=False).fit(feats.lexical)
        sgd = self._logistic_sgd(
            self.params.get("balanced_alpha", 1e-4), self.params.get("balanced_epochs", 20)
        )
        self._balanced = sgd.fit(self._balanced_matrix(feats), y)

    def _fit_gbt(self, feats: UrlFeatures, y: np.ndarray) -> None:

        with _openmp_threads(self.params):
            self._gbt = self._new_gbt().fit(feats.lexical, y)

    def _new_gbt(self) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=int(self.params.get("gbt_iter", 120)),
            learning_rate=float(self.params.get("learning_rate", 0.1)),
            max_leaf_nodes=int(self.params.get("max_leaf_nodes", 31)),
            l2_regularization=1.0,
            class_weight="balanced",
            early_stopping=False,
            random_state=self.seed,
        )

    def predict_proba_features(self, feats: UrlFeatures) -> np.ndarray:
        """Class probabilities, columns in `classes_` order."""
        if not self.classes_:
            raise InputError("the model is not fitted", "Train it with `huntlab ml train`")
        probs = []
        if self._linear is not None:
            probs.append(self._linear.predict_proba(self._hashed(feats)))
        if self._balanced is not None:
            probs.append(self._balanced.predict_proba(self._balanced_matrix(feats)))
        if self._gbt is not None:
            with _openmp_threads(self.params):
                probs.append(self._gbt.predict_proba(feats.lexical))
        if self.kind == "balanced_blend":
            proba = (1 - BALANCED_GBT_WEIGHT) * probs[0] + BALANCED_GBT_WEIGHT * probs[1]
        else:  # ngram_linear, lexical_gbt, balanced_lr: one part; blend: the plain mean
            proba = np.mean(probs, axis=0)
        return apply_bias(proba, getattr(self, "class_bias_", None))

    def predict_proba(self, urls: pa.Array | list[str]) -> np.ndarray:
        """Class probabilities of raw URLs."""
        return self.predict_proba_features(self.features(urls))

    def predict(self, urls: pa.Array | list[str]) -> np.ndarray:
        """The most likely class of each URL."""
        return np.asarray(self.classes_, dtype=object)[self.predict_proba(urls).argmax(axis=1)]

    def tune_class_bias(self, feats: UrlFeatures, labels: list[str] | np.ndarray) -> np.ndarray:
        """Fit per-class offsets on validation features (never the test part) for macro F1."""
        self.class_bias_ = None
        proba = self.predict_proba_features(feats)
        self.class_bias_ = class_bias(proba, task_labels(labels, self.task), self.classes_)
        return self.class_bias_


def apply_bias(proba: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Probabilities scaled by exp(bias) per class and renormalized (a shifted decision rule)."""
    if bias is None:
        return proba
    scaled = proba * np.exp(np.asarray(bias, dtype=np.float64))
    return scaled / scaled.sum(axis=1, keepdims=True)


def class_bias(proba: np.ndarray, y: np.ndarray, classes: list[str], rounds: int = 3) -> np.ndarray:
    """Coordinate ascent over per-class log offsets in [-2, 2] that maximizes macro F1.

    Validation domains differ from training ones, so this corrects the classes the model
    under-calls on unseen sites (spam of new domains taken for benign) without touching test.
    """
    from sklearn.metrics import f1_score

    names = np.asarray(classes, dtype=object)
    logp = np.log(np.clip(proba, 1e-9, None))
    present = [c for c in classes if c in set(y.tolist())]

    def score(b: np.ndarray) -> float:
        pred = names[(logp + b).argmax(axis=1)]
        return float(f1_score(y, pred, labels=present, average="macro", zero_division=0))

    bias = np.zeros(len(classes))
    best = score(bias)
    for _ in range(rounds):
        for j in range(len(classes)):
            for step in np.linspace(-2.0, 2.0, 41):
                trial = bias.copy()
                trial[j] = step
                got = score(trial)
                if got > best + 1e-9:
                    best, bias = got, trial
    return bias
