"""Demo stand-ins for the swappers and restorers a job may choose (--swapper, --enhancer).

Each has the inputs and outputs of its manifest entry and a deterministic effect that a
test can recompute with numpy from the initializers (so the stage's pre- and
post-processing can be checked against an independent computation):

- swappers (hyperswap, simswap): out = clip(target * GAIN + source @ P, lo, hi), GAIN
  per RGB plane (different for each, so a channel swap shows), P a fixed 512 x 3
  projection of the source input (so the source latent shows), lo..hi the kind's
  output range;
- embedding converter: out = input @ Q, Q a fixed 512 x 512 matrix;
- restorers (CodeFormer, GPEN-BFR): out = clip(x * GAIN + BIAS [+ weight * WEIGHT_GAIN],
  -1, 1); CodeFormer's float64 weight input is used, so the fidelity shows.

The builders import farm.models.standins' graph helpers when called (that module lists
these in STANDINS and imports this one at its top).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from farm.errors import ModelError
from farm.models.conventions import conventions
from farm.models.manifest import ModelEntry

GAIN = np.array([0.92, 0.81, 0.70], np.float32)
"""Per RGB plane: how much of the model's input each stand-in keeps."""
BIAS = np.array([0.06, -0.04, 0.02], np.float32)
"""Per RGB plane: what the restorer stand-ins add (in their -1..1 range)."""
WEIGHT_GAIN = np.array([0.10, 0.05, -0.08], np.float32)
"""Per RGB plane: what CodeFormer's stand-in adds per unit of its fidelity weight."""
SEED = 20261203


def _helpers():   # noqa: ANN202
    from farm.models import standins  # noqa: PLC0415  (it imports this module at its top)

    return standins._const, standins._model


def _plane(values: np.ndarray) -> np.ndarray:
    return values.reshape(1, 3, 1, 1).astype(np.float32)


def swapper_standin(entry: ModelEntry) -> onnx.ModelProto:
    """target [1,3,S,S] + source [1,512] -> clip(target * GAIN + source @ P, lo, hi)."""
    const, model = _helpers()
    names = {len(t.shape): t.name for t in entry.inputs}
    if set(names) != {2, 4}:
        raise ModelError(f"{entry.name}: expected a 4-D target and a 2-D source input")
    lo, hi = conventions(entry).output_range
    rng = np.random.default_rng(SEED)
    projection = (rng.standard_normal((512, 3)) * 0.4).astype(np.float32)
    nodes = [
        helper.make_node("Mul", [names[4], "gain"], ["kept"]),
        helper.make_node("MatMul", [names[2], "projection"], ["shift"]),
        helper.make_node("Reshape", ["shift", "plane_shape"], ["shift4"]),
        helper.make_node("Add", ["kept", "shift4"], ["sum"]),
        helper.make_node("Clip", ["sum", "lo", "hi"], [entry.outputs[0].name]),
    ]
    inits = [const("gain", _plane(GAIN)), const("projection", projection),
             const("plane_shape", np.array([-1, 3, 1, 1], np.int64)),
             const("lo", np.array(lo, np.float32)), const("hi", np.array(hi, np.float32))]
    return model(entry, nodes, inits, "keeps a share of each colour plane and shifts it by the source identity")


def converter_standin(entry: ModelEntry) -> onnx.ModelProto:
    """[N,512] -> [N,512]: a fixed linear map Q (the swapper's identity space)."""
    const, model = _helpers()
    rng = np.random.default_rng(SEED + 1)
    q = (rng.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float32)
    nodes = [helper.make_node("MatMul", [entry.inputs[0].name, "q"], [entry.outputs[0].name])]
    return model(entry, nodes, [const("q", q)], "a fixed linear map of the embedding")


def restorer_standin(entry: ModelEntry) -> onnx.ModelProto:
    """[1,3,S,S] in -1..1 (+ CodeFormer's weight) -> clip(x * GAIN + BIAS (+ w * WEIGHT_GAIN), -1, 1)."""
    const, model = _helpers()
    image = [t.name for t in entry.inputs if len(t.shape) == 4]
    others = [t for t in entry.inputs if len(t.shape) != 4]
    nodes = [
        helper.make_node("Mul", [image[0], "gain"], ["kept"]),
        helper.make_node("Add", ["kept", "bias"], ["shifted"]),
    ]
    last = "shifted"
    inits = [const("gain", _plane(GAIN)), const("bias", _plane(BIAS)),
             const("lo", np.array(-1.0, np.float32)), const("hi", np.array(1.0, np.float32))]
    if others:   # CodeFormer's fidelity weight, float64 [1]
        nodes += [
            helper.make_node("Cast", [others[0].name], ["weight32"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["weight32", "weight_gain"], ["weighted"]),
            helper.make_node("Add", ["shifted", "weighted"], ["with_weight"]),
        ]
        inits.append(const("weight_gain", _plane(WEIGHT_GAIN)))
        last = "with_weight"
    nodes.append(helper.make_node("Clip", [last, "lo", "hi"], [entry.outputs[0].name]))
    return model(entry, nodes, inits, "keeps a share of each colour plane and shifts it"
                 + (" by the fidelity weight" if others else ""))
