"""The model document: built by training from the reports, every section there, its
numbers read (change the report and the document follows), promotions in its change log,
an HTML page that stands alone; and the bootstrap intervals it shows."""

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import bentoml
import numpy as np
import pytest
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score

from core import intervals, metrics
from core.markdown import cell
from core.names import USECASES_DIRNAME
from core.settings import get_settings
from core.spec import Costs
from model import store
from riskbento.__main__ import main
from training import retrain
from training.document import SECTIONS, write_document

USE_CASE = "credit_risk"


# ---------------------------------------------------------------- bootstrap intervals


def _scores(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.12).astype(int)
    p = np.clip(rng.normal(0.1 + 0.25 * y, 0.1), 0, 1).round(3)  # rounded: ties on purpose
    return y, p


COSTS = Costs(missed_event=1750, false_alarm=250)


def test_weighted_metrics_equal_scikit_learn_on_a_resample():
    y, p = _scores(3_000)
    rows = np.random.default_rng(1).integers(0, len(y), len(y))
    counts = np.bincount(rows, minlength=len(y))[None, :].astype(float)
    got = intervals.resampled_metrics(y, p, 0.2, COSTS, counts)
    yy, pp = y[rows], p[rows]
    assert got["roc_auc"][0] == pytest.approx(roc_auc_score(yy, pp), abs=1e-12)
    assert got["pr_auc"][0] == pytest.approx(average_precision_score(yy, pp), abs=1e-12)
    assert got["brier"][0] == pytest.approx(np.mean((pp - yy) ** 2), abs=1e-12)
    assert got["ece"][0] == pytest.approx(metrics.expected_calibration_error(yy, pp), abs=1e-12)
    cost = metrics.cost_per_customer(yy, pp >= 0.2, COSTS)
    assert got["cost_per_customer"][0] == pytest.approx(cost, abs=1e-9)


def test_bootstrap_intervals_hold_the_estimate_and_replay_with_their_seed():
    y, p = _scores(2_000)
    first = intervals.bootstrap_intervals(y, p, 0.2, COSTS, resamples=500, seed=7)
    again = intervals.bootstrap_intervals(y, p, 0.2, COSTS, resamples=500, seed=7)
    other = intervals.bootstrap_intervals(y, p, 0.2, COSTS, resamples=500, seed=8)
    assert first == again
    assert first != other
    assert set(first) == set(intervals.CI_METRICS)
    for name, ci in first.items():
        assert ci["low"] <= ci["value"] <= ci["high"], name
        assert ci["low"] < ci["high"], name
        assert ci["resamples"] == 500
    assert first["roc_auc"]["value"] == metrics.evaluate(y, p, 0.2, COSTS)["roc_auc"]


# ---------------------------------------------------------------- the document of a trained model


@pytest.fixture(scope="module")
def trained(trained_tag, builtin_spec) -> dict:
    tag = trained_tag(USE_CASE)
    card = store.card(bentoml.models.get(tag))
    document = Path(card.documents["model_document"])
    return {
        "tag": tag,
        "card": card,
        "spec": builtin_spec(USE_CASE),
        "document": document,
        "folder": document.parent,
        "report": json.loads((document.parent / "training.json").read_text()),
    }


def _copy_reports(trained: dict, tmp_path: Path, name: str = USE_CASE) -> Path:
    """The trained model's report folder copied to tmp_path/reports/<name>; returns it."""
    folder = tmp_path / "reports" / name
    shutil.copytree(trained["folder"], folder)
    return folder


def _section(text: str, title: str) -> str:
    number = SECTIONS.index(title) + 1
    return re.split(r"\n## \d+\. ", text.split(f"## {number}. {title}\n", 1)[1])[0]


def _edit_json(path: Path, change) -> None:
    report = json.loads(path.read_text())
    change(report)
    path.write_text(json.dumps(report))


@pytest.mark.slow
def test_training_writes_the_document_with_every_section(trained):
    card, report = trained["card"], trained["report"]
    assert card.documents["model_document"].endswith(f"{USE_CASE}/model_document.md")
    assert card.documents["training_report"].endswith(f"{USE_CASE}/training.md")
    text = trained["document"].read_text()
    for number, title in enumerate(SECTIONS, 1):
        assert f"\n## {number}. {title}\n" in text
    assert f"Model `{trained['tag']}`" in text
    for sha in report["data_sha256"].values():
        assert sha in text
    assert "*Source: " in _section(text, "Performance with uncertainty")
    assert "datagen/credit_risk.py" in _section(text, "Limitations and assumptions")
    assert "Synthetic" in _section(text, "Limitations and assumptions")
    limits = trained["spec"].document.limitations
    assert limits and limits[0].split(":")[0] in text  # the spec's own words are quoted
    ci = report["test_ci"]["roc_auc"]
    assert ci["low"] <= report["test"]["roc_auc"] == ci["value"] <= ci["high"]
    assert "95% bootstrap intervals" in (trained["folder"] / "training.md").read_text()


@pytest.mark.slow
def test_the_numbers_are_read_from_the_training_report(trained, tmp_path):
    report = trained["report"]
    text = trained["document"].read_text()
    performance = _section(text, "Performance with uncertainty")
    assert f"| roc_auc | {cell(report['test']['roc_auc'])} |" in performance
    roc = report["test_ci"]["roc_auc"]
    assert f"{cell(roc['low'])} to {cell(roc['high'])}" in performance
    assert f"**Threshold {cell(report['threshold']['value'])}**" in text

    folder = _copy_reports(trained, tmp_path)

    def change(r):
        r["test"]["roc_auc"] = 0.123456
        r["test_ci"]["roc_auc"].update(low=0.011111, high=0.988888)
        r["threshold"]["value"] = 0.654321

    _edit_json(folder / "training.json", change)
    written = write_document(trained["spec"], tmp_path / "reports", model_tag=trained["tag"])
    changed = written["markdown"].read_text()
    assert "| roc_auc | 0.1235 | 0.0111 to 0.9889 |" in changed
    assert "**Threshold 0.6543**" in changed
    assert f"**Threshold {cell(report['threshold']['value'])}**" not in changed


FAIRNESS = {
    "use_case": USE_CASE,
    "split": "test",
    "rows": 600,
    "threshold": 0.15,
    "settings": {
        "min_group_rows": 30,
        "bootstrap_below_rows": 1000,
        "four_fifths": 0.8,
        "favourable": "not_flagged",
    },
    "attributes": [
        {
            "column": "age_band",
            "use_as_feature": False,
            "why": None,
            "bands": None,
            "missing_rows": 3,
            "most_favoured": "40-61",
            "groups": [
                {
                    "group": "40-61", "rows": 400, "events": 40, "too_small": False,
                    "flag_rate": 0.25, "flag_rate_ci": [0.21, 0.29], "favourable_rate": 0.75,
                    "adverse_impact_ratio": 1.0, "air_ci": [1.0, 1.0], "four_fifths_ok": True,
                    "tpr": 0.7, "fpr": 0.2, "mean_predicted": 0.11, "observed_rate": 0.1,
                },
                {
                    "group": "18-24", "rows": 180, "events": 30, "too_small": False,
                    "flag_rate": 0.45, "flag_rate_ci": [0.38, 0.52], "favourable_rate": 0.55,
                    "adverse_impact_ratio": 0.7333, "air_ci": [0.64, 0.83],
                    "four_fifths_ok": False, "tpr": 0.8, "fpr": 0.35,
                    "mean_predicted": 0.16, "observed_rate": 0.17,
                },
                {
                    "group": "62+", "rows": 17, "events": 1, "too_small": True,
                    "flag_rate": 0.2941, "flag_rate_ci": [0.1, 0.5], "favourable_rate": 0.7059,
                    "adverse_impact_ratio": 0.9412, "air_ci": [0.6, 1.2],
                    "four_fifths_ok": None, "tpr": None, "fpr": 0.25,
                    "mean_predicted": 0.12, "observed_rate": 0.0588,
                },
            ],
        }
    ],
    "proxies": [
        {"feature": "total_credit", "attribute": "age_band", "measure": "cramers_v", "value": 0.31},
        {"feature": "has_rent", "attribute": "age_band", "measure": "cramers_v", "value": 0.12},
    ],
    "summary": {"attributes": 1, "below_four_fifths": ["age_band=18-24"]},
}  # fmt: skip


@pytest.mark.slow
def test_the_fairness_findings_follow_the_fairness_report_or_say_it_is_missing(trained, tmp_path):
    folder = _copy_reports(trained, tmp_path)
    (folder / "fairness.json").unlink(missing_ok=True)
    spec = trained["spec"]
    assert spec.protected, "credit_risk declares protected attributes"
    missing = write_document(spec, tmp_path / "reports", trained["tag"])["markdown"].read_text()
    section = _section(missing, "Fairness findings")
    assert "No fairness findings: no fairness report at" in section
    assert "No fairness analysis" in _section(missing, "Limitations and assumptions")

    fixture = {**FAIRNESS, "model_tag": trained["tag"], "data_sha256": {}}
    (folder / "fairness.json").write_text(json.dumps(fixture))
    text = write_document(spec, tmp_path / "reports", trained["tag"])["markdown"].read_text()
    section = _section(text, "Fairness findings")
    assert "| 18-24 | 180 | 30 | | 0.4500 | 0.3800 to 0.5200 | 0.7333 |" in section
    assert "Below the four-fifths floor: 18-24. Too small to judge: 62+." in section
    assert "| total_credit | cramers_v | 0.3100 |" in section
    assert "age_band=62+ (17 rows)" in _section(text, "Limitations and assumptions")

    (folder / "fairness.json").write_text(json.dumps({**fixture, "model_tag": "other:1"}))
    stale = write_document(spec, tmp_path / "reports", trained["tag"])["markdown"].read_text()
    assert "describes model other:1" in _section(stale, "Fairness findings")


@pytest.mark.slow
def test_the_change_log_lists_a_promotion_and_describes_the_promoted_model(trained, tmp_path):
    champion = bentoml.models.get(trained["tag"])
    challenger = store.copy(champion, f"{USE_CASE}_challenger")
    record = {
        "source": "outcomes",
        "decision": {"promote": True, "why": "gain 0.0300 > margin 0.0100"},
        "forced": False,
        "reason": None,
        "promoted_at": "2026-11-29T12:00:00+00:00",
    }
    spec_raw = yaml.safe_load((Path(challenger.path) / store.SPEC_FILE).read_text())
    promoted = retrain.promote(USE_CASE, challenger, spec_raw, record, by="the test")
    # The challenger's own training report, as retrain or a challenger's training writes it.
    origin = _copy_reports(trained, tmp_path, f"{USE_CASE}_challenger")
    _edit_json(origin / "training.json", lambda r: r.update(model_tag=str(challenger.tag)))

    written = write_document(trained["spec"], tmp_path / "reports", model_tag=promoted)
    text = written["markdown"].read_text()
    assert f"Model `{promoted}` (promoted from `{challenger.tag}`)" in text
    log = _section(text, "Change log")
    row = next(line for line in log.splitlines() if f"`{promoted}`" in line)
    assert f"`{challenger.tag}`" in row
    assert "gain 0.0300 > margin 0.0100" in row and "described here" in row
    assert f"`{trained['tag']}`" in log
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((written["markdown"].parent / src).is_file() for src in images)
    assert any(src.startswith(f"../{USE_CASE}_challenger/") for src in images)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings: list[str] = []
        self.sources: list[str] = []
        self.links: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_h2 = tag == "h2"
        if tag == "h2":
            self.headings.append("")
        if tag == "img":
            self.sources.append(attrs["src"])
        self.links += [v for k, v in attrs.items() if k in ("href", "src") and v]

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings[-1] += data


@pytest.mark.slow
def test_the_html_page_has_every_section_its_images_and_nothing_from_outside(trained):
    page_path = trained["document"].with_suffix(".html")
    raw = page_path.read_text()
    page = _Page()
    page.feed(raw)
    assert page.headings == [f"{n}. {title}" for n, title in enumerate(SECTIONS, 1)]
    assert {"roc.png", "pr.png", "calibration.png"} <= set(page.sources)
    for src in page.sources:
        assert (page_path.parent / src).is_file(), src
    assert not re.search(r"https?://", raw)
    assert all(not re.match(r"[a-z]+:", link) for link in page.links)


@pytest.mark.slow
def test_the_html_page_opens_in_a_browser_with_every_image_drawn(trained, chromium):
    """Opened as a reviewer would, from the report folder: no console error, no request
    anywhere but the folder's own files, every plot decoded, every section shown."""
    page_path = trained["document"].with_suffix(".html")
    requested: list[str] = []
    errors: list[str] = []
    with chromium(viewport={"width": 1280, "height": 800}) as context:
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        drawn = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth > 0)")
        headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.innerText)")
    assert not errors, errors
    assert all(url.startswith(page_path.parent.as_uri()) for url in requested), requested
    assert drawn and all(drawn)
    assert headings == [f"{n}. {title}" for n, title in enumerate(SECTIONS, 1)]


@pytest.mark.slow
def test_the_command_writes_the_document(trained, tmp_path, tmp_project, monkeypatch):
    _copy_reports(trained, tmp_path)
    monkeypatch.setenv("RISKBENTO_REPORTS_DIR", str(tmp_path / "reports"))
    get_settings.cache_clear()
    try:
        spec_file = tmp_project / USECASES_DIRNAME / f"{USE_CASE}.yaml"
        assert main(["document", str(spec_file), "--model-tag", trained["tag"]]) == 0
        assert main(["document", str(spec_file), "--model-tag", f"{USE_CASE}:nope"]) == 2
    finally:
        get_settings.cache_clear()
    assert (tmp_path / "reports" / USE_CASE / "model_document.html").is_file()
