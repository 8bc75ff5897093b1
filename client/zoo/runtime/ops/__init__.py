"""Op adapters, grouped by family; importing this package registers all of them."""

from zoo.runtime.ops import (  # noqa: F401
    activation,
    conv,
    elementwise,
    indexing,
    linear,
    norm,
    pool,
    quantized,
    reduce,
    resize,
    shape,
)
