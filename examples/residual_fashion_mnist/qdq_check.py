"""Where the QDQ export put Q/DQ, counted from the ONNX graphs: residual Add shortcuts and pool
inputs (TensorRT developer guide, "Q/DQ layer-placement recommendations": quantize the residual
input of an Add that follows a weighted op, not its conv-side input, which fuses into the conv's
epilogue; MaxPool and AveragePool run in INT8 between a DQ and a Q)."""

import onnx

POOL_OPS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
DQ_OPS = ("DequantizeLinear", "TRT_FP8DequantizeLinear")


def residual_adds(float_onnx):
    """[(Add node name, shortcut input index)] of the float model: each Add one of whose inputs
    comes from a Conv named ".../conv2/Conv" (the block's last conv, BN folded: the conv side);
    the other input is the shortcut. Raises ValueError for an Add that has no such input or
    two (this example's network has neither)."""
    graph = onnx.load(float_onnx).graph
    producer = {out: node for node in graph.node for out in node.output}
    adds = []
    for node in graph.node:
        if node.op_type != "Add":
            continue
        conv_side = [i for i, t in enumerate(node.input)
                     if t in producer and producer[t].op_type == "Conv"
                     and producer[t].name.endswith("/conv2/Conv")]
        if len(conv_side) != 1 or len(node.input) != 2:
            raise ValueError(f"{float_onnx}: Add {node.name!r} has {len(conv_side)} conv2-side "
                             f"inputs among {list(node.input)}; expected one of two")
        adds.append((node.name, 1 - conv_side[0]))
    return adds


def placement(float_onnx, qdq_onnx):
    """Counts, in qdq_onnx, the residual Adds (found in float_onnx) whose shortcut input comes
    from a DequantizeLinear, those whose conv-side input does (TensorRT wants none), and the
    pool nodes whose input comes from a DequantizeLinear. Returns {"adds", "shortcut_qdq",
    "conv_side_qdq", "pools", "pool_qdq", "missing": [names of the Adds / pools without Q/DQ
    where it belongs], "q_nodes": number of QuantizeLinear-like nodes}."""
    shortcuts = dict(residual_adds(float_onnx))
    graph = onnx.load(qdq_onnx).graph
    producer = {out: node for node in graph.node for out in node.output}

    def from_dq(tensor):
        return tensor in producer and producer[tensor].op_type in DQ_OPS

    found = {"adds": 0, "shortcut_qdq": 0, "conv_side_qdq": 0, "pools": 0, "pool_qdq": 0,
             "missing": [],
             "q_nodes": sum(n.op_type.endswith("QuantizeLinear")
                            and "Dequantize" not in n.op_type for n in graph.node)}
    for node in graph.node:
        if node.op_type == "Add" and node.name in shortcuts:
            found["adds"] += 1
            shortcut = shortcuts[node.name]
            if from_dq(node.input[shortcut]):
                found["shortcut_qdq"] += 1
            else:
                found["missing"].append(f"{node.name} shortcut input {shortcut}")
            if from_dq(node.input[1 - shortcut]):
                found["conv_side_qdq"] += 1
        elif node.op_type in POOL_OPS:
            found["pools"] += 1
            if from_dq(node.input[0]):
                found["pool_qdq"] += 1
            else:
                found["missing"].append(f"{node.name} input")
    if found["adds"] != len(shortcuts):
        found["missing"].append(f"{len(shortcuts) - found['adds']} residual Add(s) of the float "
                                "model not found by name in the QDQ model")
    return found


def describe(found):
    """One line for the log."""
    return (f"residual Add shortcuts with Q/DQ {found['shortcut_qdq']}/{found['adds']} "
            f"(conv-side inputs with Q/DQ: {found['conv_side_qdq']}), pool inputs with Q/DQ "
            f"{found['pool_qdq']}/{found['pools']}, {found['q_nodes']} Q nodes")


def problems(name, found):
    """Messages for a placement that misses a shortcut or pool input, or quantizes a conv-side
    Add input."""
    out = [f"{name}: no Q/DQ on {m}" for m in found["missing"]]
    if found["conv_side_qdq"]:
        out.append(f"{name}: {found['conv_side_qdq']} conv-side Add input(s) carry Q/DQ "
                   "(TensorRT fuses that input into the conv; only the shortcut should)")
    return out
