"""Data-quality report for a use case: every number computed from the data its spec names.

The checks are pure functions over DataFrames (so a clean frame can be shown to
produce no findings); `run` reads the files, writes `quality.md` + `quality.json`
under `reports/<use case>/`, the plots of the data under `reports/<use case>/quality/`
(jobs/quality_plots.py), and returns the report.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.datafiles import data_files, data_fingerprint, read_table, read_transactions
from core.markdown import table
from core.names import QUALITY_REPORT_STEM
from core.spec import FeatureType, Spec, load_spec
from core.stats import (
    OUTLIER_FENCE_K,
    PSI_BINS,
    bin_counts,
    psi,
    quantile_edges,
    shares,
    tukey_fence,
)
from jobs import quality_plots

MNAR_ALPHA = 0.01  # missingness vs target: chi-square (or Fisher) p-value below this
PSI_SHIFT = 0.10  # population stability index above this: the cohort has shifted
CO_MISSING_PHI = 0.5  # null masks this correlated are reported as missing together
SUMMARY_WORST = 3  # console summary: the largest counts shown per kind of finding


@dataclass
class Finding:
    check: str
    where: str
    count: int
    detail: str


@dataclass
class QualityData:
    """The files a spec names, read once for the checks and the plots."""

    table: pd.DataFrame
    scoring_rows: pd.DataFrame  # the cohort to score: the unlabeled table, else blank targets
    transactions: pd.DataFrame | None = None
    scoring_transactions: pd.DataFrame | None = None  # the unlabeled cohort's own file, if any


def load_data(spec: Spec) -> QualityData:
    """Read the spec's files once: the table, the rows to score and the transactions."""
    table = read_table(spec)
    scoring_rows = table[table[spec.target.column].isna()]
    if spec.data.unlabeled_table:
        scoring_rows = read_table(spec, unlabeled=True)
    data = QualityData(table, scoring_rows)
    roles = spec.data.transactions
    if roles is not None:
        data.transactions = read_transactions(spec)
        if roles.unlabeled_path and spec.data.unlabeled_table:
            data.scoring_transactions = read_transactions(spec, unlabeled=True)
    return data


# ---------------------------------------------------------------- building blocks


def count_outside(values: pd.Series, low: float, high: float) -> int:
    return int(((values < low) | (values > high)).sum())


def exact_duplicates(frame: pd.DataFrame) -> int:
    """Rows that repeat an earlier row in every column."""
    return int(frame.duplicated().sum())


def conflicting_keys(frame: pd.DataFrame, key: str) -> int:
    """Key values used by more than one distinct row (exact repeats are counted elsewhere)."""
    distinct = frame.drop_duplicates()
    counts = distinct[key].dropna().value_counts()
    return int((counts > 1).sum())


def cohort_psi(expected: pd.Series, actual: pd.Series, categorical: bool) -> float:
    """Population stability index of `actual` against `expected` among present values:
    one bin per level, or the decile bins of `expected` (core.stats, as the drift check).
    A number column's text that is not a number (reported by the schema findings) is
    left out like a blank."""
    if not categorical:
        expected = pd.to_numeric(expected, errors="coerce")
        actual = pd.to_numeric(actual, errors="coerce")
    expected, actual = expected.dropna(), actual.dropna()
    if expected.empty or actual.empty:
        return float("nan")
    if categorical:
        levels = sorted(set(expected.astype(str)) | set(actual.astype(str)))
        e = expected.astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
        a = actual.astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
    else:
        e_values = expected.to_numpy(dtype=float)
        edges = quantile_edges(e_values)
        e = bin_counts(e_values, edges)
        a = bin_counts(actual.to_numpy(dtype=float), edges)
    return psi(shares(e), shares(a))


def missing_vs_target_test(missing: pd.Series, positive: pd.Series) -> float:
    """p-value that the risk-event rate is the same for blank and filled rows."""
    table = pd.crosstab(missing, positive).reindex(
        index=[False, True], columns=[False, True], fill_value=0
    )
    counts = table.to_numpy()
    if counts.sum(axis=1).min() == 0 or counts.sum(axis=0).min() == 0:
        return 1.0
    expected = stats.contingency.expected_freq(counts)
    if expected.min() < 5:
        return float(stats.fisher_exact(counts).pvalue)
    return float(stats.chi2_contingency(counts).pvalue)


# ---------------------------------------------------------------- table checks


def class_balance(frame: pd.DataFrame, spec: Spec) -> dict[str, Any]:
    target = frame[spec.target.column]
    labeled = target.notna()
    positives = int(spec.target.is_positive(target).sum())
    n_labeled = int(labeled.sum())
    return {
        "rows": len(frame),
        "labeled": n_labeled,
        "unlabeled": int((~labeled).sum()),
        "positives": positives,
        "positive_rate": positives / n_labeled if n_labeled else float("nan"),
        "risk_event": spec.target.event,
    }


def schema_findings(frame: pd.DataFrame, spec: Spec, where: str) -> list[Finding]:
    """Values the spec says cannot occur: out of range, not a number, unknown level."""
    findings: list[Finding] = []
    for feat in spec.features:
        if feat.name not in frame:
            continue  # a transaction aggregate, checked after aggregation
        col = frame[feat.name]
        present = col.dropna()
        if feat.type in (FeatureType.numeric, FeatureType.binary):
            numbers = pd.to_numeric(present, errors="coerce")
            bad = int(numbers.isna().sum())
            if bad:
                findings.append(
                    Finding("not_a_number", f"{where}.{feat.name}", bad, "expected a number")
                )
            numbers = numbers.dropna()
            if feat.type is FeatureType.binary:
                n = int((~numbers.isin([0, 1])).sum())
                if n:
                    findings.append(
                        Finding("out_of_range", f"{where}.{feat.name}", n, "expected 0 or 1")
                    )
                continue
            low = -math.inf if feat.min is None else feat.min
            high = math.inf if feat.max is None else feat.max
            n = count_outside(numbers, low, high)
            if n:
                detail = f"outside the spec's range [{feat.min}, {feat.max}]"
                findings.append(Finding("out_of_range", f"{where}.{feat.name}", n, detail))
            if feat.integer:
                n = int((numbers != np.floor(numbers)).sum())
                if n:
                    findings.append(
                        Finding(
                            "not_an_integer", f"{where}.{feat.name}", n, "expected whole numbers"
                        )
                    )
        elif feat.type is FeatureType.categorical:
            unknown = present.astype(str)[~present.astype(str).isin(feat.levels or [])]
            if len(unknown):
                shown = sorted(unknown.unique())[:5]
                detail = f"not among the spec's levels, e.g. {shown}"
                findings.append(
                    Finding("unknown_level", f"{where}.{feat.name}", len(unknown), detail)
                )
        elif feat.type is FeatureType.datetime:
            bad = int(pd.to_datetime(present, errors="coerce").isna().sum())
            if bad:
                findings.append(
                    Finding("bad_datetime", f"{where}.{feat.name}", bad, "not a date/time")
                )
    return findings


def numeric_outliers(frame: pd.DataFrame, columns: list[str], where: str) -> list[Finding]:
    findings = []
    for name in columns:
        values = pd.to_numeric(frame[name], errors="coerce").dropna()
        if values.nunique() <= 2:
            continue  # flags have no outliers
        low, high = tukey_fence(values)
        if low == high:
            continue  # IQR 0 (mostly one value, e.g. zero-inflated counts): fences say nothing
        n = count_outside(values, low, high)
        if n:
            detail = f"beyond Tukey far-out fences [{low:.4g}, {high:.4g}] (k={OUTLIER_FENCE_K})"
            findings.append(Finding("outliers", f"{where}.{name}", n, detail))
    return findings


def missingness_vs_target(frame: pd.DataFrame, spec: Spec) -> list[dict[str, Any]]:
    """Per column with blanks: risk-event rate when blank vs filled, and the test's p-value."""
    labeled = frame[frame[spec.target.column].notna()]
    positive = spec.target.is_positive(labeled[spec.target.column])
    rows = []
    for name in labeled.columns:
        missing = labeled[name].isna()
        if name == spec.target.column or not missing.any():
            continue
        rows.append(
            {
                "column": name,
                "blank": int(missing.sum()),
                "rate_when_blank": float(positive[missing].mean()),
                "rate_when_filled": float(positive[~missing].mean()) if (~missing).any() else None,
                "p_value": missing_vs_target_test(missing, positive),
            }
        )
    return rows


def co_missing_pairs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Column pairs whose blanks go together (phi coefficient of the null masks)."""
    masks = frame.loc[:, frame.isna().any()].isna().astype(float)
    masks = masks.loc[:, masks.std() > 0]
    if masks.shape[1] < 2:
        return []
    corr = masks.corr()
    pairs = []
    names = list(corr.columns)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if corr.loc[a, b] >= CO_MISSING_PHI:
                pairs.append({"columns": [a, b], "phi": float(corr.loc[a, b])})
    return pairs


def table_findings(frame: pd.DataFrame, spec: Spec, where: str = "table") -> list[Finding]:
    findings = []
    nulls = frame.drop(columns=[spec.target.column], errors="ignore").isna().sum()
    for name, n in nulls[nulls > 0].items():
        findings.append(Finding("null_values", f"{where}.{name}", int(n), "blank cells"))
    n = exact_duplicates(frame)
    if n:
        findings.append(Finding("exact_duplicate_rows", where, n, "rows repeated verbatim"))
    n = conflicting_keys(frame, spec.id_column)
    if n:
        detail = f"{spec.id_column} values on more than one distinct row"
        findings.append(Finding("duplicate_ids", f"{where}.{spec.id_column}", n, detail))
    findings += schema_findings(frame, spec, where)
    numeric = [f.name for f in spec.features if f.name in frame and f.type is FeatureType.numeric]
    findings += numeric_outliers(frame, numeric, where)
    if spec.target.column in frame:
        for row in missingness_vs_target(frame, spec):
            if row["p_value"] < MNAR_ALPHA:
                detail = (
                    f"risk-event rate {row['rate_when_blank']:.2%} when blank vs "
                    f"{row['rate_when_filled']:.2%} when filled (p={row['p_value']:.2g})"
                )
                findings.append(
                    Finding(
                        "missing_not_at_random", f"{where}.{row['column']}", row["blank"], detail
                    )
                )
    return findings


# ---------------------------------------------------------------- transaction checks


def _lower(values: list[str]) -> set[str]:
    return {v.lower() for v in values}


def transaction_findings(
    tx: pd.DataFrame, spec: Spec, customer_ids: pd.Series, where: str = "transactions"
) -> tuple[list[Finding], dict[str, Any]]:
    """Problems in raw transactions, and how well they cover the customer table."""
    roles = spec.data.transactions
    assert roles is not None
    cols = roles.columns
    findings: list[Finding] = []
    for name, n in tx.isna().sum().items():
        if n:
            findings.append(Finding("null_values", f"{where}.{name}", int(n), "blank cells"))
    n = exact_duplicates(tx)
    if n:
        findings.append(Finding("exact_duplicate_rows", where, n, "rows repeated verbatim"))
    if cols.transaction_id:
        n = conflicting_keys(tx, cols.transaction_id)
        if n:
            detail = "transaction ids on more than one distinct row"
            findings.append(Finding("duplicate_ids", f"{where}.{cols.transaction_id}", n, detail))

    amount = pd.to_numeric(tx[cols.amount], errors="coerce")
    if cols.type:
        kind = tx[cols.type].astype("string").str.strip().str.lower()
        debit, credit = (
            kind.isin(_lower(roles.debit_values)),
            kind.isin(_lower(roles.credit_values)),
        )
        unknown = tx[cols.type].notna() & ~debit & ~credit
        if unknown.any():
            shown = sorted(tx.loc[unknown, cols.type].astype(str).unique())[:5]
            findings.append(
                Finding(
                    "unknown_level",
                    f"{where}.{cols.type}",
                    int(unknown.sum()),
                    f"not a debit/credit value: {shown}",
                )
            )
        signed = amount.lt(0).any()
        # Either convention is fine (signed amounts, or positive amounts + a direction);
        # a row that breaks the file's own convention is a disagreement.
        if signed:
            wrong = (debit & (amount > 0)) | (credit & (amount < 0))
            rule = "debit with a positive amount or credit with a negative one"
        else:
            wrong = pd.Series(False, index=tx.index)
            rule = ""
        if wrong.any():
            findings.append(
                Finding("sign_type_disagreement", f"{where}.{cols.amount}", int(wrong.sum()), rule)
            )

    if roles.max_amount is not None:
        n = int((amount.abs() > roles.max_amount).sum())
        detail = f"|amount| above the spec's max_amount {roles.max_amount:g}"
    else:
        magnitude = np.log10(amount.abs()[amount.abs() > 0])
        low, high = tukey_fence(magnitude)
        n = count_outside(magnitude, low, high)
        detail = (
            f"|amount| beyond far-out fences of log10|amount| "
            f"[{10**low:.4g}, {10**high:.4g}] (k={OUTLIER_FENCE_K})"
        )
    if n:
        findings.append(Finding("outliers", f"{where}.{cols.amount}", n, detail))

    if cols.timestamp:
        present = tx[cols.timestamp].dropna()
        bad = int(pd.to_datetime(present, errors="coerce", format="mixed").isna().sum())
        if bad:
            findings.append(
                Finding("bad_datetime", f"{where}.{cols.timestamp}", bad, "not a date/time")
            )

    per_customer = tx[cols.customer_id].value_counts()
    known = set(customer_ids.dropna())
    without = int((~customer_ids.isin(per_customer.index)).sum())
    orphans = [c for c in per_customer.index if c not in known]
    coverage = {
        "customers": len(known),
        "customers_with_transactions": len(known) - without,
        "customers_without_transactions": without,
        "unknown_customer_ids": len(orphans),
        "rows_of_unknown_customers": int(per_customer[orphans].sum()) if orphans else 0,
        "transactions_per_customer": {
            "min": int(per_customer.min()),
            "median": float(per_customer.median()),
            "p95": float(per_customer.quantile(0.95)),
            "max": int(per_customer.max()),
        },
    }
    if without:
        findings.append(
            Finding(
                "customers_without_transactions",
                f"{where}.{cols.customer_id}",
                without,
                "customers in the table with no transaction",
            )
        )
    if orphans:
        detail = f"customer ids not in the table ({coverage['rows_of_unknown_customers']} rows)"
        findings.append(
            Finding("unknown_customers", f"{where}.{cols.customer_id}", len(orphans), detail)
        )
    return findings, coverage


def shift_findings(
    labeled: pd.DataFrame, unlabeled: pd.DataFrame, spec: Spec
) -> tuple[list[Finding], dict[str, float]]:
    """PSI of every table feature: the cohort to score against the labeled one."""
    scores: dict[str, float] = {}
    for feat in spec.features:
        if feat.name not in labeled or feat.name not in unlabeled:
            continue
        categorical = feat.type is not FeatureType.numeric
        scores[feat.name] = cohort_psi(labeled[feat.name], unlabeled[feat.name], categorical)
    findings = [
        Finding(
            "distribution_shift",
            f"unlabeled.{name}",
            int(unlabeled[name].notna().sum()),
            f"PSI {value:.3f} > {PSI_SHIFT}",
        )
        for name, value in scores.items()
        if value > PSI_SHIFT
    ]
    return findings, scores


# ---------------------------------------------------------------- report


def build_report(spec: Spec, spec_source: str, data: QualityData | None = None) -> dict[str, Any]:
    data = data or load_data(spec)
    table = data.table
    findings = table_findings(table, spec)
    report: dict[str, Any] = {
        "use_case": spec.name,
        "spec": spec_source,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            key: {"path": str(path), "sha256": digest}
            for (key, path), digest in zip(
                data_files(spec).items(), data_fingerprint(spec).values(), strict=True
            )
        },
        "rules": {
            "outliers": f"Tukey far-out fences, k={OUTLIER_FENCE_K}; transaction amounts: "
            "above the spec's max_amount, else the fences on log10|amount|",
            "missing_not_at_random": f"chi-square / Fisher p < {MNAR_ALPHA}",
            "distribution_shift": f"PSI > {PSI_SHIFT} ({PSI_BINS} quantile bins)",
        },
        "class_balance": class_balance(table, spec),
        "nulls": {k: int(v) for k, v in table.isna().sum().items() if v},
        "missingness_vs_target": missingness_vs_target(table, spec),
        "co_missing": co_missing_pairs(table),
    }
    scoring_rows = data.scoring_rows
    if spec.data.unlabeled_table:
        findings += table_findings(
            scoring_rows.assign(**{spec.target.column: np.nan}), spec, "unlabeled"
        )
    if len(scoring_rows):
        shift, scores = shift_findings(table[table[spec.target.column].notna()], scoring_rows, spec)
        findings += shift
        report["psi_unlabeled_vs_labeled"] = scores
    if spec.data.transactions is not None:
        report["transactions"] = {}
        cohorts = [("transactions", table, data.transactions)]
        if data.scoring_transactions is not None:
            cohorts.append(("unlabeled_transactions", scoring_rows, data.scoring_transactions))
        for where, customers, tx in cohorts:
            assert tx is not None
            tx_findings, coverage = transaction_findings(tx, spec, customers[spec.id_column], where)
            findings += tx_findings
            report["transactions"][where] = {"rows": len(tx), "coverage": coverage}
    report["findings"] = [asdict(f) for f in findings]
    return report


def to_markdown(report: dict[str, Any]) -> str:
    balance = report["class_balance"]
    lines = [
        f"# Data quality: {report['use_case']}",
        "",
        f"Spec `{report['spec']}`, generated {report['generated_at']}.",
        "",
        *table(
            ["data", "file", "sha256"],
            [
                [k, f"`{Path(v['path']).name}`", f"`{v['sha256'][:16]}`"]
                for k, v in report["data"].items()
            ],
        ),
        "",
        "## Class balance",
        "",
        f"{balance['rows']} rows: {balance['labeled']} labeled, {balance['unlabeled']} unlabeled; "
        f"risk event `{balance['risk_event']}` in {balance['positives']} rows "
        f"({balance['positive_rate']:.2%} of labeled).",
        "",
        f"## Findings ({len(report['findings'])})",
        "",
    ]
    if report["findings"]:
        lines += table(
            ["check", "where", "count", "detail"],
            [[f["check"], f"`{f['where']}`", f["count"], f["detail"]] for f in report["findings"]],
        )
    else:
        lines.append("None.")
    lines += ["", "Rules: " + "; ".join(f"{k}: {v}" for k, v in report["rules"].items()) + "."]
    if report["missingness_vs_target"]:
        lines += ["", "## Missingness vs target", ""]
        lines += table(
            ["column", "blank", "rate when blank", "rate when filled", "p-value"],
            [
                [
                    r["column"],
                    r["blank"],
                    f"{r['rate_when_blank']:.2%}",
                    "n/a" if r["rate_when_filled"] is None else f"{r['rate_when_filled']:.2%}",
                    f"{r['p_value']:.2g}",
                ]
                for r in report["missingness_vs_target"]
            ],
        )
    if report["co_missing"]:
        lines += ["", "Columns blank together (phi of null masks):", ""]
        lines += [f"- {' + '.join(p['columns'])}: {p['phi']:.2f}" for p in report["co_missing"]]
    for where, section in report.get("transactions", {}).items():
        cov = section["coverage"]
        per = cov["transactions_per_customer"]
        lines += [
            "",
            f"## Coverage: {where}",
            "",
            f"{section['rows']} rows; {cov['customers_with_transactions']} of {cov['customers']} "
            f"customers have transactions, {cov['customers_without_transactions']} have none; "
            f"{cov['unknown_customer_ids']} customer ids are not in the table "
            f"({cov['rows_of_unknown_customers']} rows). Per customer: min {per['min']}, "
            f"median {per['median']:g}, p95 {per['p95']:g}, max {per['max']}.",
        ]
    if report.get("psi_unlabeled_vs_labeled"):
        lines += ["", "## Unlabeled rows vs labeled (PSI)", ""]
        lines += table(
            ["feature", "PSI"],
            [
                [k, f"{v:.3f}"]
                for k, v in sorted(
                    report["psi_unlabeled_vs_labeled"].items(), key=lambda kv: -kv[1]
                )
            ],
        )
    if report.get("plots"):
        lines += [
            "",
            "## Plots",
            "",
            "Each feature by class: the share of the class's rows per level, value or "
            "histogram bin (bins shared by both classes), a blank being a bar of its own; "
            "beside it, where there are rows to score, labeled vs to be scored.",
        ]
        for plot in report["plots"]:
            lines += ["", f"![{plot['title']}]({plot['file']})", "", plot["caption"]]
    return "\n".join(lines) + "\n"


def summary(report: dict[str, Any]) -> str:
    """A few console lines: size, balance, and one line per kind of finding."""
    balance = report["class_balance"]
    head = (
        f"[quality] {report['use_case']}: {balance['rows']} rows, {balance['labeled']} labeled "
        f"({balance['positive_rate']:.2%} risk event), {len(report['findings'])} findings"
    )
    by_check: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    lines = [head]
    for check, found in by_check.items():
        worst = sorted(found, key=lambda f: -f["count"])[:SUMMARY_WORST]
        shown = ", ".join(f"{f['where']} {f['count']}" for f in worst)
        more = f" and {len(found) - len(worst)} more" if len(found) > len(worst) else ""
        lines.append(f"  - {check}: {shown}{more}")
    lines.append(f"  report: {report['path']}")
    if report.get("plots"):
        folder = Path(report["path"]).parent / quality_plots.PLOTS_DIRNAME
        lines.append(f"  plots: {len(report['plots'])} PNGs in {folder}")
    return "\n".join(lines)


def run(use_case: str | Path, reports_dir: Path) -> dict[str, Any]:
    """Load the spec, check its data, write the Markdown + JSON report and the plots; return
    the report."""
    spec = load_spec(use_case)
    data = load_data(spec)
    report = build_report(spec, str(use_case), data)
    out_dir = reports_dir / spec.name
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = quality_plots.write_plots(
        spec,
        data.table,
        data.scoring_rows,
        data.transactions,
        data.scoring_transactions,
        out_dir / quality_plots.PLOTS_DIRNAME,
    )
    report["plots"] = [asdict(p) for p in plots]
    md_path = out_dir / f"{QUALITY_REPORT_STEM}.md"
    report["path"] = str(md_path)
    md_path.write_text(to_markdown(report), encoding="utf-8")
    (out_dir / f"{QUALITY_REPORT_STEM}.json").write_text(
        json.dumps(report, indent=2, default=float), encoding="utf-8"
    )
    return report
