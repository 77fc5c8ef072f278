"""Reading CSV data from a local path or an http(s) URL, with clear errors."""

from __future__ import annotations

import socket

import pytest

from src.training.data_sources import read_csv_source
from src.training.errors import DataSourceError
from tests.unit_tests.training.conftest import mixed_regression_frame


def test_local_csv(write_csv):
    path = write_csv(mixed_regression_frame(), "houses.csv")
    frame = read_csv_source(str(path))
    assert frame.shape == (160, 4)


def test_missing_file(tmp_path):
    with pytest.raises(DataSourceError, match=r"data file not found: .*missing\.csv"):
        read_csv_source(str(tmp_path / "missing.csv"))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataSourceError, match=r"empty\.csv is empty"):
        read_csv_source(str(path))


def test_url(http_server):
    base, root = http_server
    mixed_regression_frame().to_csv(root / "houses.csv", index=False)
    frame = read_csv_source(f"{base}/houses.csv")
    assert frame.columns.tolist() == ["LotArea", "YearBuilt", "MSZoning", "SalePrice"]
    assert len(frame) == 160


def test_url_not_found(http_server):
    base, _ = http_server
    with pytest.raises(DataSourceError, match=r"could not download .*/nope.csv: HTTP 404"):
        read_csv_source(f"{base}/nope.csv")


def test_unreachable_url():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataSourceError, match=f"could not reach http://127.0.0.1:{port}/x.csv"):
        read_csv_source(f"http://127.0.0.1:{port}/x.csv", timeout=2)
