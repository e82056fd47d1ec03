"""`curation train-quality`: train a fastText quality classifier (DCLM-style) for `quality_classifier_v1`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from curation.errors import InputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train-quality",
        help="train a fastText high/low quality classifier from labelled JSONL; writes the model and a JSON sidecar",
    )
    p.add_argument(
        "--output", required=True, help="model file to write (a .json sidecar is written beside it)"
    )
    p.add_argument("--positive", action="append", default=[], help="JSONL of high-quality texts (repeatable)")
    p.add_argument("--negative", action="append", default=[], help="JSONL of low-quality texts (repeatable)")
    p.add_argument(
        "--labelled", action="append", default=[], help="JSONL with a 0/1 label per text (repeatable)"
    )
    p.add_argument(
        "--label-field", default="label", help="the label's field in --labelled files (default: label)"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds fastText and the held-out split (default: 0)")
    p.add_argument(
        "--held-out-fraction", type=float, default=0.2, help="share of texts held out (default: 0.2)"
    )
    from filters.quality_classifier import QuantizeParams, TrainingParams

    for f in dataclasses.fields(TrainingParams):
        p.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(f.default),
            default=f.default,
            help=f"fastText {f.name} (default: {f.default})",
        )
    p.add_argument(
        "--quantize",
        action="store_true",
        help="write a quantized model (fastText quantize, as lid.176.ftz; name the output .ftz)",
    )
    p.add_argument(
        "--quantize-cutoff",
        type=int,
        default=QuantizeParams.cutoff,
        help=f"with --quantize: words and n-grams kept (default: {QuantizeParams.cutoff})",
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    from filters.quality_classifier import QuantizeParams, TrainingParams, train_quality_classifier

    inputs = [*args.positive, *args.negative, *args.labelled]
    missing = [path for path in inputs if not Path(path).is_file()]
    if missing:
        raise InputError(f"no such training file: {', '.join(missing)}")
    if not args.labelled and not (args.positive and args.negative):
        raise InputError("give --labelled files, or both --positive and --negative files")
    if not 0 <= args.held_out_fraction < 1:
        raise InputError(f"--held-out-fraction must be in [0, 1), got {args.held_out_fraction}")
    params = TrainingParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingParams)})
    try:
        report = train_quality_classifier(
            args.output,
            positive_paths=args.positive,
            negative_paths=args.negative,
            labelled_paths=args.labelled,
            label_field=args.label_field,
            params=params,
            seed=args.seed,
            held_out_fraction=args.held_out_fraction,
            quantize=QuantizeParams(cutoff=args.quantize_cutoff) if args.quantize else None,
        )
    except (ValueError, KeyError) as exc:
        raise InputError(str(exc)) from exc
    print(
        json.dumps(
            {
                "model": report.model_path,
                "train": report.train_examples,
                "held_out": report.held_out_examples,
                **report.metrics,
            },
            indent=2,
        )
    )
    return 0
