"""The graph onnxruntime's `quantize_dynamic(model, weight_type=QInt8)` writes, built with the onnx API alone
(onnxruntime's Python package is not installable here).

What quantize_dynamic does with its defaults, and so what this does:
- every MatMul whose B is a float initializer (`MatMulConstBOnly`, on by default in dynamic mode) becomes
      x_quantized, x_scale, x_zero_point = DynamicQuantizeLinear(x)      (uint8, one per activation tensor)
      y_int = MatMulInteger(x_quantized, W_quantized, x_zero_point, W_zero_point)
      y = Mul(Cast(y_int, float), Mul(x_scale, W_scale))
- weights per tensor, symmetric int8: scale = max|W| / 127, zero point 0, q = clip(round_half_even(W / scale), -127, 127)
- the patch embedding Conv likewise becomes DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul(scales),
  then its float bias is added, reshaped to [1, dim, 1, 1].
- MatMuls between two activations (attention's Q K^T and P V) stay float, and so does the classifier: it is
  exported as Gemm (its input is 2-D), which dynamic mode does not quantize.
onnxruntime then fuses each MatMul pattern into DynamicQuantizeMatMul / MatMulIntegerToFloat when it loads the model.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def quantize_weight(w):
    """Per-tensor symmetric int8 as onnxruntime's quantize_data(symmetric=True): returns (q int8, scale f32)."""
    absmax = float(max(abs(float(w.min())), abs(float(w.max())), 0.0))
    scale = np.float32(absmax / 127.0 if absmax > 0 else 1.0)
    q = np.clip(np.round(w.astype(np.float32) / scale), -127, 127).astype(np.int8)
    return q, scale


def quantize_dynamic(model):
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes, new_inits, quantized_inputs, used = [], [], {}, set()

    for node in graph.node:
        weight = inits.get(node.input[1]) if node.op_type in ("MatMul", "Conv") else None
        if weight is None or weight.data_type != TensorProto.FLOAT:
            nodes.append(node)
            continue
        x, w_name, y, name = node.input[0], node.input[1], node.output[0], node.name
        if x not in quantized_inputs:  # one DynamicQuantizeLinear per activation, shared by its MatMuls (Q, K, V)
            quantized_inputs[x] = (x + "_quantized", x + "_scale", x + "_zero_point")
            nodes.append(helper.make_node("DynamicQuantizeLinear", [x], list(quantized_inputs[x]), x + "_QuantizeLinear"))
        xq, xs, xz = quantized_inputs[x]

        q, scale = quantize_weight(numpy_helper.to_array(weight))
        new_inits += [
            numpy_helper.from_array(q, w_name + "_quantized"),
            numpy_helper.from_array(np.array(scale, dtype=np.float32), w_name + "_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), w_name + "_zero_point"),
        ]
        used.add(w_name)

        y_int = y + "_output_quantized"
        scaled = y if len(node.input) < 3 else y + "_scaled"
        integer_op = "MatMulInteger" if node.op_type == "MatMul" else "ConvInteger"
        nodes += [
            helper.make_node(integer_op, [xq, w_name + "_quantized", xz, w_name + "_zero_point"], [y_int], name + "_quant",
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute}),
            helper.make_node("Cast", [y_int], [y_int + "_cast_output"], y_int + "_cast", to=TensorProto.FLOAT),
            helper.make_node("Mul", [xs, w_name + "_scale"], [name + "_quant_scales_mul:0"], name + "_quant_scales_mul"),
            helper.make_node("Mul", [y_int + "_cast_output", name + "_quant_scales_mul:0"], [scaled], name + "_output_scale_mul"),
        ]
        if len(node.input) == 3:  # Conv bias: [dim] -> [1, dim, 1, 1]
            shape = np.ones(len(weight.dims), dtype=np.int64)
            shape[1] = -1
            new_inits.append(numpy_helper.from_array(shape, y + "_bias_reshape_shape"))
            nodes += [
                helper.make_node("Reshape", [node.input[2], y + "_bias_reshape_shape"], [y + "_bias_reshape_output"]),
                helper.make_node("Add", [scaled, y + "_bias_reshape_output"], [y], y + "_bias_add"),
            ]

    still_read = {i for n in nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name not in used or t.name in still_read]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    return model
