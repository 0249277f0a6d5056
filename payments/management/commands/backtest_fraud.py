"""Backtest a fraud rule or score thresholds on the last N days of stored evaluations."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.exceptions import InvalidFraudRule
from payments.fraud.backtest import MAX_DAYS, OUTCOMES, CandidateRule, backtest
from payments.fraud.models import FraudRule, RuleAction
from payments.fraud.rule_services import check_rule_expression


class Command(BaseCommand):
    help = (
        "What a rule (new, or a new text of an existing one with --rule) or score thresholds"
        " would have decided over the last --days days of stored evaluations: attempts"
        " allowed, asked for step-up, reviewed and blocked, before and after, split by label"
        " (fraud, good, unlabelled). Nothing is saved. Ends with one line of JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--expression", help="the rule's condition")
        parser.add_argument("--action", choices=RuleAction.values, default=RuleAction.REVIEW)
        parser.add_argument("--rule", type=int, help="the id of the rule this text replaces")
        parser.add_argument("--disable", type=int, help="the id of an enabled rule to leave out")
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--review-score", type=int)
        parser.add_argument("--block-score", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["days"] <= MAX_DAYS:
            raise CommandError(f"--days: a whole number from 1 to {MAX_DAYS}")
        for name in ("review_score", "block_score"):
            value = options[name]
            if value is not None and not 0 <= value <= 99:
                raise CommandError(f"--{name.replace('_', '-')}: a whole number from 0 to 99")
        candidate = None
        replaced = None
        if options["rule"] is not None:
            replaced = FraudRule.objects.filter(pk=options["rule"]).first()
            if replaced is None:
                raise CommandError(f"--rule: no rule {options['rule']}")
        if options["expression"]:
            try:
                compiled = check_rule_expression(options["expression"])
            except InvalidFraudRule as exc:
                raise CommandError(f"--expression: {exc.message}") from None
            candidate = CandidateRule(
                action=options["action"],
                expression=compiled,
                replaces=replaced.pk if replaced else None,
                position=replaced.position if replaced else 0,
            )
        result = backtest(
            days=options["days"],
            rule=candidate,
            disable=options["disable"],
            review_score=options["review_score"],
            block_score=options["block_score"],
        )
        self.stdout.write(
            f"{result.evaluations} evaluations from {result.since:%Y-%m-%d %H:%M} to"
            f" {result.until:%Y-%m-%d %H:%M}; {result.changed} decided differently"
        )
        before, after = result.before.as_dict(), result.after.as_dict()
        self.stdout.write(
            f"{'decision':<10} {'before (fraud/good/?)':>24} {'after (fraud/good/?)':>24}"
        )
        for outcome in OUTCOMES:
            b, a = before[outcome], after[outcome]
            self.stdout.write(
                f"{outcome:<10} {b['total']:>8} ({b['fraud']}/{b['good']}/{b['unlabelled']})"
                f"{'':>4}{a['total']:>8} ({a['fraud']}/{a['good']}/{a['unlabelled']})"
            )
        self.stdout.write(json.dumps(result.as_dict(), sort_keys=True))
