"""The catalogue of per-customer transaction features a spec may pick from.

Names and descriptions only (no pandas), so the spec schema can import it.
"""

# Keywords are matched against the cleaned description (lowercase, no digits or
# punctuation). Specs may replace this map with their own.
DEFAULT_CATEGORIES: dict[str, list[str]] = {
    "rent": ["rent", "landlord", "letting"],
    "groceries": ["tesco", "sainsbury", "asda", "aldi", "lidl", "grocer", "supermarket"],
    "subscriptions": ["netflix", "spotify", "disney", "prime video", "subscription"],
    "salary": ["salary", "payroll", "wages"],
    "transfer": ["transfer", "faster payment", "standing order"],
    "gambling": ["bet", "casino", "poker", "lottery", "gambling"],
    "crypto": ["coinbase", "binance", "kraken", "crypto"],
    "cash": ["atm", "cash withdrawal"],
}

BASE_AGGREGATES: dict[str, str] = {
    "num_transactions": "Number of transactions after cleaning.",
    "total_debit": "Sum of outgoing amounts (zero or negative).",
    "total_credit": "Sum of incoming amounts (zero or positive).",
    "avg_amount": "Mean signed transaction amount.",
    "net_flow": "Total credit plus total debit: money kept over the period.",
    "active_days": "Distinct calendar days with at least one transaction.",
    "max_debit": "Largest single outgoing amount, as a positive number.",
    "debit_to_credit": "Outgoing total divided by incoming total (incoming floored at 1).",
    "late_night_share": "Share of transactions between 00:00 and 05:00.",
}

STATUS_AGGREGATES: dict[str, str] = {
    "declined_share": "Share of transactions that were declined or reversed.",
}


def category_aggregates(categories: dict[str, list[str]]) -> dict[str, str]:
    """Count, flag and share features for each merchant category."""
    out: dict[str, str] = {}
    for name in categories:
        out[f"n_{name}"] = f"Number of transactions whose description mentions {name}."
        out[f"has_{name}"] = f"1 if any transaction mentions {name}, else 0."
        out[f"share_{name}"] = f"Share of transactions that mention {name}."
    return out


def aggregate_catalogue(
    categories: dict[str, list[str]] | None = None, has_status: bool = False
) -> dict[str, str]:
    """Every feature the aggregation can produce, with its description."""
    catalogue = dict(BASE_AGGREGATES)
    if has_status:
        catalogue.update(STATUS_AGGREGATES)
    catalogue.update(category_aggregates(categories or DEFAULT_CATEGORIES))
    return catalogue
