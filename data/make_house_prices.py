"""Regenerate data/house_prices.csv: a small synthetic table shaped like seed 003's house data.

11 mixed features (numeric codes, categories, areas, years) with some missing values, and the
target SalePrice. Deterministic: ``python data/make_house_prices.py`` rewrites the same file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 400
SEED = 3


def make(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    """The synthetic house-price table."""
    rng = np.random.default_rng(seed)
    zoning = rng.choice(["RL", "RM", "FV", "RH", "C (all)"], rows, p=[0.7, 0.15, 0.07, 0.05, 0.03])
    bldg = rng.choice(
        ["1Fam", "2fmCon", "Duplex", "TwnhsE", "Twnhs"], rows, p=[0.8, 0.03, 0.05, 0.08, 0.04]
    )
    lot_config = rng.choice(
        ["Inside", "Corner", "CulDSac", "FR2", "FR3"], rows, p=[0.7, 0.18, 0.07, 0.04, 0.01]
    )
    exterior = rng.choice(["VinylSd", "HdBoard", "MetalSd", "Wd Sdng", "Plywood", "CemntBd"], rows)
    year_built = rng.integers(1900, 2010, rows)
    remodel = np.minimum(2010, year_built + rng.integers(0, 40, rows))
    lot_area = rng.gamma(4.0, 2500.0, rows).round().astype(int) + 1300
    total_bsmt = np.where(
        rng.random(rows) < 0.05, 0.0, rng.normal(1050, 400, rows).clip(200, 3000).round()
    )
    bsmt_fin2 = np.where(rng.random(rows) < 0.85, 0.0, rng.gamma(2.0, 150.0, rows).round())
    overall = rng.integers(1, 10, rows)
    subclass = rng.choice([20, 30, 50, 60, 70, 80, 90, 120, 160, 190], rows)
    price = (
        40_000
        + 6.0 * lot_area**0.85
        + 600.0 * (year_built - 1900)
        + 250.0 * (remodel - year_built)
        + 55.0 * total_bsmt
        + 4_000.0 * overall
        + np.select(
            [zoning == "FV", zoning == "RL", zoning == "C (all)"], [30_000, 12_000, -35_000], 0
        )
        + np.select([bldg == "1Fam", bldg == "TwnhsE"], [15_000, 5_000], 0)
        + rng.normal(0, 12_000, rows)
    ).round(-2)
    frame = pd.DataFrame(
        {
            "MSSubClass": subclass,
            "MSZoning": zoning,
            "LotArea": lot_area,
            "LotConfig": lot_config,
            "BldgType": bldg,
            "OverallCond": overall,
            "YearBuilt": year_built,
            "YearRemodAdd": remodel,
            "Exterior1st": exterior,
            "BsmtFinSF2": bsmt_fin2,
            "TotalBsmtSF": total_bsmt,
            "SalePrice": price.astype(int),
        }
    )
    # a few gaps, as in real listings: imputed inside the trained pipeline
    frame.loc[rng.random(rows) < 0.03, "MSZoning"] = None
    frame.loc[rng.random(rows) < 0.03, "Exterior1st"] = None
    frame.loc[rng.random(rows) < 0.04, "TotalBsmtSF"] = np.nan
    return frame


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "house_prices.csv"
    make().to_csv(out, index=False)
    print(f"wrote {out}")
