"""A compiled plan for subscription selections that only read attributes (docs/adr/0023-gateway-send-path.md).

graphql-core executes a subscription's selection set for every event: per field it builds a resolve info,
coerces arguments, calls the resolver, checks for awaitables and completes the value (~20 fields and
~0.2 ms per `jobStatusChanged` event on this VM). When every field of the selection is a plain attribute
of the event's GraphQL object — Strawberry's "basic" fields, without a resolver, extension or arguments —
the answer is a projection of that object, and `compile_plan` turns the validated operation into a
tree of closures that builds the same dict directly.

Only what graphql-core would do the same way is compiled:
- fields are grouped with graphql-core's own `collect_fields` / `collect_subfields` (fragments, aliases,
  merged selections and `@skip` / `@include` with the operation's variables), in the same order;
- leaves are coerced with the type's `coerce_output_value`, objects are dicts in field order, lists are
  lists; `__typename` is the object type's name;
- the subscription's root field returns the event itself (Strawberry resolves it with the identity).

Anything else — a resolver, field arguments, an interface or union, `is_type_of`, `@defer` / `@stream` or
another directive, fragment variables, middleware (resolver hooks such as tracing) — makes the document
"not a plain projection": `compile_plan` returns None and graphql-core executes it as before. At run time
a value the plan cannot complete exactly as graphql-core would (a null for a non-null field, an exception
as a value, a leaf that does not coerce, a list that is not a list or tuple) raises `NotPlain`, and the
caller executes that event with graphql-core, which reports the error its own way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields
from graphql.type.introspection import TypeNameMetaFieldDef
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_string
from strawberry.schema.schema_converter import GraphQLCoreConverter

Complete = Callable[[Any], Any]  # a value → its completed value
Field = Callable[[Any], Any]  # the parent object → the field's completed value
Plan = Callable[[Any], dict[str, Any]]
_DIRECTIVES_APPLIED_BY_COLLECTION = frozenset({"skip", "include"})
# Coercers that return a value of this exact type unchanged (graphql-core 3.3 `serialize_*`).
_UNCHANGED: dict[Any, type] = {serialize_string: str, serialize_id: str, serialize_boolean: bool}


class _NoFastType:
    """No value has this type: leaves without a fast path always go through their coercer."""


class NotPlain(Exception):
    """This value cannot be completed by the plan exactly as graphql-core would; execute it normally."""


class _Refused(Exception):
    """The document is not a plain projection (compile time)."""


def compile_plan(
    schema: GraphQLSchema,
    fragments: dict[str, Any],
    variable_values: Any,
    operation: OperationDefinitionNode,
) -> Plan | None:
    """A function event → response data for this subscription operation, or None when it is not a plain
    projection. `fragments` and `variable_values` are the executor's (graphql-core 3.3 `Executor`)."""
    if operation.operation != OperationType.SUBSCRIPTION or operation.directives:
        return None
    root_type = schema.subscription_type
    if root_type is None:
        return None
    try:
        grouped, defers, forbidden = collect_fields(schema, fragments, variable_values, root_type, operation)
        if defers or forbidden:
            return None
        fields = _Compiler(schema, fragments, variable_values, operation).fields(root_type, grouped, root=True)
    except (_Refused, RecursionError):
        return None

    def plan(event: Any) -> dict[str, Any]:
        return {key: field(event) for key, field in fields}

    return plan


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, Any], variables: Any, op: Any) -> None:
        self.schema, self.fragments, self.variables, self.operation = schema, fragments, variables, op

    def fields(
        self, parent: GraphQLObjectType, grouped: dict[str, list[FieldDetails]], *, root: bool = False
    ) -> list[tuple[str, Field]]:
        compiled: list[tuple[str, Field]] = []
        for key, details in grouped.items():
            for detail in details:
                if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                    raise _Refused
                if any(d.name.value not in _DIRECTIVES_APPLIED_BY_COLLECTION for d in detail.node.directives or ()):
                    raise _Refused
            compiled.append((key, self.field(parent, details, root=root)))
        return compiled

    def field(self, parent: GraphQLObjectType, details: list[FieldDetails], *, root: bool) -> Field:
        node = details[0].node
        field = self.schema.get_field(parent, node.name.value)
        if field is None:
            raise _Refused
        if field is TypeNameMetaFieldDef:
            name = parent.name
            return lambda _parent: name
        definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if definition is None or field.resolve is None:
            raise _Refused
        complete = self.complete(field.type, details)
        if root:
            # Strawberry resolves a subscription field's events with the identity (`lambda event, ...: event`).
            if not getattr(definition, "is_subscription", False):
                raise _Refused
            return complete
        if field.args or any(d.node.arguments for d in details):
            raise _Refused
        if not getattr(field.resolve, "_is_default", False) or not definition.is_basic_field:
            raise _Refused
        if definition.default_resolver is not getattr:
            raise _Refused
        name = definition.python_name
        leaf = field.type.of_type if is_non_null_type(field.type) else field.type
        if is_leaf_type(leaf):
            return _leaf_field(name, leaf.coerce_output_value, non_null=is_non_null_type(field.type))
        return lambda parent: complete(getattr(parent, name))

    def complete(self, type_: Any, details: list[FieldDetails]) -> Complete:
        non_null = is_non_null_type(type_)
        if non_null:
            type_ = type_.of_type
        if is_list_type(type_):
            return _list(self.complete(type_.of_type, details), non_null=non_null)
        if is_leaf_type(type_):
            return _leaf(type_.coerce_output_value, non_null=non_null)
        if is_object_type(type_):
            if type_.is_type_of is not None:
                raise _Refused
            grouped, defers, forbidden = collect_subfields(
                self.schema, self.fragments, self.variables, self.operation, type_, details
            )
            if defers or forbidden:
                raise _Refused
            return _object(self.fields(type_, grouped), non_null=non_null)
        raise _Refused  # interfaces and unions: the runtime type is the resolver's to tell


# The closures below repeat graphql-core's `complete_value` for one kind of type each: an exception as a
# value, or a null where the type is non-null, or a coercion to null, is left to graphql-core (NotPlain).


def _leaf(coerce: Callable[[Any], Any], *, non_null: bool) -> Complete:
    fast = _UNCHANGED.get(coerce, _NoFastType)

    def complete(value: Any) -> Any:
        if type(value) is fast:
            return value
        if value is None or value is Undefined:
            if non_null:
                raise NotPlain
            return None
        if isinstance(value, Exception):
            raise NotPlain
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise NotPlain
        return coerced

    return complete


def _leaf_field(name: str, coerce: Callable[[Any], Any], *, non_null: bool) -> Field:
    """`_leaf` of the attribute `name`, in one call."""
    fast = _UNCHANGED.get(coerce, _NoFastType)

    def field(parent: Any) -> Any:
        value = getattr(parent, name)
        if type(value) is fast:
            return value
        if value is None or value is Undefined:
            if non_null:
                raise NotPlain
            return None
        if isinstance(value, Exception):
            raise NotPlain
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise NotPlain
        return coerced

    return field


def _list(item: Complete, *, non_null: bool) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise NotPlain
            return None
        if type(value) is not list and type(value) is not tuple:
            raise NotPlain  # other iterables (and exceptions) the way graphql-core handles them
        return [item(v) for v in value]

    return complete


def _object(fields: list[tuple[str, Field]], *, non_null: bool) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise NotPlain
            return None
        if isinstance(value, Exception):
            raise NotPlain
        return {key: field(value) for key, field in fields}

    return complete


__all__ = ["NotPlain", "Plan", "compile_plan"]
