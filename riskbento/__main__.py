"""Command line: `python -m riskbento <command> [use case or spec path]`."""

import argparse
import sys
import time
from pathlib import Path

from riskbento.constants import BUILTIN_USE_CASES
from riskbento.errors import UserError
from riskbento.settings import get_settings
from riskbento.spec import load_spec


def _cmd_data(args: argparse.Namespace) -> int:
    from riskbento import datagen

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        start = time.perf_counter()
        paths = datagen.generate(name, get_settings().data_dir)
        took = time.perf_counter() - start
        print(f"[data] {name}: wrote {', '.join(p.name for p in paths)} in {took:.1f}s")
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    from riskbento import quality

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        report = quality.run(name, get_settings().reports_dir)
        print(quality.summary(report))
    return 0


def _existing_model(use_case: str) -> str | None:
    from riskbento.scoring import ModelNotFound, find_model

    try:
        return str(find_model(f"{load_spec(use_case, check_data=False).name}:latest").tag)
    except ModelNotFound:
        return None


def _cmd_train(args: argparse.Namespace) -> int:
    from training.report import HEADLINE
    from training.train import FULL, QUICK, train_use_case

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    settings = get_settings()
    for name in names:
        existing = _existing_model(name) if args.if_missing else None
        if existing:
            print(f"[train] {name}: {existing} is in the store; not retraining")
            continue
        budget = QUICK if args.quick else FULL
        report = train_use_case(name, settings.reports_dir, settings.outputs_dir, budget)
        shown = ", ".join(f"{k} {report['test'][k]:.4f}" for k in HEADLINE)
        print(f"[train] {report['model_tag']} test: {shown}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from riskbento.batch import score_use_case

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        score_use_case(name, get_settings().outputs_dir)
    return 0


def _cmd_score_file(args: argparse.Namespace) -> int:
    from riskbento.batch import score_file

    score_file(args.use_case, args.records, args.output, args.transactions)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m riskbento", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, helptext in [
        ("data", _cmd_data, "write built-in data under data/"),
        ("quality", _cmd_quality, "data-quality report under reports/<name>/"),
        ("train", _cmd_train, "train, evaluate, store the model, report under reports/<name>/"),
        ("score", _cmd_score, "batch outputs from the stored model under outputs/<name>/"),
    ]:
        p = sub.add_parser(name, help=helptext)
        p.add_argument("use_case", nargs="?", default=None, help="built-in name or spec path")
        p.set_defaults(func=func)
        if name == "train":
            p.add_argument("--if-missing", action="store_true", help="skip if a model exists")
            p.add_argument("--quick", action="store_true", help="small search (smoke runs)")
    p = sub.add_parser("score-file", help="score a CSV of customer records with the stored model")
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("records", type=Path, help="CSV: id column + the spec's features")
    p.add_argument("output", type=Path, help="CSV to write the answers to")
    p.add_argument("--transactions", type=Path, help="raw transactions CSV for those customers")
    p.set_defaults(func=_cmd_score_file)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
