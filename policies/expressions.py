"""Custom rules in CEL behind one small interface, so the evaluator can be swapped by measurement.

CEL is the language of Kubernetes' ValidatingAdmissionPolicy, Kyverno and Gatekeeper, so one
expression can run in ``stockade run``, in CI and in the cluster. The engine is chosen by
measurement (ARCHITECTURE.md; ``benchmarks/bench_policy.py``): ``cel-expr-python`` (Google's C++
CEL runtime) evaluates a rule in microseconds, against hundreds of microseconds for the pure-Python
``cel-python``. It costs ~17 ms to import, so it is imported only when a policy has rules.

Expressions see the input document's top-level keys as variables: ``image``, ``container`` and
``context``. A rule must return a bool; an evaluation error (a missing key, a type error) fails
closed: the rule counts as failed and the error is reported.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from policies.errors import ExpressionError

VARIABLES = ("image", "container", "context")


class ExpressionEvalError(Exception):
    """A compiled expression could not produce a bool for this input."""


class CompiledExpression(Protocol):
    source: str

    def evaluate(self, activation: Any) -> bool:
        """True or False; raises ExpressionEvalError when the expression errs on this input."""


class ExpressionEngine(Protocol):
    name: str

    def compile(self, source: str) -> CompiledExpression:
        """Parse and type-check; raises ExpressionError with the engine's message."""

    def activation(self, document: Mapping[str, Any]) -> Any:
        """Bind one input document once for all the rules evaluated against it."""


class _CelExprExpression:
    __slots__ = ("source", "_expr")

    def __init__(self, source: str, expr: Any) -> None:
        self.source, self._expr = source, expr

    def evaluate(self, activation: Any) -> bool:
        value = self._expr.eval(activation)
        result = value.value()
        if isinstance(result, bool):
            return result
        raise ExpressionEvalError(str(value) if value.type().name() == "ERROR"
                                  else f"returned {value.type().name().lower()}, not a bool")


class CelExprEngine:
    """``cel-expr-python``: the C++ CEL runtime (cel-expr/cel-python)."""

    name = "cel-expr-python"

    def __init__(self) -> None:
        from cel_expr_python import cel  # heavy (~17 ms): only policies with rules pay for it

        self._cel = cel
        self._env = cel.NewEnv(variables={v: cel.Type.DYN for v in VARIABLES})

    def compile(self, source: str) -> CompiledExpression:
        try:
            expr = self._env.compile(source)
        except RuntimeError as exc:
            raise ExpressionError(" ".join(str(exc).split())) from None
        returns = expr.return_type().name()
        if returns not in ("BOOL", "DYN"):
            raise ExpressionError(f"the expression returns {returns.lower()}, not a bool")
        return _CelExprExpression(source, expr)

    def activation(self, document: Mapping[str, Any]) -> Any:
        return self._env.Activation({v: document.get(v) or {} for v in VARIABLES})


_DEFAULT: ExpressionEngine | None = None


def default_engine() -> ExpressionEngine:
    """The process-wide CEL engine, created on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CelExprEngine()
    return _DEFAULT
