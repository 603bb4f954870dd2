"""Training examples: the selected rows a run reads, with the columns its views and objective need.

Tokenising and padding are the model's (:mod:`lsr.model.batching`); the MWF alignment targets are stored with the
rows once by the target pass (:mod:`lsr.training.targets`) and carried into the batch as constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lsr.core.errors import InputError
from lsr.data.io import read_parquet_dir
from lsr.data.training_rows import drop_failed_rows, training_dir
from lsr.model.views import view_columns

if TYPE_CHECKING:
    import ray.data

def required_columns(views: Sequence[str], extra: Sequence[str] = (), summary_column: str = "summary") -> list[str]:
    """The columns a training input must have for ``views``, an objective's ``extra`` ones and the target column."""
    return list(dict.fromkeys(["id", "document", summary_column, *view_columns(views), *extra]))


def read_training_rows(
    path: str, views: Sequence[str], extra_columns: Sequence[str] = (), summary_column: str = "summary"
) -> tuple[ray.data.Dataset, int, int]:
    """The selected rows under ``path``, their count, and how many rows with a mining error were left out.

    ``extra_columns`` are further columns the objective reads (checked up front like the others). An empty set is
    an error rather than a run that trains on nothing.
    """

    source = training_dir(path)
    raw = read_parquet_dir(source, required_columns(views, extra_columns, summary_column)).materialize()
    total = raw.count()
    ds = raw.map_batches(drop_failed_rows, batch_format="pyarrow").materialize()
    count = ds.count()
    if count == 0:
        raise InputError(
            f"{source}: the training set is empty ({total} rows read, {total - count} with a mining error); "
            "did selection keep any example?"
        )
    return ds, count, total - count
