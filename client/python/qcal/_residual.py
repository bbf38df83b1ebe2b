"""Where the shortcut (identity) input of each residual add comes from, so that qcal.torch can
record it as "<block>.residual_quantizer", the name pytorch-quantization's ResNet example gives it
(examples/torchvision/models/classification/resnet.py: `out += self.residual_quantizer(identity)`).

Two ways, both non-intrusive for the model's numbers:
- explicit: a ResidualQuantizer module the user places and calls on the shortcut;
- automatic: torch.fx traces each block with its children kept as leaves and finds the adds.

The automatic rule (find_residual_sites):
1. A candidate block is any module with children and its own forward, except nn.Sequential
   (whose forward only chains its children) and blocks that own a ResidualQuantizer child (the
   user placed the quantizer: recording the add as well would count the shortcut twice).
2. An add is operator.add / operator.iadd / torch.add / Tensor.add / Tensor.add_ of two traced
   values (an add of a constant or of a parameter is not a residual add).
3. It is residual when both operands descend from a common value (the fork: the latest common
   ancestor, in graph order) and at least one child module is called on the way from the fork to
   the longer operand.
4. The shortcut is the operand with the shorter path (in graph edges) back to the fork: the fork
   itself (`identity = x`) or a downsample-like child. Between paths of equal length, the one
   whose child modules hold fewer parameters (a 1x1 projection beside a whole body called as
   one Sequential); equal in both (symmetric branches) is not a residual add.
5. The shortcut is recorded where it can be seen from outside the block: a positional input of
   the block (a forward pre-hook on the block) or the output of a child called once in the
   block's forward (a forward hook on that child). A shortcut computed by a function
   (`torch.relu(x) + out`) or by a child called several times has no such place and is left out.
Blocks that fx cannot trace (data-dependent control flow, for example) and shortcuts that rule 5
leaves out are reported once per call, in one ResidualTraceWarning: placing a ResidualQuantizer
covers them.
"""

import dataclasses
import operator
import warnings

import torch
from torch import fx, nn

__all__ = ["ResidualQuantizer", "ResidualTraceWarning", "find_residual_sites"]

RESIDUAL_QUANTIZER = "residual_quantizer"


class ResidualQuantizer(nn.Module):
    """The shortcut of a residual add, named for calibration: forward(x) returns x itself (no
    copy, no op: an ONNX export has no node for it). Place it as pytorch-quantization's resnet.py
    places its TensorQuantizer:

        self.residual_quantizer = qcal.torch.ResidualQuantizer()
        ...
        out = out + self.residual_quantizer(identity)

    qcal.torch.calibrate records its input under its module path ("layer1.0.residual_quantizer")
    and does not look for residual adds in the block that owns it."""

    def forward(self, x):
        return x


class ResidualTraceWarning(UserWarning):
    """Some residual adds could not be found or recorded automatically (untraceable blocks,
    shortcuts with no module boundary): place a ResidualQuantizer there, or filter this."""


@dataclasses.dataclass(frozen=True)
class ResidualSite:
    """One shortcut to record. name: "<block>.residual_quantizer" ("residual_quantizer_<i>" for
    the i-th further add of the same block, i = 1, 2, ...); module: the module to hook; index: the
    block's positional input (forward pre-hook on module = the block) or None (forward hook on
    module = a child, recording its output)."""

    name: str
    module: nn.Module
    index: object = None


class _ChildrenAsLeaves(fx.Tracer):
    # Every submodule call stays one call_module node: only the block's own forward is traced.
    def is_leaf_module(self, module, qualified_name):
        return True


_ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
_ADD_METHODS = ("add", "add_")


def _add_operands(node):
    if node.op == "call_function" and node.target in _ADD_FUNCTIONS:
        pass
    elif node.op == "call_method" and node.target in _ADD_METHODS:
        pass
    else:
        return None
    operands = list(node.args[:2])
    if len(operands) == 1 and "other" in node.kwargs:
        operands.append(node.kwargs["other"])
    if len(operands) != 2 or not all(isinstance(a, fx.Node) for a in operands):
        return None
    if any(a.op == "get_attr" for a in operands):
        return None
    return operands


def _distances_back(node):
    """{ancestor or node itself: the shortest path length from it to node, in edges}."""
    distance = {node: 0}
    frontier = [node]
    while frontier:
        following = []
        for current in frontier:
            for source in current.all_input_nodes:
                if source not in distance:
                    distance[source] = distance[current] + 1
                    following.append(source)
        frontier = following
    return distance


def _shortcut(block, operands, order):
    """The shortcut operand of a residual add (rules 3 and 4), or None."""
    back = [_distances_back(a) for a in operands]
    common = set(back[0]) & set(back[1])
    if not common:
        return None
    fork = max(common, key=order.__getitem__)
    children = [{n.target for n in b if n.op == "call_module" and order[n] > order[fork]}
                for b in back]
    cost = [(b[fork], _parameters(block, c)) for b, c in zip(back, children)]
    if cost[0] == cost[1]:
        return None
    short, long = (0, 1) if cost[0] < cost[1] else (1, 0)
    if not children[long]:
        return None
    return operands[short]


def _parameters(block, targets):
    return sum(p.numel() for t in targets for p in block.get_submodule(t).parameters())


def _traced_graph(block):
    return _ChildrenAsLeaves().trace(block)


def _is_candidate(block):
    if type(block) is nn.Sequential or not any(True for _ in block.children()):
        return False
    if type(block).forward is nn.Module.forward:  # ModuleList, ModuleDict: never called
        return False
    return not any(isinstance(child, ResidualQuantizer) for child in block.children())


def _prefix(path):
    return f"{path}." if path else ""


def find_residual_sites(model, warn=True, stacklevel=2):
    """The residual adds of `model` (see the module docstring), as [(block path, ResidualSite)] in
    named_modules() order. warn: one ResidualTraceWarning listing the blocks that could not be
    traced and the shortcuts that could not be hooked, attributed `stacklevel` frames up (Python
    then shows it once per calling line, by default)."""
    sites, untraced, unhooked = [], [], []
    for path, block in model.named_modules():
        if not _is_candidate(block):
            continue
        try:
            graph = _traced_graph(block)
        except Exception:  # any tracing failure: the block runs as before, unrecorded
            untraced.append(path or "<model>")
            continue
        order = {node: i for i, node in enumerate(graph.nodes)}
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        calls = {}
        for node in graph.nodes:
            if node.op == "call_module":
                calls[node.target] = calls.get(node.target, 0) + 1
        found = 0
        for node in graph.nodes:
            operands = _add_operands(node)
            shortcut = _shortcut(block, operands, order) if operands else None
            if shortcut is None:
                continue
            suffix = f"_{found}" if found else ""
            name = f"{_prefix(path)}{RESIDUAL_QUANTIZER}{suffix}"
            if shortcut.op == "placeholder" and not str(shortcut.target).startswith("*"):
                site = ResidualSite(name, block, placeholders.index(shortcut))
            elif shortcut.op == "call_module" and calls[shortcut.target] == 1:
                site = ResidualSite(name, block.get_submodule(shortcut.target))
            else:
                unhooked.append(f"{path or '<model>'} ({node.name})")
                continue
            sites.append((path, site))
            found += 1
    if warn and (untraced or unhooked):
        parts = []
        if untraced:
            parts.append(f"torch.fx could not trace {_listed(untraced)}")
        if unhooked:
            parts.append(f"no module boundary carries the shortcut of {_listed(unhooked)}")
        warnings.warn(
            "qcal.torch: residual adds not recorded automatically: " + "; ".join(parts)
            + ". Place a qcal.torch.ResidualQuantizer on those shortcuts, or pass "
            "residual=\"explicit\".",
            ResidualTraceWarning,
            stacklevel=stacklevel + 1,
        )
    return sites


def _listed(items, shown=5):
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
