"""cygrad.backends, as torch.backends answers on a CPU-only machine: no MPS, no CUDA, no
cuDNN. Flags that programs set (cudnn.deterministic, cudnn.benchmark, ...) are accepted;
cygrad's kernels are deterministic and exact whatever they say."""

from types import SimpleNamespace

mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
cuda = SimpleNamespace(is_built=lambda: False, matmul=SimpleNamespace(
    allow_tf32=False, allow_fp16_reduced_precision_reduction=False))
cudnn = SimpleNamespace(is_available=lambda: False, enabled=False, deterministic=False,
                        benchmark=False, allow_tf32=False, version=lambda: None)
mkldnn = SimpleNamespace(is_available=lambda: False, enabled=False)
openmp = SimpleNamespace(is_available=lambda: True)
cpu = SimpleNamespace(get_cpu_capability=lambda: "cygrad")
