"""Any PyTorch CNN as a network: `trace(module)` derives its graph from torch.fx.

The module is traced symbolically (torch.fx, with torchvision's feature-extraction
tracer), and every traced operation becomes a node of a `Graph` whose op the op table
(`circuits.core.ops`) knows: convolutions (grouped, dilated, padded as torch pads),
batch norm (folded into the convolution it follows; a channel-wise affine op where it
follows none), ReLU and its relatives, pooling with torch's semantics, residual adds,
squeeze-and-excitation gates, concatenations, flatten and linear layers; dropout and
stochastic depth are identities (eval mode). Anything else becomes an *opaque* node
that runs the original code: hooks, caching, ablation and full forwards go through it;
the cone, kernel composition and bounds across it are refused, naming it.

Tensor names follow torchvision's feature-extraction convention
(`torchvision.models.feature_extraction.get_graph_node_names`): ``layer2.1.relu_1``,
``features.4.conv.1``; the output of every module that is not a leaf also gets its
module's name (``layer2``, ``features.4``), so a unit reads ``layer3:17``. The input is
``input``. A convolution followed by its batch norm is one tensor named after the batch
norm (``layer1.0.bn1``: BN's output); the convolution's own name is listed in
``graph.folded`` and explains itself when asked for.

The graph is the returned network's (``model.graph``), not a global name table: every
ResNet has a ``layer2``, so units of a traced network are resolved against its graph
(``model.unit("layer3:17")``).

Example:
    >>> import torch, torchvision
    >>> from circuits.core.trace import trace
    >>> module = torchvision.models.resnet18(weights=None).eval()
    >>> model = trace(module, input_size=64)                     # doctest: +SKIP
    >>> model.unit("layer3:17").layer, model.graph.node("layer3").channels  # doctest: +SKIP
    ('layer3', 256)
    >>> x = torch.rand(1, 3, 64, 64)
    >>> bool(torch.allclose(model(x), module(x), rtol=1e-4, atol=1e-4))     # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import operator
from typing import Any, Callable, Sequence

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from circuits.core.graph import INPUT, Graph, Node
from circuits.core.ops import OPS, fold_batchnorm

__all__ = ["trace", "TraceError"]


class TraceError(ValueError):
    """A module that cannot be traced into a network (and why)."""


# --- what each traced call is --------------------------------------------------------

_ACTIVATION_MODULES = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish", nn.Sigmoid: "sigmoid",
    nn.Hardsigmoid: "hardsigmoid", nn.Tanh: "tanh",
}
_ACTIVATION_FUNCTIONS = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.silu: "silu", F.hardswish: "hardswish",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.hardsigmoid: "hardsigmoid", torch.tanh: "tanh",
    F.tanh: "tanh",
}
_ACTIVATION_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout, nn.Identity)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):  # pragma: no cover - a signature only (F.avg_pool2d is a builtin)
    raise NotImplementedError


def _bind(fn: Callable, args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """A Python function's arguments by name (defaults filled in); None if it has no signature."""
    # F.max_pool2d dispatches on return_indices, F.avg_pool2d is a builtin: their signatures
    fn = {F.max_pool2d: F._max_pool2d, F.avg_pool2d: _avg_pool2d}.get(fn, fn)
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


class _Opaque(nn.Module):
    """Runs one traced call as written: a submodule, a function or a method, with the
    traced constants; `inputs` are the tensors it reads, in the node's input order."""

    def __init__(self, kind: str, target, args, kwargs, inputs: Sequence[torch.fx.Node], sub: nn.Module | None):
        super().__init__()
        self.kind, self.target, self.sub = kind, target, sub
        pos = {n: i for i, n in enumerate(inputs)}
        slot = lambda a: _Slot(pos[a])  # noqa: E731
        self.args = torch.fx.node.map_arg(args, slot)
        self.kw = torch.fx.node.map_arg(kwargs, slot)

    def forward(self, *xs):
        fill = lambda a: xs[a.i] if isinstance(a, _Slot) else a  # noqa: E731
        args = torch.fx.node.map_aggregate(self.args, fill)
        kwargs = torch.fx.node.map_aggregate(self.kw, fill)
        if self.kind == "call_module":
            return self.sub(*args, **kwargs)
        if self.kind == "call_method":
            return getattr(args[0], self.target)(*args[1:], **kwargs)
        if self.kind == "get_attr":
            return self.target
        return self.target(*args, **kwargs)

    def extra_repr(self) -> str:
        return _describe(self.kind, self.target, self.sub)


class _Slot:
    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"<input {self.i}>"


def _describe(kind: str, target, sub) -> str:
    if kind == "call_module":
        return f"{type(sub).__module__}.{type(sub).__qualname__}"
    if kind == "call_method":
        return f"Tensor.{target}"
    if kind == "get_attr":
        return "a tensor attribute"
    return f"{getattr(target, '__module__', None) or 'builtins'}.{getattr(target, '__name__', target)}"


# --- the tracer ----------------------------------------------------------------------


class _Builder:
    """Turns the fx graph (with shapes) into nodes and parameter modules."""

    def __init__(self, root: nn.Module, fx_graph: torch.fx.Graph, qualname: dict, shapes: dict):
        self.root, self.fx, self.qual, self.shapes = root, fx_graph, qualname, shapes
        self.nodes: list[Node] = []
        self.modules: dict[str, nn.Module] = {}
        self.name_of: dict[torch.fx.Node, str] = {}  # fx node -> the tensor name holding its value
        self.folded: dict[str, str] = {}
        self.skip: set[torch.fx.Node] = set()  # convolutions folded into the batch norm after them
        self.params: set[str] = set()

    # names and shapes
    def shape(self, n) -> tuple[int, ...] | None:
        return self.shapes.get(n)

    def channels(self, n) -> int:
        s = self.shape(n)
        return int(s[1]) if s is not None and len(s) >= 2 else 0

    def param_name(self, name: str) -> str:
        p = name.replace(".", "_")
        while p in self.params:
            p += "_"
        self.params.add(p)
        return p

    def add(self, node: Node, fx_node: torch.fx.Node | None = None, module: nn.Module | None = None) -> None:
        self.nodes.append(node)
        if module is not None:
            self.modules[node.param] = module
        if fx_node is not None:
            self.name_of[fx_node] = node.name

    def tensor_inputs(self, args, kwargs) -> list[torch.fx.Node]:
        found: list[torch.fx.Node] = []
        torch.fx.node.map_arg((args, kwargs), lambda a: found.append(a) or a)
        return list(dict.fromkeys(found))

    # the kinds
    def opaque(self, n: torch.fx.Node, name: str) -> None:
        inputs = self.tensor_inputs(n.args, n.kwargs)
        sub = self.root.get_submodule(n.target) if n.op == "call_module" else None
        target = getattr(self.root, n.target) if n.op == "get_attr" else n.target
        module = _Opaque(n.op, target, n.args, n.kwargs, inputs, sub)
        shape = self.shape(n)
        out_hw = None
        in_shape = self.shape(inputs[0]) if inputs else None
        if shape is None or len(shape) != 4 or in_shape is None or len(in_shape) != 4 or shape[2:] != in_shape[2:]:
            out_hw = tuple(int(v) for v in shape[2:]) if shape is not None and len(shape) == 4 else (1, 1)
        ins = tuple(self.name_of[i] for i in inputs) or (INPUT,)
        self.add(Node(name, "opaque", ins, channels=self.channels(n), param=self.param_name(name), out_hw=out_hw,
                      source=_describe(n.op, n.target, sub)), n, module)

    def simple(self, n, name, op, src, **kw) -> None:
        self.add(Node(name, op, (self.name_of[src],), channels=self.channels(n), **kw), n)

    def conv(self, n, name, conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> None:
        w = conv.weight.detach()
        b = conv.bias.detach() if conv.bias is not None else None
        if bn is not None:
            w, b = fold_batchnorm(w, b, bn.running_mean, bn.running_var, bn.bias, bn.weight, bn.eps)
        node = Node(name, "conv2d", (self.name_of[n.args[0]],), _pair(conv.kernel_size), int(conv.stride[0]),
                    conv.out_channels, param=self.param_name(name), pad=_pair(conv.padding),
                    dilation=_pair(conv.dilation), groups=conv.groups)
        m = OPS["conv2d"].make_module(node, conv.in_channels)
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(b if b is not None else torch.zeros(conv.out_channels))
        self.add(node, n, m.to(dtype=conv.weight.dtype, device=conv.weight.device))

    def affine(self, n, name, bn: nn.BatchNorm2d) -> None:
        scale = (bn.running_var + bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.detach()
        shift = -bn.running_mean * scale + (bn.bias.detach() if bn.bias is not None else 0)
        node = Node(name, "affine", (self.name_of[n.args[0]],), channels=bn.num_features, param=self.param_name(name))
        m = OPS["affine"].make_module(node, bn.num_features)
        with torch.no_grad():
            m.weight.copy_(scale)
            m.bias.copy_(shift)
        self.add(node, n, m.to(dtype=bn.running_mean.dtype, device=bn.running_mean.device))

    def linear(self, n, name, lin: nn.Linear) -> None:
        node = Node(name, "linear", (self.name_of[n.args[0]],), channels=lin.out_features, param=self.param_name(name))
        m = OPS["linear"].make_module(node, lin.in_features)
        with torch.no_grad():
            m.weight.copy_(lin.weight)
            m.bias.copy_(lin.bias if lin.bias is not None else torch.zeros(lin.out_features))
        self.add(node, n, m.to(dtype=lin.weight.dtype, device=lin.weight.device))

    def window(self, n, name, op, src, kernel, stride, padding, dilation=1, ceil_mode=False,
               count_include_pad=True) -> None:
        stride = kernel if stride is None or stride == [] or stride == () else stride
        s = _pair(stride)
        if s[0] != s[1]:
            return self.opaque(n, name)
        self.simple(n, name, op, src, kernel=_pair(kernel), stride=s[0], pad=_pair(padding),
                    dilation=_pair(dilation), ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad))

    # one fx node
    def visit(self, n: torch.fx.Node) -> None:
        if n in self.skip:
            return
        name = self.qual.get(n, n.name)
        if n.op == "placeholder":
            if self.nodes:
                raise TraceError(f"the module's forward takes more than one input ({n.name}); trace needs one image batch")
            self.add(Node(INPUT, "input", (), channels=self.channels(n)), n)
            return
        if n.op == "output":
            return
        if n.op == "call_module":
            return self.visit_module(n, name, self.root.get_submodule(n.target))
        if n.op == "call_function":
            return self.visit_function(n, name)
        if n.op == "call_method" and n.target in _ACTIVATION_METHODS and len(n.args) == 1 and not n.kwargs:
            return self.simple(n, name, _ACTIVATION_METHODS[n.target], n.args[0])
        self.opaque(n, name)

    def _sole_user_bn(self, n: torch.fx.Node) -> torch.fx.Node | None:
        users = list(n.users)
        if len(users) != 1 or users[0].op != "call_module":
            return None
        bn = self.root.get_submodule(users[0].target)
        ok = isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None and len(users[0].args) == 1
        return users[0] if ok else None

    def visit_module(self, n, name, m: nn.Module) -> None:
        one = len(n.args) == 1 and not n.kwargs and isinstance(n.args[0], torch.fx.Node)
        if not one:
            return self.opaque(n, name)
        src = n.args[0]
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str) \
                and m.stride[0] == m.stride[1]:
            bn_node = self._sole_user_bn(n)
            if bn_node is not None:
                bn_name = self.qual.get(bn_node, bn_node.name)
                self.skip.add(bn_node)
                self.folded[name] = bn_name
                self.conv(n, bn_name, m, self.root.get_submodule(bn_node.target))
                self.name_of[bn_node] = bn_name
                return
            return self.conv(n, name, m, None)
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
            return self.affine(n, name, m)
        if isinstance(m, nn.GELU) and m.approximate == "none":
            return self.simple(n, name, "gelu", src)
        for cls, op in _ACTIVATION_MODULES.items():
            if type(m) is cls:
                return self.simple(n, name, op, src)
        if isinstance(m, _IDENTITY_MODULES):
            return self.simple(n, name, "identity", src)
        if type(m) is nn.MaxPool2d and not m.return_indices:
            return self.window(n, name, "max_pool2d", src, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)
        if type(m) is nn.AvgPool2d and m.divisor_override is None:
            return self.window(n, name, "avg_pool2d", src, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                               m.count_include_pad)
        if type(m) is nn.AdaptiveAvgPool2d and len(self.shape(n) or ()) == 4:
            return self.simple(n, name, "adaptive_avg_pool2d", src, out_hw=tuple(int(v) for v in self.shape(n)[2:]))
        if type(m) is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
            return self.simple(n, name, "flatten", src)
        if type(m) is nn.Linear and len(self.shape(src) or ()) == 2:
            return self.linear(n, name, m)
        self.opaque(n, name)

    def visit_function(self, n, name) -> None:
        f, args, kw = n.target, n.args, n.kwargs
        tensors = [a for a in args if isinstance(a, torch.fx.Node)]
        if f in _ACTIVATION_FUNCTIONS and len(args) == 1 and set(kw) <= {"inplace"}:
            return self.simple(n, name, _ACTIVATION_FUNCTIONS[f], args[0])
        if f is F.gelu and len(args) == 1 and kw.get("approximate", "none") == "none":
            return self.simple(n, name, "gelu", args[0])
        if f in (operator.add, operator.iadd, torch.add) and len(args) == 2 and not kw and len(tensors) == 2 \
                and self.shape(args[0]) == self.shape(args[1]) == self.shape(n):
            return self.add(Node(name, "add", (self.name_of[args[0]], self.name_of[args[1]]),
                                 channels=self.channels(n)), n)
        if f in (operator.mul, operator.imul, torch.mul) and len(args) == 2 and not kw and len(tensors) == 2:
            a, b = self.shape(args[0]), self.shape(args[1])
            if a is not None and b is not None and len(a) == len(b) == 4 and a[:2] == b[:2]:
                big, small = (args[0], args[1]) if b[2:] == (1, 1) else (args[1], args[0])
                if self.shape(small)[2:] in ((1, 1), self.shape(big)[2:]) and self.shape(big) == self.shape(n):
                    return self.add(Node(name, "mul", (self.name_of[big], self.name_of[small]),
                                         channels=self.channels(n)), n)
        if f is torch.cat:
            seq = args[0] if args else kw.get("tensors")
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            if isinstance(seq, (list, tuple)) and all(isinstance(t, torch.fx.Node) for t in seq) and dim == 1 \
                    and all(len(self.shape(t) or ()) == 4 for t in seq):
                return self.add(Node(name, "concat", tuple(self.name_of[t] for t in seq), channels=self.channels(n)), n)
        if f is torch.flatten and len(tensors) == 1:
            start = args[1] if len(args) > 1 else kw.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
            if start == 1 and end == -1:
                return self.simple(n, name, "flatten", args[0])
        bound = _bind(f, args, kw) if callable(f) else None
        if bound is not None and len(tensors) == 1 and isinstance(args[0], torch.fx.Node):
            fname = getattr(f, "__name__", "")
            if fname == "stochastic_depth" and not bound.get("training", True):
                return self.simple(n, name, "identity", args[0])
            if f is F.dropout and not bound.get("training", True):
                return self.simple(n, name, "identity", args[0])
            if f is F.adaptive_avg_pool2d and len(self.shape(n) or ()) == 4:
                return self.simple(n, name, "adaptive_avg_pool2d", args[0],
                                   out_hw=tuple(int(v) for v in self.shape(n)[2:]))
            if f is F.avg_pool2d and bound.get("divisor_override") is None:
                return self.window(n, name, "avg_pool2d", args[0], bound["kernel_size"], bound["stride"],
                                   bound["padding"], 1, bound["ceil_mode"], bound["count_include_pad"])
            if fname in ("max_pool2d", "_max_pool2d") and not bound.get("return_indices", False):
                return self.window(n, name, "max_pool2d", args[0], bound["kernel_size"], bound["stride"],
                                   bound["padding"], bound["dilation"], bound["ceil_mode"])
        self.opaque(n, name)


def _module_outputs(nodes: list[Node], root: nn.Module, order_names: dict[str, int]) -> list[Node]:
    """Insert an identity node named after each non-leaf module, after the last tensor
    computed inside it (torchvision's convention for a module's output), and have the
    nodes outside the module read it."""
    present = {n.name for n in nodes}
    modules = {q for q, _ in root.named_modules() if q and q not in present}
    last: dict[str, str] = {}  # module -> the last node inside it
    for n in nodes:
        parts = n.name.split(".")
        for k in range(1, len(parts)):
            q = ".".join(parts[:k])
            if q in modules:
                last[q] = n.name
    ends: dict[str, list[str]] = {}  # last node -> modules ending there
    for q, end in last.items():
        ends.setdefault(end, []).append(q)
    out: list[Node] = []
    alias: dict[str, list[str]] = {}  # end node -> its module chain, deepest first
    for n in nodes:
        # read a module's output by its name from outside the module
        ins = []
        for i in n.inputs:
            chain = alias.get(i, [])
            outside = [q for q in chain if not n.name.startswith(q + ".")]
            ins.append(outside[-1] if outside else i)
        n = dataclasses.replace(n, inputs=tuple(ins)) if ins != list(n.inputs) else n
        out.append(n)
        chain = sorted(ends.get(n.name, []), key=lambda q: -q.count("."))
        prev = n.name
        for q in chain:
            out.append(Node(q, "identity", (prev,), channels=n.channels, out_hw=None))
            prev = q
        if chain:
            alias[n.name] = chain
    return out


@contextlib.contextmanager
def _eval_mode(module: nn.Module):
    """The module and its submodules in eval mode for the block; their modes restored after."""
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        yield
    finally:
        for m, t in modes:
            m.training = t


def trace(
    module: nn.Module,
    *,
    name: str | None = None,
    input_size: int = 224,
    normalize: tuple[Sequence[float], Sequence[float]] | None = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    graph: Graph | None = None,
    source: str | None = None,
):
    """A `Network` computing `module` (in eval mode), with a hook point at every tensor.

    source: where the module's weights came from (the model's ``source``), for records.

    name: the network's name (default the module's class name).
    input_size: the square input side the module is traced at (shapes of the fx graph;
        the network then runs at any size the module does); also its default input size.
    normalize: (mean, std) per RGB channel that the module expects its input normalized
        by (torchvision's ImageNet weights: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        the network then takes RGB in [0, 1] and applies it as its first node,
        ``normalize`` (a channel-wise affine op), so stimuli, feature visualization and
        dataset images render in [0, 1]. None: the network's input is the module's.
    input_range: (low, high) of the input (with `normalize`, always (0, 1)).
    graph: a graph traced before from a module of the same architecture, to share: units
        resolved against it belong to the new network too (the traced nodes must equal it).

    The module is not changed (nor are hooks added to it); the network shares the
    parameters of opaque nodes' code with it and holds copies of the others (batch
    norm folded in).

    >>> import torchvision
    >>> m = trace(torchvision.models.mobilenet_v2(weights=None))   # doctest: +SKIP
    >>> m.graph.node("features.2.conv.1.0").groups                 # doctest: +SKIP
    144
    """
    from circuits.core.model import Network
    from torchvision.models.feature_extraction import NodePathTracer
    from torch.fx.passes.shape_prop import ShapeProp

    if not isinstance(module, nn.Module):
        raise TypeError(f"trace needs a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    if normalize is not None:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).flatten() for v in normalize)
        if mean.shape != (3,) or std.shape != (3,) or not bool((std > 0).all()):
            raise ValueError(f"normalize must be (mean, std) with 3 values each and std > 0, got {normalize!r}")
        input_range = (0.0, 1.0)
    name = name or type(module).__name__
    with _eval_mode(module), torch.no_grad():
        tracer = NodePathTracer()
        try:
            fx_graph = tracer.trace(module)
        except Exception as e:  # torch.fx's errors say which Python construct it cannot trace
            raise TraceError(f"torch.fx cannot trace {name}: {type(e).__name__}: {e}") from e
        gm = torch.fx.GraphModule(module, fx_graph)
        p = next(module.parameters(), None)
        x = torch.zeros(1, 3, input_size, input_size, dtype=p.dtype if p is not None else torch.float32,
                        device=p.device if p is not None else "cpu")
        ShapeProp(gm).propagate(x)
        shapes = {n: tuple(n.meta["tensor_meta"].shape) for n in fx_graph.nodes
                  if isinstance(n.meta.get("tensor_meta"), torch.fx.passes.shape_prop.TensorMetadata)}
        b = _Builder(module, fx_graph, tracer.node_to_qualname, shapes)
        for n in fx_graph.nodes:
            b.visit(n)
        out_node = next(n for n in fx_graph.nodes if n.op == "output").args[0]
        if not isinstance(out_node, torch.fx.Node) or out_node not in b.name_of:
            raise TraceError(f"{name}'s forward must return one tensor to be traced, got {out_node!r}")
        nodes = b.nodes
        modules = b.modules
        if normalize is not None:
            norm = Node("normalize", "affine", (INPUT,), channels=3, param="normalize")
            m = OPS["affine"].make_module(norm, 3)
            with torch.no_grad():
                m.weight.copy_(1 / std)
                m.bias.copy_(-mean / std)
            modules["normalize"] = m.to(x.device)
            nodes = [nodes[0], norm] + [dataclasses.replace(n, inputs=tuple("normalize" if i == INPUT else i
                                                                            for i in n.inputs))
                                        for n in nodes[1:]]
        nodes = _module_outputs(nodes, module, {})
        output = b.name_of[out_node]
        # the module chain of the output, outermost last, is what the network returns
        while True:
            nxt = [n.name for n in nodes if n.kind.passes_through and n.inputs == (output,)
                   and not n.name.startswith(output + ".") and output.startswith(n.name + ".")]
            if not nxt:
                break
            output = nxt[0]
        spatial = [n.name for n in nodes[1:]]
        first_flat = next((i for i, n in enumerate(nodes) if not n.kind.spatial), len(nodes))
        span = (spatial[0], nodes[max(first_flat - 1, 1)].name)
        if graph is not None:
            if tuple(nodes) != graph.nodes or output != graph.output:
                diff = next((f"{a.name} ({a.op}) vs {b_.name} ({b_.op})" for a, b_ in zip(nodes, graph.nodes)
                             if a != b_), f"{len(nodes)} vs {len(graph.nodes)} nodes")
                raise TraceError(f"{name} does not trace to the graph {graph.name} it should share: {diff}")
            g = graph
        else:
            g = Graph(name, nodes, input_range=input_range, expanded_span=span, output=output,
                      default_input_size=input_size, folded=b.folded)
        net = Network(graph=g, modules=modules, source=source)
    return net.eval()
