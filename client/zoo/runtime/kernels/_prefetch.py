"""A software prefetch for numba kernels (LLVM's ``llvm.prefetch`` intrinsic).

The batched sparse kernels read, for each nonzero, 256 bytes of xT at a row given by the
nonzero's column index: the hardware prefetchers cannot guess those rows, so the kernel
names the row of the nonzero a few steps ahead.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

_get_function: Any = cgutils.get_or_insert_function  # untyped numba helper


@intrinsic
def prefetch(typingctx: Any, arr: Any, index: Any) -> Any:
    """Prefetch ``arr[index]`` (1-D array, unsigned index) into all cache levels for reading."""
    if not isinstance(arr, types.Array) or arr.ndim != 1:
        return None
    sig = types.void(arr, index)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        ary = context.make_array(arr)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [idx])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = _get_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # (address, rw = 0 read, locality = 3 keep in all levels, cache type = 1 data)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])

    return sig, codegen
