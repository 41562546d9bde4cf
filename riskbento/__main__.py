"""Command line: `python -m riskbento <command> [use case or spec path]`."""

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from core.errors import UserError
from core.logs import get_logger, setup
from core.names import BUILTIN_USE_CASES
from core.settings import get_settings
from core.spec import load_spec


def _cmd_data(args: argparse.Namespace) -> int:
    import datagen

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        start = time.perf_counter()
        paths = datagen.generate(name, get_settings().data_dir)
        took = time.perf_counter() - start
        get_logger("data").info(f"{name}: wrote {', '.join(p.name for p in paths)} in {took:.1f}s")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from jobs.draft import draft_spec, write_draft

    draft = draft_spec(
        args.data, args.target, args.positive, args.id_column, args.transactions, args.out
    )
    log = get_logger("init")
    for warning in draft.warnings:
        log.warning(f"warning: {warning}")
    write_draft(draft)
    for line in draft.summary():
        log.info(line)
    return 0


def _cmd_quality(args: argparse.Namespace) -> int:
    from jobs import quality

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        report = quality.run(name, get_settings().reports_dir)
        print(quality.summary(report))
    return 0


def _existing_model(use_case: str) -> str | None:
    from model.scorer import ModelNotFound, find_model

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
            get_logger("train").info(f"{name}: {existing} is in the store; not retraining")
            continue
        budget = QUICK if args.quick else FULL
        report = train_use_case(name, settings.reports_dir, settings.outputs_dir, budget)
        shown = ", ".join(f"{k} {report['test'][k]:.4f}" for k in HEADLINE)
        get_logger("train").info(f"{report['model_tag']} test: {shown}")
    return 0


def _cmd_scaleout(args: argparse.Namespace) -> int:
    from scaleout.job import Run, run

    run(
        Run(
            command=args.command,
            use_case=args.use_case,
            engine=args.engine,
            transactions=args.transactions,
            customers=args.customers,
            out=args.out,
            workers=args.workers,
            buckets=args.buckets,
            scheduler=args.scheduler,
            master=args.master,
            measure_shuffle=args.measure_shuffle,
        )
    )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    if args.engine is not None:
        return _cmd_scaleout(args)
    from jobs.batch import score_use_case

    names = [args.use_case] if args.use_case else list(BUILTIN_USE_CASES)
    for name in names:
        score_use_case(name, get_settings().outputs_dir)
    return 0


def _cmd_score_file(args: argparse.Namespace) -> int:
    from jobs.batch import score_file

    score_file(args.use_case, args.records, args.output, args.transactions)
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from training.retrain import Maturity, retrain
    from training.train import FULL, QUICK

    maturity = Maturity(args.date_column, args.window_days, args.as_of)
    budget = QUICK if args.quick else FULL
    report = retrain(args.use_case, args.data, get_settings().reports_dir, budget, maturity)
    d = report["decision"]
    verdict = f"promoted as {report['promoted_tag']}" if d["promote"] else "not promoted"
    get_logger("retrain").info(f"{report['challenger_tag']} {verdict}: {d['why']}")
    return 0


def _cmd_drift(args: argparse.Namespace) -> int:
    from jobs.drift import run_drift

    log = args.log or get_settings().prediction_log_dir
    return run_drift(args.use_case, log, args.out, args.model_tag)


def _cmd_dashboard_data(args: argparse.Namespace) -> int:
    from jobs.dashboard_data import run_dashboard_data

    log = args.log or get_settings().prediction_log_dir
    return run_dashboard_data(args.use_case, log, args.out, args.model_tag)


def _cmd_outcomes(args: argparse.Namespace) -> int:
    from jobs.outcomes import run_outcomes

    log = args.log or get_settings().prediction_log_dir
    return run_outcomes(args.use_case, args.labels, log, args.as_of, args.out)


def _cmd_promote(args: argparse.Namespace) -> int:
    from jobs.outcomes import REPORT_DIRNAME, REPORT_STEM
    from training.promote import promote_shadow

    if args.force and not (args.reason or "").strip():
        raise UserError("--force needs --reason '<why>': the reason is recorded in the model")
    name = load_spec(args.use_case, check_data=False).name
    folder = get_settings().reports_dir / name / REPORT_DIRNAME
    report = args.outcomes or folder / f"{REPORT_STEM}.json"
    tag = promote_shadow(name, report, args.shadow, args.reason if args.force else None)
    get_logger("promote").info(
        f"{tag} is now {name}:latest; servers without RISKBENTO_MODEL_TAG serve it from their "
        "next start (Kubernetes: kubectl rollout restart deployment/riskbento)"
    )
    return 0


def _cmd_document(args: argparse.Namespace) -> int:
    from training.document import write_document

    written = write_document(args.use_case, get_settings().reports_dir, args.model_tag)
    get_logger("document").info(f"wrote {written['markdown']} and {written['html'].name}")
    return 0


def _cmd_traffic(args: argparse.Namespace) -> int:
    from jobs.traffic import make_traffic

    done = make_traffic(
        args.use_case,
        args.out,
        args.shift,
        args.rows,
        args.model_tag,
        outcomes=args.outcomes,
        shadow_tag=args.shadow,
    )
    moved = "; ".join(f"{k} {v}" for k, v in done["shifted"].items()) or "none"
    get_logger("traffic").info(
        f"{done['use_case']}: {done['rows']:,} hold-out records scored by "
        f"{done['model_tag']} and logged under {done['log']} (shifted: {moved})"
    )
    if args.outcomes:
        get_logger("traffic").info(
            f"{done['use_case']}: timestamps spread from {done['first']} to {done['last']}; "
            f"{done['outcomes_written']:,} outcomes known today written to {args.outcomes} "
            f"({done['outcomes_not_known_yet']:,} not known yet)"
        )
    return 0


def _cmd_ship_log(args: argparse.Namespace) -> int:
    from jobs.logship import Options, ship

    given = {
        "batch_lines": args.batch_lines,
        "interval_s": args.interval,
        "drain_timeout_s": args.drain_timeout,
    }
    options = Options(
        **{k: v for k, v in given.items() if v is not None}, delete_shipped=args.delete_shipped
    )
    log = args.log or get_settings().prediction_log_dir
    follow = not args.once
    done, _ = ship(
        log, args.endpoint, args.state, follow=follow, use_case=args.use_case, options=options
    )
    return 0 if done else 1


def _ship_log_arguments(p: argparse.ArgumentParser) -> None:
    # Defaults are jobs.logship.Options's, not repeated here (importing it loads BentoML).
    p.add_argument("--log", type=Path, help="prediction log folder (default: settings)")
    p.add_argument("--endpoint", required=True, help="OTLP/HTTP receiver: http://<host>:4318")
    p.add_argument("--state", type=Path, help="checkpoint file (default: in the log folder)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="ship what is there, then exit")
    when.add_argument("--follow", action="store_true", help="keep shipping until SIGTERM (default)")
    p.add_argument("--interval", type=float, help="seconds between passes when following")
    p.add_argument("--batch-lines", type=int, help="lines per request")
    p.add_argument("--use-case", help="the use case to ship, if the folder logs several")
    p.add_argument(
        "--drain-timeout",
        type=float,
        help="seconds to keep retrying a receiver that is down: per batch with --once, "
        "for the last pass after SIGTERM",
    )
    p.add_argument(
        "--delete-shipped", action="store_true", help="delete rotated files once fully shipped"
    )


def _scaleout_arguments(p: argparse.ArgumentParser, engine_default: str | None) -> None:
    from scaleout import ENGINES  # not scaleout.job: building the parser loads no model code

    note = (
        " (without it: the batch outputs under outputs/<name>/)" if engine_default is None else ""
    )
    p.add_argument("--engine", choices=ENGINES, default=engine_default, help="where to run" + note)
    p.add_argument("--transactions", type=Path, help="CSV/Parquet file or folder of parts")
    p.add_argument("--customers", type=Path, help="customer table, CSV or Parquet")
    p.add_argument("--out", type=Path, help="output folder (default outputs/<name>/<cmd>-<engine>)")
    p.add_argument("--workers", type=int, default=2, help="Dask workers / Spark local cores")
    p.add_argument("--buckets", type=int, help="customer buckets (default 4 per worker or more)")
    p.add_argument("--scheduler", help="Dask: address of a running scheduler (tcp://host:8786)")
    p.add_argument("--master", help="Spark: master URL (default local[workers])")
    p.add_argument("--measure-shuffle", action="store_true", help=argparse.SUPPRESS)


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
        if name == "score":
            _scaleout_arguments(p, engine_default=None)
    p = sub.add_parser("init", help="draft a spec (YAML) from your own CSV, to review")
    p.add_argument("data", type=Path, help="CSV: one row per customer, with the target column")
    p.add_argument("--target", required=True, help="the column that holds the outcome")
    p.add_argument("--positive", required=True, help="the target value that is the risk event")
    p.add_argument("--id", dest="id_column", help="the customer id column (default: guessed)")
    p.add_argument("--transactions", type=Path, help="raw transactions CSV of those customers")
    p.add_argument("--out", type=Path, help="spec to write (default: <data folder>/<stem>.yaml)")
    p.set_defaults(func=_cmd_init)
    p = sub.add_parser("features", help="per-customer features from raw transactions at scale")
    p.add_argument("use_case", help="built-in name or spec path")
    _scaleout_arguments(p, engine_default="local")
    p.set_defaults(func=_cmd_scaleout)
    p = sub.add_parser("score-file", help="score a CSV of customer records with the stored model")
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("records", type=Path, help="CSV: id column + the spec's features")
    p.add_argument("output", type=Path, help="CSV to write the answers to")
    p.add_argument("--transactions", type=Path, help="raw transactions CSV for those customers")
    p.set_defaults(func=_cmd_score_file)
    p = sub.add_parser("retrain", help="train a challenger on new data; promote it if better")
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--data", type=Path, required=True, help="new labeled CSV, or a folder")
    p.add_argument("--quick", action="store_true", help="small search (smoke runs)")
    p.add_argument("--date-column", help="date each outcome window opened (excludes open ones)")
    p.add_argument("--window-days", type=int, help="length of the outcome window, in days")
    p.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default today)")
    p.set_defaults(func=_cmd_retrain)
    p = sub.add_parser("drift", help="logged traffic vs the training data; exit 1 on drift")
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--log", type=Path, help="prediction log folder or file (default: settings)")
    p.add_argument("--out", type=Path, help="report folder (default reports/<name>/drift/)")
    p.add_argument("--model-tag", help="judge rows of this model (default: the latest logged)")
    p.set_defaults(func=_cmd_drift)
    p = sub.add_parser(
        "dashboard-data", help="the risk dashboard's aggregates from the prediction log"
    )
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--log", type=Path, help="prediction log folder or file (default: settings)")
    p.add_argument(
        "--out", type=Path, help="JSON file (default reports/<name>/dashboard/data.json)"
    )
    p.add_argument("--model-tag", help="count rows of this model (default: the latest logged)")
    p.set_defaults(func=_cmd_dashboard_data)
    p = sub.add_parser("traffic", help="log scored hold-out records (--shift: moved) for drift")
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--out", type=Path, required=True, help="prediction log folder to write")
    p.add_argument("--shift", action="store_true", help="move numeric features, change a mix")
    p.add_argument("--rows", type=int, help="first N hold-out records (default all)")
    p.add_argument("--model-tag", help="model to score with (default <name>:latest)")
    p.add_argument(
        "--outcomes", type=Path, help="also write the records' outcomes (labels CSV), backdated"
    )
    p.add_argument("--shadow", help="also log this model's answers, as a shadow challenger's")
    p.set_defaults(func=_cmd_traffic)
    p = sub.add_parser(
        "outcomes", help="matured labels joined to logged predictions; exit 1 below the floor"
    )
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--labels", type=Path, required=True, help="CSV: id, outcome, outcome_date")
    p.add_argument("--log", type=Path, help="prediction log folder or file (default: settings)")
    p.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default today)")
    p.add_argument("--out", type=Path, help="report folder (default reports/<name>/outcomes/)")
    p.set_defaults(func=_cmd_outcomes)
    p = sub.add_parser(
        "promote", help="promote the shadow challenger when the outcomes report says so"
    )
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--outcomes", type=Path, help="default reports/<name>/outcomes/outcomes.json")
    p.add_argument("--shadow", help="the shadow's tag, where the report compares several")
    p.add_argument("--force", action="store_true", help="promote against the report's advice")
    p.add_argument("--reason", help="with --force: why (recorded in the model's card)")
    p.set_defaults(func=_cmd_promote)
    p = sub.add_parser(
        "document", help="the model document (Markdown + HTML) under reports/<name>/"
    )
    p.add_argument("use_case", help="built-in name or spec path")
    p.add_argument("--model-tag", help="the model it describes (default <name>:latest)")
    p.set_defaults(func=_cmd_document)
    p = sub.add_parser(
        "ship-log",
        help="send the prediction log to an OTLP/HTTP receiver; exit 1 if lines are left",
    )
    _ship_log_arguments(p)
    p.set_defaults(func=_cmd_ship_log)
    args = parser.parse_args(argv)
    setup()
    try:
        return args.func(args)
    except (UserError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
