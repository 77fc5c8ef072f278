"""Read a CSV table from a local path or an http(s) URL, with clear errors."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from src.training.errors import DataSourceError

MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024


def is_url(source: str) -> bool:
    """True for http(s) URLs."""
    return urlparse(source).scheme.lower() in ("http", "https")


def _download(url: str, timeout: float) -> bytes:
    if not is_url(url):
        raise DataSourceError(f"only http(s) URLs can be downloaded, not {url!r}")
    # The scheme is restricted to http(s) just above, so file:// and friends never get here.
    request = urllib.request.Request(  # noqa: S310 - scheme checked to be http(s) above
        url, headers={"User-Agent": "mlops-toolset-training"}
    )
    try:
        # Safe: only http(s) URLs reach this line (checked at the top of the function).
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise DataSourceError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DataSourceError(f"could not reach {url}: {exc.reason}") from None
    except TimeoutError:
        raise DataSourceError(f"could not reach {url}: timed out after {timeout:g}s") from None
    except OSError as exc:
        raise DataSourceError(f"could not download {url}: {exc}") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise DataSourceError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
    return data


def read_csv_source(source: str, timeout: float = 30.0) -> pd.DataFrame:
    """Load a CSV from a local path or an http(s) URL.

    Raises `DataSourceError` for a missing file, an unreachable URL, an empty file or
    unparsable CSV.
    """
    try:
        if is_url(source):
            buffer: io.BytesIO | Path = io.BytesIO(_download(source, timeout))
        else:
            buffer = Path(source)
            if not buffer.is_file():
                raise DataSourceError(f"data file not found: {source}")
        return pd.read_csv(buffer)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"data file {source} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"cannot parse {source} as CSV: {exc}") from None
    except OSError as exc:
        raise DataSourceError(f"cannot read {source}: {exc}") from None
