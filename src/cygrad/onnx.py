"""cygrad.onnx: torch.onnx's names a program imports. `is_in_onnx_export()` is False (model
code asks it to take its export-only path); exporting is not built and raises."""

__all__ = ["export", "dynamo_export", "is_in_onnx_export"]


def is_in_onnx_export():
    return False


def export(*args, **kwargs):
    raise NotImplementedError("cygrad does not implement torch.onnx.export: there is no ONNX "
                              "exporter (export the state_dict and load it into torch)")


def dynamo_export(*args, **kwargs):
    raise NotImplementedError("cygrad does not implement torch.onnx.dynamo_export")
