"""Generated kernels; see ``_codegen``."""
