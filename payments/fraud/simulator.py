"""A transaction simulator for the fraud engine's tests, evaluation and demo (fixed seed).

Customers (mostly Swedish businesses paying in SEK, the rest in EUR) receive invoices
monthly (some once a year, large) and pay them by card during office hours, with a few
declines and retries. Among them run the fraud scenarios, each labelled ``fraud`` with its
``scenario`` name:

* ``card_testing``: one address tries many new cards with small amounts within minutes
  (most declined), for one customer account or across a few;
* ``stolen_card``: a card new to the customer, from another country, pays an unusual
  amount, often from an address abroad;
* ``compromised_card``: one card pays invoices of several unrelated customers in a few days;
* ``account_takeover``: an existing customer's account adds a new card and pays far more
  than usual, from a new address.

And the legitimate oddities the model must not learn to block: large annual invoices,
new customers paying for the first time with a new card, customers travelling (paying
from abroad with their usual card) and customers with a foreign card. Scenarios overlap
in every single feature on purpose (some fraud from domestic addresses, modest
amounts), so that no single quirk of this simulator separates fraud from good.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import random
from dataclasses import dataclass, field

from payments.fraud.features.compute import Attempt
from payments.fraud.features.offline import PastPayment

UTC = datetime.UTC
COUNTRIES = {  # country: (weight, currency, card BIN prefixes, address /16 prefix)
    "SE": (70, "SEK", ("457100", "458100", "516700"), "10.46"),
    "DE": (8, "EUR", ("491700", "523200"), "10.49"),
    "FR": (6, "EUR", ("497000", "513200"), "10.33"),
    "NO": (6, "SEK", ("410100",), "10.47"),
    "DK": (5, "SEK", ("421300",), "10.45"),
    "GB": (5, "EUR", ("446200", "543400"), "10.44"),
}
FRAUD_ORIGINS = {  # where stolen cards and attackers come from
    "NG": ("439200", "10.234"),
    "RU": ("518900", "10.7"),
    "BR": ("483800", "10.55"),
    "US": ("400000", "10.1"),
}
_When = datetime.datetime
# A card added in the form of the payment that first uses it: its time is that payment's.
FIRST_USE = datetime.datetime.max.replace(tzinfo=UTC)
SCENARIOS = ("card_testing", "stolen_card", "compromised_card", "account_takeover")


@dataclass(frozen=True)
class SimulationSettings:
    seed: int = 7
    start: datetime.datetime = datetime.datetime(2026, 8, 3, tzinfo=UTC)  # a Monday
    weeks: int = 10
    customers: int = 5000
    new_customers_per_week: int = 60
    card_testing_bursts: int = 20
    stolen_cards: int = 140
    compromised_cards: int = 25
    account_takeovers: int = 120


@dataclass
class _Customer:
    id: str
    email: str
    country: str
    currency: str
    typical: int  # a usual invoice, in minor units
    cards: list[tuple[str, str, datetime.datetime]]  # (fingerprint, bin, added)
    addresses: list[str]
    joined: datetime.datetime
    annual: bool
    traveller: bool
    paid_before: bool = False


@dataclass
class _World:
    rng: random.Random
    settings: SimulationSettings
    rows: list[PastPayment] = field(default_factory=list)
    cards: int = 0
    payments: int = 0

    def fingerprint(self) -> str:
        self.cards += 1
        seed = f"{self.settings.seed}:card:{self.cards}".encode()
        return hashlib.sha256(seed).hexdigest()

    def address(self, prefix: str) -> str:
        return f"{prefix}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def emit(
        self,
        customer: _Customer,
        at: datetime.datetime,
        amount: int,
        card: tuple[str, str, datetime.datetime],
        ip: str,
        *,
        status: str,
        invoice: tuple[int, datetime.datetime],
        label: str,
        scenario: str = "",
    ) -> None:
        self.payments += 1
        fingerprint, bin_, added = card
        self.rows.append(
            PastPayment(
                attempt=Attempt(
                    at=at,
                    amount=max(amount, 100),
                    currency=customer.currency,
                    customer_id=customer.id,
                    email=customer.email,
                    billing_country=customer.country,
                    card_fingerprint=fingerprint,
                    card_bin=bin_,
                    card_brand="visa" if bin_.startswith("4") else "mastercard",
                    ip=ip,
                    invoice_amount=max(invoice[0], amount, 100),
                    invoice_sent_at=invoice[1],
                ),
                status=status,
                card_added_at=min(added, at),
                payment_id=f"sim-{self.settings.seed}-{self.payments}",
                label=label,
                scenario=scenario,
            )
        )


def _office_time(rng: random.Random, day: datetime.datetime) -> datetime.datetime:
    """A time on ``day`` (or the next weekday) with most payments between 8 and 18."""
    while day.weekday() >= 5 and rng.random() < 0.8:
        day += datetime.timedelta(days=1)
    hour = min(max(rng.gauss(12.5, 3.2), 0), 23.99) if rng.random() < 0.9 else rng.uniform(0, 24)
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(
        hours=hour, seconds=rng.randint(0, 59)
    )


def _typical_amount(rng: random.Random, currency: str) -> int:
    major = math.exp(rng.gauss(math.log(4000 if currency == "SEK" else 400), 0.9))
    return int(major) * 100


def _customer(world: _World, n: int, joined: datetime.datetime) -> _Customer:
    rng = world.rng
    country = rng.choices(list(COUNTRIES), weights=[c[0] for c in COUNTRIES.values()])[0]
    _w, currency, bins, prefix = COUNTRIES[country]
    card_count = 1 if rng.random() < 0.75 else 2
    cards = []
    for _ in range(card_count):
        if rng.random() < 0.05:  # a foreign card (a subsidiary abroad, a corporate card)
            bin_ = rng.choice(COUNTRIES[rng.choice(list(COUNTRIES))][2])
        else:
            bin_ = rng.choice(bins)
        added = joined - datetime.timedelta(days=rng.uniform(0, 600) if n >= 0 else 0)
        cards.append((world.fingerprint(), bin_, added))
    domain = rng.choice(["example.se", "foretag.se", "firma.de", "societe.fr", "mail.com"])
    return _Customer(
        id=f"sim-customer-{abs(n)}" if n >= 0 else f"sim-new-{-n}",
        email=f"billing{abs(n)}@{domain}" if n >= 0 else f"new{-n}@{domain}",
        country=country,
        currency=currency,
        typical=_typical_amount(rng, currency),
        cards=cards,
        # A few always pay through a network abroad (a VPN, a foreign parent company).
        addresses=[
            world.address(prefix if rng.random() > 0.03 else "10.1")
            for _ in range(rng.choice([1, 1, 2]))
        ],
        joined=joined,
        annual=rng.random() < 0.08,
        traveller=rng.random() < 0.1,
    )


def _pay_invoice(world: _World, customer: _Customer, sent: datetime.datetime, amount: int) -> None:
    """A customer pays an invoice by card: sometimes declined first, sometimes in two parts."""
    rng = world.rng
    delay = datetime.timedelta(hours=rng.lognormvariate(math.log(40), 1.0))
    at = _office_time(rng, sent + delay)
    if rng.random() < 0.05:  # the card expired or was replaced: a new one, typed in the form
        _fingerprint, bin_, _added = customer.cards[0]
        customer.cards = [(world.fingerprint(), bin_, FIRST_USE), *customer.cards[1:]]
    card = rng.choice(customer.cards)
    ip = rng.choice(customer.addresses)
    if rng.random() < 0.03:  # a new office, a phone on the road
        ip = world.address(COUNTRIES[customer.country][3])
        customer.addresses.append(ip)
    if customer.traveller and rng.random() < 0.35:
        ip = world.address(rng.choice([c[3] for c in COUNTRIES.values()] + ["10.1"]))
    invoice = (amount, sent)
    if rng.random() < 0.04:  # a decline (funds, a typo), then the same or the other card
        world.emit(customer, at, amount, card, ip, status="failed", invoice=invoice, label="good")
        at += datetime.timedelta(minutes=rng.uniform(1, 120))
        card = rng.choice(customer.cards)
    parts = [amount] if rng.random() < 0.9 else [amount // 2, amount - amount // 2]
    for part in parts:
        world.emit(customer, at, part, card, ip, status="succeeded", invoice=invoice, label="good")
        at += datetime.timedelta(days=rng.uniform(1, 10))
    customer.paid_before = True


def _legitimate(world: _World, customers: list[_Customer], end: datetime.datetime) -> None:
    rng = world.rng
    for customer in customers:
        if customer.annual:
            sent = customer.joined + datetime.timedelta(days=rng.uniform(0, 60))
            big = customer.typical * rng.randint(8, 14)
            if sent < end:
                _pay_invoice(world, customer, _office_time(rng, sent), big)
            continue
        first = customer.joined + datetime.timedelta(days=rng.uniform(0, 28))
        sent = _office_time(rng, first)
        while sent < end:
            amount = int(customer.typical * math.exp(rng.gauss(0, 0.25)))
            _pay_invoice(world, customer, sent, amount)
            sent = _office_time(rng, sent + datetime.timedelta(days=rng.uniform(28, 33)))


def _foreign(world: _World) -> tuple[str, str, str]:
    country = world.rng.choice(list(FRAUD_ORIGINS))
    bin_, prefix = FRAUD_ORIGINS[country]
    return country, bin_, prefix


def _invoice_before(world: _World, amount: int, at: datetime.datetime) -> tuple[int, _When]:
    """The invoice a fraudster pays: mostly as recent as the customers' own payments are."""
    rng = world.rng
    if rng.random() < 0.7:
        return amount, at - datetime.timedelta(hours=rng.lognormvariate(math.log(40), 1.0))
    return amount, at - datetime.timedelta(days=rng.uniform(0, 25))


def _added_before(world: _World, at: datetime.datetime) -> datetime.datetime:
    """When a fraudster's card was added: in the payment's form, or some hours before."""
    if world.rng.random() < 0.3:
        return at - datetime.timedelta(hours=world.rng.uniform(0.05, 48))
    return at


def _moment(world: _World, start: datetime.datetime, end: datetime.datetime) -> datetime.datetime:
    seconds = (end - start).total_seconds()
    at = start + datetime.timedelta(seconds=world.rng.uniform(0, seconds))
    # Fraudsters keep office hours too, often enough.
    return _office_time(world.rng, at) if world.rng.random() < 0.5 else at


def _card_testing(world: _World, customers: list[_Customer], start: _When, end: _When) -> None:
    rng = world.rng
    for _ in range(world.settings.card_testing_bursts):
        _country, bin_, prefix = _foreign(world)
        ip = world.address(prefix)
        victims = rng.sample(customers, rng.choice([1, 1, 2, 3]))
        at = _moment(world, start, end)
        for _n in range(rng.randint(8, 30)):
            customer = rng.choice(victims)
            card = (world.fingerprint(), rng.choice([bin_, rng.choice(COUNTRIES["SE"][2])]), at)
            amount = rng.choice([100, 200, 500, 1000]) if customer.currency == "SEK" else 100
            status = "failed" if rng.random() < 0.8 else "succeeded"
            invoice = (customer.typical, at - datetime.timedelta(days=rng.uniform(1, 20)))
            world.emit(
                customer, at, amount, card, ip, status=status, invoice=invoice,
                label="fraud", scenario="card_testing",
            )  # fmt: skip
            at += datetime.timedelta(seconds=rng.uniform(5, 90))


def _stolen_cards(world: _World, customers: list[_Customer], start: _When, end: _When) -> None:
    rng = world.rng
    for _ in range(world.settings.stolen_cards):
        customer = rng.choice(customers)
        _country, bin_, prefix = _foreign(world)
        at = _moment(world, start, end)
        domestic = rng.random() < 0.35  # behind a proxy at home
        ip = world.address(COUNTRIES[customer.country][3] if domestic else prefix)
        card_bin = bin_ if rng.random() < 0.7 else rng.choice(COUNTRIES[customer.country][2])
        card = (world.fingerprint(), card_bin, _added_before(world, at))
        amount = int(customer.typical * math.exp(rng.uniform(0, 1.8)))
        invoice = _invoice_before(world, amount, at)
        world.emit(
            customer, at, amount, card, ip, status="succeeded", invoice=invoice,
            label="fraud", scenario="stolen_card",
        )  # fmt: skip


def _compromised(world: _World, customers: list[_Customer], start: _When, end: _When) -> None:
    rng = world.rng
    for _ in range(world.settings.compromised_cards):
        _country, bin_, prefix = _foreign(world)
        at = _moment(world, start, end)
        card = (world.fingerprint(), rng.choice([bin_, rng.choice(COUNTRIES["DE"][2])]), at)
        for customer in rng.sample(customers, rng.randint(3, 6)):
            ip = world.address(prefix if rng.random() < 0.6 else COUNTRIES[customer.country][3])
            amount = int(customer.typical * rng.uniform(0.6, 2.5))
            invoice = _invoice_before(world, amount, at)
            world.emit(
                customer, at, amount, card, ip, status="succeeded", invoice=invoice,
                label="fraud", scenario="compromised_card",
            )  # fmt: skip
            at += datetime.timedelta(hours=rng.uniform(0.2, 30))


def _takeovers(world: _World, customers: list[_Customer], start: _When, end: _When) -> None:
    rng = world.rng
    for _ in range(world.settings.account_takeovers):
        customer = rng.choice(customers)
        at = _moment(world, start, end)
        _country, bin_, prefix = _foreign(world)
        home = COUNTRIES[customer.country]
        card_bin = rng.choice([bin_, rng.choice(home[2])])
        card = (world.fingerprint(), card_bin, _added_before(world, at))
        ip = world.address(prefix if rng.random() < 0.5 else home[3])
        amount = int(customer.typical * math.exp(rng.uniform(0.3, 2.3)))
        invoice = _invoice_before(world, amount, at)
        world.emit(
            customer, at, amount, card, ip, status="succeeded", invoice=invoice,
            label="fraud", scenario="account_takeover",
        )  # fmt: skip


def simulate(settings: SimulationSettings | None = None) -> list[PastPayment]:
    """The simulated card payment attempts, labelled, in time order (same seed, same rows)."""
    settings = settings or SimulationSettings()
    world = _World(rng=random.Random(settings.seed), settings=settings)
    start = settings.start
    end = start + datetime.timedelta(weeks=settings.weeks)
    customers = [_customer(world, n, start) for n in range(settings.customers)]
    newcomers = []
    for n in range(settings.new_customers_per_week * settings.weeks):
        joined = start + datetime.timedelta(
            seconds=world.rng.uniform(0, (end - start).total_seconds())
        )
        newcomer = _customer(world, -(n + 1), joined)
        # Added in the card form of their first payment.
        newcomer.cards = [(fp, bin_, FIRST_USE) for fp, bin_, _added in newcomer.cards]
        newcomers.append(newcomer)
    _legitimate(world, customers + newcomers, end)
    _card_testing(world, customers + newcomers, start, end)
    _stolen_cards(world, customers, start, end)
    _compromised(world, customers, start, end)
    _takeovers(world, customers, start, end)
    rows = [row for row in world.rows if row.attempt.at < end]
    rows.sort(key=lambda row: (row.attempt.at, row.payment_id))
    return rows
