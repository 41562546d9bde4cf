"""Train one use case from its spec.

Steps: assemble one row per labeled customer (transactions aggregated with a
cap learned on the training split only), split stratified into train / test /
inference hold-out, search each model family under stratified K-fold CV on the
training split, compare imbalance handling for each family's best settings,
pick champion and challenger by the spec's metric, choose the cost-minimising
threshold on the champion's out-of-fold scores, refit on the whole training
split, evaluate on the test split, save to the BentoML store, write the report.
The inference hold-out is never used to fit or choose anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from core import metrics
from core.card import ModelCard
from core.datafiles import data_fingerprint, read_table, read_transactions
from core.intervals import bootstrap_intervals
from core.logs import get_logger
from core.machine import package_versions
from core.spec import Spec, load_spec, spec_path
from features.customers import customer_features, dedupe_table
from features.tabular import build_transformer, columns_from_frame, prepare_frame
from features.transactions import amount_cap
from model import store
from model.calibration import calibrated
from model.ensemble import SoftVote
from model.fastpath import probability_function
from model.rebalance import METHODS
from training import fairness
from training.calibrate import choose_calibrator
from training.candidates import (
    BOOSTING_STAGES,
    FAMILIES,
    SEARCH,
    Candidate,
    boosting_rounds,
    make_pipeline,
    search_space,
    soft_vote,
    stopping_split,
    variations,
)
from training.document import document_paths, write_document
from training.monotone import breaches as monotone_breaches
from training.reference import reference_distributions
from training.report import write_report
from training.selection import choose, serving_cost, sign_breaches

SEED = 42
TEST_SHARE, INFERENCE_SHARE = 0.2, 0.2  # the rest (60 %) trains
CV_THREADS = 2  # folds fitted side by side: the machines this runs on have 2 cores
LARGE_ROWS = 20_000  # above this, 3 CV folds instead of 5
IMPORTANCE_MAX_ROWS = 5_000
BASELINE_MAX_ROWS = 10_000  # one-feature models: a reference line, not a search
PACKAGES = ("bentoml", "scikit-learn", "xgboost", "pandas", "numpy", "pydantic")
# Card fields the training report leaves out (its own keys are the rest of the card).
NOT_IN_REPORT: dict[str, Any] = {
    "format": True,
    "reference": True,
    "file_sha256": True,
    "promoted_from": True,
    "retrain": True,
    "champion": {"test"},
}

log = get_logger("train").info  # "[train] ..." on stdout once an entry point ran setup()


@dataclass(frozen=True)
class Budget:
    """How much searching a run may do (2 cores: keep every run to minutes)."""

    configs_per_family: int | None = None  # None: each family's own count (candidates.SEARCH)
    folds: int = 5
    search_max_rows: int = 25_000  # larger training splits are searched on a stratified sample
    importance_repeats: int = 3
    boosting_stages: int | None = None  # XGBoost's search stages run (None: all of them)

    def folds_for(self, rows: int) -> int:
        return min(self.folds, 3) if rows > LARGE_ROWS else self.folds


FULL = Budget()
QUICK = Budget(
    configs_per_family=1, folds=3, search_max_rows=3_000, importance_repeats=1, boosting_stages=0
)


@dataclass
class CVResult:
    candidate: Candidate
    fold_scores: list[float]
    oof: np.ndarray = field(repr=False)
    brier: float = float("nan")
    ece: float = float("nan")
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_scores))

    def summary(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.label,
            "family": self.candidate.family,
            "params": self.candidate.params,
            "imbalance": self.candidate.imbalance,
            "members": [m.label for m in self.candidate.members],
            "cv_mean": self.mean,
            "cv_std": self.std,
            "cv_brier": self.brier,
            "cv_ece": self.ece,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Assembled:
    frame: pd.DataFrame  # labeled customers: id, features, target
    y: np.ndarray
    split: pd.Series  # train / test / inference, aligned with frame
    cleaning: dict[str, Any]
    cap: float | None
    from_transactions: list[str]  # model features built from raw transactions


# ---------------------------------------------------------------- data


def split_rows(y: np.ndarray, seed: int) -> np.ndarray:
    """Stratified train / test / inference labels, one per row."""
    rows = np.arange(len(y))
    rest, inference = train_test_split(
        rows, test_size=INFERENCE_SHARE, stratify=y, random_state=seed
    )
    train, test = train_test_split(
        rest, test_size=TEST_SHARE / (1 - INFERENCE_SHARE), stratify=y[rest], random_state=seed
    )
    labels = np.empty(len(y), dtype=object)
    labels[train], labels[test], labels[inference] = "train", "test", "inference"
    return labels


def assemble(spec: Spec, seed: int = SEED) -> Assembled:
    """Labeled customers with their features, and the split each belongs to."""
    table, table_counts = dedupe_table(read_table(spec), spec.id_column)
    labeled = table[table[spec.target.column].notna()].reset_index(drop=True)
    y = spec.target.is_positive(labeled[spec.target.column]).to_numpy(dtype=int)
    split = pd.Series(split_rows(y, seed), index=labeled.index, name="split")
    cleaning: dict[str, Any] = {"table": table_counts}
    cap = None
    table_columns = set(labeled.columns)
    if spec.data.transactions is not None:
        raw = read_transactions(spec)
        cols = spec.data.transactions.columns
        train_ids = set(labeled.loc[split == "train", spec.id_column])
        amounts = pd.to_numeric(raw[cols.amount], errors="coerce")
        cap = spec.data.transactions.max_amount or amount_cap(
            amounts[raw[cols.customer_id].isin(train_ids)]
        )
        labeled, tx_counts = customer_features(spec, labeled, raw, cap)
        cleaning["transactions"] = tx_counts.as_dict() if tx_counts else {}
        cleaning["amount_cap"] = cap
    from_transactions = [f for f in spec.feature_names if f not in table_columns]
    return Assembled(labeled, y, split, cleaning, cap, from_transactions)


def stratified_sample(rows: np.ndarray, y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    kept, _ = train_test_split(rows, train_size=limit, stratify=y[rows], random_state=seed)
    return np.sort(kept)


# ---------------------------------------------------------------- model choice


class EncodedFolds:
    """Each CV fold's rows encoded once per transformer: every candidate of a family reads
    the same fitted transformer on the same fold (it depends on the spec, the flavour and
    the rows only), so it is fitted once, not once per candidate. Pipeline fit and
    predict do exactly this in sequence, so the scores are the same."""

    def __init__(self, X: pd.DataFrame, y: np.ndarray, seed: int, folds: int):
        self.X, self.y = X, y
        self.splits = list(_folds(X, y, seed, folds))
        self._encoded: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._stopping: tuple[np.ndarray, ...] | None = None

    def encoded(self, key: tuple, transformer: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        if (key, k) not in self._encoded:  # folds run side by side: each thread its own k
            fit_rows, eval_rows = self.splits[k]
            fitted = clone(transformer)
            fit_z = fitted.fit_transform(self.X.iloc[fit_rows])
            self._encoded[key, k] = fit_z, fitted.transform(self.X.iloc[eval_rows])
        return self._encoded[key, k]

    def stopping(self, spec: Spec, seed: int) -> tuple[np.ndarray, ...]:
        """XGBoost's early-stopping split, encoded once for every configuration:
        (fit X, fit y, stop X, stop y) (`candidates.boosting_rounds`)."""
        if self._stopping is None:
            fit_rows, stop_rows = stopping_split(self.y, seed)
            fitted = build_transformer(spec, "boosting")
            fit_z = fitted.fit_transform(self.X.iloc[fit_rows])
            stop_z = fitted.transform(self.X.iloc[stop_rows])
            self._stopping = (fit_z, self.y[fit_rows], stop_z, self.y[stop_rows])
        return self._stopping


def cross_validate(
    spec: Spec,
    candidate: Candidate,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    folds: int,
    encoded: EncodedFolds | None = None,
) -> CVResult:
    """Out-of-fold probabilities and per-fold scores; every transform is fitted inside folds,
    the folds side by side (one thread each: the fits release the GIL)."""
    start = time.perf_counter()
    oof = np.zeros(len(y))
    pipeline = make_pipeline(spec, candidate, seed)
    splits = encoded.splits if encoded else list(_folds(X, y, seed, folds))
    key = (SEARCH[candidate.family][0], candidate.dropped)  # the transformer's flavour

    def held_out(k: int) -> tuple[np.ndarray, np.ndarray]:
        fit_rows, eval_rows = splits[k]
        if encoded is None:
            model = clone(pipeline).fit(X.iloc[fit_rows], y[fit_rows])
            return eval_rows, model.predict_proba(X.iloc[eval_rows])[:, 1]
        fit_z, eval_z = encoded.encoded(key, pipeline.steps[0][1], k)
        model = clone(pipeline.steps[-1][1]).fit(fit_z, y[fit_rows])
        return eval_rows, model.predict_proba(eval_z)[:, 1]

    fold_jobs = (delayed(held_out)(k) for k in range(len(splits)))
    with threadpool_limits(1):  # the folds are the parallelism: no BLAS threads inside them
        for eval_rows, p in Parallel(n_jobs=CV_THREADS, prefer="threads")(fold_jobs):
            oof[eval_rows] = p
    return _cv_result(spec, candidate, X, y, seed, folds, oof, time.perf_counter() - start)


def _folds(X: pd.DataFrame, y: np.ndarray, seed: int, folds: int):
    return StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)


def _cv_result(
    spec: Spec, candidate: Candidate, X, y, seed: int, folds: int, oof: np.ndarray, seconds: float
) -> CVResult:
    scores = [
        metrics.selection_score(spec.selection_metric, y[rows], oof[rows])
        for _, rows in _folds(X, y, seed, folds)
    ]
    return CVResult(
        candidate,
        scores,
        oof,
        brier=float(np.mean((oof - y) ** 2)),
        ece=metrics.expected_calibration_error(y, oof),
        seconds=seconds,
    )


def soft_vote_of(
    spec: Spec, winners: list[CVResult], X: pd.DataFrame, y: np.ndarray, seed: int, folds: int
) -> CVResult:
    """The ensemble of the family winners, scored without refitting: on the same folds each
    member's out-of-fold probabilities are exactly what it gives inside the ensemble, so
    their mean is the ensemble's out-of-fold probability."""
    oof = np.mean([w.oof for w in winners], axis=0)
    candidate = soft_vote([w.candidate for w in winners])
    return _cv_result(spec, candidate, X, y, seed, folds, oof, sum(w.seconds for w in winners))


def better(spec: Spec, a: CVResult, b: CVResult) -> bool:
    """Is `a` better than `b` on the spec's metric (ties keep `b`)?"""
    if metrics.greater_is_better(spec.selection_metric):
        return a.mean > b.mean
    return a.mean < b.mean


def best_of(spec: Spec, results: list[CVResult]) -> CVResult:
    best = results[0]
    for result in results[1:]:
        if better(spec, result, best):
            best = result
    return best


def search(
    spec: Spec, X: pd.DataFrame, y: np.ndarray, seed: int, budget: Budget
) -> tuple[dict[str, CVResult], list[CVResult], dict[str, str]]:
    """Per family: the best settings (XGBoost's in stages, its rounds by early
    stopping), then each imbalance method on them; then the soft-vote ensemble of the
    family winners. Returns
    the winner per family (and the ensemble), every result tried, and what the spec's
    monotone constraints changed (features a logistic regression dropped, and why)."""
    tried: list[CVResult] = []
    winners: dict[str, CVResult] = {}
    constraint_notes: dict[str, str] = {}
    folds = budget.folds_for(len(y))
    encoded = EncodedFolds(X, y, seed, folds)
    for family in FAMILIES:
        results = []
        for candidate in search_space(family, seed, budget.configs_per_family):
            results.append(_settings_scored(spec, candidate, X, y, seed, encoded))
        best = best_of(spec, results)
        stages = BOOSTING_STAGES[: budget.boosting_stages] if family == "xgboost" else ()
        for stage in stages:
            for candidate in variations(best.candidate, stage):
                results.append(_settings_scored(spec, candidate, X, y, seed, encoded))
            best = best_of(spec, results)
        for method in METHODS[1:]:
            candidate = Candidate(family, best.candidate.params, method)
            result = cross_validate(spec, candidate, X, y, seed, folds, encoded)
            results.append(_logged(spec, result))
        tried += results
        winner = best_of(spec, [best, *results[-2:]])
        if family == "logistic_regression":
            _, held, why = fit_held(spec, winner.candidate, X, y, seed)
            if why:
                winner = _logged(spec, cross_validate(spec, held, X, y, seed, folds, encoded))
                tried.append(winner)
                constraint_notes[family] = "; ".join(why)
                log(f"  {family}: {constraint_notes[family]}")
        winners[family] = winner
    if len(winners) > 1:
        ensemble = _logged(spec, soft_vote_of(spec, list(winners.values()), X, y, seed, folds))
        winners[ensemble.candidate.family] = ensemble
        tried.append(ensemble)
    return winners, tried, constraint_notes


def _settings_scored(
    spec: Spec,
    candidate: Candidate,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
    encoded: EncodedFolds,
) -> CVResult:
    """One configuration of the search cross-validated (XGBoost's rounds first, by early
    stopping)."""
    if candidate.family == "xgboost":
        candidate = boosting_rounds(spec, candidate, encoded.stopping(spec, seed), seed)
    folds = len(encoded.splits)
    return _logged(spec, cross_validate(spec, candidate, X, y, seed, folds, encoded))


def fit_held(
    spec: Spec, candidate: Candidate, X: pd.DataFrame, y: np.ndarray, seed: int
) -> tuple[Any, Candidate, list[str]]:
    """Fit a candidate held to the spec's monotone signs. XGBoost is constrained while it
    fits; a logistic regression is checked after: while a constrained feature's
    coefficient has the wrong sign, that feature is dropped and the rest refitted (an
    ensemble: each member so). Returns the fitted model, the candidate it now is, and
    what was dropped and why."""
    if candidate.members:
        return fit_side_by_side(spec, [candidate], X, y, seed)[0]
    model = make_pipeline(spec, candidate, seed).fit(X, y)
    why: list[str] = []
    while candidate.family == "logistic_regression" and (breaches := sign_breaches(spec, model)):
        why += [f"dropped {text}" for text in breaches.values()]
        dropped = (*candidate.dropped, *breaches)
        candidate = Candidate(
            candidate.family, candidate.params, candidate.imbalance, dropped=dropped
        )
        model = make_pipeline(spec, candidate, seed).fit(X, y)
    return model, candidate, why


def fit_side_by_side(
    spec: Spec, candidates: list[Candidate], X: pd.DataFrame, y: np.ndarray, seed: int
) -> list[tuple[Any, Candidate, list[str]]]:
    """`fit_held` for each candidate, on the same rows: every single model once (an
    ensemble's members too, shared with the candidates that are one of them), side by
    side (one core each, like the CV folds); an ensemble from its members' fits."""
    singles = {c.label: c for candidate in candidates for c in (candidate.members or (candidate,))}
    with threadpool_limits(1):
        fits = Parallel(n_jobs=CV_THREADS, prefer="threads")(
            delayed(fit_held)(spec, c, X, y, seed) for c in singles.values()
        )
    held = dict(zip(singles, fits, strict=True))
    out = []
    for candidate in candidates:
        if not candidate.members:
            out.append(held[candidate.label])
            continue
        parts = [held[m.label] for m in candidate.members]
        out.append(
            (
                SoftVote.of_fitted([m for m, _, _ in parts]),
                soft_vote([c for _, c, _ in parts]),
                [line for *_, lines in parts for line in lines],
            )
        )
    return out


def fit_winners(
    spec: Spec, winners: dict[str, CVResult], X: pd.DataFrame, y: np.ndarray, seed: int
) -> dict[str, Any]:
    """Each winner fitted on the rows it was searched on, side by side; the ensemble from
    its fitted members (the same fits, not new ones)."""
    candidates = [w.candidate for w in winners.values()]
    fits = fit_side_by_side(spec, candidates, X, y, seed)
    return {c.label: model for c, (model, _, _) in zip(candidates, fits, strict=True)}


def _logged(spec: Spec, result: CVResult) -> CVResult:
    log(
        f"  {result.candidate.label}: {spec.selection_metric} {result.mean:.4f} "
        f"± {result.std:.4f} brier {result.brier:.4f} ({result.seconds:.1f}s)"
    )
    return result


# ---------------------------------------------------------------- baselines and importance


def single_feature_baselines(
    spec: Spec, X: pd.DataFrame, y: np.ndarray, seed: int, folds: int
) -> list[dict[str, Any]]:
    """CV score of a logistic regression on each feature alone (training split)."""
    rows = []
    for feature in spec.features:
        alone = spec.model_copy(update={"features": [feature]})
        candidate = Candidate("logistic_regression", {"C": 1.0})
        result = cross_validate(alone, candidate, X[[feature.name]], y, seed, folds)
        rows.append({"feature": feature.name, "cv_mean": result.mean, "cv_std": result.std})
    reverse = metrics.greater_is_better(spec.selection_metric)
    return sorted(rows, key=lambda r: r["cv_mean"], reverse=reverse)


def fit_single_feature(spec: Spec, name: str, X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    alone = spec.model_copy(update={"features": [spec.feature(name)]})
    pipeline = Pipeline(
        [("features", build_transformer(alone, "linear")), ("model", LogisticRegression())]
    )
    return pipeline.fit(X[[name]], y)


def feature_importance(
    spec: Spec, model: Any, X: pd.DataFrame, y: np.ndarray, seed: int, repeats: int
) -> list[dict[str, Any]]:
    """Permutation importance on the test split: the metric lost when a feature's values
    are shuffled across the rows (`repeats` shuffles each), scored on the model's fast
    path where it has one."""
    rows = stratified_sample(np.arange(len(y)), y, IMPORTANCE_MAX_ROWS, seed)
    columns, y_rows = columns_from_frame(X.iloc[rows], spec), y[rows]
    probabilities = probability_function(model)
    sign = 1.0 if metrics.greater_is_better(spec.selection_metric) else -1.0

    def score(cols: dict[str, np.ndarray]) -> float:
        return sign * metrics.selection_score(spec.selection_metric, y_rows, probabilities(cols))

    base = score(columns)
    shuffle = np.random.RandomState(seed).permutation
    table = []
    for name in spec.feature_names:
        lost = [base - score({**columns, name: shuffle(columns[name])}) for _ in range(repeats)]
        table.append(
            {"feature": name, "importance": float(np.mean(lost)), "std": float(np.std(lost))}
        )
    return sorted(table, key=lambda r: -r["importance"])


# ---------------------------------------------------------------- the whole run


def refit_rule(spec: Spec, labeled: int) -> dict[str, Any]:
    """Small data: the stored model is refitted on train + test once everything is chosen
    and measured (the test metrics are the train-only fit's; the inference hold-out
    stays untouched)."""
    rule = spec.training
    applied = rule.refit_with_test and labeled < rule.small_data_rows
    if not rule.refit_with_test:
        why = "turned off in the spec (training.refit_with_test: false)"
    elif applied:
        why = (
            f"{labeled} labeled rows, fewer than {rule.small_data_rows}: the stored model is "
            "refitted on train + test with the same settings, calibrator and threshold; the "
            "test metrics are those of the fit on the training split alone"
        )
    else:
        why = f"{labeled} labeled rows, not fewer than {rule.small_data_rows}: train split only"
    return {"applied": applied, "why": why, "small_data_rows": rule.small_data_rows}


def schema(spec: Spec, X_train: pd.DataFrame) -> list[dict[str, Any]]:
    """The feature schema served as the API's request model, with observed training ranges."""
    out = []
    for feature in spec.features:
        entry = feature.model_dump(mode="json", exclude_none=True)
        if feature.name in X_train and X_train[feature.name].dtype.kind == "f":
            entry["train_min"] = float(X_train[feature.name].min())
            entry["train_max"] = float(X_train[feature.name].max())
        out.append(entry)
    return out


def train_use_case(
    use_case: str | Path, reports_dir: Path, outputs_dir: Path, budget: Budget = FULL
) -> dict[str, Any]:
    """Train, evaluate, store and report one use case; returns the report dict."""
    started = time.perf_counter()
    source = spec_path(use_case)
    spec = load_spec(source)
    log(f"{spec.name}: assembling data from {source}")
    data = assemble(spec)
    X = prepare_frame(data.frame, spec)
    y = data.y
    train = (data.split == "train").to_numpy()
    test = (data.split == "test").to_numpy()
    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    log(
        f"{spec.name}: {len(y)} labeled customers ({y.mean():.2%} risk event); "
        f"train {train.sum()}, test {test.sum()}, inference hold-out {(~train & ~test).sum()}"
    )
    if spec.data.transactions is not None:
        outputs = outputs_dir / spec.name
        outputs.mkdir(parents=True, exist_ok=True)
        data.frame.to_csv(outputs / "training_set.csv", index=False)
        log(f"{spec.name}: wrote {outputs / 'training_set.csv'}")

    search_rows = stratified_sample(np.arange(len(y_train)), y_train, budget.search_max_rows, SEED)
    X_search, y_search = X_train.iloc[search_rows], y_train[search_rows]
    log(f"{spec.name}: searching {len(FAMILIES)} families on {len(y_search)} rows")
    winners, tried, constraint_notes = search(spec, X_search, y_search, SEED, budget)
    searched_all = len(y_search) == len(y_train)
    fitted = fit_winners(spec, winners, X_search, y_search, SEED)
    costs = {label: serving_cost(spec, model, X_search) for label, model in fitted.items()}
    champion, challenger, selection = choose(spec, list(winners.values()), costs, tried)
    log(
        f"{spec.name}: champion {champion.candidate.label} "
        f"({costs[champion.candidate.label]['single']} µs per record); "
        f"best by score {selection['best_by_score']}; challenger {challenger.candidate.label}"
    )

    folds = budget.folds_for(len(y_search))
    # Calibrator and threshold from the champion's out-of-fold scores on the searched rows
    # (the whole training split up to Budget.search_max_rows: plenty for both).
    calibrator, calibration, calibrated_oof = choose_calibrator(champion.oof, y_search, SEED)
    threshold, oof_cost = metrics.best_threshold(y_search, calibrated_oof, spec.costs)
    at_oof = metrics.at_threshold(y_search, calibrated_oof, threshold, spec.costs)
    log(
        f"{spec.name}: calibration {calibration['method']} (CV log-loss "
        + ", ".join(f"{m} {v:.4f}" for m, v in calibration["cv_log_loss"].items())
        + f"); threshold {threshold:.4f} (out-of-fold precision {at_oof['precision']:.3f}, "
        f"recall {at_oof['recall']:.3f}, cost {oof_cost:.3f} {spec.costs.unit}/customer)"
    )

    def fit_on(rows: np.ndarray, steps: dict[str, Candidate]) -> list[Any]:
        """The candidates fitted on these rows, side by side; what each dropped, noted."""
        fits = fit_side_by_side(spec, list(steps.values()), X[rows], y[rows], SEED)
        for (step, candidate), (_, _, why) in zip(steps.items(), fits, strict=True):
            if why:
                constraint_notes[f"{candidate.family} ({step})"] = "; ".join(why)
        return [model for model, _, _ in fits]

    if searched_all:
        raw, runner_up = fitted[champion.candidate.label], fitted[challenger.candidate.label]
    else:
        raw, runner_up = fit_on(
            train,
            {"fit on the training split": champion.candidate, "challenger": challenger.candidate},
        )
    model = calibrated(raw, calibrator)  # fitted on the training split: what the test judges
    p_raw = raw.predict_proba(X_test)[:, 1]
    p_test = model.predict_proba(X_test)[:, 1]
    test_metrics = metrics.evaluate(y_test, p_test, threshold, spec.costs)
    calibration["test_ece"] = {
        "before": metrics.expected_calibration_error(y_test, p_raw),
        "after": test_metrics["ece"],
    }
    fair = None  # protected groups on the test split; proxies on the training split
    if spec.protected:
        frame = data.frame.reset_index(drop=True)
        own = fairness.own_value_effects(spec, model, X_test, X_train)
        fair = fairness.evaluate(spec, frame[test], y_test, p_test, threshold, frame[train], own)
    challenger_metrics = metrics.evaluate(
        y_test, runner_up.predict_proba(X_test)[:, 1], threshold, spec.costs
    )

    refit = refit_rule(spec, len(y))
    if refit["applied"]:
        refit["rows"] = int((train | test).sum())
        stored = calibrated(
            fit_on(train | test, {"refit on train + test": champion.candidate})[0], calibrator
        )
        log(f"{spec.name}: refitted on train + test ({int((train | test).sum())} rows) to store")
    else:
        stored = model
    wrong_way = monotone_breaches(spec, stored, X_train, SEED)
    if wrong_way:
        raise RuntimeError(
            f"{spec.name}: the model breaks the spec's monotone constraints, not stored: "
            + "; ".join(wrong_way)
        )
    p_stored = stored.predict_proba(X_test)[:, 1] if refit["applied"] else p_test

    log(f"{spec.name}: baselines and importance")
    majority = metrics.evaluate(y_test, np.full(len(y_test), y_train.mean()), threshold, spec.costs)
    baseline_rows = stratified_sample(np.arange(len(y_search)), y_search, BASELINE_MAX_ROWS, SEED)
    singles = single_feature_baselines(
        spec, X_search.iloc[baseline_rows], y_search[baseline_rows], SEED, min(folds, 3)
    )
    best_single = singles[0]["feature"]
    single_model = fit_single_feature(spec, best_single, X_train, y_train)
    single_metrics = metrics.evaluate(
        y_test, single_model.predict_proba(X_test[[best_single]])[:, 1], threshold, spec.costs
    )
    importance = feature_importance(spec, model, X_test, y_test, SEED, budget.importance_repeats)

    ids = data.frame[spec.id_column].astype(str)
    card = ModelCard(
        use_case=spec.name,
        purpose=spec.purpose,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        spec_file=str(source),
        spec=spec.model_dump(mode="json"),  # as trained, not tied to the spec's folder
        data_sha256=data_fingerprint(spec),
        id_column=spec.id_column,
        risk_event=spec.target.event,
        features=schema(spec, X_train),
        selection_metric=spec.selection_metric,
        champion={**champion.summary(), "serving_us": costs[champion.candidate.label]},
        challenger={
            **challenger.summary(),
            "serving_us": costs[challenger.candidate.label],
            "test": challenger_metrics,
        },
        threshold={"value": threshold, "out_of_fold": at_oof},
        tiers=spec.tiers,
        costs=spec.costs,
        test=test_metrics,
        cleaning=data.cleaning,
        amount_cap=data.cap,
        transaction_features=data.from_transactions,
        packages=package_versions(PACKAGES),
        published=spec.published,
        reference=reference_distributions(X_train, spec, p_stored),
        documents=document_paths(spec.name, reports_dir, fairness=bool(spec.protected)),
        fairness=fairness.summary(fair) if fair is not None else None,
        calibration=calibration,
        selection=selection,
        refit=refit,
    )
    splits = pd.DataFrame({"id": ids, "split": data.split.to_numpy()})
    test_scores = pd.DataFrame({"id": ids[test].to_numpy(), "probability": p_stored})
    saved = store.save(
        spec.name,
        stored,
        Path(source).read_text(encoding="utf-8"),
        card,
        splits=splits,
        test_scores=test_scores,
    )
    tag = str(saved.tag)
    log(f"{spec.name}: saved {tag}")
    fairness_files: dict[str, str] = {}
    if fair is not None:
        written = fairness.write_report(fair, reports_dir / spec.name, tag, card.data_sha256)
        fairness_files = {kind: path.name for kind, path in written.items()}  # beside training.json
        log(f"{spec.name}: wrote {written['markdown']}")

    report = {
        **card.model_dump(mode="json", exclude=NOT_IN_REPORT),
        "features": [f.model_dump(mode="json", exclude_none=True) for f in card.features],
        "model_tag": tag,
        "rows": {"labeled": len(y), "train": int(train.sum()), "test": int(test.sum())},
        "search_rows": len(y_search),
        "cv_folds": folds,
        "candidates": [{**r.summary(), "serving_us": costs.get(r.candidate.label)} for r in tried],
        "constraint_notes": constraint_notes,
        "baselines": {
            "majority_class": majority,
            "best_single_feature": {"feature": best_single, **single_metrics},
            "single_feature_cv": singles,
        },
        "threshold_table": metrics.threshold_table(y_test, p_test, spec.costs, threshold),
        "test_ci": bootstrap_intervals(y_test, p_test, threshold, spec.costs, seed=SEED),
        "importance": importance,
        "fairness_report": fairness_files,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_report(report, y_test, p_test, reports_dir / spec.name, p_raw)
    document = write_document(spec, reports_dir, model_tag=tag)
    log(f"{spec.name}: wrote {document['markdown']}")
    return report
