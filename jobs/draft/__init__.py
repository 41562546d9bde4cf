"""A draft spec from a user's own CSV: `python -m riskbento init data.csv --target c --positive v`.

Every choice is read off the data; costs and tiers are placeholders, and each line a person
must check carries `# REVIEW:`. Each module imports only the ones listed before it:
findings (shared types and thresholds), table_columns, transaction_file, yaml_text, drafter.
"""

from jobs.draft.drafter import Draft, draft_spec, write_draft
from jobs.draft.findings import DraftError

__all__ = ["Draft", "DraftError", "draft_spec", "write_draft"]
