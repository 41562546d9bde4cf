"""Record what a served model answers for its use case's inference hold-out, and compare
two such records: the check that a refactor or a retrain changed no answer.

    python -m loadtest.answers record credit_risk --out before/      # serve, ask, write
    python -m loadtest.answers record credit_risk --out after/ \
        --payloads before/credit_risk.payloads.json                  # the same records
    python -m loadtest.answers compare before/credit_risk.json after/credit_risk.json

`record` serves `<use case>:latest` with a real `bentoml serve`, sends every hold-out
record to `/predict` one by one and to `/predict_batch` in bodies of up to 1,000,
and writes both answer lists with the model card's test metrics. `compare` holds
probabilities to 1e-12 and everything else (decisions, tiers, reasons, warnings,
test metrics) to equality; it prints every difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from loadtest.process import ServerProcess, bentoml_serve, free_port, http

BATCH_RECORDS = 1_000
TOLERANCE = 1e-12
SHOWN_DIFFERENCES = 20
# Answer fields that name the model version, not what it says.
VERSION_FIELDS = ("model",)


def _post(url: str, body: Any) -> Any:
    status, answer = http("POST", url, json.dumps(body).encode())
    if status != 200:
        raise RuntimeError(f"{url} answered {status}: {answer[:500]!r}")
    return json.loads(answer)


def record(use_case: str, out: Path, payloads: Path | None) -> Path:
    """Serve the use case's latest model and write its answers under `out`."""
    from core.spec import load_spec
    from loadtest.run import build_payloads
    from model.scorer import find_model

    out.mkdir(parents=True, exist_ok=True)
    name = load_spec(use_case, check_data=False).name
    model = find_model(f"{name}:latest")
    if payloads is None:
        payload = build_payloads(use_case, str(model.tag), limit=sys.maxsize)
        payloads = out / f"{name}.payloads.json"
        payloads.write_text(json.dumps(payload), encoding="utf-8")
    records = json.loads(payloads.read_text(encoding="utf-8"))["records"]
    env = {
        **os.environ,
        "RISKBENTO_USE_CASE": name,
        "RISKBENTO_MODEL_TAG": str(model.tag),
        "RISKBENTO_PREDICTION_LOG": "false",
    }
    server = ServerProcess("bentoml serve", bentoml_serve(free_port()), env, out / "server.log")
    try:
        server.wait_ready()
        single = [_post(f"{server.url}/predict", r) for r in records]
        batch: list[dict] = []
        for start in range(0, len(records), BATCH_RECORDS):
            chunk = records[start : start + BATCH_RECORDS]
            batch += _post(f"{server.url}/predict_batch", {"records": chunk})
        status, card = http("GET", f"{server.url}/model")
        if status != 200:
            raise RuntimeError(f"/model answered {status}")
    finally:
        server.stop()
    card = json.loads(card)
    result = {
        "use_case": name,
        "model_tag": str(model.tag),
        "payloads": str(payloads),
        "test": card["test"],
        "predict": single,
        "predict_batch": batch,
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    print(f"[answers] {name}: {len(records)} records through /predict and /predict_batch -> {path}")
    return path


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    """Every place the two differ: floats beyond TOLERANCE, anything else unequal."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in dict.fromkeys([*before, *after]) if k not in VERSION_FIELDS]
        out = []
        for key in keys:
            if key not in before or key not in after:
                out.append(f"{where}.{key}: only in {'after' if key in after else 'before'}")
            else:
                out += differences(before[key], after[key], f"{where}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} items before, {len(after)} after"]
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += differences(b, a, f"{where}[{i}]")
        return out
    if isinstance(before, float) and isinstance(after, float):
        same = (math.isnan(before) and math.isnan(after)) or abs(before - after) <= TOLERANCE
        return [] if same else [f"{where}: {before!r} before, {after!r} after"]
    return [] if before == after else [f"{where}: {before!r} before, {after!r} after"]


def compare(before_path: Path, after_path: Path) -> int:
    before = json.loads(before_path.read_text(encoding="utf-8"))
    after = json.loads(after_path.read_text(encoding="utf-8"))
    found = differences(
        {k: before[k] for k in ("test", "predict", "predict_batch")},
        {k: after[k] for k in ("test", "predict", "predict_batch")},
    )
    n = len(before["predict"])
    print(
        f"[answers] {before['use_case']}: {before['model_tag']} vs {after['model_tag']}, "
        f"{n} records x (/predict, /predict_batch) + test metrics: {len(found)} difference(s)"
    )
    for line in found[:SHOWN_DIFFERENCES]:
        print(f"  {line}")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.answers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record", help="serve a use case and write its hold-out answers")
    p.add_argument("use_case")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--payloads", type=Path, help="records file of an earlier run (same inputs)")
    p = sub.add_parser("compare", help="compare two recorded answer files")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "record":
        record(args.use_case, args.out, args.payloads)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
