"""Command line: `python -m riskbento <command> [use case or spec path]`."""

import argparse
import sys
import time

from riskbento.constants import BUILTIN_USE_CASES
from riskbento.settings import get_settings


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


def _cmd_train(args: argparse.Namespace) -> int:
    from training.report import HEADLINE
    from training.train import train_use_case

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    settings = get_settings()
    for name in names:
        report = train_use_case(name, settings.reports_dir, settings.outputs_dir)
        shown = ", ".join(f"{k} {report['test'][k]:.4f}" for k in HEADLINE)
        print(f"[train] {report['model_tag']} test: {shown}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from riskbento.batch import score_use_case

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        score_use_case(name, get_settings().outputs_dir)
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
