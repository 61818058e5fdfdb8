"""The options of a span, written once: ``@clew.trace(**options)`` and ``clew.span(name,
**options)`` take the same :class:`SpanOptions`, validated once into a :class:`SpanSpec`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, get_type_hints

from clew import attributes as a
from clew.errors import ConfigurationError
from clew.tracer.conventions import Identity, check_kind, start_attribute_sets
from clew.tracer.sampling import sample_bound
from clew.tracer.serialize import to_json

__all__ = ["OPTION_NAMES", "SpanOptions", "SpanSpec"]


class SpanOptions(TypedDict, total=False):
    """What a traced function or block records besides its inputs and output.

    Attributes:
        kind: what the span does, for the backends that show it: ``chain`` (the default),
            ``tool``, ``retriever``, ``agent``, ``embedding``, ``reranker``, ``guardrail``,
            ``evaluator``, ``llm`` or ``prompt`` (OpenInference's span kinds; see
            :mod:`clew.tracer.conventions`).
        tags: tags for the span.
        metadata: key-value pairs for the span.
        end_user_identifier: the end user this call serves.
        session_id: the session this call belongs to.
        target: the expected (ground-truth) output.
        deployment_id: the deployed prompt this call used.
        log_omit_inputs: do not record the inputs of this span and of every span below it.
        log_omit_outputs: do not record the outputs of this span and of every span below it.
        log_omit: both of the above.
        log_sample_rate: keep this trace (at a root) or this subtree (below one) with this
            probability, from 0 to 1.
        eval_funcs: functions that score each call after it ended, off the caller's thread
            (see :mod:`clew.tracer.evaluation`).
        apply_eval_frac: the share of calls they score, from 0 to 1 (decided by the trace id,
            so a trace is scored whole or not at all).
    """

    kind: str | None
    tags: Iterable[str] | None
    metadata: Mapping[str, Any] | None
    end_user_identifier: str | None
    session_id: str | None
    target: Any
    deployment_id: str | None
    log_omit_inputs: bool
    log_omit_outputs: bool
    log_omit: bool
    log_sample_rate: float | None
    eval_funcs: Sequence[Callable[..., Any]] | None
    apply_eval_frac: float


OPTION_NAMES: tuple[str, ...] = tuple(get_type_hints(SpanOptions, include_extras=True))
"""The keys :class:`SpanOptions` takes, in order."""

_TEXT_OPTIONS = (
    ("end_user_identifier", a.CLEW_END_USER_IDENTIFIER),
    ("session_id", a.CLEW_SESSION_ID),
    ("deployment_id", a.CLEW_DEPLOYMENT_ID),
)


class SpanSpec:
    """A span's name and options, validated once (at decoration, or when ``span()`` is made).

    Attributes:
        name: the span name.
        tags: the tags (also in ``attribute_sets``), kept for ``add_tags``.
        metadata: the metadata (also in ``attribute_sets``), kept for ``set_metadata``.
        omit_inputs: inputs are not recorded here and below.
        omit_outputs: outputs are not recorded here and below.
        rate: the sample rate asked for, or None.
        evals: the eval functions (empty: none).
        eval_bound: calls whose trace id's high 64 bits are below it are evaluated.
        bound: the sampling bound of ``rate`` (see :func:`~clew.tracer.sampling.sample_bound`).
        kind: the ``kind=`` given (lower case), or None.
        identity: the end user and session given, or None when neither was.
        attribute_sets: the span's start attributes the options make, for each choice of
            families (index: the bit set; 0: ``clew.*`` only; see
            :func:`~clew.tracer.conventions.start_attribute_sets`).
    """

    __slots__ = (
        "attribute_sets",
        "bound",
        "eval_bound",
        "evals",
        "identity",
        "kind",
        "metadata",
        "name",
        "omit_inputs",
        "omit_outputs",
        "rate",
        "tags",
        "target",
    )

    def __init__(self, name: str, options: SpanOptions | Mapping[str, Any] | None = None) -> None:
        """Validate ``name`` and ``options``.

        Raises:
            ConfigurationError: an unknown option or a bad value; the message says which.
        """
        opts: Mapping[str, Any] = options or {}
        unknown = set(opts) - set(OPTION_NAMES)
        if unknown:
            raise ConfigurationError(
                f"unknown span option(s) {sorted(unknown)}; the options are"
                f" {', '.join(OPTION_NAMES)}"
            )
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a span name must be a non-empty string, got {name!r}")
        tags = opts.get("tags")
        if isinstance(tags, str):
            raise ConfigurationError(f"tags must be a list of strings, e.g. [{tags!r}]")
        tag_list = list(tags or ())
        if not all(isinstance(t, str) for t in tag_list):
            raise ConfigurationError(f"tags must be a list of strings, got {tag_list!r}")
        metadata = opts.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ConfigurationError(f"metadata must be a dict, got {type(metadata).__name__}")
        rate = opts.get("log_sample_rate")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0
        ):
            raise ConfigurationError(f"log_sample_rate must be a number from 0 to 1, got {rate!r}")
        evals = tuple(opts.get("eval_funcs") or ())
        if isinstance(opts.get("eval_funcs"), str | bytes) or not all(map(callable, evals)):
            raise ConfigurationError(
                "eval_funcs must be a list of functions that take a clew.Log, got"
                f" {opts.get('eval_funcs')!r}"
            )
        frac = opts.get("apply_eval_frac", 1.0)
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0.0 <= frac <= 1.0:
            raise ConfigurationError(f"apply_eval_frac must be a number from 0 to 1, got {frac!r}")
        kind = check_kind(opts.get("kind"))
        attrs: dict[str, Any] = {}
        for field, key in _TEXT_OPTIONS:
            value = opts.get(field)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{field} must be a string, got {type(value).__name__}")
            if value is not None:
                attrs[key] = value
        self.name = name
        self.tags = tag_list
        self.metadata = dict(metadata) if metadata else None
        omit = bool(opts.get("log_omit"))
        self.omit_inputs = omit or bool(opts.get("log_omit_inputs"))
        self.omit_outputs = omit or bool(opts.get("log_omit_outputs"))
        self.rate = None if rate is None else float(rate)
        self.bound = sample_bound(self.rate) if self.rate is not None else 0
        self.evals = evals
        self.eval_bound = round(float(frac) * (1 << 64))
        if tag_list:
            attrs[a.CLEW_TAGS] = tuple(tag_list)
        if self.metadata:
            attrs[a.CLEW_METADATA] = to_json(self.metadata)
        target = opts.get("target")
        self.target = target
        if target is not None:
            attrs[a.CLEW_TARGET] = to_json(target)
        if kind is not None:
            attrs[a.CLEW_KIND] = kind
        self.kind = kind
        user, session = attrs.get(a.CLEW_END_USER_IDENTIFIER), attrs.get(a.CLEW_SESSION_ID)
        self.identity: Identity | None = (
            (user, session) if user is not None or session is not None else None
        )
        self.attribute_sets = start_attribute_sets(attrs, kind, self.metadata)
