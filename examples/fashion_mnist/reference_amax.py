"""A local cross-check of the server: per-tensor max |x| of every Conv/Linear input, computed in
torch from the same calibration batches, compared with the server's `max` amax table."""

import math

import torch
from torch import nn

_QUANTIZED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
              nn.ConvTranspose3d, nn.Linear)


def local_input_amax(net, batches):
    """Returns {"<module>._input_quantizer": max |x| over all batches} (pytorch-quantization
    names, as qcal.torch.calibrate records them)."""
    amax = {}
    hooks = []

    def hook_for(name):
        def hook(_module, inputs):
            value = float(inputs[0].detach().abs().max())
            key = f"{name}._input_quantizer"
            amax[key] = max(amax.get(key, 0.0), value)
        return hook

    for name, module in net.named_modules():
        if isinstance(module, _QUANTIZED):
            hooks.append(module.register_forward_pre_hook(hook_for(name)))
    try:
        net.eval()
        with torch.no_grad():
            for batch in batches:
                net(torch.from_numpy(batch))
    finally:
        for h in hooks:
            h.remove()
    return amax


def compare_max_amax(local, server_amax, rel_tol=1e-6):
    """Returns a list of human-readable mismatches between local ({name: amax}) and the
    server's per-tensor input amax ({name: amax}); empty when they agree."""
    problems = []
    for name, want in sorted(local.items()):
        got = server_amax.get(name)
        if got is None:
            problems.append(f"{name}: missing from the server's table (local max {want:.6g})")
        elif not math.isclose(got, want, rel_tol=rel_tol):
            problems.append(f"{name}: server amax {got:.6g}, local max |x| {want:.6g}")
    return problems
