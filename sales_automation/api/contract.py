"""The one error contract of the public endpoints: `@endpoint(methods=[...])` whitelists a method and
answers every refusal of it as the documented `error` object.

Frappe checks a whitelisted method's annotated arguments itself (417 FrappeTypeError, without the
`error` object and without naming the argument as a field) and calls it with whatever the request
holds (a missing argument is a 500 TypeError). Here every argument is checked against the method's
signature first, the same way for a JSON body, a form post and a query string: a missing or empty
required argument, or one of the wrong type, is a 422 naming it."""

import functools
import inspect
import math
import types
import typing

import frappe
from frappe import _

from sales_automation.api.answers import as_api_error
from sales_automation.api.validation import invalid

# the content types Frappe reads arguments from (frappe.app.make_form_dict)
ARGUMENT_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
TRUE = ("1", "true", "True", "yes")
FALSE = ("0", "false", "False", "no")


def endpoint(methods: list[str]):
	"""Whitelist `method` for these HTTP methods, its arguments checked and its errors answered."""

	def decorate(method):
		signature = inspect.signature(method)
		hints = typing.get_type_hints(method)

		@functools.wraps(method)
		def answering(*args, **arguments):
			try:
				arguments = {
					**dict(zip(signature.parameters, args, strict=False)),
					**arguments,
				}  # from Python
				return method(**checked_arguments(signature, hints, arguments))
			except Exception as exc:
				if "error" in frappe.local.response:  # answered already (handle)
					raise
				raise as_api_error(exc)

		# checked here instead, naming the argument (Frappe's own check skips a method without them)
		answering.__annotations__ = {}
		return frappe.whitelist(methods=methods)(answering)

	return decorate


def checked_arguments(signature: inspect.Signature, hints: dict, arguments: dict) -> dict:
	check_body_was_read(next(iter(signature.parameters), "body"))
	checked = {}
	for name, parameter in signature.parameters.items():
		value = arguments.get(name)
		if value is None or value == "":
			if parameter.default is inspect.Parameter.empty:
				invalid(name, _("is required"))
			continue
		checked[name] = typed(name, value, hints.get(name))
	return checked


def check_body_was_read(first_argument: str):
	"""422 for a body Frappe did not read as arguments (JSON sent as text/plain, or with no Content-Type),
	naming the header, rather than an answer about the arguments it seems to lack."""
	request = getattr(frappe.local, "request", None)
	if not request or request.method not in ("POST", "PUT") or not request.get_data(cache=True):
		return
	content_type = (request.content_type or "").split(";")[0].strip().lower()
	if content_type not in ARGUMENT_CONTENT_TYPES:
		invalid(
			first_argument,
			_(
				"the request's body was not read, as its Content-Type is {0}: send JSON with Content-Type: application/json (or a form)"
			).format(content_type or _("missing")),
		)


def typed(name: str, value, annotation):
	"""The value as the annotation wants it; a form post or a query string gives every value as text."""
	kinds = set(typing.get_args(annotation)) if is_union(annotation) else {annotation}
	kinds.discard(type(None))
	if not kinds or typing.Any in kinds:
		return value
	if bool in kinds:
		if isinstance(value, bool) or value in (0, 1):
			return bool(value)
		if value in TRUE or value in FALSE:
			return value in TRUE
		invalid(name, _("must be true or false"))
	if isinstance(value, str):
		if str in kinds:
			return value
		if float in kinds or int in kinds:
			return number(name, value, kinds)
		invalid(name, must_be(kinds))
	if isinstance(value, int | float) and not isinstance(value, bool) and (float in kinds or int in kinds):
		return number(name, value, kinds)
	for kind in (dict, list):
		if kind in kinds and isinstance(value, kind):
			return value
	invalid(name, must_be(kinds))


def number(name: str, value, kinds: set):
	try:
		parsed = float(value)
	except (TypeError, ValueError):
		invalid(name, must_be(kinds))
	if not math.isfinite(parsed):
		invalid(name, _("must be a finite number"))
	if float not in kinds:
		if parsed != int(parsed):
			invalid(name, _("must be a whole number"))
		return int(parsed)
	return parsed


NAMES = {
	str: "a string",
	bool: "true or false",
	int: "a whole number",
	float: "a number",
	dict: "an object",
	list: "a list",
}


def must_be(kinds: set) -> str:
	if dict in kinds or list in kinds:
		kinds = kinds - {str}  # JSON text of an object or list is how a form sends one, not a kind of its own
	described = [_(NAMES[kind]) for kind in NAMES if kind in kinds]
	if len(described) == 1:
		return _("must be {0}").format(described[0])
	return _("must be {0} or {1}").format(", ".join(described[:-1]), described[-1])


def is_union(annotation) -> bool:
	return typing.get_origin(annotation) in (typing.Union, types.UnionType)
