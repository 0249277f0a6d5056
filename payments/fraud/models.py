"""The risk engine's tables: its decisions' vocabulary and the thresholds fraud analysts edit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class RiskDecision(models.TextChoices):
    """What the risk engine decides for a card payment attempt (``Payment.risk_decision``)."""

    ALLOW = "allow", "Allow"
    REVIEW = "review", "Review (held for a fraud analyst)"
    BLOCK = "block", "Block"


def default_new_card_limits() -> dict[str, int]:
    """Review a new card above 10,000.00 SEK, 1,000.00 EUR or 1,000.00 USD (minor units)."""
    return {"SEK": 1_000_000, "EUR": 100_000, "USD": 100_000}


def default_min_card_amounts() -> dict[str, int]:
    """The smallest card payment: 10.00 SEK, 1.00 EUR, 1.00 USD (minor units), unless it
    pays the whole amount left."""
    return {"SEK": 1_000, "EUR": 100, "USD": 100}


class RiskSettings(models.Model):
    """The risk rules' thresholds: one row (pk 1), changed only through
    ``payments.fraud.services.update_risk_settings`` (validated and audited)."""

    SINGLETON_PK = 1

    max_failed_attempts = models.PositiveSmallIntegerField(
        default=5,
        help_text=(
            "Block a card (by its fingerprint) or a customer with more than this many failed"
            " card payments in the last hour."
        ),
    )
    new_card_limits = models.JSONField(
        default=default_new_card_limits,
        help_text=(
            "Per currency: a payment above this amount on a new card waits for a fraud analyst."
            " A currency without a limit is never held for this reason."
        ),
    )
    max_new_cards_per_customer = models.PositiveSmallIntegerField(
        default=3,
        help_text=(
            "Card testing: more different cards than this added for one customer in the last"
            " hour blocks the attempt and holds the customer's card payments for review."
        ),
    )
    max_new_cards_per_address = models.PositiveSmallIntegerField(
        default=5,
        help_text=(
            "Card testing: more different cards than this paid with from one network address"
            " in the last hour blocks the attempt and holds that address for review."
        ),
    )
    review_score = models.PositiveSmallIntegerField(
        default=65,
        help_text=(
            "Risk score (0-99, the live model's) from which a card payment waits for a fraud"
            " analyst."
        ),
    )
    block_score = models.PositiveSmallIntegerField(
        default=75,
        help_text="Risk score (0-99, the live model's) from which a card payment is blocked.",
    )
    min_card_amounts = models.JSONField(
        default=default_min_card_amounts,
        help_text=(
            "Per currency: the smallest card payment, unless it pays the whole amount left"
            " (card testers try tiny amounts)."
        ),
    )
    updated_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        verbose_name = "risk settings"
        verbose_name_plural = "risk settings"

    def __str__(self) -> str:
        return "Risk thresholds"


class RiskHold(models.Model):
    """Card payments of a customer or from a network address held after a card-testing
    burst: every attempt is blocked until a fraud analyst lifts the hold
    (``payments.fraud.services.lift_risk_hold``)."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        ADDRESS = "address", "Network address"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    address = models.CharField(max_length=45, blank=True)
    rule = models.CharField(max_length=40)
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    lift_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(lifted_at__isnull=True, kind="customer"),
                name="payments_riskhold_one_active_per_customer",
            ),
            models.UniqueConstraint(
                fields=["address"],
                condition=models.Q(lifted_at__isnull=True, kind="address"),
                name="payments_riskhold_one_active_per_address",
            ),
        ]

    def __str__(self) -> str:
        held = self.customer if self.kind == self.Kind.CUSTOMER else self.address
        state = "lifted" if self.lifted_at else "active"
        return f"hold on {held} ({self.rule}, {state})"


class FraudLabel(models.Model):
    """What a payment turned out to be (fraud or good), and who or what said so: the
    learned score trains on these (``payments.fraud.labels.record_label``, audited). A
    payment may be labelled more than once (a review, then a chargeback): the latest wins."""

    class Label(models.TextChoices):
        FRAUD = "fraud", "Fraud"
        GOOD = "good", "Good"

    class Source(models.TextChoices):
        REVIEW = "review", "Closed by a fraud analyst's review"
        REFUND = "refund", "Refunded as fraud"
        CHARGEBACK = "chargeback", "Chargeback"
        CONFIRMED = "confirmed", "Confirmed by the customer or the business"
        IMPORT = "import", "Imported"

    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="fraud_labels"
    )
    label = models.CharField(max_length=5, choices=Label.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    reason = models.CharField(max_length=500, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["payment", "-at"], name="payments_fraudlabel_pay_idx")]

    def __str__(self) -> str:
        return f"payment #{self.payment_id}: {self.label} ({self.source})"


class FraudModelVersion(models.Model):
    """One trained risk model: its features, training window, holdout metrics and the
    serialized estimator with its SHA-256 (never loaded when they differ). At most one is
    live; a fraud analyst promotes a version (``payments.fraud.training.promote_model_version``)."""

    algorithm = models.CharField(max_length=40)
    features = models.JSONField(help_text="The feature names, in the model's column order.")
    seed = models.IntegerField()
    source = models.CharField(max_length=200, help_text="Where the labelled payments came from.")
    train_from = models.DateTimeField()
    train_until = models.DateTimeField()
    test_from = models.DateTimeField()
    test_until = models.DateTimeField()
    rows_train = models.PositiveIntegerField()
    rows_test = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    threshold_table = models.JSONField(default=list)
    model_bytes = models.BinaryField(editable=False)
    model_sha256 = models.CharField(max_length=64, editable=False)
    # The holdout (features and labels, numpy .npz without pickles): a promotion compares the
    # live model and this one on the same payments.
    holdout_bytes = models.BinaryField(editable=False)
    live = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField()
    promoted_at = models.DateTimeField(null=True, blank=True, editable=False)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    promote_reason = models.CharField(max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "fraud model version"
        constraints = [
            models.UniqueConstraint(
                fields=["live"],
                condition=models.Q(live=True),
                name="payments_fraudmodelversion_one_live",
            ),
        ]
        permissions = [("promote_fraud_model", "Can make a trained fraud model version live")]

    def __str__(self) -> str:
        state = " (live)" if self.live else ""
        return f"fraud model v{self.pk} {self.algorithm}{state}"


class RuleAction(models.TextChoices):
    """What a fraud analyst's rule does when its condition holds (docs/fraud.md, "Rules")."""

    ALLOW = "allow", "Allow"
    BLOCK = "block", "Block"
    STEP_UP = "step_up", "Require a fresh second factor (step-up)"
    REVIEW = "review", "Review (hold for a fraud analyst)"


# The fixed order in which the kinds of rules are tried: the first match of the first kind
# that matches decides (Stripe Radar's order, with step-up between block and review).
RULE_ORDER = (RuleAction.ALLOW, RuleAction.BLOCK, RuleAction.STEP_UP, RuleAction.REVIEW)


class FraudRule(models.Model):
    """A fraud analyst's rule: ``{action} if {expression}`` over the attempt's features.
    Changed only through ``payments.fraud.rule_services`` (checked, versioned, audited);
    every change leaves a ``FraudRuleVersion`` row and the old ones are kept."""

    action = models.CharField(max_length=10, choices=RuleAction.choices)
    expression = models.TextField(
        help_text="A condition over the features, such as amount > 500000 and new_card"
    )
    description = models.CharField(max_length=300)
    enabled = models.BooleanField(default=False)
    position = models.PositiveIntegerField(
        default=0, help_text="Order among the rules of the same action (lowest first)."
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(editable=False)
    updated_at = models.DateTimeField(editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        ordering = ["action", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} if {self.expression}"


class FraudRuleVersion(models.Model):
    """One state of a rule, as saved by one change (version 1 at creation)."""

    rule = models.ForeignKey(FraudRule, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=10, choices=RuleAction.choices)
    expression = models.TextField()
    description = models.CharField(max_length=300)
    enabled = models.BooleanField()
    position = models.PositiveIntegerField()
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="payments_fraudrule_version")
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} v{self.version}"


class FraudListEntry(models.Model):
    """An allow or block list entry: decides an attempt before any rule or the score.
    Added and removed through ``payments.fraud.rule_services`` (normalized, audited);
    a removed or expired entry stays as a record and no longer matches."""

    class List(models.TextChoices):
        ALLOW = "allow", "Allow list"
        BLOCK = "block", "Block list"

    class Key(models.TextChoices):
        CARD = "card", "Card fingerprint"
        BIN = "bin", "Card BIN (first 6 to 8 digits)"
        COUNTRY = "country", "Country (card, billing or IP)"
        IP = "ip", "IP address or network (CIDR)"
        EMAIL = "email", "Email address"
        EMAIL_DOMAIN = "email_domain", "Email domain"
        CUSTOMER = "customer", "Customer"

    list = models.CharField(max_length=5, choices=List.choices)
    key = models.CharField(max_length=12, choices=Key.choices)
    value = models.CharField(max_length=254)
    reason = models.CharField(max_length=500)
    added_at = models.DateTimeField(editable=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        editable=False,
        related_name="+",
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True, editable=False)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    removal_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-added_at", "-pk"]
        verbose_name = "fraud list entry"
        verbose_name_plural = "fraud list entries"
        indexes = [
            models.Index(
                fields=["key", "value"],
                condition=models.Q(removed_at__isnull=True),
                name="payments_fraudlist_live_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_list_display()}: {self.get_key_display().lower()} {self.value}"


class RiskEvaluation(models.Model):
    """One decision of the risk engine on one card payment attempt, as it was made: the
    features snapshot, the score and model version, the rules and list entries that matched,
    the decision and how long it took. Backtesting and the reports read these."""

    payment = models.OneToOneField(
        "payments.Payment", on_delete=models.CASCADE, related_name="risk_evaluation"
    )
    created_at = models.DateTimeField(db_index=True)
    features = models.JSONField(default=dict)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    model_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The FraudModelVersion that gave the score."
    )
    top_features = models.JSONField(default=list)
    matched = models.JSONField(
        default=list, help_text="Rules, list entries and safety rules that matched, in order."
    )
    decision = models.CharField(max_length=10, choices=RuleAction.choices)
    decided_by = models.CharField(
        max_length=20, help_text="What decided: list, safety, rule, score or default."
    )
    duration_us = models.PositiveIntegerField(help_text="Microseconds the decision took.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"evaluation of payment {self.payment_id}: {self.decision}"


class VelocityKey(models.TextChoices):
    """What a velocity counter counts by (docs/fraud.md, "Velocity counters")."""

    CARD = "card", _("card fingerprint")
    CUSTOMER = "customer", _("customer")
    IP = "ip", _("network address")
    EMAIL = "email", _("email address (hashed)")


class VelocityBucket(models.Model):
    """One key's card payment attempts in one time bucket (a minute, an hour or a day,
    UTC): written with the payment, so that a window's figures are a bounded number of
    rows whatever the key's history (``features.velocity``)."""

    class Resolution(models.TextChoices):
        MINUTE = "m", _("minute")
        HOUR = "h", _("hour")
        DAY = "d", _("day")

    kind = models.CharField(max_length=8, choices=VelocityKey.choices)
    key = models.CharField(
        max_length=64, help_text="The fingerprint, customer id, address or email's SHA-256."
    )
    resolution = models.CharField(max_length=1, choices=Resolution.choices)
    start = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    amount_eur = models.FloatField(default=0.0)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key", "resolution", "start"], name="fraud_velocity_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.resolution} {self.start:%Y-%m-%d %H:%M}: {self.attempts}"


class VelocityPair(models.Model):
    """A key seen with a card (or a card with a customer), and when last: the distinct
    counts (cards per customer, IP and email; customers per card) are these rows. The
    customer's rows also count the captured payments with the card."""

    kind = models.CharField(max_length=8, choices=VelocityKey.choices)
    key = models.CharField(max_length=64)
    other = models.CharField(max_length=64, help_text="The card's fingerprint, or customer id.")
    last_seen = models.DateTimeField()
    captured = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "key", "other"], name="fraud_velocity_pair")
        ]
        indexes = [
            models.Index(fields=["kind", "key", "last_seen"], name="fraud_velocity_pair_seen")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key[:12]} with {self.other[:12]}"


class CustomerPaymentStats(models.Model):
    """A customer's captured card payments as running figures in EUR (count, sum, sum of
    squares, largest), updated at capture: the amount's z-score and ratio to the largest."""

    customer_id = models.BigIntegerField(primary_key=True)
    captured = models.PositiveIntegerField(default=0)
    amount_eur = models.FloatField(default=0.0)
    amount_eur_squares = models.FloatField(default=0.0)
    largest_eur = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"customer {self.customer_id}: {self.captured} captured"
