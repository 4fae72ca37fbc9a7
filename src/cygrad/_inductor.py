"""torch._inductor, the part programs touch before torch.compile: `config`, the code
generator's settings (gpt-fast's and llm.c's `config.coordinate_descent_tuning = True`).
cygrad.compile captures and replays cygrad's own kernels, with no code generator: the settings
are kept (torch's defaults for those programs read) and change nothing."""


class config:  # noqa: N801  (torch._inductor.config, a namespace: as_torch makes it a module)
    coordinate_descent_tuning = False
    fx_graph_cache = True
    max_autotune = False
    freezing = False
    epilogue_fusion = True

    class triton:  # noqa: N801
        unique_kernel_names = True
        cudagraphs = False
