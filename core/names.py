"""Names used by more than one module: use cases, folders, file names, metric names."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

BUILTIN_USE_CASES = ("filing_dropoff", "offboarding", "default", "churn", "credit_risk")
DEFAULT_USE_CASE = "credit_risk"

USECASES_DIRNAME = "usecases"
SPEC_SUFFIXES = (".yaml", ".yml")

SELECTION_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
TIER_NAMES = ("low", "medium", "high")

QUALITY_REPORT_STEM = "quality"
FAIRNESS_REPORT_STEM = "fairness"  # reports/<name>/fairness.md + .json (training/fairness.py)
MODEL_DOCUMENT_STEM = "model_document"  # reports/<name>/model_document.md + .html
CHALLENGER_SUFFIX = "_challenger"  # model name of challengers: `<use case>_challenger`
SHADOW_CHALLENGER = "challenger"  # RISKBENTO_SHADOW_TAG for the newest challenger
